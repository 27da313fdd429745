"""Adjustment for the randomization stratum (CONSORT item 12a; EMA guideline on baseline covariates).

Stratified randomization balances the stratum across arms; analysing without it is valid but can lose
precision when the stratum predicts the outcome, so the report says which analysis is primary (unadjusted)
and gives the stratum-adjusted estimate beside it:

- between designs: OLS of the construct score on the condition and the stratum (dummies), the condition
  coefficient being the adjusted compared − baseline difference (ANCOVA form, Kahan & Morris 2012);
- within designs: the stratum is a between-participant factor, so the paired differences are regressed on
  mean-centred stratum dummies; the intercept is the mean difference with the stratum's variance removed from
  its standard error.

The t-based CI and p come from statsmodels' OLS (checked against the unadjusted test and numpy's lstsq in
tests/test_analysis_consort.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm


def stratum_adjusted(
    compared: pd.Series, baseline: pd.Series, strata: pd.Series, paired: bool, confidence: float
) -> dict | None:
    """Stratum-adjusted compared − baseline difference; ``compared``/``baseline`` are construct scores indexed by
    participant (paired: the same participants), ``strata`` the stratum per participant.

    Keys: ``model``, ``mean_diff``, ``se``, ``statistic`` (t), ``df``, ``p``, ``ci``, ``n``, ``n_strata``.
    None with fewer than two strata among the participants or too few participants for the model.
    """
    if paired:
        common = compared.index.intersection(baseline.index)
        y = (compared[common] - baseline[common]).to_numpy(dtype=float)
        groups = strata.reindex(common)
        dummies = pd.get_dummies(groups, drop_first=True, dtype=float)
        x = np.column_stack([np.ones(len(y)), (dummies - dummies.mean()).to_numpy()])
        model, term = "paired differences ~ centred stratum dummies (intercept)", 0
    else:
        y = np.concatenate([compared.to_numpy(dtype=float), baseline.to_numpy(dtype=float)])
        groups = pd.concat([strata.reindex(compared.index), strata.reindex(baseline.index)])
        dummies = pd.get_dummies(groups, drop_first=True, dtype=float).to_numpy()
        arm = np.r_[np.ones(len(compared)), np.zeros(len(baseline))]
        x = np.column_stack([np.ones(len(y)), arm, dummies])
        model, term = "score ~ condition + stratum (OLS)", 1
    n_strata = int(groups.nunique())
    if n_strata < 2 or groups.isna().any() or len(y) <= x.shape[1] + 1:
        return None
    fit = sm.OLS(y, x).fit()
    low, high = fit.conf_int(alpha=1 - confidence)[term]
    return {
        "model": model,
        "mean_diff": float(fit.params[term]),
        "se": float(fit.bse[term]),
        "statistic": float(fit.tvalues[term]),
        "df": float(fit.df_resid),
        "p": float(fit.pvalues[term]),
        "ci": [float(low), float(high)],
        "n": len(y) if paired else len(compared) + len(baseline),
        "n_strata": n_strata,
    }
