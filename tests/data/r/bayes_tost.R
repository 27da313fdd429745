# Reference values for analysis/bayes.py and analysis/equivalence.py (tests/test_analysis_bayes_tost.py).
# Run: Rscript tests/data/r/bayes_tost.R > tests/data/r/bayes_tost.json
# Bayes factors: BayesFactor::ttestBF (raw data) and ttest.tstat (from t and n), two-sided, default JZS prior
# with rscale = sqrt(2)/2 ("medium").
# TOST (Lakens 2017) by hand with t.test: two one-sided tests against -delta and +delta, p = the larger one,
# and the (1 - 2 alpha) confidence interval of the difference.
suppressPackageStartupMessages(library(BayesFactor))
library(jsonlite)

x <- sleep$extra[sleep$group == "2"]  # the visual condition
y <- sleep$extra[sleep$group == "1"]  # the baseline
r <- sqrt(2) / 2
bf <- function(b) exp(b@bayesFactor$bf)

# raw data: paired (one-sample on differences) and two-sample (Student t, equal variances, as ttestBF)
paired_bf <- bf(ttestBF(x = x, y = y, paired = TRUE, rscale = r))
two_bf <- bf(ttestBF(x = x, y = y, paired = FALSE, rscale = r))

# a grid of t statistics and sample sizes, from the t value alone
grid <- expand.grid(t = c(-4.5, -2.1, -0.3, 0, 0.8, 1.96, 3.5, 7.2), n1 = c(5, 12, 40, 200, 20000), n2 = c(0, 9, 60))
grid$bf10 <- mapply(function(t, n1, n2) {
  if (n2 == 0) exp(ttest.tstat(t, n1, rscale = r)$bf) else exp(ttest.tstat(t, n1, n2, rscale = r)$bf)
}, grid$t, grid$n1, grid$n2)

tost <- function(x, y, delta, alpha, paired, lower_only = FALSE) {
  lower <- t.test(x, y, paired = paired, var.equal = FALSE, mu = -delta, alternative = "greater")
  upper <- t.test(x, y, paired = paired, var.equal = FALSE, mu = delta, alternative = "less")
  ci <- t.test(x, y, paired = paired, var.equal = FALSE, conf.level = 1 - 2 * alpha)$conf.int
  list(delta = delta, alpha = alpha,
       t_lower = unname(lower$statistic), p_lower = lower$p.value,
       t_upper = unname(upper$statistic), p_upper = upper$p.value,
       df = unname(lower$parameter),
       p = if (lower_only) lower$p.value else max(lower$p.value, upper$p.value),
       ci = as.numeric(ci))
}

out <- list(
  r = r,
  data = list(visual = x, baseline = y),
  paired = list(bf10 = paired_bf),
  two_sample = list(bf10 = two_bf),
  grid = grid,
  tost = list(
    paired_equivalent = tost(x, y, 2.0, 0.05, TRUE),
    paired_wide = tost(x, y, 3.5, 0.05, TRUE),
    welch_equivalent = tost(x, y, 2.0, 0.05, FALSE),
    welch_wide = tost(x, y, 4.0, 0.025, FALSE),
    paired_non_inferior = tost(x, y, 0.5, 0.05, TRUE, lower_only = TRUE),
    welch_non_inferior = tost(y, x, 0.5, 0.05, FALSE, lower_only = TRUE)
  )
)
cat(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE))
