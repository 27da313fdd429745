"""Comparisons of k conditions: an omnibus test (k > 2), then pairwise comparisons in two Holm families.

Between designs: Welch's ANOVA with ω² and the Kruskal–Wallis test with ε²; pairs by Games–Howell (unequal
variances, its own studentized-range adjustment over all pairs) beside Welch t with Hedges' g and Mann–Whitney
U. Within designs: repeated-measures ANOVA with the Greenhouse–Geisser correction and the Friedman test with
Kendall's W; pairs by paired t with d_z and Wilcoxon signed-rank. Pairs form two families — every condition
against the baseline (k − 1 comparisons) and all pairs (k(k − 1)/2) — and p is Holm-adjusted within each
(``p_holm``). A pair (a, b) reports b − a, with the baseline first and the others in protocol order, so the
baseline pairs read "condition − baseline" as in the two-arm analysis.

Each function returns a flat record; keys are listed in its docstring.
"""

from __future__ import annotations

import copy
from itertools import combinations

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from analysis.compare import holm, mann_whitney_test, paired_ttest, welch_ttest, wilcoxon_test
from analysis.scores import ConditionScores

FAMILIES = ("vs_baseline", "all_pairs")


def welch_anova(groups: dict[str, np.ndarray]) -> dict:
    """Welch's heteroscedastic one-way ANOVA (pingouin) with ω² of the classic ANOVA decomposition.

    ω² = (SS_between − (k − 1)·MS_within) / (SS_total + MS_within) (Hays 1963), less biased than η².
    Keys: ``test, statistic, df1, df2, p, effect_size{name='omega_squared', value}, n``.
    """
    frame = _long(groups)
    res = pg.welch_anova(frame, dv="score", between="condition").iloc[0]
    values = frame["score"].to_numpy()
    k, n = len(groups), len(values)
    grand = values.mean()
    ss_between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups.values())
    ss_total = float(((values - grand) ** 2).sum())
    ms_within = (ss_total - ss_between) / (n - k)
    omega = (ss_between - (k - 1) * ms_within) / (ss_total + ms_within)
    return {
        "test": "Welch ANOVA",
        "statistic": float(res["F"]),
        "df1": float(res["ddof1"]),
        "df2": float(res["ddof2"]),
        "p": float(res["p_unc"]),
        "effect_size": {"name": "omega_squared", "value": float(omega)},
        "n": n,
    }


def kruskal_wallis(groups: dict[str, np.ndarray]) -> dict:
    """Kruskal–Wallis H test (tie-corrected, chi-square p) with ε² = H(n + 1)/(n² − 1) (Tomczak 2014).

    Keys: ``test, statistic, df, p, effect_size{name='epsilon_squared', value}, n``.
    """
    res = stats.kruskal(*groups.values())
    n = sum(len(g) for g in groups.values())
    return {
        "test": "Kruskal-Wallis",
        "statistic": float(res.statistic),
        "df": float(len(groups) - 1),
        "p": float(res.pvalue),
        "effect_size": {"name": "epsilon_squared", "value": float(res.statistic * (n + 1) / (n * n - 1))},
        "n": n,
    }


def rm_anova(wide: pd.DataFrame) -> dict:
    """One-way repeated-measures ANOVA (pingouin) with Mauchly's test and the Greenhouse–Geisser correction.

    ``wide``: one row per participant, one column per condition (complete cases). ``p`` is the
    GG-corrected p (the reported one, whatever Mauchly says: it is safe under sphericity too).
    Keys: ``test, statistic, df1, df2, p, p_uncorrected, epsilon, sphericity{W, p}, effect_size{name=
    'eta_squared_generalized', value}, n``.
    """
    frame = wide.rename_axis("participant_id").reset_index().melt("participant_id", var_name="condition")
    res = pg.rm_anova(frame, dv="value", within="condition", subject="participant_id", correction=True)
    row = res.iloc[0]
    eps = float(row["eps"])
    return {
        "test": "repeated-measures ANOVA, Greenhouse-Geisser corrected",
        "statistic": float(row["F"]),
        "df1": float(row["ddof1"]) * eps,
        "df2": float(row["ddof2"]) * eps,
        "p": float(row["p_GG_corr"]),
        "p_uncorrected": float(row["p_unc"]),
        "epsilon": eps,
        "sphericity": {"W": float(row["W_spher"]), "p": float(row["p_spher"])},
        "effect_size": {"name": "eta_squared_generalized", "value": float(row["ng2"])},
        "n": len(wide),
    }


def friedman(wide: pd.DataFrame) -> dict:
    """Friedman test (scipy, tie-corrected chi-square) with Kendall's W = χ² / (n(k − 1)).

    Keys: ``test, statistic, df, p, effect_size{name='kendall_w', value}, n``.
    """
    res = stats.friedmanchisquare(*(wide[c].to_numpy() for c in wide.columns))
    n, k = wide.shape
    return {
        "test": "Friedman",
        "statistic": float(res.statistic),
        "df": float(k - 1),
        "p": float(res.pvalue),
        "effect_size": {"name": "kendall_w", "value": float(res.statistic / (n * (k - 1)))},
        "n": n,
    }


def games_howell(groups: dict[str, np.ndarray], confidence: float = 0.95) -> dict[tuple[str, str], dict]:
    """Games–Howell comparisons of every pair (pingouin), with simultaneous CIs of the differences.

    CI: (b − a) ± q(confidence; k, df)/√2 · SE, q the studentized range quantile at the pair's Welch df
    (pingouin reports no interval). Keys per pair ``(a, b)``: ``test, mean_diff`` (b − a), ``se, statistic,
    df, p, ci``.
    """
    table = pg.pairwise_gameshowell(_long(groups), dv="score", between="condition")
    k = len(groups)
    out = {}
    for _, row in table.iterrows():
        a, b = str(row["A"]), str(row["B"])
        diff, se, df = -float(row["diff"]), float(row["se"]), float(row["df"])
        half = stats.studentized_range.ppf(confidence, k, df) / np.sqrt(2) * se
        record = {
            "test": "Games-Howell",
            "mean_diff": diff,
            "se": se,
            "statistic": -float(row["T"]),
            "df": df,
            "p": float(row["pval"]),
            "ci": [diff - half, diff + half],
        }
        out[(a, b)] = record
        out[(b, a)] = {
            **record,
            "mean_diff": -diff,
            "statistic": float(row["T"]),
            "ci": [-diff - half, -diff + half],
        }
    return out


def pairwise(samples: ConditionScores, baseline: str, confidence: float = 0.95) -> dict[str, list[dict]]:
    """Pairwise comparisons in the two families, Holm-adjusted within each (k = 2: one pair, in both).

    Between (``samples.groups``) and within (``samples.complete``, complete cases). Returns
    ``{family: [record]}``, each record ``a, b, parametric`` (Welch / paired t record with Hedges' g / d_z and
    CI, plus ``p_holm``), ``nonparametric`` (Mann–Whitney / Wilcoxon, plus ``p_holm``) and, between,
    ``games_howell``.
    """
    conditions = samples.conditions
    ordered = (baseline, *(c for c in conditions if c != baseline))
    gh = games_howell(samples.groups, confidence) if samples.groups is not None else None

    def compare(a: str, b: str) -> dict:
        x, y = samples.sample(b), samples.sample(a)
        if gh is not None:
            return {
                "a": a,
                "b": b,
                "parametric": welch_ttest(x, y, confidence),
                "nonparametric": mann_whitney_test(x, y),
                "games_howell": gh[(a, b)],
            }
        return {
            "a": a,
            "b": b,
            "parametric": paired_ttest(x, y, confidence),
            "nonparametric": wilcoxon_test(x, y),
        }

    tested = {(a, b): compare(a, b) for a, b in combinations(ordered, 2)}  # each pair once, in both families
    families = {
        "vs_baseline": [copy.deepcopy(tested[(baseline, c)]) for c in ordered[1:]],
        "all_pairs": [copy.deepcopy(record) for record in tested.values()],
    }
    for records in families.values():
        for kind in ("parametric", "nonparametric"):
            for record, p in zip(records, holm([r[kind]["p"] for r in records]), strict=True):
                record[kind]["p_holm"] = p
    return families


def _long(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "condition": np.concatenate([[name] * len(g) for name, g in groups.items()]),
            "score": np.concatenate([np.asarray(g, dtype=float) for g in groups.values()]),
        }
    )
