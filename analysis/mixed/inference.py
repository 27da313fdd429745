"""Tests of fixed effects and condition contrasts shared by the fitters: t (with df) or z, CIs, contrast rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.mixed.result import MixedTerm


def coefficient_name(level: str) -> str:
    """A condition dummy's key in ``MixedFit.terms``."""
    return f"condition[{level}]"


def fixed_names(conditions: Sequence[str], *, position: bool) -> list[str]:
    """The linear model's fixed effects in model-matrix order (R's order too): intercept, one dummy per
    non-baseline condition, optionally position."""
    return ["(Intercept)", *(coefficient_name(c) for c in conditions[1:])] + (
        ["position"] if position else []
    )


def wald_term(name: str, estimate: float, se: float, df: float | None, confidence: float) -> MixedTerm:
    """A two-sided t test (``df`` given) or z test (``df`` None) of estimate / se, with its CI."""
    statistic = estimate / se
    dist = stats.t(df) if df is not None else stats.norm()
    half = float(dist.ppf(0.5 + confidence / 2)) * se
    return MixedTerm(
        name=name,
        estimate=float(estimate),
        se=float(se),
        df=None if df is None else float(df),
        statistic=float(statistic),
        p=float(2 * dist.sf(abs(statistic))),
        ci=(float(estimate - half), float(estimate + half)),
    )


def pairwise_rows(coefficients: Sequence[str], conditions: Sequence[str]) -> dict[str, np.ndarray]:
    """Contrast rows ``"b - a"`` over the coefficients, for every pair with b after a in ``conditions``
    (treatment coding: the baseline's dummy is the intercept's, so it contributes nothing)."""
    index = {name: i for i, name in enumerate(coefficients)}
    rows = {}
    for i, a in enumerate(conditions):
        for b in conditions[i + 1 :]:
            row = np.zeros(len(coefficients))
            row[index[coefficient_name(b)]] += 1
            if a != conditions[0]:
                row[index[coefficient_name(a)]] -= 1
            rows[f"{b} - {a}"] = row
    return rows


def omnibus_rows(coefficients: Sequence[str], conditions: Sequence[str]) -> np.ndarray:
    """One row per non-baseline condition dummy: L β = 0 is "no condition differs"."""
    names = [coefficient_name(c) for c in conditions[1:]]
    return np.array([[1.0 if coef == name else 0.0 for coef in coefficients] for name in names])


def f_test(statistic: float, df1: float, df2: float) -> dict:
    """The ``MixedFit.omnibus`` record of an F test."""
    return {
        "test": "F",
        "statistic": float(statistic),
        "df1": float(df1),
        "df2": float(df2),
        "p": float(stats.f.sf(statistic, df1, df2)),
    }


def conservative_df(n_participants: int, n_cases: int, n_conditions: int) -> float:
    """The fallback df when Satterthwaite's cannot be computed: min(participants, cases) − k, at least 1.

    The condition effect's error term is a mix of participant × condition and case × condition variation, so
    its df lie between those of the by-participant and by-case analyses (Clark 1973's quasi-F); the smaller
    sample's N − 1, less the k − 2 further condition parameters and one more for the mix, stays below
    Satterthwaite's value in the designs this toolkit runs (8.6 for 10 cases in issue 21; checked in
    tests/test_mixed_linear.py)."""
    return float(max(1, min(n_participants, n_cases) - n_conditions))


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class LinearStep:
    """One fitted candidate of the linear model's simplification sequence, from either backend.

    ``slope_sds`` maps (group, condition level) to each random slope's SD in residual SDs: the simplification
    rule reads it.
    """

    formula: str
    backend: str
    singular: bool
    converged: bool
    slope_sds: dict[tuple[str, str], float]
    variance_components: dict[str, float]
    correlations: dict[str, float]
    terms: dict[str, MixedTerm]
    contrasts: dict[str, MixedTerm]
    omnibus: dict | None
    df_method: str
    notes: tuple[str, ...] = ()
    log_likelihood: float | None = None  # the REML log-likelihood, as R's logLik


def t_tests(
    rows: dict[str, tuple[float, float, float]],
    omnibus: tuple[float, float, float] | None,
    *,
    n_participants: int,
    n_cases: int,
    n_conditions: int,
    confidence: float,
) -> tuple[dict[str, MixedTerm], dict | None, str, tuple[str, ...]]:
    """t tests of ``{name: (estimate, se, Satterthwaite df)}`` and the omnibus ``(F, df1, df2)``.

    When any df is missing or not positive (Satterthwaite failed numerically), every test uses
    :func:`conservative_df` — never a silent z — and ``df_method`` and the notes say so.
    Returns (tests by name, omnibus record, df_method, notes)."""
    dfs = [df for _, _, df in rows.values()] + ([omnibus[2]] if omnibus else [])
    df_method, notes, fallback = "Satterthwaite (lmerTest's method)", (), None
    if not all(is_finite(df) for df in dfs):
        fallback = conservative_df(n_participants, n_cases, n_conditions)
        df_method = f"conservative: t with df = min(participants, cases) − conditions = {fallback:g}"
        notes = (
            "Satterthwaite's df could not be computed (the Hessian of the REML deviance is not usable); "
            "the t and F tests use the conservative df instead",
        )
    tests = {
        name: wald_term(name, est, se, fallback or df, confidence) for name, (est, se, df) in rows.items()
    }
    record = f_test(omnibus[0], omnibus[1], fallback or omnibus[2]) if omnibus else None
    return tests, record, df_method, notes
