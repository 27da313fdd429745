# Reference values for analysis/stratified.py (tests/test_analysis_consort.py).
# Run: Rscript tests/data/r/stratified.R > tests/data/r/stratified.json
# Between: lm(score ~ condition + stratum), the condition coefficient. Within: lm(diff ~ centred stratum
# dummies), the intercept. 95 % CIs from confint().
library(jsonlite)
set.seed(7)
n <- 24
stratum <- rep(c("lay", "student", "clinician"), each = 8)
visual <- c(5.1, 4.3, 6.0, 5.5, 4.8, 5.9, 4.4, 5.2, 3.9, 4.6, 5.0, 4.1, 4.7, 3.8, 4.9, 4.4,
            6.2, 5.8, 6.5, 5.9, 6.1, 5.4, 6.8, 6.0)
baseline <- c(4.6, 4.1, 5.2, 5.0, 4.9, 5.1, 3.9, 4.8, 3.5, 4.4, 4.2, 4.0, 4.1, 3.9, 4.3, 3.8,
              5.6, 5.9, 5.8, 5.2, 5.7, 5.1, 6.0, 5.5)
# between: the first half of each stratum got visual, the second half baseline
arm <- rep(c(1, 1, 1, 1, 0, 0, 0, 0), 3)
score <- ifelse(arm == 1, visual, baseline)
between <- lm(score ~ arm + factor(stratum))
ci_b <- confint(between, level = 0.95)["arm", ]
s_b <- summary(between)$coefficients["arm", ]
# within: everyone in both conditions
d <- visual - baseline
dummies <- model.matrix(~ factor(stratum))[, -1]
centred <- sweep(dummies, 2, colMeans(dummies))
within <- lm(d ~ centred)
ci_w <- confint(within, level = 0.95)["(Intercept)", ]
s_w <- summary(within)$coefficients["(Intercept)", ]
cat(toJSON(list(
  stratum = stratum, visual = visual, baseline = baseline, arm = arm,
  between = list(estimate = s_b[["Estimate"]], se = s_b[["Std. Error"]], t = s_b[["t value"]],
                 p = s_b[["Pr(>|t|)"]], df = between$df.residual, ci = unname(ci_b)),
  within = list(estimate = s_w[["Estimate"]], se = s_w[["Std. Error"]], t = s_w[["t value"]],
                p = s_w[["Pr(>|t|)"]], df = within$df.residual, ci = unname(ci_w))
), digits = NA, auto_unbox = TRUE, pretty = TRUE))
