"""Reliance on the AI's advice: accuracy before and after it, switching, over- and under-reliance, RAIR and RSR.

A judge–advisor trial (protocol ``trial.advice: after_initial``; Sniezek & Buckley 1995) records the
participant's own diagnosis before the AI's advice and the final one after it (export variables
``<item>_initial…`` and ``<item>…``; docs/export-format.md), so one can tell who changed their mind and
whether that was appropriate. Schemmer, Kuehl, Benz, Bartos & Satzger (IUI 2023, "Appropriate reliance on AI
advice: conceptualization and the effect of explanations") measure appropriateness by two ratios over the
trials where the first answer and the AI's differ:

- relative AI reliance, RAIR = trials where the first answer was wrong, the AI right and the final answer
  follows the AI ÷ trials where the first answer was wrong and the AI right;
- relative self-reliance, RSR = trials where the first answer was right, the AI wrong and the final answer
  stays right ÷ trials where the first answer was right and the AI wrong.

With the advice shown with the case (today's trials) only final answers exist: accuracy, agreement with the
AI, over-reliance (agreeing with a wrong AI) and under-reliance (not taking a correct AI's advice) are
still computed, per condition and by AI correctness. Every metric is first computed per participant ×
condition (a participant is the unit of analysis), then summarised per condition; docs/analysis.md gives the
definitions and sources. Weight of advice (Yaniv 2004) needs numeric estimates; a diagnosis is a category, so
its categorical counterpart, the switch rate, is reported instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from formats.contract import (
    ACCURACY_CONSTRUCT,
    AGREES_AI,
    CONFIDENCE_SUFFIX,
    CORRECT,
    INITIAL_SUFFIX,
)

TRIAL_COLUMNS = (
    "participant_id",
    "condition",
    "case_id",
    "ai_correct",
    "item",
    "final_correct",
    "final_agrees",
    "final_confidence",
    "initial_correct",
    "initial_agrees",
    "initial_confidence",
)
"""One row per participant × case × diagnosis item (:func:`reliance_trials`); the ``initial_*`` columns are NaN
without judge–advisor trials. 0/1 columns are floats."""

AI_GROUPS = ("all", "correct", "wrong")
"""The trials a metric is computed over: all, those where the AI was right, those where it was wrong."""


@dataclass(frozen=True)
class RelianceMetric:
    """A reliance metric: the mean of ``outcome`` over the trials ``among`` selects (NaN when none)."""

    name: str
    label: str
    definition: str
    source: str
    outcome: Callable[[pd.DataFrame], pd.Series]
    among: Callable[[pd.DataFrame], pd.Series]
    needs_initial: bool


def _all(t: pd.DataFrame) -> pd.Series:
    return pd.Series(True, index=t.index)


SCHEMMER = "Schemmer et al. (2023), IUI '23"
METRICS: tuple[RelianceMetric, ...] = (
    RelianceMetric(
        "accuracy_before",
        "Accuracy before the advice",
        "share of first answers equal to the ground truth",
        "Sniezek & Buckley (1995)",
        lambda t: t["initial_correct"],
        _all,
        True,
    ),
    RelianceMetric(
        "accuracy",
        "Accuracy",
        "share of (final) answers equal to the ground truth",
        "",
        lambda t: t["final_correct"],
        _all,
        False,
    ),
    RelianceMetric(
        "agreement_before",
        "Agreement with the AI before its advice",
        "share of first answers equal to the AI's diagnosis",
        "",
        lambda t: t["initial_agrees"],
        _all,
        True,
    ),
    RelianceMetric(
        "agreement",
        "Agreement with the AI",
        "share of (final) answers equal to the AI's diagnosis",
        "",
        lambda t: t["final_agrees"],
        _all,
        False,
    ),
    RelianceMetric(
        "switch_rate",
        "Switch rate",
        "among trials whose first answer differed from the AI's, the share whose final answer is the AI's",
        "Zhang, Liao & Bellamy (2020), FAT* '20",
        lambda t: t["final_agrees"],
        lambda t: t["initial_agrees"] == 0,
        True,
    ),
    RelianceMetric(
        "over_reliance",
        "Over-reliance",
        "among trials where the AI was wrong, the share whose final answer is the AI's",
        SCHEMMER,
        lambda t: t["final_agrees"],
        lambda t: t["ai_correct"] == 0,
        False,
    ),
    RelianceMetric(
        "under_reliance",
        "Under-reliance",
        "among trials where the AI was right, the share whose final answer is not the AI's",
        SCHEMMER,
        lambda t: 1 - t["final_agrees"],
        lambda t: t["ai_correct"] == 1,
        False,
    ),
    RelianceMetric(
        "rair",
        "Relative AI reliance (RAIR)",
        "among trials with a wrong first answer and a right AI, the share whose final answer is the AI's",
        SCHEMMER,
        lambda t: t["final_agrees"],
        lambda t: (t["initial_correct"] == 0) & (t["ai_correct"] == 1),
        True,
    ),
    RelianceMetric(
        "rsr",
        "Relative self-reliance (RSR)",
        "among trials with a right first answer and a wrong AI, the share whose final answer is still right",
        SCHEMMER,
        lambda t: t["final_correct"],
        lambda t: (t["initial_correct"] == 1) & (t["ai_correct"] == 0),
        True,
    ),
    RelianceMetric(
        "confidence_change",
        "Confidence change",
        "final minus first confidence rating (scale points)",
        "",
        lambda t: t["final_confidence"] - t["initial_confidence"],
        _all,
        True,
    ),
)


def diagnosis_items(responses: pd.DataFrame) -> list[str]:
    """The diagnosis items of the export: those whose ``<item>__correct`` row has the accuracy construct."""
    derived = responses.loc[responses["construct"] == ACCURACY_CONSTRUCT, "item"].unique()
    return sorted(str(name).removesuffix(CORRECT) for name in derived)


def reliance_trials(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per participant × case × diagnosis item with the first and final answers' outcomes
    (:data:`TRIAL_COLUMNS`). ``responses`` is the analysis's long frame (export format, numbers parsed)."""
    if not {"case_id", "ai_correct"} <= set(responses.columns):  # a bare CSV of answers: no trials to tell
        return pd.DataFrame(columns=list(TRIAL_COLUMNS))
    rows = responses[(responses["condition"] != "") & (responses["case_id"].astype(str) != "")]
    keys = ["participant_id", "condition", "case_id", "ai_correct"]
    wide = rows.pivot_table(index=keys, columns="item", values="value", aggfunc="first", observed=True)
    frames = []
    for item in diagnosis_items(rows):
        initial = item + INITIAL_SUFFIX
        columns = {
            "final_correct": item + CORRECT,
            "final_agrees": item + AGREES_AI,
            "final_confidence": item + CONFIDENCE_SUFFIX,
            "initial_correct": initial + CORRECT,
            "initial_agrees": initial + AGREES_AI,
            "initial_confidence": initial + CONFIDENCE_SUFFIX,
        }
        frame = pd.DataFrame(
            {name: wide[source] if source in wide.columns else np.nan for name, source in columns.items()},
            index=wide.index,
        )
        frame = frame[frame["final_correct"].notna()].reset_index()
        frame["item"] = item
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(TRIAL_COLUMNS))
    trials = pd.concat(frames, ignore_index=True)
    trials["ai_correct"] = pd.to_numeric(trials["ai_correct"], errors="coerce")
    return trials[trials["ai_correct"].notna()][list(TRIAL_COLUMNS)].reset_index(drop=True)


def judge_advisor(trials: pd.DataFrame) -> bool:
    """Whether the trials have first answers (a judge–advisor protocol)."""
    return bool(trials["initial_correct"].notna().any())


def _ai_group(trials: pd.DataFrame, group: str) -> pd.DataFrame:
    if group == "all":
        return trials
    return trials[trials["ai_correct"] == (1 if group == "correct" else 0)]


def participant_metrics(trials: pd.DataFrame) -> pd.DataFrame:
    """Every metric per participant × condition × AI group (:data:`AI_GROUPS`).

    Columns: ``participant_id, condition, ai, metric, value, n_trials`` — ``n_trials`` is the metric's
    denominator (trials it averages over); metrics with none are left out (RAIR of a participant who was
    never wrong where the AI was right is undefined, not 0). Metrics that need first answers are left out
    without them.
    """
    metrics = [m for m in METRICS if judge_advisor(trials) or not m.needs_initial]
    records = []
    for group in AI_GROUPS:
        subset = _ai_group(trials, group)
        for metric in metrics:
            among = subset[metric.among(subset).fillna(False).astype(bool)]
            values = metric.outcome(among).dropna()
            kept = among.loc[values.index]
            per = (
                values.groupby([kept["participant_id"], kept["condition"]], observed=True)
                .agg(["mean", "count"])
                .reset_index()
            )
            for row in per.itertuples(index=False):
                records.append(
                    {
                        "participant_id": row.participant_id,
                        "condition": row.condition,
                        "ai": group,
                        "metric": metric.name,
                        "value": float(row.mean),
                        "n_trials": int(row.count),
                    }
                )
    return pd.DataFrame(records, columns=["participant_id", "condition", "ai", "metric", "value", "n_trials"])


def condition_summary(per_participant: pd.DataFrame, confidence: float = 0.95) -> list[dict]:
    """Per metric × AI group × condition: the mean of participants' values with its t interval.

    Records ``metric, ai, condition, n_participants, n_trials, mean, sd, ci`` (``sd``/``ci`` None with fewer
    than two participants).
    """
    records = []
    for (metric, group, condition), rows in per_participant.groupby(
        ["metric", "ai", "condition"], sort=True, observed=True
    ):
        values = rows["value"].to_numpy(dtype=float)
        n = len(values)
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if n > 1 else None
        ci = None
        if sd is not None:
            half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
            ci = [mean - half, mean + half]
        records.append(
            {
                "metric": metric,
                "ai": group,
                "condition": condition,
                "n_participants": n,
                "n_trials": int(rows["n_trials"].sum()),
                "mean": mean,
                "sd": sd,
                "ci": ci,
            }
        )
    return records


def definitions(judge_advisor_trials: bool) -> dict[str, dict[str, str]]:
    """The metrics reported (with first answers or without), as ``{name: {label, definition, source}}``."""
    return {
        m.name: {"label": m.label, "definition": m.definition, "source": m.source}
        for m in METRICS
        if judge_advisor_trials or not m.needs_initial
    }


@dataclass(frozen=True)
class ModelledOutcome:
    """A trial-level 0/1 outcome tested between conditions by the logistic mixed model."""

    metric: str
    outcome: str
    among: Callable[[pd.DataFrame], pd.Series]
    ai_wrong: bool
    needs_initial: bool


MODELLED: tuple[ModelledOutcome, ...] = (
    ModelledOutcome("accuracy", "final_correct", _all, True, False),
    ModelledOutcome("agreement", "final_agrees", _all, True, False),
    # before the advice the AI's correctness cannot matter: a check of the randomization, not of the advice
    ModelledOutcome("accuracy_before", "initial_correct", _all, False, True),
    ModelledOutcome("switch_rate", "final_agrees", lambda t: t["initial_agrees"] == 0, True, True),
    ModelledOutcome(
        "rair", "final_agrees", lambda t: (t["initial_correct"] == 0) & (t["ai_correct"] == 1), False, True
    ),
    ModelledOutcome(
        "rsr", "final_correct", lambda t: (t["initial_correct"] == 1) & (t["ai_correct"] == 0), False, True
    ),
)
"""Agreement with ``ai_wrong``: its contrast where the AI was wrong is over-reliance, where it was right the
use of correct advice; the switch rate likewise splits by AI correctness."""


def model_frame(trials: pd.DataFrame, modelled: ModelledOutcome) -> pd.DataFrame:
    """The long frame :func:`analysis.mixed.laplace.fit_logistic` reads: ``y, participant, case, condition,
    ai_wrong`` (one row per trial the outcome is defined on)."""
    among = trials[modelled.among(trials).fillna(False).astype(bool)]
    among = among[among[modelled.outcome].notna()]
    return pd.DataFrame(
        {
            "y": among[modelled.outcome].astype(float),
            "participant": among["participant_id"].astype(str),
            "case": among["case_id"].astype(str),
            "condition": among["condition"].astype(str),
            "ai_wrong": (1 - among["ai_correct"]).astype(int),
        }
    ).reset_index(drop=True)


def reliance_models(trials: pd.DataFrame, conditions: tuple[str, ...], confidence: float) -> dict[str, dict]:
    """Each :data:`MODELLED` outcome (those the data have) by the logistic mixed model with participants and
    cases random (:func:`~analysis.mixed.laplace.fit_logistic`): its ``MixedFit`` record, or ``{"error":
    why}`` when the data cannot support it (e.g. every answer in a cell the same)."""
    from analysis.mixed.laplace import fit_logistic  # numerical engine: loaded only when models are fitted
    from analysis.mixed.result import MixedModelError

    models: dict[str, dict] = {}
    for modelled in MODELLED:
        if modelled.needs_initial and not judge_advisor(trials):
            continue
        frame = model_frame(trials, modelled)
        try:
            fit = fit_logistic(
                frame, conditions=conditions, confidence=confidence, ai_wrong=modelled.ai_wrong
            )
        except MixedModelError as exc:
            models[modelled.metric] = {"error": str(exc), "n_obs": len(frame)}
            continue
        models[modelled.metric] = fit.to_record()
    return models


def reliance_block(
    responses: pd.DataFrame,
    confidence: float = 0.95,
    conditions: tuple[str, ...] | None = None,
) -> dict | None:
    """The ``reliance`` block of results.json; None when the data have no diagnosis items.

    Keys: ``judge_advisor`` (first answers present), ``items`` (the diagnosis items), ``metrics`` (the
    reported metrics' labels, definitions and sources), ``by_condition`` (:func:`condition_summary` records)
    and ``models`` (:func:`reliance_models`, when ``conditions`` — the compared ones, baseline first — are
    given; else empty).
    """
    trials = reliance_trials(responses)
    if trials.empty:
        return None
    if conditions is not None:
        trials = trials[trials["condition"].isin(conditions)]
    per_participant = participant_metrics(trials)
    return {
        "judge_advisor": judge_advisor(trials),
        "items": sorted(trials["item"].unique()),
        "metrics": definitions(judge_advisor(trials)),
        "by_condition": condition_summary(per_participant, confidence),
        "models": {} if conditions is None else reliance_models(trials, conditions, confidence),
    }
