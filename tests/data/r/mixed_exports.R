# lmerTest fits of the simulated study exports (mixed_exports.py writes the CSVs), the reference the Python
# linear mixed model is checked against in tests/test_mixed_linear.py. Run here: Rscript mixed_exports.R
# R 4.2.2, lme4 1.1-31, lmerTest 3.1-3. Formulas written out by hand (not by the toolkit) so the reference
# does not share code with what it checks.
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})

fit <- function(file, levels, formula) {
  d <- read.csv(file, colClasses = c(participant = "character", case = "character", condition = "character"))
  d$condition <- factor(d$condition, levels = levels)
  m <- lmer(as.formula(formula), d, REML = TRUE)
  ct <- summary(m)$coefficients
  vc <- as.data.frame(VarCorr(m))
  out <- list(formula = formula, singular = isSingular(m, tol = 1e-4), reml_deviance = REMLcrit(m),
              coefficients = lapply(split(as.data.frame(ct), rownames(ct)), as.list),
              sd = setNames(as.list(vc$sdcor), trimws(paste(vc$grp, ifelse(is.na(vc$var1), "", vc$var1),
                                                            ifelse(is.na(vc$var2), "", vc$var2)))))
  if (length(levels) > 2) {
    a <- anova(m, ddf = "Satterthwaite")
    out$omnibus <- list(F = a["condition", "F value"], df1 = a["condition", "NumDF"],
                        df2 = a["condition", "DenDF"], p = a["condition", "Pr(>F)"])
    # the contrast between the two non-baseline conditions
    L <- matrix(c(0, -1, 1), nrow = 1)
    con <- contest(m, L, joint = FALSE)
    out$contrast_c_b <- list(estimate = con$Estimate, se = con$`Std. Error`, df = con$df,
                             p = con$`Pr(>|t|)`)
  }
  out
}
two <- c("baseline", "skingen_visual")
three <- c("baseline", "skingen_visual", "retrieved_photos")
maximal <- "y ~ condition + (1 + condition | participant) + (1 + condition | case)"
out <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  within = fit("mixed_within.csv", two, maximal),
  within_position = fit("mixed_within.csv", two, sub("condition \\+", "condition + position +", maximal)),
  between = fit("mixed_between.csv", two, "y ~ condition + (1 | participant) + (1 + condition | case)"),
  within3 = fit("mixed_within3.csv", three, maximal),
  singular_maximal = fit("mixed_singular.csv", two, maximal),
  # the simplification sequence, by hand: without the case correlation; without the participant correlation
  # too; then without the smaller slope (both are 0 in singular_uncorrelated: a tie, the participant slope
  # goes first); then random intercepts only
  singular_no_case_correlation = fit("mixed_singular.csv", two, paste(
    "y ~ condition + (1 + condition | participant)",
    "+ (1 | case) + (0 + dummy(condition, 'skingen_visual') | case)")),
  singular_uncorrelated = fit("mixed_singular.csv", two, paste(
    "y ~ condition + (1 | participant) + (0 + dummy(condition, 'skingen_visual') | participant)",
    "+ (1 | case) + (0 + dummy(condition, 'skingen_visual') | case)")),
  singular_no_participant_slope = fit("mixed_singular.csv", two, paste(
    "y ~ condition + (1 | participant) + (1 | case) + (0 + dummy(condition, 'skingen_visual') | case)")),
  singular_intercepts = fit("mixed_singular.csv", two, "y ~ condition + (1 | participant) + (1 | case)")
)
write_json(out, "mixed_exports.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
