"""Read the study export (its CSV files, or the frames of a database export) and validate it before any
statistics run.

The input is the export contract (:mod:`formats.contract`): :func:`from_export` turns the export's frames
(``responses``, ``participants``, ``ratings``, ``study``) into a :class:`StudyData`, whether they were read
from an export folder (:func:`load_export`), from single CSV files (:func:`load_csv`) or exported straight from
the database (:func:`app.sources.load_db`, the app's Analysis page). Condition ids and the design come
from the export's ``study`` table unless the caller names them.

Every problem with the input raises one :class:`AnalysisInputError` whose message names the file, the column
and an offending value, so a researcher can fix the data without reading a traceback.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.labels import Labels
from formats import contract

EQUIVALENCE_DIRECTIONS = ("equivalent", "non_inferior")
"""Hypothesis directions tested by TOST against ``sesoi`` (:mod:`analysis.equivalence`)."""

DESIGNS = ("within", "between")
EXPORT_TABLES = (
    "responses",
    "participants",
    "ratings",
    "study",
    "instruments",
    "hypotheses",
    "interactions",
    "image_views",
)
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
IMAGE_VIEW_COLUMNS = _required(contract.IMAGE_VIEW_COLUMNS, ("participant_id", "condition", "image_kind"))
PARTICIPANT_COLUMNS = _required(contract.PARTICIPANT_COLUMNS, ("participant_id", "excluded"))
INTERACTION_COLUMNS = _required(
    contract.INTERACTION_COLUMNS, ("participant_id", "condition", "kind", "mapped_condition", "latency_ms")
)
NUMERIC_RESPONSE_COLUMNS = _required(
    contract.RESPONSE_COLUMNS,
    ("period", "reverse_coded", "scale_min", "scale_max", "attention_check", "ai_correct", "rt_ms"),
)
INSTRUMENT_COLUMNS = _required(
    contract.INSTRUMENT_COLUMNS,
    ("construct", "instrument", "items", "aggregate", "offset", "multiplier", "max_missing", "n_items"),
)
NUMERIC_INSTRUMENT_COLUMNS = _required(
    contract.INSTRUMENT_COLUMNS,
    (
        "n_items",
        "scale_min",
        "scale_max",
        "offset",
        "multiplier",
        "score_min",
        "score_max",
        "max_missing",
        "adapted",
    ),
)
HYPOTHESIS_COLUMNS = _required(
    contract.HYPOTHESIS_COLUMNS,
    ("hypothesis", "construct", "first", "second", "direction", "alpha", "correction", "statement"),
)  # ``sesoi`` is read when present: exports written before equivalence hypotheses lack it
PLAN_COLUMNS = _required(
    contract.STUDY_COLUMNS, ("prereg_hash", "prereg_hash_protocol", "prereg_changed", "planned_participants")
)
NO_BASELINE = "no baseline condition: pass --baseline NAME, or --export DIR (its study.csv names it)"


CSV_ENGINE = "pyarrow" if importlib.util.find_spec("pyarrow") else "c"  # same result, pyarrow ~3x faster


class AnalysisInputError(ValueError):
    """The input data or options cannot be analysed; the message says what to fix."""


@dataclass(frozen=True)
class StudyData:
    """Validated input: long responses, optional participants and expert ratings, and the design.

    ``responses`` keeps only rows of the compared conditions plus rows without a condition; its ``value``
    column is float (NaN for free text / rows without a construct). ``conditions`` lists the compared
    conditions, baseline first: ``(baseline, compared)`` for two arms; with more, ``compared`` is '' and every pair
    is compared (:mod:`analysis.multiarm`).
    """

    responses: pd.DataFrame | None
    participants: pd.DataFrame | None
    ratings: pd.DataFrame | None
    design: str
    baseline: str
    compared: str
    warnings: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    relevance_item: str = ""  # the rating item compared with the closed loop (the export's study.csv)
    instruments: pd.DataFrame | None = None
    hypotheses: pd.DataFrame | None = None
    plan: dict[str, str] | None = None
    """The export's preregistration columns (``study.csv``), None without a study table."""
    interactions: pd.DataFrame | None = None  # turns with the live model (interactive conditions)
    labels: Labels = field(default_factory=Labels)
    """Condition labels, item texts and anchors (study.csv ``labels``); empty for bare CSVs."""
    image_views: pd.DataFrame | None = None
    """Images enlarged on trials (the export's image_views.csv; empty when none were, None when the export
    has no such table)."""


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

    Rows with a non-empty ``construct`` must hold a numeric ``value``; other rows keep their number when they
    hold one (a diagnosis's confidence, read by :mod:`analysis.reliance`) and NaN otherwise (free text,
    diagnosis ids); construct statistics read only rows with a construct.
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
    # rows with a construct must hold numbers; other coded answers (entry questions, attention checks) are
    # read where they are numbers — the baseline table counts them —, free text and diagnosis ids stay NaN
    values = pd.to_numeric(frame["value"].where(~scored), errors="coerce").astype(float)
    values[scored] = _to_numeric(frame[scored], "value", pd.Series(True, index=frame.index[scored]), what)
    values[~scored] = pd.to_numeric(frame.loc[~scored, "value"], errors="coerce")
    frame["value"] = values
    for column in NUMERIC_RESPONSE_COLUMNS:
        if column in frame.columns:
            frame[column] = _to_numeric(frame, column, pd.Series(False, index=frame.index), what)
    return frame


def validate_ratings(raw: pd.DataFrame, what: str = "ratings") -> pd.DataFrame:
    """Check the expert ratings frame (``rater_id, image_id, item, value``); every value must be numeric."""
    _require_columns(raw, RATING_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("rater_id", "image_id", "item", "skin_condition", "case_id", "image_kind"))
    frame["value"] = _to_numeric(frame, "value", pd.Series(True, index=frame.index), what)
    for column in ("scale_min", "scale_max", "closed_loop_correct"):
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


def validate_instruments(raw: pd.DataFrame, what: str = "instruments") -> pd.DataFrame:
    """Check the instruments table (one row per included instrument, with its scoring rule)."""
    _require_columns(raw, INSTRUMENT_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("construct", "instrument", "items", "aggregate", "subscales", "norms"))
    for column in NUMERIC_INSTRUMENT_COLUMNS:
        if column in frame.columns:
            frame[column] = _to_numeric(
                frame, column, pd.Series(column in INSTRUMENT_COLUMNS, frame.index), what
            )
    bad = ~frame["aggregate"].isin(["mean", "sum"])
    if bad.any():
        raise AnalysisInputError(
            f"{what}: row {int(bad.idxmax()) + 2}, column 'aggregate': {frame.loc[bad.idxmax(), 'aggregate']!r} "
            "is not 'mean' or 'sum'"
        )
    return frame


def validate_hypotheses(raw: pd.DataFrame, what: str = "hypotheses") -> pd.DataFrame:
    """Check the preregistered hypotheses (direction greater/less/two_sided/equivalent/non_inferior, α in
    (0, 1), a positive ``sesoi`` wherever the direction is equivalent or non_inferior)."""
    _require_columns(raw, HYPOTHESIS_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("hypothesis", "construct", "first", "second", "direction", "correction"))
    frame["alpha"] = _to_numeric(frame, "alpha", pd.Series(True, index=frame.index), what)
    needs_sesoi = frame["direction"].isin(EQUIVALENCE_DIRECTIONS)
    if "sesoi" not in frame.columns:
        frame["sesoi"] = ""
    frame["sesoi"] = _to_numeric(frame, "sesoi", needs_sesoi, what)
    bad = needs_sesoi & ~(frame["sesoi"] > 0)
    if bad.any():
        row = int(bad.idxmax())
        raise AnalysisInputError(
            f"{what}: row {row + 2}, column 'sesoi' must be positive, got {frame.at[row, 'sesoi']}"
        )
    for column, allowed in (
        ("direction", ("greater", "less", "two_sided", *EQUIVALENCE_DIRECTIONS)),
        ("correction", ("holm", "bonferroni", "none")),
    ):
        bad = ~frame[column].isin(allowed)
        if bad.any():
            row = int(bad.idxmax())
            raise AnalysisInputError(
                f"{what}: row {row + 2}, column {column!r}: {frame.loc[row, column]!r} is not one of {allowed}"
            )
    if not frame["alpha"].between(0, 1, inclusive="neither").all():
        raise AnalysisInputError(f"{what}: column 'alpha' must lie between 0 and 1")
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


def validate_image_views(raw: pd.DataFrame, what: str = "image_views") -> pd.DataFrame:
    """Check the image_views frame (one row per image a participant enlarged on a trial)."""
    _require_columns(raw, IMAGE_VIEW_COLUMNS, what)
    frame = raw.reset_index(drop=True)
    _clean_text(frame, ("participant_id", "condition", "case_id", "image_kind"))
    return frame


def resolve_conditions(
    responses: pd.DataFrame,
    baseline: str | None,
    compared: str | None,
    what: str = "responses",
    conditions: tuple[str, ...] | None = None,
) -> tuple[str, str, tuple[str, ...], list[str]]:
    """Return ``(baseline, compared, compared conditions, warnings)``.

    ``compared`` defaults to the one condition that isn't baseline; with more, ``conditions`` (e.g. from
    study.csv, or ``--conditions``) must name the compared ones, and ``compared`` is then '' (for two compared
    conditions: the one besides the baseline).
    """
    if not baseline:
        raise AnalysisInputError(NO_BASELINE)
    present = sorted(c for c in responses["condition"].unique() if c != "")
    if baseline not in present:
        raise AnalysisInputError(
            f"baseline condition {baseline!r} is not in the {what} data (conditions: {present or 'none'})"
        )
    others = [c for c in present if c != baseline]
    if compared is None and conditions and len(conditions) >= 2:
        missing = [c for c in conditions if c not in present]
        if missing or baseline not in conditions:
            raise AnalysisInputError(
                f"conditions {list(conditions)}: {missing or [baseline]} not in the {what} data or not the "
                f"baseline (conditions present: {present})"
            )
        ignored = [c for c in others if c not in conditions]
        chosen = (baseline, *(c for c in conditions if c != baseline))
        return baseline, chosen[1] if len(chosen) == 2 else "", chosen, _ignored(ignored, chosen)
    if compared is None:
        if len(others) != 1:
            raise AnalysisInputError(
                f"expected one condition besides the baseline {baseline!r}, found {others or 'none'}; "
                "name the compared condition with --compared, or compare them all with --conditions"
            )
        return baseline, others[0], (baseline, others[0]), []
    if compared not in others:
        raise AnalysisInputError(
            f"compared condition {compared!r} is not in the {what} data (conditions: {present})"
        )
    ignored = [c for c in others if c != compared]
    return baseline, compared, (baseline, compared), _ignored(ignored, (baseline, compared))


def _ignored(ignored: list[str], compared: tuple[str, ...]) -> list[str]:
    if not ignored:
        return []
    if len(compared) == 2:
        return [f"conditions {ignored} are ignored (only {compared[1]!r} vs {compared[0]!r} is compared)"]
    return [f"conditions {ignored} are ignored (only {list(compared)} are compared)"]


def infer_design(responses: pd.DataFrame, conditions: tuple[str, ...]) -> str:
    """'within' when any participant answered in more than one compared condition, else 'between'."""
    compared = responses[responses["condition"].isin(conditions)]
    return "within" if (compared.groupby("participant_id")["condition"].nunique() > 1).any() else "between"


def check_design(responses: pd.DataFrame, design: str, conditions: tuple[str, ...]) -> None:
    """A between design must not give any participant two conditions; within needs someone with two."""
    if design not in DESIGNS:
        raise AnalysisInputError(f"design must be one of {DESIGNS}, got {design!r}")
    compared = responses[responses["condition"].isin(conditions)]
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
    compared: str | None = None,
    conditions: tuple[str, ...] | None = None,
) -> StudyData:
    """Validate raw frames (as read from CSV or the database) and resolve the design and conditions.

    ``conditions``: the compared conditions when there are more than two (see :func:`resolve_conditions`).
    """
    resolved_design = design or "within"
    if responses is None and ratings is None:
        raise AnalysisInputError("no input: give --db, --responses and/or --ratings")
    warnings: list[str] = []
    resp = validate_responses(responses) if responses is not None else None
    rat = validate_ratings(ratings) if ratings is not None else None
    part = validate_participants(participants) if participants is not None else None
    if design is not None and design not in DESIGNS:
        raise AnalysisInputError(f"--design must be one of {DESIGNS}, got {design!r}")
    base, other = baseline or "", compared or ""  # ratings alone only use them as labels
    chosen: tuple[str, ...] = (base, other)
    if resp is not None:
        base, other, chosen, extra = resolve_conditions(resp, baseline, compared, conditions=conditions)
        warnings += extra
        resolved_design = design or infer_design(resp, chosen)
        if design is None:
            warnings.append(f"no design given: inferred '{resolved_design}' from the data")
        check_design(resp, resolved_design, chosen)
        resp = resp[resp["condition"].isin(["", *chosen])].reset_index(drop=True)
    turns = validate_interactions(interactions) if interactions is not None else None
    return StudyData(
        resp, part, rat, resolved_design, base, other, tuple(warnings), chosen, interactions=turns
    )


def _as_text(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A frame as the CSV reader sees it: every cell a string, missing cells ''."""
    return None if frame is None else frame.astype(object).where(frame.notna(), "").astype(str)


def from_export(
    frames: dict[str, pd.DataFrame],
    *,
    design: str | None = None,
    baseline: str | None = None,
    compared: str | None = None,
    conditions: tuple[str, ...] | None = None,
) -> StudyData:
    """The analysis input from the export contract's frames (``responses``, ``participants``, ``ratings``,
    ``study``; any may be missing or empty — ratings before any participant —, extra tables are ignored),
    typed or as strings.

    ``design``, ``baseline``, ``compared`` and (more than two arms) ``conditions`` default to the export's
    ``study`` table (the registered protocol, as the study ran); without it ``baseline`` must be given.
    """
    study = frames.get("study")
    relevance_item = ""
    plan = None
    labels = Labels()
    if study is not None and len(study):
        row = _as_text(study).iloc[0]
        design = design or row.get("design") or None
        baseline = baseline or row.get("baseline") or None
        compared = compared or row.get("visual") or None
        relevance_item = row.get("relevance_item", "")
        listed = tuple(c for c in str(row.get("conditions", "")).split(";") if c)
        conditions = conditions or listed or None
        plan = {column: str(row.get(column, "")) for column in PLAN_COLUMNS}
        try:
            labels = Labels.from_json(str(row.get("labels", "")))
        except ValueError as exc:
            raise AnalysisInputError(
                f"study: column 'labels' is not a JSON object of label maps ({exc})"
            ) from None
    present = {name: frame for name, frame in frames.items() if frame is not None and len(frame)}  # rows only
    if study is not None and len(study) and not {"responses", "ratings"} & set(present):
        row = _as_text(study).iloc[0]
        raise AnalysisInputError(
            f"study {row.get('protocol_id', '')!r} v{row.get('version', '')} is registered but has no "
            "participants' answers and no ratings yet: nothing to analyse (serve it, or try bots with "
            "`skingen-study simulate`)"
        )
    data = build_study_data(
        _as_text(present.get("responses")),
        _as_text(present.get("participants")),
        _as_text(present.get("ratings")),
        interactions=_as_text(present.get("interactions")),
        design=design,
        baseline=baseline,
        compared=compared,
        conditions=conditions,
    )
    instruments, hypotheses = (_as_text(present.get(name)) for name in ("instruments", "hypotheses"))
    views = frames.get("image_views")  # kept when empty: "no image was enlarged" is a finding
    return replace(
        data,
        image_views=None if views is None else validate_image_views(_as_text(views)),
        relevance_item=relevance_item,
        instruments=None if instruments is None else validate_instruments(instruments),
        hypotheses=None if hypotheses is None else validate_hypotheses(hypotheses),
        plan=plan,
        labels=labels,
    )


def load_export(
    folder: str | Path,
    *,
    design: str | None = None,
    baseline: str | None = None,
    compared: str | None = None,
    conditions: tuple[str, ...] | None = None,
) -> StudyData:
    """Load an export folder (``skingen-study export``): its responses, participants, ratings, study,
    instruments and hypotheses CSVs, whichever are present; design and conditions from ``study.csv`` unless
    given."""
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
    return from_export(frames, design=design, baseline=baseline, compared=compared, conditions=conditions)


def load_csv(
    responses: str | Path | None = None,
    ratings: str | Path | None = None,
    participants: str | Path | None = None,
    *,
    design: str | None = None,
    baseline: str | None = None,
    compared: str | None = None,
    conditions: tuple[str, ...] | None = None,
) -> StudyData:
    """Load single export CSV files (any may be omitted, but not both responses and ratings)."""
    paths = {"responses": responses, "participants": participants, "ratings": ratings}
    frames = {name: read_csv(path, name) for name, path in paths.items() if path}
    return from_export(frames, design=design, baseline=baseline, compared=compared, conditions=conditions)
