# The crossed mixed model on the toolkit's own export, in R (lme4 + lmerTest, Satterthwaite): the reference the
# report's `constructs.trust.mixed` block is checked against (tests/test_casewise.py).
# The export (tests/data/r/mixed_export/, trust rows only) was made by
#   skingen-study init --protocol <within example on a 10-case test bundle>
#   skingen-study simulate -n 80 --seed 21 --effect trust=0.35 --case-sd trust=0.6 \
#       --case-condition-sd trust=0.4 --participant-condition-sd trust=0.3 --dropout-rate 0 --attention-fail-rate 0
#   skingen-study export  (then: rows of construct trust, columns the analysis reads)
# Run from the repository root:  Rscript tests/data/r/mixed_export.R  -> tests/data/r/mixed_export.json
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
r <- read.csv("tests/data/r/mixed_export/responses.csv", stringsAsFactors = FALSE)
trial <- r[r$case_id != "" & !is.na(r$case_id) & r$item == "trust_1", ]  # the per-case item, one per trial
d <- aggregate(value ~ participant_id + case_id + condition, data = trial, FUN = mean)
d$condition <- factor(d$condition, levels = c("baseline_text", "skingen_visual"))
m <- lmer(value ~ condition + (1 + condition | participant_id) + (1 + condition | case_id), data = d, REML = TRUE)
co <- summary(m, ddf = "Satterthwaite")$coefficients["conditionskingen_visual", ]
vc <- as.data.frame(VarCorr(m))
sd_of <- function(grp, v1, v2 = NA) vc$sdcor[vc$grp == grp & vc$var1 %in% v1 & (is.na(v2) & is.na(vc$var2))]
ci <- co["Estimate"] + c(-1, 1) * qt(0.975, co["df"]) * co["Std. Error"]
out <- list(
  formula = "y ~ condition + (1 + condition | participant) + (1 + condition | case)",
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  n_obs = nrow(d), singular = isSingular(m),
  estimate = unname(co["Estimate"]), se = unname(co["Std. Error"]), df = unname(co["df"]),
  statistic = unname(co["t value"]), p = unname(co["Pr(>|t|)"]), ci = unname(ci),
  sd = list(participant = sd_of("participant_id", "(Intercept)"),
            participant_condition = sd_of("participant_id", "conditionskingen_visual"),
            case = sd_of("case_id", "(Intercept)"), case_condition = sd_of("case_id", "conditionskingen_visual"),
            residual = vc$sdcor[vc$grp == "Residual"]))
write_json(out, "tests/data/r/mixed_export.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
