# The R twin of analysis.mixed: fits one model given by a JSON spec and writes its estimates as JSON.
# Called by analysis/mixed/r_backend.py as `Rscript fit_mixed.R spec.json out.json`; it makes no modelling
# decisions of its own (formula, contrasts and the simplification rule come from Python).
#
# spec: family ("gaussian" | "cumulative_logit" | "binomial"), data (CSV path: y, participant, case,
#   condition [, position, ai_wrong]), levels (conditions, baseline first), formula (lme4/ordinal syntax),
#   contrasts ({name: weights over the fixed effects}), omnibus (rows of weights, or null).
suppressPackageStartupMessages({
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
spec <- fromJSON(args[[1]], simplifyVector = TRUE)
d <- read.csv(spec$data, colClasses = "character")
for (column in setdiff(names(d), c("participant", "case", "condition"))) {
  values <- suppressWarnings(as.numeric(d[[column]]))
  d[[column]] <- if (anyNA(values)) factor(d[[column]]) else values  # other factors: R's default levels
}
for (column in intersect(names(d), c("participant", "case"))) d[[column]] <- factor(d[[column]])
if (!is.null(d$condition)) d$condition <- factor(d$condition, levels = spec$levels)
form <- as.formula(spec$formula)
version_of <- function(p) as.character(packageVersion(p))

# Messages and warnings of the fit, kept for the convergence verdict instead of printed.
captured <- character()
fit_quietly <- function(expr) {
  withCallingHandlers(expr,
    warning = function(w) { captured <<- c(captured, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { captured <<- c(captured, conditionMessage(m)); invokeRestart("muffleMessage") })
}
# lme4's convergence verdict: the optimiser's code and checkConv's messages (gradient, Hessian).
lme4_converged <- function(m) {
  m@optinfo$conv$opt == 0 && !any(grepl("converge", c(m@optinfo$conv$lme4$messages, captured)))
}
# When lme4's check fails, restart once from the θ reached (lme4's ?convergence advice): bobyqa often stops
# just short of the optimum with 10⁵ rows, a false alarm that would otherwise simplify the model.
restarted <- function(m, refit) {
  if (lme4_converged(m)) return(m)
  captured <<- character()
  fit_quietly(refit(getME(m, "theta")))
}
varcorr <- function(vc) {
  vc <- as.data.frame(vc)
  lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
                                             sdcor = vc$sdcor[i]))
}
coef_table <- function(table, df = NULL) {
  list(names = rownames(table), estimate = unname(table[, 1]), se = unname(table[, 2]),
       df = if (is.null(df)) NULL else unname(df))
}

out <- list()
if (spec$family == "gaussian") {
  suppressPackageStartupMessages(library(lmerTest))
  m <- fit_quietly(lmerTest::lmer(form, data = d, REML = TRUE))
  m <- restarted(m, function(theta) lmerTest::lmer(form, data = d, REML = TRUE, start = theta))
  ct <- summary(m, ddf = "Satterthwaite")$coefficients
  out$contrasts <- lapply(spec$contrasts, function(weights) {
    con <- contest(m, matrix(weights, nrow = 1), joint = FALSE, ddf = "Satterthwaite")
    list(estimate = con$Estimate, se = con$`Std. Error`, df = con$df)
  })
  if (!is.null(spec$omnibus)) {
    joint <- contest(m, matrix(spec$omnibus, ncol = nrow(ct)), joint = TRUE, ddf = "Satterthwaite")
    out$omnibus <- list(statistic = joint$`F value`, df1 = joint$NumDF, df2 = joint$DenDF)
  }
  out$coefficients <- coef_table(ct, ct[, "df"])
  out$sigma <- sigma(m)
  out$varcorr <- varcorr(VarCorr(m))
  out$singular <- isSingular(m, tol = 1e-4)
  out$converged <- lme4_converged(m)
  out$versions <- list(lme4 = version_of("lme4"), lmerTest = version_of("lmerTest"))
} else if (spec$family == "cumulative_logit") {
  suppressPackageStartupMessages(library(ordinal))
  response <- all.vars(form)[1]
  d[[response]] <- factor(d[[response]], levels = sort(unique(d[[response]])), ordered = TRUE)
  m <- fit_quietly(clmm(form, data = d, link = "logit", Hess = TRUE))
  ct <- summary(m)$coefficients
  beta <- names(m$beta)
  out$coefficients <- coef_table(ct[beta, , drop = FALSE])
  out$vcov <- unname(vcov(m)[beta, beta, drop = FALSE])
  out$thresholds <- as.list(m$alpha)
  vc <- VarCorr(m)
  out$varcorr <- lapply(names(vc), function(g) list(grp = g, var1 = "(Intercept)", var2 = NA,
                                                    sdcor = sqrt(vc[[g]][1, 1])))
  out$singular <- any(vapply(vc, function(v) sqrt(v[1, 1]) < 1e-4, logical(1)))
  out$converged <- m$optRes$convergence == 0 && max(abs(m$gradient)) < 1e-3
  out$versions <- list(ordinal = version_of("ordinal"))
} else if (spec$family == "binomial") {
  suppressPackageStartupMessages(library(lme4))
  m <- fit_quietly(glmer(form, data = d, family = binomial))
  m <- restarted(m, function(theta) glmer(form, data = d, family = binomial,
                                          start = list(theta = theta, fixef = fixef(m))))
  ct <- summary(m)$coefficients
  beta <- setdiff(rownames(ct), "(Intercept)")
  out$coefficients <- coef_table(ct[beta, , drop = FALSE])
  out$vcov <- unname(as.matrix(vcov(m))[beta, beta, drop = FALSE])
  out$varcorr <- varcorr(VarCorr(m))
  out$singular <- isSingular(m, tol = 1e-4)
  out$converged <- lme4_converged(m)
  out$versions <- list(lme4 = version_of("lme4"))
} else {
  stop("unknown family ", spec$family)
}
out$loglik <- as.numeric(logLik(m))  # restricted for lmer's REML fits, Laplace for clmm and glmer
out$messages <- as.list(unique(captured))
out$versions$R <- paste(R.version$major, R.version$minor, sep = ".")
write_json(out, args[[2]], digits = NA, auto_unbox = TRUE, null = "null", na = "null")
