"""Published instruments scored by their own rule, their internal consistency, and published norms.

The export's ``instruments`` table carries each included instrument's rule (study/instruments/*.yaml):
score = multiplier × aggregate(keyed answer + offset) over its items, keyed answers being the reverse-coded
values :func:`analysis.scores.reverse_code` produces. A ``sum`` over fewer answered (or kept) items than
published is prorated to the published item count; more than ``max_missing`` unanswered items leave the score
missing. An item asked on every case (trial block) enters as its mean over the cases, as in construct scores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from statistics import NormalDist

import pandas as pd

from analysis.reliability import cronbach_alpha
from analysis.scores import descriptives, scored_rows


def _item_matrix(responses: pd.DataFrame, items: list[str]) -> pd.DataFrame:
    """Participant × condition rows, one column per item (keyed answers, mean over cases), in item order."""
    rows = scored_rows(responses)
    rows = rows[rows["item"].isin(items)]
    wide = rows.pivot_table(
        index=["participant_id", "condition"], columns="item", values="value", aggfunc="mean", observed=True
    )
    return wide.reindex(columns=[i for i in items if i in wide.columns])


def score(matrix: pd.DataFrame, rule: Mapping, n_items: int | None = None) -> pd.DataFrame:
    """Scores of ``matrix`` (keyed answers) by ``rule`` (a row of the instruments table).

    ``n_items``: the published item count a ``sum`` is prorated to (default: the matrix' columns). Columns:
    ``score`` (NaN when more than ``max_missing`` items are unanswered), ``n_answered``.
    """
    answered = matrix.notna().sum(axis=1)
    keyed = matrix + float(rule["offset"])
    if rule["aggregate"] == "mean":
        total = keyed.mean(axis=1)
    else:
        total = keyed.sum(axis=1, min_count=1) * (n_items or matrix.shape[1]) / answered
    scores = float(rule["multiplier"]) * total
    enough = answered >= matrix.shape[1] - int(rule["max_missing"])
    return pd.DataFrame({"score": scores.where(enough), "n_answered": answered})


def _descriptives(scores: pd.DataFrame) -> dict:
    frame = scores.dropna(subset=["score"]).reset_index().assign(construct="")
    if frame.empty:
        return {}
    table = descriptives(frame)
    return {
        str(row["condition"]): {
            k: float(row[k]) if k != "n" else int(row[k]) for k in ("n", "mean", "sd", "median")
        }
        for _, row in table.iterrows()
    }


def place_in_norms(value: float, norms: dict) -> dict:
    """Where a score lies against published norms: its grade (the first band whose minimum it reaches), the
    adjective with the nearest mean, and the percentile under a normal distribution with the norms' mean/SD."""
    grade = next(g["grade"] for g in norms["grades"] if value >= g["min"])
    adjectives = norms.get("adjectives") or []
    adjective = min(adjectives, key=lambda a: abs(a["mean"] - value))["label"] if adjectives else None
    percentile = 100 * NormalDist(norms["mean"], norms["sd"]).cdf(value)
    return {"score": value, "grade": grade, "adjective": adjective, "percentile": percentile}


def _subscales(text: str) -> dict[str, list[str]]:
    """'name=a,b;other=c' → {'name': ['a', 'b'], 'other': ['c']}."""
    out = {}
    for part in filter(None, text.split(";")):
        name, _, items = part.partition("=")
        out[name] = [i for i in items.split(",") if i]
    return out


def instrument_block(responses: pd.DataFrame, rule: Mapping, confidence: float) -> dict:
    """Scores per condition by the published rule, α, subscales and (SUS) placement against the norms."""
    items = [i for i in rule["items"].split(";") if i]
    matrix = _item_matrix(responses, items)
    block: dict = {
        "instrument": rule["instrument"],
        "name": rule.get("name", ""),
        "citation": rule.get("citation", ""),
        "licence": rule.get("licence", ""),
        "adapted": bool(rule.get("adapted", 0) == 1),
        "adaptation": rule.get("adaptation", ""),
        "scoring_rule": rule.get("scoring_rule", ""),
        "missing_rule": rule.get("missing_rule", ""),
        "n_items": len(items),
        "n_items_published": int(rule["n_items"]),
        "range": [rule.get("score_min"), rule.get("score_max")],
        "descriptives": {},
        "not_scored": 0,
        "alpha": None,
        "subscales": {},
        "norms": None,
    }
    if matrix.empty:
        block["skipped"] = "no answers to its items"
        return block
    scores = score(matrix, rule, int(rule["n_items"]))
    block["descriptives"] = _descriptives(scores)
    block["not_scored"] = int(scores["score"].isna().sum())
    # rows are participant × condition, not independent in within designs: the CI is optimistic there
    block["alpha"] = cronbach_alpha(matrix, confidence)
    if rule["aggregate"] == "mean":  # a subscale of a summed score has no published scaling
        for name, sub_items in _subscales(rule.get("subscales", "")).items():
            columns = [i for i in sub_items if i in matrix.columns]
            sub = score(matrix[columns], {**rule, "max_missing": len(columns) - 1})
            block["subscales"][name] = {
                "items": columns,
                "descriptives": _descriptives(sub),
                "alpha": cronbach_alpha(matrix[columns], confidence),
            }
    if rule.get("norms"):
        norms = json.loads(rule["norms"])
        block["norms"] = {
            "source": norms["source"],
            "grades_source": norms["grades_source"],
            "adjectives_source": norms.get("adjectives_source", ""),
            "by_condition": {
                condition: place_in_norms(d["mean"], norms) for condition, d in block["descriptives"].items()
            },
        }
    return block


def instrument_blocks(responses: pd.DataFrame, table: pd.DataFrame, confidence: float) -> dict[str, dict]:
    """One block per included instrument, keyed by its construct (the protocol's item prefix)."""
    return {
        str(rule["construct"]): instrument_block(responses, rule, confidence) for _, rule in table.iterrows()
    }
