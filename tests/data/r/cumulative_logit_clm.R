# Reference for analysis.compare.cumulative_logit (tests/test_analysis_compare.py): the proportional-odds
# model fitted by ordinal::clm, with the participant-clustered sandwich computed here by hand (the `sandwich`
# package is not installed): per-answer scores of the cumulative logit, summed per participant, between two
# clm vcov()s (the inverse observed information), times G/(G − 1) for G participants — the same estimator
# the toolkit documents. Run from the repository root:  Rscript tests/data/r/cumulative_logit_clm.R
suppressPackageStartupMessages({library(ordinal); library(jsonlite)})
out <- "tests/data/r"
set.seed(21)
two <- data.frame(pid = rep(1:150, each = 6), group = rep(c(0, 0, 0, 1, 1, 1), 150))
two$value <- findInterval(rnorm(150)[two$pid] + 0.6 * two$group + rlogis(nrow(two)), c(-1.5, -0.5, 0.5, 1.5)) + 1
three <- data.frame(pid = rep(1:200, each = 3), group = rep(0:2, 200))
three$value <- findInterval(rnorm(200)[three$pid] + c(0, 0.8, 0.3)[three$group + 1] + rlogis(nrow(three)),
                            c(-1.5, -0.5, 0.5, 1.5)) + 1

clustered <- function(d) {
  d$f <- factor(d$group)
  fm <- clm(factor(value) ~ f, data = d)
  alpha <- fm$alpha; beta <- fm$beta; K <- length(alpha) + 1
  x <- model.matrix(~ f, d)[, -1, drop = FALSE]
  eta <- drop(x %*% beta); y <- as.integer(factor(d$value))
  cuts <- c(-Inf, alpha, Inf)
  a <- cuts[y + 1] - eta; b <- cuts[y] - eta
  p <- plogis(a) - plogis(b); fa <- dlogis(a); fb <- dlogis(b)
  s_alpha <- matrix(0, nrow(d), K - 1)
  for (j in seq_len(K - 1)) s_alpha[, j] <- (fa * (y == j) - fb * (y == j + 1)) / p
  s <- cbind(s_alpha, -(fa - fb) / p * x)
  per <- rowsum(s, d$pid); G <- nrow(per)
  V <- vcov(fm)
  cov <- V %*% crossprod(per) %*% V * G / (G - 1)
  b_idx <- K - 1 + seq_along(beta)
  se <- sqrt(diag(cov)[b_idx])
  list(estimate = unname(beta), se_clustered = unname(se), z = unname(beta / se),
       se_model = unname(sqrt(diag(V)[b_idx])),
       wald = drop(t(beta) %*% solve(cov[b_idx, b_idx, drop = FALSE]) %*% beta),
       thresholds = unname(alpha), max_gradient = max(abs(fm$gradient)))
}
write.csv(two, file.path(out, "cumulative_logit_two.csv"), row.names = FALSE)
write.csv(three, file.path(out, "cumulative_logit_three.csv"), row.names = FALSE)
write(toJSON(list(versions = sprintf("%s; ordinal %s", R.version.string, packageVersion("ordinal")),
                  two = clustered(two), three = clustered(three)), auto_unbox = TRUE, digits = NA, pretty = TRUE),
      file.path(out, "cumulative_logit_clm.json"))
