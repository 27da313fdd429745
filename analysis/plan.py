"""The preregistered plan: hypotheses tested in their declared direction with their declared correction, and
every deviation from the plan stated.

The hypotheses come from the export's ``hypotheses`` table, the preregistration hashes and the planned sample
from its ``study`` table (see study/prereg.py). A hypothesis compares construct scores of two conditions;
``greater`` means the first condition scores higher. The confirmatory test is the t-test of the design (paired
or Welch), one-sided when a direction is declared; its rank-based twin runs in the same direction as a check.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from analysis.compare import holm, mann_whitney_test, paired_ttest, welch_ttest, wilcoxon_test
from analysis.load import StudyData
from analysis.scores import condition_samples

FLIP = {"greater": "less", "less": "greater", "two_sided": "two_sided"}


def _one_sided(p_two: float, statistic: float, alternative: str) -> float:
    """One-sided p of a t-test from its two-sided p and t (exact: the t distribution is symmetric)."""
    if alternative == "two_sided":
        return p_two
    agrees = statistic > 0 if alternative == "greater" else statistic < 0
    return p_two / 2 if agrees else 1 - p_two / 2


def confirmatory_test(
    scores: pd.DataFrame, hypothesis: pd.Series, data: StudyData, confidence: float
) -> dict:
    """One hypothesis: its test in the declared direction (first − second), effect size, rank-based check.

    Keys: ``hypothesis, construct, first, second, direction, alpha, test, statistic, df, p, mean_first,
    mean_second, mean_diff, effect_size{name, value, ci}, rank_test{test, p}, n`` — or ``skipped``.
    """
    record = {k: hypothesis[k] for k in ("hypothesis", "construct", "first", "second", "direction")}
    record["alpha"] = float(hypothesis["alpha"])
    pair = {hypothesis["first"], hypothesis["second"]}
    compared = set(data.conditions) or {data.baseline, data.visual}
    if not pair <= compared or len(pair) != 2:
        return {**record, "skipped": f"compares {sorted(pair)}, the data compare {sorted(compared)}"}
    # the pair as a two-arm comparison (any two of k arms): the baseline if it is one of them, else `second`
    reference = data.baseline if data.baseline in pair else hypothesis["second"]
    data = replace(data, baseline=reference, visual=(pair - {reference}).pop())
    if hypothesis["construct"] not in set(scores["construct"]):
        return {**record, "skipped": f"construct {hypothesis['construct']!r} is not in the data"}
    visual, baseline, _ = condition_samples(scores, hypothesis["construct"], data)
    if len(visual) < 2 or len(baseline) < 2:
        return {**record, "skipped": "fewer than two observations per condition"}
    # every test below is visual − baseline; a hypothesis about baseline − visual flips the direction
    flipped = hypothesis["first"] == data.baseline
    alternative = FLIP[hypothesis["direction"]] if flipped else hypothesis["direction"]
    sign = -1.0 if flipped else 1.0
    if data.design == "within":
        parametric = paired_ttest(visual, baseline, confidence)
        rank = wilcoxon_test(visual, baseline, alternative)
    else:
        parametric = welch_ttest(visual, baseline, confidence)
        rank = mann_whitney_test(visual, baseline, alternative)
    effect = parametric["effect_size"]
    low, high = (sign * v for v in effect["ci"])
    means = {data.visual: float(visual.mean()), data.baseline: float(baseline.mean())}
    return {
        **record,
        "test": parametric["test"] + ("" if alternative == "two_sided" else ", one-sided"),
        "statistic": sign * parametric["statistic"],
        "df": parametric["df"],
        "p": _one_sided(parametric["p"], parametric["statistic"], alternative),
        "mean_first": means[hypothesis["first"]],
        "mean_second": means[hypothesis["second"]],
        "mean_diff": sign * parametric["mean_diff"],
        "effect_size": {"name": effect["name"], "value": sign * effect["value"], "ci": sorted([low, high])},
        "rank_test": {"test": rank["test"], "statistic": rank["statistic"], "p": rank["p"]},
        "n": parametric["n"],
    }


def correct(pvalues: list[float], method: str) -> list[float]:
    """Adjusted p-values: ``holm``, ``bonferroni`` or ``none``."""
    if method == "holm":
        return holm(pvalues)
    if method == "bonferroni":
        return [min(1.0, p * len(pvalues)) for p in pvalues]
    return list(pvalues)


def confirmatory_tests(scores: pd.DataFrame, data: StudyData, confidence: float) -> list[dict]:
    """Every preregistered hypothesis, corrected across the tested ones; ``supported`` = p_adjusted < α."""
    if data.hypotheses is None or scores is None:
        return []
    records = [confirmatory_test(scores, row, data, confidence) for _, row in data.hypotheses.iterrows()]
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
    if plan is None:  # CSV input without study.csv: nothing to compare with
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
    for record in hypotheses:
        if "skipped" in record:
            out["deviations"].append(f"{record['hypothesis']} not tested: {record['skipped']}")
    return out
