# Reference values for analysis.compare's rank tests: R's wilcox.test (stats, R 4.2.2), its defaults
# (exact = NULL: exact p for n < 50 without ties or zeros, else the normal approximation with continuity and
# tie corrections). Run from the repository root:  Rscript tests/data/r/wilcoxon.R
# writes tests/data/r/wilcoxon.json (the data and R's statistics, so the comparison is reproducible).
library(jsonlite)
set.seed(21)
# quarter points: exact in binary, so the JSON round trip keeps every tie
likert_means <- function(n, shift) round(pmin(7, pmax(1, rnorm(n, 4 + shift, 1.2))) * 4) / 4
cases <- list()
add <- function(name, x, y, paired, alternative) {
  r <- suppressWarnings(wilcox.test(x, y, paired = paired, alternative = alternative))
  cases[[name]] <<- list(x = x, y = y, paired = paired, alternative = alternative,
                         statistic = unname(r$statistic), p = r$p.value)
}
# many pairs (normal approximation, ties): one-sided, the confirmatory hypothesis' rank check
base <- likert_means(150, 0); add("paired_large_greater", base + round(rnorm(150, 0.9, 0.8) * 4) / 4, base, TRUE, "greater")
# few pairs with zero differences (R: the normal approximation, not exact)
y <- c(3, 4, 5, 2, 4, 5, 3, 6, 4, 5, 3, 4, 2, 5, 4, 3)
d <- c(0, 0, 1.5, 2.25, -0.75, 3, 0.5, 1.25, 2.75, -0.25, 1.75, 3.5, 4, -1, 2, 0)
add("paired_zeros_two_sided", y + d, y, TRUE, "two.sided")
add("paired_zeros_greater", y + d, y, TRUE, "greater")
# few pairs, no ties, no zeros: exact
d2 <- c(1.5, 2.25, -0.75, 3, 0.5, 1.25, 2.75, -0.25, 1.75, 3.5)
add("paired_exact_less", y[1:10] - d2, y[1:10], TRUE, "less")
# two samples with ties (normal approximation), one-sided; and small without ties (exact)
add("independent_ties_greater", likert_means(40, 0.6), likert_means(45, 0), FALSE, "greater")
add("independent_exact_less", c(2.1, 3.4, 1.7, 2.9, 3.3), c(3.8, 4.2, 2.5, 5.1, 4.4, 3.9), FALSE, "less")
write_json(cases, "tests/data/r/wilcoxon.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
