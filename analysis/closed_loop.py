"""Do the dermatologists agree with the automatic check? Expert relevance ratings against the closed loop.

``skingen bundle build --evaluate`` stores, for every reference image, whether a diagnoser recognised the
condition the image was made for (the closed loop); the export carries it beside each rating
(``closed_loop_correct``). Here every rating of the protocol's ``rating.relevance_item`` is one pair (expert
says relevant / not, closed loop says correct / wrong), so several raters per image need no majority rule
and ties cannot happen. Raters of one image are not independent, so every interval comes from a bootstrap
over images (the ratings of a drawn image travel together).

Cohen's κ of a 2×2 table is written here (a few lines of arithmetic, vectorised over bootstrap replicates);
the tests check it against statsmodels' ``cohens_kappa``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.agreement import positive_mask, wilson_interval
from analysis.apa import ci_label
from analysis.bootstrap import percentile_interval

# Per image: ratings in each cell of (expert relevant?, closed loop correct?), in this column order.
CELLS = ("relevant_correct", "relevant_wrong", "not_relevant_correct", "not_relevant_wrong")


def kappa_2x2(tables: np.ndarray) -> np.ndarray:
    """Cohen's κ of 2×2 tables given as rows of :data:`CELLS` counts (one table per row); NaN if undefined."""
    tables = np.atleast_2d(np.asarray(tables, dtype=float))
    a, b, c, d = tables.T  # a: both positive, d: both negative
    n = tables.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (a + d) / n
        expected = ((a + b) * (a + c) + (c + d) * (b + d)) / n**2
        return (observed - expected) / (1 - expected)


def _statistics(tables: np.ndarray) -> dict[str, np.ndarray]:
    """Agreement, κ and the relevant share under each closed-loop verdict, for each table (row)."""
    a, b, c, d = np.atleast_2d(tables).T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if_correct, if_wrong = a / (a + c), b / (b + d)
        return {
            "agreement": (a + d) / (a + b + c + d),
            "kappa": kappa_2x2(np.column_stack([a, b, c, d])),
            "relevant_if_correct": if_correct,
            "relevant_if_wrong": if_wrong,
            "difference": if_correct - if_wrong,
        }


def image_cells(ratings: pd.DataFrame, item: str, threshold: float | None = None) -> tuple[pd.DataFrame, str]:
    """Per image with a closed-loop check: its ratings of ``item`` counted into :data:`CELLS` → (frame, rule).

    The frame is indexed by ``image_id`` with a ``skin_condition`` column; ``rule`` says which answers count
    as relevant (yes for a yes/no item, the top two scale points of a Likert item, as for the other items).
    """
    rows = ratings[(ratings["item"] == item) & ratings["closed_loop_correct"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["skin_condition", *CELLS]), ""
    scale_max = float(rows["scale_max"].max()) if "scale_max" in rows.columns else None
    relevant, _, rule = positive_mask(rows["value"], threshold, scale_max)
    correct = rows["closed_loop_correct"] == 1
    cells = pd.DataFrame(
        {
            "image_id": rows["image_id"],
            "skin_condition": rows.get("skin_condition", ""),
            "relevant_correct": relevant & correct,
            "relevant_wrong": relevant & ~correct,
            "not_relevant_correct": ~relevant & correct,
            "not_relevant_wrong": ~relevant & ~correct,
        }
    )
    counts = cells.groupby("image_id").agg({"skin_condition": "first", **dict.fromkeys(CELLS, "sum")})
    return counts.astype({cell: int for cell in CELLS}), rule


def closed_loop_agreement(
    ratings: pd.DataFrame,
    item: str,
    *,
    threshold: float | None = None,
    n_boot: int = 1000,
    rng: np.random.Generator | None = None,
    confidence: float = 0.95,
) -> dict:
    """The experts' ratings of ``item`` against each image's closed-loop check.

    Returns ``item``, ``relevant_rule``, ``n_images``, ``n_ratings``, ``table`` (ratings per cell of
    :data:`CELLS`), ``agreement`` (share of ratings agreeing with the check), ``kappa`` (Cohen's κ, expert vs
    check), ``relevant_if_correct`` / ``relevant_if_wrong`` (share of ratings calling the image relevant when
    the check passed / failed) and ``difference`` between them, each with ``<key>_ci`` (percentile bootstrap
    over images, :func:`analysis.bootstrap.percentile_interval`), ``by_skin_condition`` {condition:
    n_images, agreement, agreement_ci (Wilson)}, and ``text``: the finding in one sentence. Without ratings of
    checked images: ``{"item", "skipped": reason}``.
    """
    if not (ratings["item"] == item).any():
        return {"item": item, "skipped": f"no ratings of the relevance item {item!r}"}
    cells, rule = image_cells(ratings, item, threshold)
    if cells.empty:
        return {
            "item": item,
            "skipped": "no ratings of images with a closed-loop check (build the bundle with "
            "`skingen bundle build --evaluate`)",
        }
    rng = rng or np.random.default_rng(0)
    counts = cells[list(CELLS)].to_numpy()
    table = counts.sum(axis=0)
    record: dict = {
        "item": item,
        "relevant_rule": rule,
        "n_images": len(cells),
        "n_ratings": int(table.sum()),
        "table": dict(zip(CELLS, map(int, table), strict=True)),
        "confidence": confidence,
    }
    point = _statistics(table)
    draws = (
        _statistics(counts[rng.integers(0, len(counts), (n_boot, len(counts)))].sum(axis=1)) if n_boot else {}
    )
    for key, value in point.items():
        record[key] = _finite(value[0])
        record[f"{key}_ci"] = percentile_interval(draws[key] if n_boot else np.empty(0), n_boot, confidence)
    record["by_skin_condition"] = {
        str(condition): _condition_record(group[list(CELLS)].to_numpy().sum(axis=0), len(group), confidence)
        for condition, group in cells.groupby("skin_condition", sort=True)
        if condition != ""
    }
    record["text"] = _sentence(record)
    return record


def _condition_record(table: np.ndarray, n_images: int, confidence: float) -> dict:
    agree, n = int(table[0] + table[3]), int(table.sum())
    return {
        "n_images": n_images,
        "n_ratings": n,
        "agreement": agree / n,
        "agreement_ci": wilson_interval(agree, n, confidence),
    }


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else math.nan


def _interval(record: dict, key: str, digits: int = 2) -> str:
    low, high = record[f"{key}_ci"]
    if math.isnan(low):
        return ""
    return f" ({ci_label(record['confidence'])} {low:.{digits}f} to {high:.{digits}f})"


def _sentence(record: dict) -> str:
    """The finding in words, with the intervals."""
    kappa = record["kappa"]
    kappa_text = (
        "κ undefined (one answer only)"
        if math.isnan(kappa)
        else f"Cohen's κ = {kappa:.2f}{_interval(record, 'kappa')}"
    )
    shares = []
    for key, verdict in (("relevant_if_correct", "passed"), ("relevant_if_wrong", "failed")):
        value = record[key]
        if not math.isnan(value):
            shares.append(f"{value:.0%} of ratings called an image relevant when the check {verdict}")
    return (
        f"Experts ({record['n_ratings']} ratings of {record['n_images']} images) agreed with the closed-loop "
        f"check on {record['agreement']:.0%}{_interval(record, 'agreement')} of ratings; {kappa_text}"
        + (f"; {' and '.join(shares)}." if shares else ".")
    )
