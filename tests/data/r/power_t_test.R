# Reference values for formats/planning.py's t-test power (tests/test_planning_power.py).
# Run: Rscript tests/data/r/power_t_test.R > tests/data/r/power_t_test.json
# Base R's stats::power.t.test with strict = TRUE (both tails of the two-sided test, as G*Power), sd = 1 so
# delta is the standardized effect: d_z for type = "paired" (n pairs), d for type = "two.sample" (n per group).
library(jsonlite)

types <- c(within = "paired", between = "two.sample")
sides <- c(`two-sided` = "two.sided", `one-sided` = "one.sided")

# power at given n and effect
grid <- expand.grid(design = names(types), sided = names(sides), n = c(5, 12, 34, 64, 150),
                    effect = c(0.2, 0.5, 0.8, 1.2), alpha = c(0.05, 0.025, 0.05 / 3), stringsAsFactors = FALSE)
grid$power <- mapply(function(design, sided, n, effect, alpha) {
  power.t.test(n = n, delta = effect, sd = 1, sig.level = alpha, type = types[[design]],
               alternative = sides[[sided]], strict = TRUE)$power
}, grid$design, grid$sided, grid$n, grid$effect, grid$alpha)

# n (pairs, or per group) for a target power
needed <- expand.grid(design = names(types), sided = names(sides), effect = c(0.3, 0.5, 0.8),
                      alpha = c(0.05, 0.025), power = c(0.8, 0.9), stringsAsFactors = FALSE)
needed$n <- mapply(function(design, sided, effect, alpha, power) {
  power.t.test(delta = effect, sd = 1, sig.level = alpha, power = power, type = types[[design]],
               alternative = sides[[sided]], strict = TRUE, tol = 1e-10)$n
}, needed$design, needed$sided, needed$effect, needed$alpha, needed$power)

# smallest effect for a target power at n (pairs, or per group)
smallest <- expand.grid(design = names(types), sided = names(sides), n = c(16, 32, 60), alpha = c(0.05, 0.025),
                        power = 0.8, stringsAsFactors = FALSE)
smallest$effect <- mapply(function(design, sided, n, alpha, power) {
  power.t.test(n = n, sd = 1, sig.level = alpha, power = power, type = types[[design]],
               alternative = sides[[sided]], strict = TRUE, tol = 1e-10)$delta
}, smallest$design, smallest$sided, smallest$n, smallest$alpha, smallest$power)

cat(toJSON(list(r_version = R.version.string, power = grid, n = needed, effect = smallest),
           digits = NA, pretty = TRUE), "\n")
