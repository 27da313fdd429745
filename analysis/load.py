"""Read the study export (its CSV files, or the frames of a database export) and validate it before any
statistics run.

The input is the export contract (:mod:`study.contract`): :func:`from_export` turns the export's frames
(``responses``, ``participants``, ``ratings``, ``study``) into a :class:`StudyData`, whether they were read
from an export folder (:func:`load_export`), from single CSV files (:func:`load_csv`) or exported straight from
the database (:func:`analysis.sources.load_db`, the app's Analysis page). Condition ids and the design come
from the export's ``study`` table unless the caller names them.

Every problem with the input raises one :class:`AnalysisInputError` whose message names the file, the column
and an offending value, so a researcher can fix the data without reading a traceback.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from study import contract

DESIGNS = ("within", "between")
EXPORT_TABLES = ("responses", "participants", "ratings", "study", "interactions")
"""The export tables the analysis reads (``<name>.csv`` in an export folder)."""


def _required(columns: tuple[str, ...], names: tuple[str, ...]) -> tuple[str, ...]:
    """The analysis' required subset of a contract table's columns (a typo fails at import, not on data)."""
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise RuntimeError(f"columns {unknown} are not in the export contract")
    return names


RESPONSE_COLUMNS = _required(
    contract.RESPONSE_COLUMNS, ("participant_id", "condition", "item", "construct", "value")
)
RATING_COLUMNS = _required(contract.RATING_COLUMNS, ("rater_id", "image_id", "item", "value"))
PARTICIPANT_COLUMNS = _required(contract.PARTICIPANT_COLUMNS, ("participant_id", "excluded"))
INTERACTION_COLUMNS = _required(
    contract.INTERACTION_COLUMNS, ("participant_id", "condition", "kind", "mapped_condition", "latency_ms")
)
NUMERIC_RESPONSE_COLUMNS = _required(
    contract.RESPONSE_COLUMNS,
    ("period", "reverse_coded", "scale_min", "scale_max", "attention_check", "ai_correct", "rt_ms"),
)
NO_BASELINE = "no baseline condition: pass --baseline NAME, or --export DIR (its study.csv names it)"


CSV_ENGINE = "pyarrow" if importlib.util.find_spec("pyarrow") else "c"  # same result, pyarrow ~3x faster


class AnalysisInputError(ValueError):
    """The input data or options cannot be analysed; the message says what to fix."""


@dataclass(frozen=True)
class StudyData:
    """Validated input: long responses, optional participants and expert ratings, and the design.

    ``responses`` keeps only rows of the two compared conditions plus rows without a condition; its ``value``
    column is float (NaN for free text / rows without a construct).
    """

    responses: pd.DataFrame | None
    participants: pd.DataFrame | None
    ratings: pd.DataFrame | None
    design: str
    baseline: str
    visual: str
    warnings: tuple[str, ...] = ()
    interactions: pd.DataFrame | None = None  # turns with the live model (interactive conditions)


def read_csv(path: str | Path, what: str) -> pd.DataFrame:
    """Read an export CSV as strings (empty cells become ''), so validation sees exactly what was written."""
    path = Path(path)
    if not path.is_file():
        raise AnalysisInputError(f"{what}: file not found: {path}")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], engine=CSV_ENGINE)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise AnalysisInputError(f"{what}: cannot parse {path}: {exc}") from None


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnalysisInputError(
            f"{what}: missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(map(repr, frame.columns))}"
        )


def _to_numeric(frame: pd.DataFrame, column: str, mask: pd.Series, what: str) -> pd.Series:
    """Convert ``column`` to float; every row selected by ``mask`` must hold a finite number.

    ``frame`` is indexed by data row − 1 (the validators reset the index), which error messages report.
    """
    raw = frame[column].astype(str).str.strip()
    try:  # fast path: every non-empty cell parses
        numbers = raw.replace("", np.nan).astype(float)
    except (TypeError, ValueError):
        numbers = pd.to_numeric(raw.where(raw != "", None), errors="coerce").astype(float)
    numbers = numbers.where(np.isfinite(numbers))
    bad = mask & numbers.isna()
    if bad.any():
        first = bad[bad].index[0]
        label = f" (item {frame.at[first, 'item']!r})" if "item" in frame.columns else ""
        raise AnalysisInputError(
            f"{what}: column {column!r} must be numeric; {int(bad.sum())} row(s) are not, first at data row "
            f"{first + 1}{label}: {frame.at[first, column]!r}"
        )
    return numbers


def _clean_text(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column in frame.columns:
            frame[column] = frame[column].astype(str).str.strip()


def validate_responses(raw: pd.DataFrame, what: str = "responses") -> pd.DataFrame:
    """Check columns and numeric values of the long responses frame and return a typed copy.

    Rows with a non-empty ``construct`` must hold a numeric ``value``; other rows (free text, diagnosis ids)
    keep ``value`` as NaN and are ignored by the statistics.
    """
    _require_columns(raw, RESPONSE_COLUMNS, what)
    frame = raw.reset_index(drop=True)  # index = data row - 1, for error messages
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].fillna("")
    _clean_text(frame, ("participant_id", "condition", "item", "construct", "case_id", "arm", "sequence"))
    scored = frame["construct"] != ""
    if (scored & (frame["participant_id"] == "")).any():
        raise AnalysisInputError(f"{what}: column 'participant_id' is empty in rows that have a construct")
    values = pd.Series(np.nan, index=frame.index)  # only rows with a construct must (and do) hold numbers
    values[scored] = _to_numeric(frame[scored], "value", pd.Series(True, index=frame.index[scored]), what)
    frame["value"] = values
    for column in NUMERIC_RESPONSE_COLUMNS:
        if column in frame.columns:
            frame[column] = _to_numeric(frame, column, pd.Series(False, index=frame.index), what)
    return frame


def validate_ratings(raw: pd.DataFrame, what: str = "ratings") -> pd.DataFrame:
    """Check the expert ratings frame (``rater_id, image_id, item, value``); every value must be numeric."""
    _require_columns(raw, RATING_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("rater_id", "image_id", "item", "skin_condition", "case_id"))
    frame["value"] = _to_numeric(frame, "value", pd.Series(True, index=frame.index), what)
    for column in ("scale_min", "scale_max"):
        if column in frame.columns:
            frame[column] = _to_numeric(frame, column, pd.Series(False, index=frame.index), what)
    duplicated = frame.duplicated(["rater_id", "image_id", "item"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise AnalysisInputError(
            f"{what}: rater {row['rater_id']!r} rated image {row['image_id']!r} on item {row['item']!r} "
            "more than once"
        )
    return frame


def validate_participants(raw: pd.DataFrame, what: str = "participants") -> pd.DataFrame:
    """Check the participants frame; ``excluded`` must be 0/1."""
    _require_columns(raw, PARTICIPANT_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("participant_id", "status", "arm", "exclusion_reasons"))
    excluded = _to_numeric(frame, "excluded", pd.Series(True, index=frame.index), what)
    if not excluded.isin([0.0, 1.0]).all():
        raise AnalysisInputError(f"{what}: column 'excluded' must be 0 or 1")
    frame["excluded"] = excluded.astype(int)
    return frame


def validate_interactions(raw: pd.DataFrame, what: str = "interactions") -> pd.DataFrame:
    """Check the interactions frame; ``latency_ms`` is numeric where given (empty while unanswered)."""
    _require_columns(raw, INTERACTION_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("participant_id", "condition", "kind", "mapped_condition"))
    frame["latency_ms"] = _to_numeric(frame, "latency_ms", pd.Series(False, index=frame.index), what)
    unknown = sorted(set(frame["kind"]) - {"question", "references"})
    if unknown:
        raise AnalysisInputError(f"{what}: column 'kind' holds {unknown}; expected question or references")
    return frame


def resolve_conditions(
    responses: pd.DataFrame, baseline: str | None, visual: str | None, what: str = "responses"
) -> tuple[str, str, list[str]]:
    """Return ``(baseline, visual, warnings)``; visual defaults to the one condition that isn't baseline."""
    if not baseline:
        raise AnalysisInputError(NO_BASELINE)
    present = sorted(c for c in responses["condition"].unique() if c != "")
    if baseline not in present:
        raise AnalysisInputError(
            f"baseline condition {baseline!r} is not in the {what} data (conditions: {present or 'none'})"
        )
    others = [c for c in present if c != baseline]
    if visual is None:
        if len(others) != 1:
            raise AnalysisInputError(
                f"expected one condition besides the baseline {baseline!r}, found {others or 'none'}; "
                "name the visual condition with --visual"
            )
        return baseline, others[0], []
    if visual not in others:
        raise AnalysisInputError(
            f"visual condition {visual!r} is not in the {what} data (conditions: {present})"
        )
    ignored = [c for c in others if c != visual]
    warnings = (
        [f"conditions {ignored} are ignored (only {visual!r} vs {baseline!r} is compared)"] if ignored else []
    )
    return baseline, visual, warnings


def infer_design(responses: pd.DataFrame, baseline: str, visual: str) -> str:
    """'within' when any participant answered in both compared conditions, else 'between'."""
    compared = responses[responses["condition"].isin([baseline, visual])]
    return "within" if (compared.groupby("participant_id")["condition"].nunique() > 1).any() else "between"


def check_design(responses: pd.DataFrame, design: str, baseline: str, visual: str) -> None:
    """A between design must not give any participant both conditions; within needs someone with both."""
    if design not in DESIGNS:
        raise AnalysisInputError(f"design must be one of {DESIGNS}, got {design!r}")
    compared = responses[responses["condition"].isin([baseline, visual])]
    per_participant = compared.groupby("participant_id")["condition"].nunique()
    both = per_participant[per_participant > 1]
    if design == "between" and len(both):
        raise AnalysisInputError(
            f"design is 'between' but {len(both)} participant(s) have both conditions "
            f"(first: {both.index[0]!r}); use --design within or fix the data"
        )
    if design == "within" and len(per_participant) and not len(both):
        raise AnalysisInputError(
            "design is 'within' but no participant has both conditions; use --design between"
        )


def build_study_data(
    responses: pd.DataFrame | None,
    participants: pd.DataFrame | None = None,
    ratings: pd.DataFrame | None = None,
    *,
    interactions: pd.DataFrame | None = None,
    design: str | None = None,
    baseline: str | None = None,
    visual: str | None = None,
) -> StudyData:
    """Validate raw frames (as read from CSV or the database) and resolve the design and conditions."""
    resolved_design = design or "within"
    if responses is None and ratings is None:
        raise AnalysisInputError("no input: give --db, --responses and/or --ratings")
    warnings: list[str] = []
    resp = validate_responses(responses) if responses is not None else None
    rat = validate_ratings(ratings) if ratings is not None else None
    part = validate_participants(participants) if participants is not None else None
    if design is not None and design not in DESIGNS:
        raise AnalysisInputError(f"--design must be one of {DESIGNS}, got {design!r}")
    base, vis = baseline or "", visual or ""  # ratings alone only use them as labels
    if resp is not None:
        base, vis, extra = resolve_conditions(resp, baseline, visual)
        warnings += extra
        resolved_design = design or infer_design(resp, base, vis)
        if design is None:
            warnings.append(f"no design given: inferred '{resolved_design}' from the data")
        check_design(resp, resolved_design, base, vis)
        resp = resp[resp["condition"].isin(["", base, vis])].reset_index(drop=True)
    turns = validate_interactions(interactions) if interactions is not None else None
    return StudyData(resp, part, rat, resolved_design, base, vis, tuple(warnings), turns)


def _as_text(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A frame as the CSV reader sees it: every cell a string, missing cells ''."""
    return None if frame is None else frame.astype(object).where(frame.notna(), "").astype(str)


def from_export(
    frames: dict[str, pd.DataFrame],
    *,
    design: str | None = None,
    baseline: str | None = None,
    visual: str | None = None,
) -> StudyData:
    """The analysis input from the export contract's frames (``responses``, ``participants``, ``ratings``,
    ``study``; any may be missing, extra tables are ignored), typed or as strings.

    ``design``, ``baseline`` and ``visual`` default to the export's ``study`` table (the registered protocol,
    as the study ran); without it ``baseline`` must be given.
    """
    study = frames.get("study")
    if study is not None and len(study):
        row = _as_text(study).iloc[0]
        design = design or row.get("design") or None
        baseline = baseline or row.get("baseline") or None
        visual = visual or row.get("visual") or None
    return build_study_data(
        _as_text(frames.get("responses")),
        _as_text(frames.get("participants")),
        _as_text(frames.get("ratings")),
        interactions=_as_text(frames.get("interactions")),
        design=design,
        baseline=baseline,
        visual=visual,
    )


def load_export(
    folder: str | Path,
    *,
    design: str | None = None,
    baseline: str | None = None,
    visual: str | None = None,
) -> StudyData:
    """Load an export folder (``skingen-study export``): its responses, participants, ratings and study CSVs,
    whichever are present; design and conditions from ``study.csv`` unless given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnalysisInputError(f"--export: not a folder: {folder}")
    frames = {
        name: read_csv(folder / f"{name}.csv", name)
        for name in EXPORT_TABLES
        if (folder / f"{name}.csv").is_file()
    }
    if "responses" not in frames and "ratings" not in frames:
        raise AnalysisInputError(f"--export: {folder} holds neither responses.csv nor ratings.csv")
    return from_export(frames, design=design, baseline=baseline, visual=visual)


def load_csv(
    responses: str | Path | None = None,
    ratings: str | Path | None = None,
    participants: str | Path | None = None,
    *,
    design: str | None = None,
    baseline: str | None = None,
    visual: str | None = None,
) -> StudyData:
    """Load single export CSV files (any may be omitted, but not both responses and ratings)."""
    paths = {"responses": responses, "participants": participants, "ratings": ratings}
    frames = {name: read_csv(path, name) for name, path in paths.items() if path}
    return from_export(frames, design=design, baseline=baseline, visual=visual)
