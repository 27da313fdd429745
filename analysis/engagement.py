"""Engagement and manipulation, by condition: time spent per case, images enlarged, manipulation checks.

APA JARS asks how participants engaged with each arm and whether the manipulation took. Three records of the
export answer it:

- time per case, from each trial step's shown and submitted times (``rt_ms``; both halves of a judge–advisor
  trial count): per participant the median over their cases (robust to a case left open while away), then
  summarised per condition;
- images enlarged (image_views.csv: one server-side event per click on "Enlarge"), per condition: how many
  participants enlarged any image, and clicks per case, by image kind;
- manipulation checks (items with ``manipulation_check`` in the protocol; the export's ``<item>__as_intended``
  rows): per item and arm, the share answering as the protocol expects under their condition, with Wilson
  intervals (Wilson 1927; Brown, Cai & DasGupta 2001).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.agreement import wilson_interval
from formats.contract import AS_INTENDED, MANIPULATION_CONSTRUCT

STEP_COLUMNS = ("step", "case_id", "rt_ms")
"""Optional columns of responses.csv that the timing needs (a bare CSV of answers may lack them)."""


def _trial_steps(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per participant × trial step (its response time, condition and case); empty when the
    responses lack the step columns."""
    if not set(STEP_COLUMNS) <= set(responses.columns):
        return pd.DataFrame(columns=["participant_id", "step", "condition", "case_id", "rt_ms"])
    trials = responses[(responses["condition"] != "") & (responses["case_id"].astype(str) != "")]
    steps = trials.groupby(["participant_id", "step"], observed=True).agg(
        condition=("condition", "first"), case_id=("case_id", "first"), rt_ms=("rt_ms", "first")
    )
    return steps.reset_index()


def _summary(values: pd.Series) -> dict:
    n = int(values.notna().sum())
    return {
        "n_participants": n,
        "mean": float(values.mean()) if n else None,
        "sd": float(values.std(ddof=1)) if n > 1 else None,
        "median": float(values.median()) if n else None,
    }


def time_per_case(responses: pd.DataFrame) -> dict[str, dict]:
    """Seconds per case by condition: per participant the median over cases of the case's summed step
    times, then ``n_participants, mean, sd, median`` of those medians and ``n_cases`` (participant × case).
    """
    steps = _trial_steps(responses)
    steps = steps[pd.to_numeric(steps["rt_ms"], errors="coerce").notna()]
    cases = (
        steps.assign(seconds=pd.to_numeric(steps["rt_ms"]) / 1000)
        .groupby(["participant_id", "condition", "case_id"], observed=True)["seconds"]
        .sum()
        .reset_index()
    )
    per_participant = cases.groupby(["participant_id", "condition"], observed=True)["seconds"].median()
    block = {}
    for condition, values in per_participant.groupby(level="condition", sort=True):
        block[str(condition)] = {
            **_summary(values),
            "n_cases": int((cases["condition"] == condition).sum()),
        }
    return block


def image_views(views: pd.DataFrame, responses: pd.DataFrame) -> dict[str, dict]:
    """Images enlarged per condition, among the analysed participants (those in ``responses``).

    Per condition: ``n_participants`` (who saw a trial), ``participants_enlarging`` and their ``share``,
    ``views`` (clicks), ``views_per_case`` (mean over participants of their clicks ÷ cases seen) and
    ``by_kind`` (clicks per image kind: case_photo, generated, retrieved).
    """
    steps = _trial_steps(responses)
    seen = steps.groupby(["participant_id", "condition"], observed=True)["case_id"].nunique()
    analysed = set(steps["participant_id"])
    views = views[views["participant_id"].isin(analysed)]
    clicks = views.groupby(["participant_id", "condition"], observed=True).size()
    block = {}
    for condition, cases in seen.groupby(level="condition", sort=True):
        mine = views[views["condition"] == condition]
        per_participant = clicks.reindex(cases.index, fill_value=0)
        enlarging = int((per_participant > 0).sum())
        block[str(condition)] = {
            "n_participants": len(cases),
            "participants_enlarging": enlarging,
            "share": enlarging / len(cases),
            "views": len(mine),
            "views_per_case": float((per_participant / cases).mean()),
            "by_kind": {str(k): int(v) for k, v in mine["image_kind"].value_counts().sort_index().items()},
        }
    return block


def manipulation_checks(responses: pd.DataFrame, confidence: float = 0.95) -> dict[str, dict]:
    """Per manipulation-check item and arm (the condition in force; the arm for post questions of a between
    design): ``n`` answers, ``as_intended`` count, ``share`` and its Wilson ``ci``."""
    rows = responses[responses["construct"] == MANIPULATION_CONSTRUCT]
    block: dict[str, dict] = {}
    if rows.empty:
        return block
    arm = rows["condition"].where(rows["condition"] != "", rows.get("arm", pd.Series("", index=rows.index)))
    for (item, group), answers in rows.assign(group=arm).groupby(["item", "group"], sort=True):
        values = answers["value"].dropna().to_numpy(dtype=float)
        k, n = int(np.sum(values == 1)), len(values)
        block.setdefault(str(item).removesuffix(AS_INTENDED), {})[str(group)] = {
            "n": n,
            "as_intended": k,
            "share": k / n if n else None,
            "ci": wilson_interval(k, n, confidence) if n else None,
        }
    return block


def engagement_block(responses: pd.DataFrame, views: pd.DataFrame | None, confidence: float = 0.95) -> dict:
    """The ``engagement`` block of results.json: ``time_per_case``, ``image_views`` (None when the export has
    no image_views table) and ``manipulation_checks`` (empty without such items), each by condition."""
    return {
        "time_per_case": time_per_case(responses),
        "image_views": None if views is None else image_views(views, responses),
        "manipulation_checks": manipulation_checks(responses, confidence),
    }
