"""Trust calibration on cases whose AI diagnosis is deliberately wrong (``ai_correct`` = 0).

Over-reliance is agreeing with the AI when it is wrong (Tschandl et al. 2020; Chanda et al. 2024); calibrated
trust is higher on correct than on wrong cases. Both are reported per condition, from participant-level means
(each participant weighs the same), and every condition is compared with the baseline, each comparison on its
own (secondary, not Holm-adjusted).
"""

from __future__ import annotations

import pandas as pd

from analysis.agreement import wilson_interval
from analysis.compare import paired_ttest, welch_ttest
from analysis.scores import scored_rows
from formats.contract import AGREEMENT_CONSTRUCT


def _cell_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Participant means per condition × ai_correct (``participant_id, condition, ai_correct, value``)."""
    return (
        rows.groupby(["participant_id", "condition", "ai_correct"], observed=True)["value"]
        .mean()
        .reset_index()
    )


def _summary(rows: pd.DataFrame, proportion: bool, confidence: float) -> list[dict]:
    """Per condition × AI correctness: participants, answers, mean (SD) of participant means, Wilson CI."""
    means = _cell_means(rows)
    out = []
    for (condition, correct), cell in means.groupby(["condition", "ai_correct"], observed=True):
        answers = rows[(rows["condition"] == condition) & (rows["ai_correct"] == correct)]["value"]
        record = {
            "condition": condition,
            "ai_correct": int(correct),
            "n_participants": len(cell),
            "n_answers": len(answers),
            "mean": float(cell["value"].mean()),
            "sd": float(cell["value"].std(ddof=1)) if len(cell) > 1 else None,
        }
        if proportion:
            record["ci"] = wilson_interval(int(answers.sum()), len(answers), confidence)
        out.append(record)
    return out


def _compare(
    per_participant: pd.DataFrame, design: str, baseline: str, condition: str, confidence: float
) -> dict | None:
    """``condition`` vs the baseline on a participant-level measure (``participant_id, condition, value``)."""
    wide = per_participant.pivot(index="participant_id", columns="condition", values="value")
    if baseline not in wide.columns or condition not in wide.columns:
        return None
    if design == "within":
        pairs = wide[[condition, baseline]].dropna()
        return paired_ttest(pairs[condition], pairs[baseline], confidence) if len(pairs) >= 2 else None
    x, b = wide[condition].dropna(), wide[baseline].dropna()
    return welch_ttest(x, b, confidence) if len(x) >= 2 and len(b) >= 2 else None


def trust_calibration(
    responses: pd.DataFrame,
    design: str,
    conditions: tuple[str, ...],
    trust_construct: str = "trust",
    confidence: float = 0.95,
) -> dict | None:
    """Agreement with the AI and trust, on correct vs wrong AI cases, per condition.

    Returns None when the data have no wrong-AI cases. Keys: ``agreement_with_ai`` and ``trust`` (lists of
    records ``condition, ai_correct, n_participants, n_answers, mean, sd[, ci]``), ``over_reliance``
    (each condition but the baseline → its comparison with the baseline on each participant's agreement rate on
    wrong cases: a paired/Welch test record, or None), ``trust_gap`` (same, on trust on correct − trust on wrong
    cases), ``trust_construct``. ``conditions``: the compared ones, baseline first.
    """
    baseline, *others = conditions

    def compare(per_participant: pd.DataFrame) -> dict[str, dict | None]:
        return {c: _compare(per_participant, design, baseline, c, confidence) for c in others}

    if "ai_correct" not in responses.columns:
        return None
    rows = scored_rows(responses)
    rows = rows[rows["ai_correct"].notna()]
    if not (rows["ai_correct"] == 0).any():
        return None
    agree = rows[rows["construct"] == AGREEMENT_CONSTRUCT]
    trust = rows[rows["construct"] == trust_construct]
    result: dict = {
        "trust_construct": trust_construct,
        "agreement_with_ai": None,
        "over_reliance": None,
        "trust": None,
        "trust_gap": None,
    }
    if not agree.empty:
        result["agreement_with_ai"] = _summary(agree, proportion=True, confidence=confidence)
        wrong = _cell_means(agree[agree["ai_correct"] == 0])
        result["over_reliance"] = compare(wrong)
    if not trust.empty:
        result["trust"] = _summary(trust, proportion=False, confidence=confidence)
        cells = _cell_means(trust).pivot(
            index=["participant_id", "condition"], columns="ai_correct", values="value"
        )
        if {0.0, 1.0} <= set(cells.columns):
            gap = (cells[1.0] - cells[0.0]).dropna().rename("value").reset_index()
            result["trust_gap"] = compare(gap)
    return result
