"""The preregistered plan: hypotheses tested in their declared direction with their declared correction, and
every deviation from the plan stated.

The hypotheses come from the export's ``hypotheses`` table, the preregistration hashes and the planned sample
from its ``study`` table (see study/prereg.py). A hypothesis compares construct scores of two conditions;
``greater`` means the first condition scores higher. The confirmatory test is the t-test of the design (paired
or Welch), one-sided when a direction is declared; its rank-based twin runs in the same direction as a check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bayes import bayes_factor
from analysis.casewise import pair_contrast
from analysis.compare import holm, mann_whitney_test, paired_ttest, welch_ttest, wilcoxon_test
from analysis.equivalence import tost
from analysis.load import EQUIVALENCE_DIRECTIONS, StudyData
from analysis.scores import condition_scores

FLIP = {"greater": "less", "less": "greater", "two_sided": "two_sided"}


def _one_sided(p_two: float, statistic: float, alternative: str) -> float:
    """One-sided p of a t-test from its two-sided p and t (exact: the t distribution is symmetric)."""
    if alternative == "two_sided":
        return p_two
    agrees = statistic > 0 if alternative == "greater" else statistic < 0
    return p_two / 2 if agrees else 1 - p_two / 2


def mixed_test(mixed: dict, first: str, second: str, alternative: str, level: float) -> dict | None:
    """A hypothesis tested with the construct's crossed mixed model: the contrast first − second, its t with
    Satterthwaite df, p one-sided in the declared direction (half the two-sided p, exact as t is symmetric)
    and the interval at ``level`` (one-sided: 1 − 2α, whose bound on the tested side is the one-sided bound,
    as for the t-test); None when the model compares neither condition pair."""
    found = pair_contrast(mixed, first, second)
    if found is None:
        return None
    record, sign = found
    estimate, statistic = sign * record["estimate"], sign * record["statistic"]
    quantile = stats.t.ppf(0.5 + level / 2, record["df"]) if record["df"] else stats.norm.ppf(0.5 + level / 2)
    return {
        "test": "linear mixed model (participants × cases crossed), t with "
        + (f"{mixed['df_method']} df" if record["df"] else "z")
        + ("" if alternative == "two_sided" else ", one-sided"),
        "statistic": statistic,
        "df": record["df"],
        "p": _one_sided(record["p"], statistic, alternative),
        "estimate": estimate,
        "se": record["se"],
        "ci": [estimate - quantile * record["se"], estimate + quantile * record["se"]],
        "ci_level": level,
        "formula": mixed["formula"],
        "backend": mixed["backend"],
    }


def confirmatory_test(
    scores: pd.DataFrame, hypothesis: pd.Series, data: StudyData, confidence: float, mixed: dict | None = None
) -> dict:
    """One hypothesis: its test in the declared direction (first − second), effect size, rank-based check and
    the two-sided JZS Bayes factor.

    Keys: ``hypothesis, construct, first, second, direction, alpha, test, statistic, df, p, mean_first,
    mean_second, mean_diff, ci, ci_level, effect_size{name, value, ci}, rank_test{test, statistic, p},
    bayes_factor, n`` — or ``skipped``. A one-sided test comes with the (1 − 2α) interval (its bound on the
    tested side is the one-sided (1 − α) bound); a two-sided one with the interval at ``confidence``.
    Equivalence and non-inferiority hypotheses add ``sesoi`` and ``tost`` (:func:`equivalence_test`).
    With the construct's fitted crossed mixed model (``mixed``, per-case items) a directional or two-sided
    hypothesis is tested with the model (:func:`mixed_test`; its record under ``mixed``) and the
    participant-mean t-test moves to ``secondary``; a model that could not be fitted is named in
    ``mixed_skipped`` (and becomes a deviation).
    """
    record = {k: hypothesis[k] for k in ("hypothesis", "construct", "first", "second", "direction")}
    record["alpha"] = float(hypothesis["alpha"])
    pair = {hypothesis["first"], hypothesis["second"]}
    analysed = set(data.conditions)
    if not pair <= analysed or len(pair) != 2:
        return {**record, "skipped": f"compares {sorted(pair)}, the data compare {sorted(analysed)}"}
    # the pair as a two-arm comparison (any two of k arms): the baseline if it is one of them, else `second`
    reference = data.baseline if data.baseline in pair else hypothesis["second"]
    other = (pair - {reference}).pop()
    if scores is None or scores.empty:
        return {**record, "skipped": "no participants analysed"}
    if hypothesis["construct"] not in set(scores["construct"]):
        return {**record, "skipped": f"construct {hypothesis['construct']!r} is not in the data"}
    samples = condition_scores(scores, hypothesis["construct"], (reference, other), data.design)
    compared, baseline = samples.sample(other), samples.sample(reference)
    if len(compared) < 2 or len(baseline) < 2:
        return {**record, "skipped": "fewer than two observations per condition"}
    paired = data.design == "within"
    if hypothesis["direction"] in EQUIVALENCE_DIRECTIONS:
        first, second = (compared, baseline) if hypothesis["first"] == other else (baseline, compared)
        return {**record, **equivalence_test(first, second, paired, hypothesis)}
    # every test below is compared − baseline; a hypothesis about baseline − compared flips the direction
    flipped = hypothesis["first"] == reference
    alternative = FLIP[hypothesis["direction"]] if flipped else hypothesis["direction"]
    sign = -1.0 if flipped else 1.0
    level = confidence if alternative == "two_sided" else 1 - 2 * record["alpha"]
    if paired:
        parametric = paired_ttest(compared, baseline, level)
        rank = wilcoxon_test(compared, baseline, alternative)
    else:
        parametric = welch_ttest(compared, baseline, level)
        rank = mann_whitney_test(compared, baseline, alternative)
    means = {other: float(compared.mean()), reference: float(baseline.mean())}
    result = {
        **record,
        "test": parametric["test"] + ("" if alternative == "two_sided" else ", one-sided"),
        "statistic": sign * parametric["statistic"],
        "df": parametric["df"],
        "p": _one_sided(parametric["p"], parametric["statistic"], alternative),
        "mean_first": means[hypothesis["first"]],
        "mean_second": means[hypothesis["second"]],
        "mean_diff": sign * parametric["mean_diff"],
        "ci": sorted(sign * v for v in parametric["ci"]),
        "ci_level": level,
        "effect_size": _signed_effect(parametric["effect_size"], sign),
        "rank_test": {"test": rank["test"], "statistic": rank["statistic"], "p": rank["p"]},
        "bayes_factor": bayes_factor(compared, baseline, paired),
        "n": parametric["n"],
    }
    if mixed and "skipped" in mixed:  # said, not hidden: the planned model could not be fitted
        return {**result, "mixed_skipped": mixed["skipped"]}
    primary = (
        mixed_test(mixed, hypothesis["first"], hypothesis["second"], hypothesis["direction"], level)
        if mixed
        else None
    )
    if primary is None:
        return result
    tests = ("test", "statistic", "df", "p")
    return {
        **result,
        **{k: primary[k] for k in tests},
        "mixed": primary,
        "secondary": {k: result[k] for k in tests},
    }


def _signed_effect(effect: dict, sign: float) -> dict:
    return {
        "name": effect["name"],
        "value": sign * effect["value"],
        "ci": sorted(sign * v for v in effect["ci"]),
    }


def equivalence_test(first: np.ndarray, second: np.ndarray, paired: bool, hypothesis: pd.Series) -> dict:
    """An ``equivalent`` / ``non_inferior`` hypothesis: TOST against ±sesoi (:func:`analysis.equivalence.tost`)
    with the (1 − 2α) interval of the difference and of the standardized effect, and the Bayes factor.

    Keys as :func:`confirmatory_test` (``statistic`` and ``p`` are the binding one-sided test's; ``rank_test``
    is None: the rank-based twin has no equivalence version here), plus ``sesoi`` and ``tost{bounds, lower,
    upper}``.
    """
    alpha, sesoi = float(hypothesis["alpha"]), float(hypothesis["sesoi"])
    res = tost(first, second, paired, sesoi, alpha, hypothesis["direction"])
    parametric = (paired_ttest if paired else welch_ttest)(first, second, res["ci_level"])
    return {
        "sesoi": sesoi,
        "test": res["test"],
        "statistic": res["statistic"],
        "df": res["df"],
        "p": res["p"],
        "mean_first": float(first.mean()),
        "mean_second": float(second.mean()),
        "mean_diff": res["mean_diff"],
        "ci": res["ci"],
        "ci_level": res["ci_level"],
        "tost": {k: res[k] for k in ("bounds", "lower", "upper")},
        "effect_size": _signed_effect(parametric["effect_size"], 1.0),
        "rank_test": None,
        "bayes_factor": bayes_factor(first, second, paired),
        "n": res["n"],
    }


def correct(pvalues: list[float], method: str) -> list[float]:
    """Adjusted p-values: ``holm``, ``bonferroni`` or ``none``."""
    if method == "holm":
        return holm(pvalues)
    if method == "bonferroni":
        return [min(1.0, p * len(pvalues)) for p in pvalues]
    return list(pvalues)


def confirmatory_tests(
    scores: pd.DataFrame, data: StudyData, confidence: float, constructs: dict[str, dict] | None = None
) -> list[dict]:
    """Every preregistered hypothesis, corrected across the tested ones; ``supported`` = p_adjusted < α (for an
    equivalence hypothesis: shown equivalent / non-inferior). ``constructs``: the analysed construct blocks,
    whose ``mixed`` model tests a hypothesis when present."""
    if data.hypotheses is None or scores is None:
        return []
    blocks = constructs or {}
    records = [
        confirmatory_test(scores, row, data, confidence, blocks.get(row["construct"], {}).get("mixed"))
        for _, row in data.hypotheses.iterrows()
    ]
    method = str(data.hypotheses["correction"].iloc[0]) if len(data.hypotheses) else "none"
    tested = [r for r in records if "p" in r]
    for record, adjusted in zip(tested, correct([r["p"] for r in tested], method), strict=True):
        record["correction"] = method
        record["p_adjusted"] = adjusted
        record["supported"] = adjusted < record["alpha"]
    return records


def deviations(data: StudyData, hypotheses: list[dict], n_analysed: int | None) -> dict:
    """Status of the preregistration and every deviation from it.

    Keys: ``status`` (``as preregistered``, ``changed after preregistration``, ``not preregistered``,
    ``unknown``), ``stored_hash``, ``protocol_hash``, ``changed_sections``, ``planned_participants``,
    ``deviations`` (sentences).
    """
    plan = data.plan
    out: dict = {
        "status": "unknown",
        "stored_hash": None,
        "protocol_hash": None,
        "changed_sections": [],
        "planned_participants": None,
        "deviations": [],
    }
    if plan is None:  # CSV input without study.csv: no plan to compare with, but the tests' own deviations
        out["deviations"] = _test_deviations(hypotheses)
        return out
    stored, current = plan.get("prereg_hash", ""), plan.get("prereg_hash_protocol", "")
    out["stored_hash"], out["protocol_hash"] = stored or None, current or None
    if not stored:
        out["status"] = "not preregistered"
    elif stored == current:
        out["status"] = "as preregistered"
    else:
        out["status"] = "changed after preregistration"
        out["changed_sections"] = [s for s in plan.get("prereg_changed", "").split(";") if s]
        where = ", ".join(out["changed_sections"]) or "unknown sections"
        out["deviations"].append(
            f"the protocol changed after preregistration (preregistered {stored[:12]}, analysed protocol "
            f"{current[:12]}): {where}"
        )
    planned = plan.get("planned_participants", "")
    if planned:
        out["planned_participants"] = int(float(planned))
        if n_analysed is not None and n_analysed != out["planned_participants"]:
            relation = "fewer" if n_analysed < out["planned_participants"] else "more"
            out["deviations"].append(
                f"{n_analysed} participants analysed, {relation} than the {out['planned_participants']} planned"
            )
    out["deviations"] += _test_deviations(hypotheses)
    return out


def _test_deviations(hypotheses: list[dict]) -> list[str]:
    """Hypotheses not tested, or not tested with the planned model."""
    notes = []
    for record in hypotheses:
        if "skipped" in record:
            notes.append(f"{record['hypothesis']} not tested: {record['skipped']}")
        if "mixed_skipped" in record:
            notes.append(
                f"{record['hypothesis']}: the planned mixed model could not be fitted ({record['mixed_skipped']}); "
                "tested with the participant-mean t-test instead"
            )
    return notes
