"""The preregistered plan: hypotheses tested in their declared direction with their declared correction, and
every deviation from the plan stated.

The hypotheses come from the export's ``hypotheses`` table, the preregistration hashes and the planned sample
from its ``study`` table (see study/prereg.py). A hypothesis compares construct scores of two conditions;
``greater`` means the first condition scores higher. The confirmatory test is the t-test of the design (paired
or Welch), one-sided when a direction is declared; its rank-based twin runs in the same direction as a check.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
from scipy import stats

from analysis.casewise import pair_contrast
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


def mixed_test(mixed: dict, first: str, second: str, alternative: str, confidence: float) -> dict | None:
    """A hypothesis tested with the construct's crossed mixed model: the contrast first − second, its t with
    Satterthwaite df, p one-sided in the declared direction (half the two-sided p, exact as t is symmetric)
    and the matching interval (one-sided: bounded on the hypothesis' side only, at ``confidence``)."""
    found = pair_contrast(mixed, first, second)
    if found is None:
        return None
    record, sign = found
    estimate, statistic = sign * record["estimate"], sign * record["statistic"]
    if alternative == "two_sided":
        low, high = sorted(sign * v for v in record["ci"])
    else:
        quantile = stats.t.ppf(confidence, record["df"]) if record["df"] else stats.norm.ppf(confidence)
        margin = quantile * record["se"]
        low, high = (
            (estimate - margin, math.inf) if alternative == "greater" else (-math.inf, estimate + margin)
        )
    return {
        "test": "linear mixed model (participants × cases crossed), t with "
        + (f"{mixed['df_method']} df" if record["df"] else "z")
        + ("" if alternative == "two_sided" else ", one-sided"),
        "statistic": statistic,
        "df": record["df"],
        "p": _one_sided(record["p"], statistic, alternative),
        "estimate": estimate,
        "se": record["se"],
        "ci": [low, high],
        "formula": mixed["formula"],
        "backend": mixed["backend"],
    }


def confirmatory_test(
    scores: pd.DataFrame, hypothesis: pd.Series, data: StudyData, confidence: float, mixed: dict | None = None
) -> dict:
    """One hypothesis: its test in the declared direction (first − second), effect size, rank-based check.

    Keys: ``hypothesis, construct, first, second, direction, alpha, test, statistic, df, p, mean_first,
    mean_second, mean_diff, effect_size{name, value, ci}, rank_test{test, p}, n`` — or ``skipped``.
    With the construct's fitted crossed mixed model (``mixed``, per-case items) the test is the model's
    (:func:`mixed_test`; its record under ``mixed``) and the participant-mean t-test moves to ``secondary``.
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
    result = {
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
    if mixed and "skipped" in mixed:  # said, not hidden: the planned model could not be fitted
        return {**result, "mixed_skipped": mixed["skipped"]}
    primary = None
    if mixed:
        primary = mixed_test(
            mixed, hypothesis["first"], hypothesis["second"], hypothesis["direction"], confidence
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
    """Every preregistered hypothesis, corrected across the tested ones; ``supported`` = p_adjusted < α.
    ``constructs``: the analysed construct blocks, whose ``mixed`` model tests a hypothesis when present."""
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
