"""Checks of a mixed model's input frame, before any maths: each problem named so a researcher can act on it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.mixed.result import MixedModelError

DESIGNS = ("within", "between")


def _rows(index: pd.Index) -> str:
    shown = ", ".join(str(i) for i in index[:5])
    return shown + (f" and {len(index) - 5} more" if len(index) > 5 else "")


def check_frame(
    frame: pd.DataFrame,
    *,
    design: str,
    conditions: Sequence[str],
    position: bool = False,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """The frame reduced to the model's columns (``condition`` as str, ``participant``/``case`` as str), or
    :class:`MixedModelError` naming the column, rows or levels at fault.

    ``extra``: further numeric columns the model needs (``ai_wrong``)."""
    if design not in DESIGNS:
        raise MixedModelError(f"design must be one of {DESIGNS}, got {design!r}")
    conditions = [str(c) for c in conditions]
    if len(conditions) < 2 or len(set(conditions)) != len(conditions):
        raise MixedModelError(f"conditions must name at least two distinct conditions, got {conditions}")
    numeric = ["y", *(["position"] if position else []), *extra]
    needed = ["participant", "case", "condition", *numeric]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MixedModelError(f"the frame lacks column(s) {missing}; it has {list(frame.columns)}")
    data = frame[needed].copy()
    for column in needed:
        if column in numeric:
            data[column] = pd.to_numeric(data[column], errors="coerce")
        bad = data.index[data[column].isna() | (~np.isfinite(data[column]) if column in numeric else False)]
        if len(bad):
            raise MixedModelError(f"column {column!r} has missing or non-numeric values in rows {_rows(bad)}")
    for column in ("participant", "case", "condition"):
        data[column] = data[column].astype(str)
    unknown = sorted(set(data["condition"]) - set(conditions))
    if unknown:
        raise MixedModelError(f"condition values {unknown} are not among the conditions {conditions}")
    counts = data.groupby("participant")["condition"].nunique()
    per_arm = data.groupby("condition")["participant"].nunique().reindex(conditions, fill_value=0)
    absent = [c for c in conditions if per_arm[c] == 0]
    if absent:
        raise MixedModelError(f"condition(s) {absent} have no observations; every condition needs data")
    n_cases = data["case"].nunique()
    if n_cases < 2:
        raise MixedModelError(
            "the mixed model needs at least two cases to treat cases as a random sample (one case was "
            "judged); with one case the effect cannot be generalised beyond it — report the participant-level test"
        )
    if design == "between":
        crossed = counts[counts > 1]
        if len(crossed):
            raise MixedModelError(
                f"design 'between' but participant(s) {_rows(crossed.index)} answered in several conditions"
            )
        thin = [c for c in conditions if per_arm[c] < 2]
        if thin:
            raise MixedModelError(
                f"condition(s) {thin} have a single participant; a between design needs at least two per arm"
            )
    else:
        if len(counts) < 2:
            raise MixedModelError("a within design needs at least two participants, got one")
        if (counts < 2).all():
            raise MixedModelError(
                "design 'within' but no participant answered in two conditions; is the design 'between'?"
            )
    if data["y"].nunique() < 2:
        raise MixedModelError(f"y has no variation (every value is {data['y'].iloc[0]}); nothing to model")
    return data.reset_index(drop=True)
