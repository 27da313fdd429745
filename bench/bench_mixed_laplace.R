# R's fit times for the frames bench/bench_mixed_laplace.py exports (--export DIR), with the formulas of
# analysis.mixed.laplace: ordinal::clmm and lme4::glmer (nAGQ = 1, default control).
#   Rscript bench/bench_mixed_laplace.R DIR 200x10 2000x20
suppressPackageStartupMessages({library(ordinal); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
cat("| participants × cases | clmm s | glmer s |\n|---|---|---|\n")
for (size in args[-1]) {
  ordinal_frame <- read.csv(file.path(dir, sprintf("ordinal_%s.csv", size)))
  binary_frame <- read.csv(file.path(dir, sprintf("binary_%s.csv", size)))
  for (column in c("participant", "case", "condition")) {
    ordinal_frame[[column]] <- factor(ordinal_frame[[column]])
    binary_frame[[column]] <- factor(binary_frame[[column]])
  }
  ordinal_frame$y <- factor(ordinal_frame$y, ordered = TRUE)
  clmm_s <- system.time(clmm(y ~ condition + (1 | participant) + (1 | case) + (1 | case:condition),
                             data = ordinal_frame))[["elapsed"]]
  glmer_s <- system.time(glmer(y ~ condition * ai_wrong + (1 | participant) + (1 | case) + (1 | case:condition),
                               data = binary_frame, family = binomial))[["elapsed"]]
  cat(sprintf("| %s | %.1f | %.1f |\n", size, clmm_s, glmer_s))
}
