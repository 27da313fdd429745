# Exports lme4's sleepstudy and Penicillin data sets and the published fits the Python linear mixed model is
# checked against (tests/test_mixed_linear.py). Run from this folder: Rscript lme4_published.R
# R 4.2.2, lme4 1.1-31, lmerTest 3.1-3 (Debian packages).
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
data("sleepstudy", package = "lme4")
data("Penicillin", package = "lme4")
write.csv(sleepstudy, "sleepstudy.csv", row.names = FALSE)
write.csv(Penicillin, "penicillin.csv", row.names = FALSE)

sleep <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)
ct <- summary(sleep)$coefficients
vc_sleep <- as.data.frame(VarCorr(sleep))
pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = TRUE)
vc_pen <- as.data.frame(VarCorr(pen))
# SDs keyed "group term" ("Residual" alone); a correlation keyed "group term1 term2"
sds <- function(vc) setNames(as.list(vc$sdcor), trimws(paste(vc$grp, ifelse(is.na(vc$var1), "", vc$var1),
                                                             ifelse(is.na(vc$var2), "", vc$var2))))
out <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  sleepstudy = list(
    formula = "Reaction ~ Days + (Days | Subject)",
    estimate = ct["Days", "Estimate"], se = ct["Days", "Std. Error"], df = ct["Days", "df"],
    t = ct["Days", "t value"], p = ct["Days", "Pr(>|t|)"],
    intercept = ct["(Intercept)", "Estimate"], intercept_df = ct["(Intercept)", "df"],
    sd = sds(vc_sleep), reml_deviance = REMLcrit(sleep)),
  penicillin = list(
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
    intercept = fixef(pen)[[1]], se = summary(pen)$coefficients[1, "Std. Error"],
    df = summary(pen)$coefficients[1, "df"], sd = sds(vc_pen), reml_deviance = REMLcrit(pen))
)
write_json(out, "lme4_published.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
