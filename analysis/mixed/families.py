"""Response families of the Laplace engine: each row's log-likelihood and the derivatives the engine needs.

The engine (:mod:`analysis.mixed.laplace_engine`) needs, for every row, ℓᵢ(ηᵢ), the score ∂ℓᵢ/∂ηᵢ and the
curvature Wᵢ = −∂²ℓᵢ/∂ηᵢ² (the observed information; for the canonical logit link it equals the IRLS weight
μ(1 − μ) that lme4's ``glmer`` uses, for the cumulative logit it is the exact second derivative, as in
ordinal's ``clmm``). For the analytic gradient of the Laplace likelihood it also needs ∂Wᵢ/∂ηᵢ and the
derivatives of ℓᵢ, the score and Wᵢ in the family's own parameters (the ordinal thresholds), which enter in
an unconstrained parametrisation (``extra``) so the outer optimiser needs no bounds. Every array is already
multiplied by the row weights (counts of identical rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class RowDerivatives:
    """Weighted per-row derivatives; the ``*_extra`` arrays are (rows, n_extra), None unless requested."""

    loglik: float
    score: np.ndarray
    curvature: np.ndarray
    curvature_slope: np.ndarray | None = None
    loglik_extra: np.ndarray | None = None
    score_extra: np.ndarray | None = None
    curvature_extra: np.ndarray | None = None


def _logistic(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """F, 1 − F, f, f', f'' of the logistic distribution; 1 − F = F(−x) and f = F(x)F(−x) keep their digits
    in the tails, and ±inf (the outer thresholds) give (1|0, 0|1, 0, 0, 0)."""
    cdf, upper = special.expit(x), special.expit(-x)
    dens = cdf * upper
    skew = upper - cdf
    return cdf, upper, dens, dens * skew, dens * (skew * skew - 2 * dens)


@dataclass(frozen=True)
class CumulativeLogit:
    """P(Y ≤ k) = logit⁻¹(θ_k − η), k = 0..K−2, for answers coded 0..K−1 (ordinal's ``clmm`` convention:
    a positive η shifts answers up). ``extra`` = (θ₀, log(θ₁ − θ₀), …): increasing thresholds for any value."""

    n_levels: int

    @property
    def n_extra(self) -> int:
        return self.n_levels - 1

    def thresholds(self, extra: np.ndarray) -> np.ndarray:
        return np.cumsum(np.concatenate([extra[:1], np.exp(extra[1:])]))

    def start(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Thresholds of the intercept-only model: the logits of the marginal cumulative proportions."""
        counts = np.bincount(y, weights=weights, minlength=self.n_levels)
        cum = np.clip(np.cumsum(counts)[:-1] / counts.sum(), 1e-3, 1 - 1e-3)
        theta = special.logit(cum)
        return np.concatenate([theta[:1], np.log(np.maximum(np.diff(theta), 1e-3))])

    def derivatives(
        self, eta: np.ndarray, y: np.ndarray, weights: np.ndarray, extra: np.ndarray, full: bool = False
    ) -> RowDerivatives:
        """ℓ = log P, P = F(a) − F(b), a = θ_y − η, b = θ_{y−1} − η; η-derivatives from those in (a, b):
        ∂/∂η = −(∂_a + ∂_b)."""
        cuts = np.concatenate([[-np.inf], self.thresholds(extra), [np.inf]])
        a, b = cuts[y + 1] - eta, cuts[y] - eta
        fa, ua, pa, pa2, pa3 = _logistic(a)
        fb, ub, pb, pb2, pb3 = _logistic(b)
        # Above the median both CDFs are near 1: the difference of the upper tails keeps the digits.
        prob = np.where(b > 0, ub - ua, fa - fb)
        prob = np.maximum(prob, 1e-300)
        la, lb = pa / prob, -pb / prob
        laa, lbb, lab = pa2 / prob - la**2, -pb2 / prob - lb**2, -la * lb
        score, curvature = -(la + lb), -(laa + 2 * lab + lbb)
        loglik = float(weights @ np.log(prob))
        if not full:
            return RowDerivatives(loglik, weights * score, weights * curvature)
        laaa = pa3 / prob - pa2 * la / prob - 2 * la * laa
        lbbb = -pb3 / prob + pb2 * lb / prob - 2 * lb * lbb
        laab = pa2 * pb / prob**2 - 2 * la * lab
        labb = -lab * lb - la * lbb
        slope = laaa + 3 * laab + 3 * labb + lbbb  # ∂W/∂η = −∂³ℓ/∂η³
        # Derivatives in θ_j: a moves with θ_y, b with θ_{y−1}; the chain rule to the free parameters picks
        # row y (for a) and row y − 1 (for b) of dθ/d(extra), padded with zero rows for θ_{−1} and θ_{K−1}.
        n_theta = self.n_levels - 1
        jac = np.tril(np.ones((n_theta, n_theta))) * np.concatenate([[1.0], np.exp(extra[1:])])[None, :]
        padded = np.vstack([np.zeros(n_theta), jac, np.zeros(n_theta)])
        jac_a, jac_b = padded[y + 1] * weights[:, None], padded[y] * weights[:, None]

        def by_theta(on_a: np.ndarray, on_b: np.ndarray) -> np.ndarray:
            return on_a[:, None] * jac_a + on_b[:, None] * jac_b

        return RowDerivatives(
            loglik,
            weights * score,
            weights * curvature,
            curvature_slope=weights * slope,
            loglik_extra=by_theta(la, lb),
            score_extra=by_theta(-(laa + lab), -(lab + lbb)),
            curvature_extra=by_theta(-(laaa + 2 * laab + labb), -(laab + 2 * labb + lbbb)),
        )


@dataclass(frozen=True)
class BernoulliLogit:
    """P(Y = 1) = logit⁻¹(η) for 0/1 rows (binomial counts enter as a success and a failure row, weighted)."""

    n_extra: int = 0

    def start(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.zeros(0)

    def derivatives(
        self, eta: np.ndarray, y: np.ndarray, weights: np.ndarray, extra: np.ndarray, full: bool = False
    ) -> RowDerivatives:
        """ℓ = yη − log(1 + eᶯ): score y − μ, curvature μ(1 − μ), its slope μ(1 − μ)(1 − 2μ)."""
        mu = special.expit(eta)
        var = mu * special.expit(-eta)
        loglik = float(weights @ (y * eta - np.logaddexp(0.0, eta)))
        if not full:
            return RowDerivatives(loglik, weights * (y - mu), weights * var)
        none = np.zeros((len(y), 0))
        return RowDerivatives(
            loglik,
            weights * (y - mu),
            weights * var,
            curvature_slope=weights * var * (1 - 2 * mu),
            loglik_extra=none,
            score_extra=none,
            curvature_extra=none,
        )
