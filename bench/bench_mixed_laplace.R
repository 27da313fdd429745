# R's fit times for the frames bench/bench_mixed_laplace.py exports (--export DIR), with the formulas of
# analysis.mixed.laplace: ordinal::clmm and lme4::glmer (nAGQ = 1, default control). Each fit gets LIMIT
# seconds (default 900) of elapsed time; one that needs longer is reported as "> LIMIT".
#   Rscript bench/bench_mixed_laplace.R DIR 200x10 2000x20 [LIMIT]
suppressPackageStartupMessages({library(ordinal); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
sizes <- grep("x", args[-1], value = TRUE)
limit <- if (length(setdiff(args[-1], sizes))) as.numeric(setdiff(args[-1], sizes)[1]) else 900

timed <- function(expr) {
  # "elapsed s (CPU s)", or "> limit" when the fit is stopped at the time limit
  start <- proc.time()
  setTimeLimit(elapsed = limit, transient = TRUE)
  on.exit(setTimeLimit(elapsed = Inf))
  ok <- tryCatch({ force(expr); TRUE }, error = function(e) FALSE)
  used <- proc.time() - start
  if (!ok) return(sprintf("> %.0f", limit))
  sprintf("%.1f (%.1f)", used[["elapsed"]], used[["user.self"]] + used[["sys.self"]])
}
cat("| participants × cases | clmm s (CPU s) | glmer s (CPU s) |\n|---|---|---|\n")
for (size in sizes) {
  ordinal_frame <- read.csv(file.path(dir, sprintf("ordinal_%s.csv", size)))
  binary_frame <- read.csv(file.path(dir, sprintf("binary_%s.csv", size)))
  for (column in c("participant", "case", "condition")) {
    ordinal_frame[[column]] <- factor(ordinal_frame[[column]])
    binary_frame[[column]] <- factor(binary_frame[[column]])
  }
  ordinal_frame$y <- factor(ordinal_frame$y, ordered = TRUE)
  clmm_s <- timed(clmm(y ~ condition + (1 | participant) + (1 | case) + (1 | case:condition),
                       data = ordinal_frame))
  glmer_s <- timed(glmer(y ~ condition * ai_wrong + (1 | participant) + (1 | case) + (1 | case:condition),
                         data = binary_frame, family = binomial))
  cat(sprintf("| %s | %s | %s |\n", size, clmm_s, glmer_s))
}
