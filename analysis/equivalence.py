"""Equivalence and non-inferiority: two one-sided tests (TOST) against a smallest effect size of interest.

"No difference" is a claim a non-significant p cannot make (Lakens 2017, "Equivalence tests", Soc Psychol
Personal Sci 8:355; Schuirmann 1987). A hypothesis declares a smallest effect size of interest Δ (``sesoi``) in
**raw construct-score points** — the units of the Likert scale, which readers can judge ("half a scale
point") and which keep the test exact: a bound in d units would be divided by the *observed* SD, so the bounds
would move with the data. The difference is first − second:

- ``equivalent``: H0 |μ₁ − μ₂| ≥ Δ against H1 −Δ < μ₁ − μ₂ < Δ, by two one-sided t-tests at α (against −Δ,
  "greater"; against +Δ, "less"); p = the larger of the two. Equivalent when p < α, which is the same as the
  (1 − 2α) confidence interval lying inside (−Δ, Δ).
- ``non_inferior``: H0 μ₁ − μ₂ ≤ −Δ against H1 μ₁ − μ₂ > −Δ (the first is at most Δ below the second; higher
  scores are better), one t-test at α; non-inferior when the (1 − 2α) interval's lower bound lies above −Δ.

The t-tests are the design's: paired (within) or Welch (between), as the other hypotheses. Checked against R's
``t.test`` with ``mu = ±Δ`` (tests/data/r/bayes_tost.R).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from analysis.load import EQUIVALENCE_DIRECTIONS


def _shifted_test(first: np.ndarray, second: np.ndarray, shift: float, paired: bool, alternative: str):
    """t-test of (first − second) against ``shift`` (scipy: first − shift vs second)."""
    if paired:
        return stats.ttest_1samp(first - second, shift, alternative=alternative)
    return stats.ttest_ind(first - shift, second, equal_var=False, alternative=alternative)


def tost(
    first: np.ndarray, second: np.ndarray, paired: bool, sesoi: float, alpha: float, direction: str
) -> dict:
    """TOST (``equivalent``) or the one lower test (``non_inferior``) of first − second against ±``sesoi``.

    Keys: ``test``, ``bounds`` ([−Δ, Δ]), ``lower{statistic, p}`` (against −Δ, alternative greater),
    ``upper{statistic, p}`` (against +Δ, alternative less; ``None`` for non-inferiority), ``statistic`` and
    ``p`` (the binding test: the larger p), ``df``, ``mean_diff``, ``ci`` (the (1 − 2α) interval of the
    difference), ``ci_level`` (1 − 2α), ``n``.
    """
    if direction not in EQUIVALENCE_DIRECTIONS:
        raise ValueError(f"direction must be one of {EQUIVALENCE_DIRECTIONS}, got {direction!r}")
    if not sesoi > 0:
        raise ValueError(f"sesoi must be positive, got {sesoi!r}")
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    lower = _shifted_test(first, second, -sesoi, paired, "greater")
    upper = _shifted_test(first, second, sesoi, paired, "less") if direction == "equivalent" else None
    binding = lower if upper is None or lower.pvalue >= upper.pvalue else upper
    level = 1 - 2 * alpha
    ci = _shifted_test(first, second, 0.0, paired, "two-sided").confidence_interval(level)
    diff = (first - second).mean() if paired else first.mean() - second.mean()
    name = "paired t" if paired else "Welch t"
    return {
        "test": f"TOST ({name})" if upper is not None else f"non-inferiority ({name}, one-sided)",
        "bounds": [-sesoi, sesoi],
        "lower": {"statistic": float(lower.statistic), "p": float(lower.pvalue)},
        "upper": None if upper is None else {"statistic": float(upper.statistic), "p": float(upper.pvalue)},
        "statistic": float(binding.statistic),
        "p": float(binding.pvalue),
        "df": float(lower.df),
        "mean_diff": float(diff),
        "ci": [float(ci.low), float(ci.high)],
        "ci_level": level,
        "n": len(first) if paired else len(first) + len(second),
    }
