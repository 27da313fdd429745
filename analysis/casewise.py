"""Per-case items through the crossed mixed models: the long frames, the fits and their ``results.json`` blocks.

A per-case item is asked on every case, so each answer belongs to a participant *and* a case, both samples of
what a claim is about. The primary analysis of such a construct is the crossed linear mixed model
(:func:`analysis.mixed.linear.fit_linear`) on one row per participant × case — the construct's per-case
answers of that trial, averaged — with the cumulative link mixed model on the item answers as its ordinal
companion (:func:`analysis.mixed.laplace.fit_ordinal`). The participant-mean tests of :mod:`analysis.compare`
stay as secondary analyses; items asked once per participant (post-block, instruments) keep them as primary.

A model the data cannot support (one case, one participant per arm, a failed fit) raises
:class:`~analysis.mixed.MixedModelError`; its block is then ``{"skipped": reason}`` and the report says so —
never a crash, never a silent fallback to the participant-mean test.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.compare import holm
from analysis.mixed import MixedFit, MixedModelError
from analysis.mixed.laplace import fit_ordinal
from analysis.mixed.linear import fit_linear
from analysis.scores import scored_rows
from formats.planning import random_effects_text


def component_sd(sds: dict[str, float], name: str) -> float | None:
    """A variance component's SD by name; with k > 2 conditions a slope has one SD per level
    (``case:condition[level]``): the largest of them, the one that matters most for the comparisons."""
    if name in sds:
        return sds[name]
    levels = [sd for key, sd in sds.items() if key.startswith(f"{name}[")]
    return max(levels) if levels else None


def per_case_rows(responses: pd.DataFrame, construct: str, conditions: Sequence[str]) -> pd.DataFrame:
    """Scored answers of ``construct``'s per-case items (every row of the item has a case) under the compared
    ``conditions``; empty when the construct has none."""
    rows = scored_rows(responses)
    rows = rows[(rows["construct"] == construct) & rows["condition"].isin(list(conditions))]
    if "case_id" not in rows.columns or rows.empty:
        return rows.iloc[:0]
    has_case = rows["case_id"].fillna("").astype(str) != ""
    per_case_items = has_case.groupby(rows["item"]).all()
    return rows[rows["item"].isin(per_case_items[per_case_items].index) & has_case]


def trial_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per participant × case: ``y`` (the mean of the construct's per-case answers of that trial),
    ``participant``, ``case``, ``condition`` and ``position`` (1-based order of the participant's trials, by
    step key — ``p1.t01`` < ``p1.t02`` < ``p2.t01`` — or by case when the export has no steps)."""
    order = "step" if "step" in rows.columns and (rows["step"].fillna("") != "").all() else "case_id"
    trials = (
        rows.groupby(["participant_id", "case_id", "condition"], sort=True, observed=True)
        .agg(y=("value", "mean"), order=(order, "first"))
        .reset_index()
    )
    trials["position"] = trials.groupby("participant_id")["order"].rank(method="first").astype(int)
    return trials.rename(columns={"participant_id": "participant", "case_id": "case"})[
        ["y", "participant", "case", "condition", "position"]
    ]


def item_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per answer for the ordinal companion: ``y`` (the answered scale point after reverse keying),
    ``participant``, ``case``, ``condition``."""
    return pd.DataFrame(
        {
            "y": rows["value"].to_numpy(),
            "participant": rows["participant_id"].to_numpy(),
            "case": rows["case_id"].to_numpy(),
            "condition": rows["condition"].to_numpy(),
        }
    )


def _pairwise(fit: MixedFit, conditions: Sequence[str]) -> dict[str, list[dict]]:
    """The fit's contrasts as the two families of the participant-mean analysis (vs the baseline, all pairs),
    each Holm-adjusted within its family."""
    records = []
    for name, term in fit.contrasts.items():
        b, _, a = name.partition(" - ")
        records.append({"a": a, "b": b, **_term_record(term)})
    families = {
        "vs_baseline": [r for r in records if r["a"] == conditions[0]],
        "all_pairs": records,
    }
    out = {}
    for family, members in families.items():
        adjusted = holm([r["p"] for r in members])
        out[family] = [{**r, "p_holm": p} for r, p in zip(members, adjusted, strict=True)]
    return out


def _term_record(term) -> dict:
    return {
        "estimate": term.estimate,
        "se": term.se,
        "df": term.df,
        "statistic": term.statistic,
        "p": term.p,
        "ci": list(term.ci),
    }


def primary_term(fit: MixedFit, conditions: Sequence[str]):
    """The contrast of the second condition with the baseline (the two-arm comparison)."""
    return fit.contrasts[f"{conditions[1]} - {conditions[0]}"]


def linear_block(
    rows: pd.DataFrame,
    *,
    design: str,
    conditions: Sequence[str],
    confidence: float,
    backend: str,
    position: bool,
) -> dict:
    """``constructs.<name>.mixed``: the fit as :meth:`MixedFit.to_record` gives it, plus the primary
    comparison's ``estimate, se, df, statistic, p, ci`` at the top (two arms: the second condition − the
    baseline; k arms: ``omnibus`` and ``pairwise`` families), ``random`` (what was treated as random, in
    words) and ``analysis_unit``; or ``{"skipped": reason}``."""
    try:
        fit = fit_linear(
            trial_frame(rows),
            design=design,
            conditions=conditions,
            confidence=confidence,
            backend=backend,
            position=position,
        )
    except MixedModelError as error:
        return {"skipped": str(error)}
    block = {
        "analysis_unit": "participant × case (mean of the construct's per-case answers of the trial)",
        "random": random_effects_text(design),
        **fit.to_record(),
    }
    if len(conditions) == 2:
        block.update({"a": conditions[0], "b": conditions[1], **_term_record(primary_term(fit, conditions))})
    else:
        block["pairwise"] = _pairwise(fit, conditions)
    return block


def ordinal_block(rows: pd.DataFrame, *, conditions: Sequence[str], confidence: float) -> dict:
    """``constructs.<name>.ordinal_mixed``: the cumulative link mixed model on the per-case item answers, or
    ``{"skipped": reason}``."""
    try:
        fit = fit_ordinal(item_frame(rows), conditions=conditions, confidence=confidence)
    except MixedModelError as error:
        return {"skipped": str(error)}
    block = fit.to_record()
    if len(conditions) == 2:
        block.update(_term_record(primary_term(fit, conditions)))
    return block


def primary_test(block: dict, tests: dict | None) -> dict | None:
    """The record holding a construct's primary p: the mixed model's comparison (k arms: its omnibus) when
    the construct has per-case items and the model was fitted, else the participant-mean parametric test."""
    mixed = block.get("mixed")
    if mixed and "skipped" not in mixed:
        return mixed if "p" in mixed else mixed.get("omnibus")
    return None if tests is None else tests["parametric"]


def pair_contrast(mixed: dict, first: str, second: str) -> tuple[dict, float] | None:
    """The mixed model's contrast of ``first`` with ``second`` and the sign that makes it first − second
    (contrasts are stored as b − a in the conditions' order); None when the model compares neither."""
    for record in mixed.get("pairwise", {}).get("all_pairs", [mixed]):
        if (record.get("b"), record.get("a")) == (first, second):
            return record, 1.0
        if (record.get("a"), record.get("b")) == (first, second):
            return record, -1.0
    return None
