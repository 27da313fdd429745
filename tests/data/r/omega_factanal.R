# Reference values for analysis.reliability.mcdonald_omega: R's factanal (stats, R 4.2.2), one factor, maximum
# likelihood; ω = (Σ|λ|)² / ((Σ|λ|)² + Σψ) from its loadings λ and uniquenesses ψ (McDonald 1999, eq. 6.20b).
# A uniqueness at factanal's lower bound (0.005) is a Heywood case: omega is null.
# Run from the repository root:  Rscript tests/data/r/omega_factanal.R
# writes tests/data/r/omega_factanal.json (the data and R's numbers, so the comparison is reproducible).
library(jsonlite)
set.seed(24)
cases <- list()
add <- function(name, x) {
  fit <- factanal(x, factors = 1)
  load <- abs(fit$loadings[, 1]); psi <- unname(fit$uniquenesses)
  heywood <- any(psi <= 0.005 + 1e-9)
  omega <- if (heywood) NA else sum(load)^2 / (sum(load)^2 + sum(psi))
  cases[[name]] <<- list(items = unname(x), loadings = unname(load), uniquenesses = psi, omega = omega)
}
one_factor <- function(n, loadings) {
  f <- rnorm(n)
  sapply(loadings, function(l) l * f + sqrt(1 - l^2) * rnorm(n))
}
# congeneric items (unequal loadings: ω ≠ α)
add("congeneric_4", one_factor(200, c(0.9, 0.7, 0.5, 0.3)))
# a short 7-point Likert scale of a small study (rounded, clipped answers)
likert <- one_factor(40, c(0.8, 0.75, 0.6, 0.55, 0.4))
likert[] <- pmin(7, pmax(1, round(4 + 1.4 * likert)))  # keeps the matrix shape
add("likert_5", likert)
# three items (a just-identified model), as a study's three-item constructs
add("three_items", one_factor(60, c(0.8, 0.6, 0.5)))
# r12 · r13 / r23 = 1.6 > 1: no one-factor model with a uniqueness ≥ 0 fits, factanal stops at its bound (Heywood)
heywood <- MASS::mvrnorm(100, rep(0, 3), matrix(c(1, 0.8, 0.8, 0.8, 1, 0.4, 0.8, 0.4, 1), 3), empirical = TRUE)
add("heywood", heywood)
write_json(cases, "tests/data/r/omega_factanal.json", digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
