"""Exclusions, reverse coding, construct scores and descriptives.

Construct score = mean of a participant's (reverse-coded) item answers in one condition, over all items and
cases of that construct; attention-check items never count towards a construct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.load import AnalysisInputError
from formats.contract import construct_order
from formats.status import allocated, completed


def participant_flow(participants: pd.DataFrame, analysed_ids: set[str]) -> pd.DataFrame:
    """CONSORT-style flow: enrolled → allocated → completed → excluded (one row per reason) → analysed.

    Columns: ``stage`` (``enrolled``, ``allocated``, ``completed``, ``excluded``, ``excluded: <reason>``,
    ``analysed``), ``n``. A participant excluded for two reasons counts once in ``excluded`` and once under
    each reason.
    """
    n_enrolled = len(participants)
    excluded = participants["excluded"] == 1
    rows = [
        ("enrolled", n_enrolled),
        ("allocated", int(allocated(participants).sum())),
        ("completed", int(completed(participants).sum())),
        ("excluded", int(excluded.sum())),
    ]
    if "exclusion_reasons" in participants.columns:
        reasons = participants.loc[excluded, "exclusion_reasons"].str.split(";").explode().str.strip()
        for reason, n in reasons[reasons != ""].value_counts().sort_index().items():
            rows.append((f"excluded: {reason}", int(n)))
    rows.append(("analysed", len(analysed_ids)))
    return pd.DataFrame(rows, columns=["stage", "n"])


def apply_exclusions(
    responses: pd.DataFrame, participants: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Drop participants the protocol excluded; return ``(kept responses, flow table or None)``."""
    if participants is None:
        return responses, None
    excluded_ids = set(participants.loc[participants["excluded"] == 1, "participant_id"])
    kept = responses[~responses["participant_id"].isin(excluded_ids)]
    analysed = set(kept.loc[kept["condition"] != "", "participant_id"])
    return kept.reset_index(drop=True), participant_flow(participants, analysed)


def scale_bounds(
    responses: pd.DataFrame, scale_min: float | None = None, scale_max: float | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Fill per-row ``scale_min``/``scale_max`` from the export, else the flags, else each item's data range.

    Returns the frame with both columns set on scored rows, and warnings for inferred ranges.
    """
    notes: list[str] = []
    frame = responses.copy()
    for column, flag in (("scale_min", scale_min), ("scale_max", scale_max)):
        if column not in frame.columns:
            frame[column] = np.nan
        if flag is not None:
            frame[column] = frame[column].fillna(flag)
    scored = frame["construct"] != ""
    missing = scored & (frame["scale_min"].isna() | frame["scale_max"].isna())
    if missing.any():
        items = sorted(frame.loc[missing, "item"].unique())
        by_item = frame[scored].groupby("item")["value"]
        frame.loc[missing, "scale_min"] = frame.loc[missing, "scale_min"].fillna(
            frame.loc[missing, "item"].map(by_item.min())
        )
        frame.loc[missing, "scale_max"] = frame.loc[missing, "scale_max"].fillna(
            frame.loc[missing, "item"].map(by_item.max())
        )
        notes.append(
            f"scale range not given for item(s) {', '.join(items)}:"
            " inferred from the observed data range; pass --scale-min/--scale-max to fix it"
        )
    return frame, notes


def reverse_code(responses: pd.DataFrame) -> pd.DataFrame:
    """Reverse raw answers of reverse-coded items: ``scale_min + scale_max − value``."""
    if "reverse_coded" not in responses.columns:
        return responses
    frame = responses.copy()
    rev = (frame["reverse_coded"] == 1) & (frame["construct"] != "")
    if rev.any() and (frame.loc[rev, "scale_min"].isna() | frame.loc[rev, "scale_max"].isna()).any():
        raise AnalysisInputError(
            "reverse-coded items need scale_min/scale_max (columns or --scale-min/--scale-max)"
        )
    frame.loc[rev, "value"] = (
        frame.loc[rev, "scale_min"] + frame.loc[rev, "scale_max"] - frame.loc[rev, "value"]
    )
    return frame


def scored_rows(responses: pd.DataFrame) -> pd.DataFrame:
    """Rows that enter construct statistics: a construct, a compared condition, no attention check."""
    keep = (responses["construct"] != "") & (responses["condition"] != "")
    if "attention_check" in responses.columns:
        keep &= responses["attention_check"].fillna(0) != 1
    return responses[keep]


def construct_scores(responses: pd.DataFrame) -> pd.DataFrame:
    """Mean item answer per participant × condition × construct.

    Columns: ``participant_id, condition, construct, score, n_answers`` and, when the export has them,
    ``period`` (the participant's period of that condition) and ``arm``.
    """
    rows = scored_rows(responses)
    keys = ["participant_id", "condition", "construct"]
    grouped = rows.groupby(keys, sort=True, observed=True)
    scores = grouped["value"].agg(score="mean", n_answers="count").reset_index()
    for column in ("period", "arm"):
        if column in rows.columns:
            scores[column] = grouped[column].first().to_numpy()
    return scores


def item_matrix(responses: pd.DataFrame, construct: str) -> pd.DataFrame:
    """Wide matrix for reliability: a row per participant × condition, a column per item (mean over cases)."""
    rows = scored_rows(responses)
    rows = rows[rows["construct"] == construct]
    return rows.pivot_table(
        index=["participant_id", "condition"], columns="item", values="value", aggfunc="mean", observed=True
    )


def descriptives(scores: pd.DataFrame) -> pd.DataFrame:
    """Per construct × condition: ``n, mean, sd, median, q1, q3, iqr`` of construct scores (ddof=1)."""
    grouped = scores.groupby(["construct", "condition"], observed=True)["score"]
    table = grouped.agg(n="count", mean="mean", sd="std", median="median")
    table["q1"] = grouped.quantile(0.25)
    table["q3"] = grouped.quantile(0.75)
    table["iqr"] = table["q3"] - table["q1"]
    return table.reset_index()


def construct_ranges(responses: pd.DataFrame) -> pd.DataFrame:
    """Scale range of each construct (smallest ``scale_min``, largest ``scale_max`` of its items)."""
    rows = scored_rows(responses)
    return rows.groupby("construct").agg(
        scale_min=("scale_min", "min"), scale_max=("scale_max", "max"), n_items=("item", "nunique")
    )


def confirmatory_constructs(responses: pd.DataFrame, requested: list[str] | None) -> list[str]:
    """The confirmatory family: ``requested`` or every construct except derived 0/1 ones."""
    available = sorted(scored_rows(responses)["construct"].unique())
    if requested is None:
        return construct_order(available)
    unknown = [c for c in requested if c not in available]
    if unknown:
        raise AnalysisInputError(f"--constructs: {unknown} not in the data (constructs: {available})")
    return list(requested)


@dataclass(frozen=True)
class ConditionScores:
    """One construct's scores under the compared conditions (baseline first), as its tests take them.

    Within designs: ``complete``, one row per participant with every condition, one column per condition
    (``dropped``: participants left out for lacking one); between designs: ``groups``, each condition's scores.
    """

    conditions: tuple[str, ...]
    complete: pd.DataFrame | None = None
    groups: dict[str, np.ndarray] | None = None
    dropped: int = 0

    def sample(self, condition: str) -> np.ndarray:
        """The scores of ``condition`` (within: paired row by row with every other condition's)."""
        if self.complete is not None:
            return self.complete[condition].to_numpy()
        return self.groups[condition]

    @property
    def sizes(self) -> dict[str, int]:
        return {c: len(self.sample(c)) for c in self.conditions}


def condition_scores(
    scores: pd.DataFrame, construct: str, conditions: tuple[str, ...], design: str
) -> ConditionScores:
    """``construct``'s scores per condition: complete cases (within) or independent groups (between)."""
    sub = scores[scores["construct"] == construct]
    if design == "within":
        wide = sub.pivot(index="participant_id", columns="condition", values="score").reindex(
            columns=list(conditions)
        )
        complete = wide.dropna()
        return ConditionScores(conditions, complete=complete, dropped=len(wide) - len(complete))
    groups = {c: sub.loc[sub["condition"] == c, "score"].to_numpy() for c in conditions}
    return ConditionScores(conditions, groups=groups)
