# Crossed participants × cases data like the toolkit's exports, simulated here once and fitted with the
# formulas of analysis.mixed.laplace (ORDINAL_FORMULA, logistic_formula) by ordinal::clmm and lme4::glmer.
# Run from the repository root:  Rscript tests/data/r/laplace_crossed.R
# Writes laplace_crossed_<name>.csv (the frames) and laplace_crossed.json (R's estimates, SEs and SDs).
# Each model is fitted twice: with R's default tolerances and with tight ones ("tight"), because R's defaults
# stop a little before the maximum (glmer's bobyqa rhoend and PIRLS tolerance; clmm's gradient tolerance).
suppressPackageStartupMessages({library(ordinal); library(lme4); library(jsonlite)})
out <- "tests/data/r"
set.seed(2026)

simulate <- function(n_part, n_case, conds, within, effect, sd_part = 0.8, sd_case = 0.6, sd_cc = 0.4,
                     wrong_cases = integer(0)) {
  k <- length(conds)
  rows <- expand.grid(case = seq_len(n_case), participant = seq_len(n_part))
  arm <- if (within) (rows$participant + rows$case) %% k else rows$participant %% k
  rows$condition <- conds[arm + 1]
  u_part <- rnorm(n_part, 0, sd_part); u_case <- rnorm(n_case, 0, sd_case)
  u_cc <- matrix(rnorm(n_case * k, 0, sd_cc), n_case, k)
  rows$ai_wrong <- as.integer(rows$case %in% wrong_cases)
  rows$eta <- effect[arm + 1] + u_part[rows$participant] + u_case[rows$case] + u_cc[cbind(rows$case, arm + 1)]
  rows$participant <- sprintf("P%03d", rows$participant); rows$case <- sprintf("C%02d", rows$case)
  rows
}
ordinal_frame <- function(...) {
  d <- simulate(...)
  d$y <- findInterval(d$eta + rlogis(nrow(d)), c(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)) + 1L
  d[, c("y", "participant", "case", "condition")]
}
binary_frame <- function(..., wrong_effect) {
  d <- simulate(...)
  k <- match(d$condition, unique(sort(d$condition)))
  d$y <- rbinom(nrow(d), 1, plogis(0.8 + d$eta - 1.6 * d$ai_wrong + wrong_effect[match(d$condition, names(wrong_effect))] * d$ai_wrong))
  d[, c("y", "participant", "case", "condition", "ai_wrong")]
}
frames <- list(
  ordinal_within2 = ordinal_frame(60, 10, c("baseline", "visual"), TRUE, c(0, 0.6)),
  ordinal_between3 = ordinal_frame(90, 10, c("baseline", "photos", "visual"), FALSE, c(0, 0.3, 0.8)),
  binary_within2 = binary_frame(80, 10, c("baseline", "visual"), TRUE, c(0, 0.5), wrong_cases = 1:3,
                                wrong_effect = c(baseline = 0, visual = 0.7)),
  binary_between3 = binary_frame(120, 10, c("baseline", "photos", "visual"), FALSE, c(0, 0.3, 0.6),
                                 wrong_cases = c(2, 5, 8), wrong_effect = c(baseline = 0, photos = 0.3, visual = 0.8)))

ordinal_formula <- y ~ condition + (1 | participant) + (1 | case) + (1 | case:condition)
logistic_formula <- function(ai_wrong) if (ai_wrong)
  y ~ condition * ai_wrong + (1 | participant) + (1 | case) + (1 | case:condition) else
  y ~ condition + (1 | participant) + (1 | case) + (1 | case:condition)
tight_glmer <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))
sds <- function(vc) lapply(vc, function(v) attr(v, "stddev")[[1]])

summarise_clmm <- function(fm) {
  s <- coef(summary(fm)); b <- setdiff(rownames(s), names(fm$alpha))
  list(estimate = as.list(setNames(s[b, "Estimate"], b)), se = as.list(setNames(s[b, "Std. Error"], b)),
       sd = lapply(VarCorr(fm), function(v) sqrt(v[1, 1])), logLik = as.numeric(logLik(fm)),
       vcov = unname(vcov(fm)[b, b, drop = FALSE]))
}
summarise_glmer <- function(fm) {
  s <- coef(summary(fm))
  list(estimate = as.list(s[, "Estimate"]), se = as.list(s[, "Std. Error"]), sd = sds(VarCorr(fm)),
       logLik = as.numeric(logLik(fm)), vcov = unname(as.matrix(vcov(fm))))
}
# R's warnings (convergence checks) are kept with each fit, so a reader sees which reference R doubted itself.
with_warnings <- function(expr) {
  seen <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    seen <<- c(seen, conditionMessage(w)); invokeRestart("muffleWarning") })
  c(value, list(warnings = unique(seen)))
}
refs <- list()
for (name in names(frames)) {
  d <- frames[[name]]
  write.csv(d, file.path(out, sprintf("laplace_crossed_%s.csv", name)), row.names = FALSE)
  # factors, so that case:condition is their interaction (clmm, like lme4, then accepts it as a grouping)
  d$condition <- factor(d$condition, levels = sort(unique(d$condition)))
  d$case <- factor(d$case); d$participant <- factor(d$participant)
  if (startsWith(name, "ordinal")) {
    d$y <- factor(d$y, ordered = TRUE)
    refs[[name]] <- list(
      formula = paste(deparse(ordinal_formula, width.cutoff = 500L), collapse = ""),
      default = with_warnings(summarise_clmm(clmm(ordinal_formula, data = d))),
      tight = with_warnings(summarise_clmm(clmm(ordinal_formula, data = d, control = clmm.control(gradTol = 1e-9)))))
  } else {
    for (ai in c(TRUE, FALSE)) {
      f <- logistic_formula(ai)
      key <- if (ai) name else paste0(name, "_no_ai_wrong")
      refs[[key]] <- list(
        formula = paste(deparse(f, width.cutoff = 500L), collapse = ""),
        default = with_warnings(summarise_glmer(glmer(f, data = d, family = binomial))),
        tight = with_warnings(summarise_glmer(glmer(f, data = d, family = binomial, control = tight_glmer))))
    }
  }
}
refs$versions <- sprintf("%s; ordinal %s; lme4 %s", R.version.string, packageVersion("ordinal"), packageVersion("lme4"))
write(toJSON(refs, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out, "laplace_crossed.json"))
