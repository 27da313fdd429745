"""Internal consistency of each construct: Cronbach's α with CI, and McDonald's ω from a one-factor model."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
from statsmodels.multivariate.factor import Factor


def cronbach_alpha(items: pd.DataFrame, confidence: float = 0.95) -> dict | None:
    """Cronbach's α of an observations × items matrix (listwise complete rows) with its F-based CI.

    Returns None with fewer than two items or three complete rows. Keys: ``value, ci, n, k``.
    The CI (Feldt 1965, via pingouin) assumes independent rows.
    """
    complete = items.dropna()
    if items.shape[1] < 2 or len(complete) < 3:
        return None
    value, ci = pg.cronbach_alpha(data=complete, ci=confidence, nan_policy="listwise")
    return {
        "value": float(value),
        "ci": [float(ci[0]), float(ci[1])],
        "n": len(complete),
        "k": items.shape[1],
    }


HEYWOOD_UNIQUENESS = 0.005
"""A uniqueness at or below this is a Heywood case: R's ``factanal`` bounds uniquenesses at 0.005 (``lower``);
an optimum pressed against zero lands anywhere in [0, 1e-5] by rounding, so a tighter threshold flips by noise."""


def mcdonald_omega(items: pd.DataFrame) -> dict | None:
    """McDonald's ω_total from a maximum-likelihood one-factor model of the item correlations.

    ω = (Σλ)² / ((Σλ)² + Σψ) with standardized loadings λ and uniquenesses ψ (McDonald 1999, eq. 6.20b).
    Honest only when one factor fits: needs ≥ 3 items and returns None when the fit fails or yields a
    Heywood case (a uniqueness ≤ ``HEYWOOD_UNIQUENESS``). Keys: ``value, method, k``.

    The fit starts where R's ``factanal`` starts, not from statsmodels' default: that is a random draw from
    fresh OS entropy, so the same data gave ω in one run and a Heywood case (None) in the next.
    """
    complete = items.dropna()
    if items.shape[1] < 3 or len(complete) <= items.shape[1] or (complete.std() == 0).any():
        return None
    data = complete.to_numpy(dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = Factor(data, n_factor=1, method="ml").fit(
                start=_factanal_start(np.corrcoef(data, rowvar=False))
            )
    except (np.linalg.LinAlgError, ValueError):
        return None
    loadings, uniqueness = np.abs(fit.loadings[:, 0]), fit.uniqueness
    if not np.isfinite(loadings).all() or (uniqueness <= HEYWOOD_UNIQUENESS).any():
        return None
    common = loadings.sum() ** 2
    value = common / (common + uniqueness.sum())
    return (
        None if math.isnan(value) else {"value": float(value), "method": "one-factor ML", "k": items.shape[1]}
    )


def _factanal_start(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-factor starting values: R ``factanal``'s uniquenesses ψ₀ = (1 − 1/(2p)) / diag(R⁻¹), and loadings
    from the first principal axis of R − diag(ψ₀) (its eigenvector scaled by the root of its eigenvalue)."""
    uniqueness = (1 - 0.5 / len(corr)) / np.diag(np.linalg.inv(corr))
    values, vectors = np.linalg.eigh(corr - np.diag(uniqueness))
    loadings = vectors[:, -1:] * np.sqrt(max(values[-1], 0.0))
    return loadings, uniqueness
