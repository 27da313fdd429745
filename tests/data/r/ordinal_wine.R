# Exports ordinal's wine data and the published clmm fit the R backend's cumulative logit model is checked
# against (tests/test_mixed_r.py). Run here: Rscript ordinal_wine.R  (R 4.2.2, ordinal 2022.11-16)
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
data("wine", package = "ordinal")
write.csv(wine[, c("response", "rating", "temp", "contact", "bottle", "judge")], "wine.csv", row.names = FALSE)
m <- clmm(rating ~ temp + contact + (1 | judge), data = wine)
ct <- summary(m)$coefficients
write_json(list(versions = list(R = R.version.string, ordinal = as.character(packageVersion("ordinal"))),
                formula = "rating ~ temp + contact + (1 | judge)",
                estimate = as.list(m$beta), se = as.list(ct[names(m$beta), "Std. Error"]),
                thresholds = as.list(m$alpha), judge_variance = VarCorr(m)$judge[1, 1], logLik = as.numeric(logLik(m))),
           "ordinal_wine.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
