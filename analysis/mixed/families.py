"""Response families of the Laplace engine: the log-likelihood of one row and its first two η-derivatives.

The engine (:mod:`analysis.mixed.laplace_engine`) only needs, for every row, ℓᵢ(ηᵢ), ∂ℓᵢ/∂ηᵢ and the
curvature wᵢ = −∂²ℓᵢ/∂ηᵢ² (the observed information; equal to the IRLS weight μ(1 − μ) for the canonical
logit link, which is what lme4's ``glmer`` uses, and the exact second derivative for the cumulative logit, as
ordinal's ``clmm``). Families with their own parameters (the ordinal thresholds) take them as ``extra`` in an
unconstrained parametrisation, so the outer optimiser needs no bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


def _density(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic F(x), f(x) = F(1 − F) and f'(x) = f(1 − 2F); ±inf thresholds give (1|0, 0, 0)."""
    cdf = special.expit(x)
    dens = cdf * (1 - cdf)
    return cdf, dens, dens * (1 - 2 * cdf)


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
        self, eta: np.ndarray, y: np.ndarray, weights: np.ndarray, extra: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """(Σ wᵢℓᵢ, wᵢ ∂ℓᵢ/∂η, −wᵢ ∂²ℓᵢ/∂η²) with p = F(a) − F(b), a = θ_y − η, b = θ_{y−1} − η."""
        cuts = np.concatenate([[-np.inf], self.thresholds(extra), [np.inf]])
        upper, lower = cuts[y + 1] - eta, cuts[y] - eta
        f_up, d_up, dd_up = _density(upper)
        f_lo, d_lo, dd_lo = _density(lower)
        # Above the median both CDFs are near 1: take the difference of the upper tails to keep digits.
        tail = lower > 0
        prob = np.where(tail, special.expit(-lower) - special.expit(-upper), f_up - f_lo)
        prob = np.maximum(prob, 1e-300)
        slope = (d_up - d_lo) / prob
        score = -slope
        curvature = -((dd_up - dd_lo) / prob - slope**2)
        return float(weights @ np.log(prob)), weights * score, weights * curvature


@dataclass(frozen=True)
class BernoulliLogit:
    """P(Y = 1) = logit⁻¹(η) for 0/1 rows (binomial counts enter as a success and a failure row, weighted)."""

    n_extra: int = 0

    def start(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.zeros(0)

    def derivatives(
        self, eta: np.ndarray, y: np.ndarray, weights: np.ndarray, extra: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """(Σ wᵢℓᵢ, wᵢ(yᵢ − μᵢ), wᵢμᵢ(1 − μᵢ)), ℓ = yη − log(1 + eᶯ)."""
        mu = special.expit(eta)
        loglik = y * eta - np.logaddexp(0.0, eta)
        return float(weights @ loglik), weights * (y - mu), weights * mu * (1 - mu)
