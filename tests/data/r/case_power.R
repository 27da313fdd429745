# Simulated power of the crossed mixed model (lmerTest, Satterthwaite), the reference for formats.planning's
# analytic case_power (Westfall, Kenny & Judd 2014). Data are drawn exactly as formats.planning.VarianceComponents
# describes them (treatment coding, uncorrelated): y = 4 + participant + case + (participant x condition +
# case x condition + effect) * visual + residual. Run from the repository root (about 3 minutes):
#   Rscript tests/data/r/case_power.R        -> tests/data/r/case_power.json
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
set.seed(2014)
sd <- c(participant = 1, participant_condition = 0.3, case = 0.6, case_condition = 0.4, residual = 1)
simulate_p <- function(design, P, Q, effect) {
  part <- rep(seq_len(P), each = Q); case <- rep(seq_len(Q), times = P)
  if (design == "within") {  # counterbalanced: half the cases in each condition, halves swapped by sequence
    visual <- as.integer(xor(case <= Q / 2, part %% 2 == 0))
  } else {                   # each participant in one condition, every case
    visual <- as.integer(part %% 2 == 0)
  }
  u <- rnorm(P, 0, sd["participant"]); s <- rnorm(P, 0, sd["participant_condition"])
  a <- rnorm(Q, 0, sd["case"]); b <- rnorm(Q, 0, sd["case_condition"])
  y <- 4 + u[part] + a[case] + visual * (effect + s[part] + b[case]) + rnorm(P * Q, 0, sd["residual"])
  d <- data.frame(y, visual, participant = factor(part), case = factor(case))
  f <- if (design == "within") y ~ visual + (1 + visual | participant) + (1 + visual | case) else
    y ~ visual + (1 | participant) + (1 + visual | case)
  m <- suppressMessages(suppressWarnings(lmer(f, data = d)))
  summary(m)$coefficients["visual", "Pr(>|t|)"]
}
cells <- list(list(design = "within", P = 30, Q = 10, effect = 0.35),
              list(design = "within", P = 60, Q = 6, effect = 0.35),
              list(design = "between", P = 60, Q = 10, effect = 0.6))
reps <- 400
out <- lapply(cells, function(cell) {
  p <- replicate(reps, simulate_p(cell$design, cell$P, cell$Q, cell$effect))
  c(cell, list(reps = reps, power = mean(p < 0.05)))
})
write_json(list(components = as.list(sd), alpha = 0.05, cells = out), "tests/data/r/case_power.json",
           auto_unbox = TRUE, digits = NA, pretty = TRUE)
