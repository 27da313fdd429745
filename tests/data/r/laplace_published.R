# Reference values for tests/test_mixed_laplace.py: ordinal's `wine` and lme4's `cbpp`, exported with their
# data so the Python fits read the same rows. Run from the repository root:
#   Rscript tests/data/r/laplace_published.R
# (R 4.2.2, ordinal 2022.11-16, lme4 1.1-31; writes laplace_wine.csv, laplace_cbpp.csv, laplace_published.json)
suppressPackageStartupMessages({library(ordinal); library(lme4); library(jsonlite)})
out <- "tests/data/r"
data(wine, package = "ordinal")
write.csv(data.frame(rating = as.integer(wine$rating), temp = as.character(wine$temp),
                     contact = as.character(wine$contact), judge = as.character(wine$judge),
                     bottle = as.character(wine$bottle)),
          file.path(out, "laplace_wine.csv"), row.names = FALSE)
fm <- clmm(rating ~ temp + contact + (1 | judge), data = wine)
s <- coef(summary(fm))
wine_ref <- list(
  formula = "clmm(rating ~ temp + contact + (1 | judge), data = wine)",
  estimate = as.list(s[c("tempwarm", "contactyes"), "Estimate"]),
  se = as.list(s[c("tempwarm", "contactyes"), "Std. Error"]),
  thresholds = as.list(fm$alpha),
  judge_variance = unname(VarCorr(fm)$judge[1, 1]),
  logLik = as.numeric(logLik(fm)))
# The wine tasting as a study of fit_ordinal's shape: judges are participants, bottles are cases, the four
# temperature × contact combinations are conditions. Each bottle has one combination (cases nested in
# conditions), so (1 | bottle:condition) is the bottle term and is left out; the bottle SD is at the boundary
# (clmm: 4e-6), a singular fit.
wine$condition <- factor(paste(wine$temp, wine$contact, sep = "_"))
fs <- clmm(rating ~ condition + (1 | judge) + (1 | bottle), data = wine)
ss <- coef(summary(fs)); b <- setdiff(rownames(ss), names(fs$alpha))
wine_study <- list(
  formula = "clmm(rating ~ condition + (1 | judge) + (1 | bottle), wine), condition = temp_contact",
  estimate = as.list(setNames(ss[b, "Estimate"], b)), se = as.list(setNames(ss[b, "Std. Error"], b)),
  sd = lapply(VarCorr(fs), function(v) sqrt(v[1, 1])), vcov = unname(vcov(fs)[b, b]),
  logLik = as.numeric(logLik(fs)))
data(cbpp, package = "lme4")
write.csv(data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size,
                     period = as.character(cbpp$period)),
          file.path(out, "laplace_cbpp.csv"), row.names = FALSE)
summarise <- function(gm) {
  g <- coef(summary(gm))
  list(estimate = as.list(g[, "Estimate"]), se = as.list(g[, "Std. Error"]),
       herd_sd = attr(VarCorr(gm)$herd, "stddev")[[1]], logLik = as.numeric(logLik(gm)))
}
# glmer's defaults stop about 2e-4 short of the maximum on these data (the log-likelihood rises by 2.8e-4
# with tight tolerances), so both fits are stored: "default" as published, "tight" as the reference optimum.
cbpp_formula <- cbind(incidence, size - incidence) ~ period + (1 | herd)
cbpp_ref <- list(
  formula = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp)",
  default = summarise(glmer(cbpp_formula, family = binomial, data = cbpp)),
  tight = summarise(glmer(cbpp_formula, family = binomial, data = cbpp,
                          control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10)))))
versions <- sprintf("%s; ordinal %s; lme4 %s", R.version.string, packageVersion("ordinal"), packageVersion("lme4"))
write(toJSON(list(versions = versions, wine = wine_ref, wine_study = wine_study, cbpp = cbpp_ref), auto_unbox = TRUE, digits = NA,
             pretty = TRUE), file.path(out, "laplace_published.json"))
