"""The wide table for SPSS, Stata and spreadsheets: one row per participant, one column per answer, with the
codebook's variable and value labels, written as ``responses_wide.csv`` / ``.sav`` / ``.dta`` (pyreadstat).

Every label comes from the export's own codebook frame (generated from the protocol), so the three files, the
long CSVs and the codebook never disagree. Column names are the answers' ``<step>__<item>`` made valid in
both programs (docs/export-format.md, "Wide format, SPSS and Stata").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat

from formats.contract import AGREES_AI, AS_INTENDED, CONFIDENCE_SUFFIX, CORRECT, INITIAL_SUFFIX

WIDE = "responses_wide"
"""The wide table's name in an export's frames (and its files' stem)."""

MAX_NAME = 28
"""Longest column name. Stata allows 32 characters; pyreadstat names each value-label set after its variable
plus a counter (``p1_t03__trust1``), which must fit in 32 too."""

STATA_LABEL_BYTES = 80  # Stata's longest variable label
STATA_STRING_BYTES = 2045  # the longest str# pyreadstat writes to a .dta (no strL)

NUMERIC_TYPES = frozenset({"ordinal", "nominal", "binary", "numeric"})
"""Codebook types whose answers are numbers in the wide table (the rest stay text: free text, condition ids)."""

# The participant columns the wide table starts with: name → (variable label, value labels, dtype). The dtype
# is declared, not inferred: a study nobody has joined yet still gets typed (empty) SPSS and Stata columns.
PARTICIPANT_VARIABLES: dict[str, tuple[str, dict[int, str], str]] = {
    "participant_id": ("Pseudonymous participant id", {}, "string"),
    "protocol_version": ("Protocol version the participant enrolled in", {}, "string"),
    "stratum": ("Randomization stratum", {}, "string"),
    "arm": ("Allocated arm (condition, or sequence in a within design)", {}, "string"),
    "sequence": ("Order of conditions", {}, "string"),
    "status": ("consented, active, completed or dropped", {}, "string"),
    "attention_failures": ("Number of failed attention checks", {}, "int64"),
    "excluded": ("Excluded by the protocol's exclusion rules", {0: "no", 1: "yes"}, "int64"),
    "language": ("Language the participant took the study in (ISO 639 code)", {}, "string"),
}

# Short forms of the derived variables' suffixes, used only in names that would be too long
# (p1_t01__own_diagnosis_confidence → p1_t01__own_diagnosis_conf)
_SHORT_SUFFIXES = (
    (CONFIDENCE_SUFFIX, "_conf"),
    (INITIAL_SUFFIX, "_ini"),
    (AGREES_AI, "_agr"),
    (CORRECT, "_cor"),
    (AS_INTENDED, "_int"),
)

# "1=Strongly disagree; 2=…": split only where the next part starts with a code, so a label may hold "; "
_CODE_SPLIT = re.compile(r"; (?=-?\d+=)")


@dataclass(frozen=True)
class WideTable:
    """The wide table with what SPSS and Stata show beside it: a label per column (for an answer column
    ``[<step>__<item>] <codebook label>``, so a cut name's key stays readable), value labels per coded column,
    and for each answer column the ``<step>__<item>`` key it holds."""

    frame: pd.DataFrame
    variable_labels: dict[str, str]
    value_labels: dict[str, dict[int, str]]
    keys: dict[str, str]


def column_name(key: str) -> str:
    """An answer's ``<step>__<item>`` as a name valid in SPSS and Stata: letters, digits and ``_`` only,
    starting with a letter (``p1.t03__trust`` → ``p1_t03__trust``). Too long names are cut (see
    :func:`wide_table`, which numbers them)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name if name[:1].isalpha() else f"v{name}"


def parse_value_labels(text: str, variable: str = "") -> dict[int, str]:
    """The codebook's ``value_labels`` cell (``"1=Strongly disagree; …; 7=Strongly agree"``) as a dict."""
    labels = {}
    for part in _CODE_SPLIT.split(text) if text else []:
        code, sep, label = part.partition("=")
        if not sep or not code.lstrip("-").isdigit():
            raise ValueError(f"codebook: value_labels of {variable!r}: {part!r} is not CODE=LABEL")
        labels[int(code)] = label
    return labels


def wide_table(frames: dict[str, pd.DataFrame], steps: tuple[str, ...]) -> WideTable:
    """One row per participant of ``frames`` (an export's, :func:`study.export.export_frames`): their
    participant columns, then one column per answered ``<step>__<item>`` in the step order ``steps``
    (:func:`study.path.step_order`; steps it doesn't know go last) and the codebook's order within a step."""
    participants = frames["participants"]
    codebook = frames["codebook"].set_index("variable")
    responses = frames["responses"]
    rank = {step: index for index, step in enumerate(steps)}
    order = {variable: index for index, variable in enumerate(codebook.index)}
    keys = sorted(
        set(zip(responses["step"], responses["item"], strict=True)),
        key=lambda k: (rank.get(k[0], len(rank)), k[0], order.get(k[1], len(order)), k[1]),
    )
    answers = responses.pivot_table(
        index="participant_id", columns=["step", "item"], values="value", aggfunc="first"
    )
    table = (
        participants[list(PARTICIPANT_VARIABLES)]
        .astype({name: dtype for name, (_, _, dtype) in PARTICIPANT_VARIABLES.items()})
        .set_index("participant_id", drop=False)
    )
    variable_labels = {name: label for name, (label, _, _) in PARTICIPANT_VARIABLES.items()}
    value_labels = {name: labels for name, (_, labels, _) in PARTICIPANT_VARIABLES.items() if labels}
    names: dict[str, str] = {}
    columns = {}
    for step, item in keys:
        key = f"{step}__{item}"
        name = _unique(column_name(key), names, key)
        names[name] = key
        values = answers[(step, item)].reindex(table.index)
        row = codebook.loc[item] if item in codebook.index else None
        variable_labels[name] = f"[{key}] {row['label']}" if row is not None else f"[{key}]"
        if row is not None and row["type"] in NUMERIC_TYPES:
            columns[name] = _numbers(values, key)  # empty: missing (SPSS sysmis, Stata .)
            labels = parse_value_labels(str(row["value_labels"] or ""), item)
            if labels:
                value_labels[name] = labels
        else:
            columns[name] = values.fillna("")
    frame = pd.concat([table, pd.DataFrame(columns, index=table.index)], axis=1).reset_index(drop=True)
    return WideTable(frame, variable_labels, value_labels, names)


def _numbers(values: pd.Series, key: str) -> pd.Series:
    """A coded or numeric answer column as numbers; a value that is none names the column and participant."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna() & (values != "")]
    if len(bad):
        raise ValueError(f"responses: {key} of {bad.index[0]} is {bad.iloc[0]!r}, not a number")
    return numbers


def _unique(name: str, taken: dict[str, str], key: str) -> str:
    """``name`` if it fits :data:`MAX_NAME`, else with the derived suffixes shortened (``_confidence`` →
    ``_conf``, ``__agrees_ai`` → ``_agr``, …); still too long or clashing, cut and numbered ``_<n>``."""
    if len(name) > MAX_NAME:
        for suffix, short in _SHORT_SUFFIXES:
            name = name.replace(suffix, short)
    if len(name) <= MAX_NAME and name not in taken and name not in PARTICIPANT_VARIABLES:
        return name
    for number in range(1, 10_000):
        suffix = f"_{number}"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
        if candidate not in taken and candidate not in PARTICIPANT_VARIABLES:
            return candidate
    raise ValueError(f"no free column name for {key!r}")


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, not splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


# ReadStat stamps each file with the wall clock at writing and pyreadstat cannot set it; the same data must give
# the same bytes (a seeded simulation's export is compared byte for byte), and when the export ran is recorded
# in study.csv. So the header's stamp is overwritten with a fixed one, where each format keeps it.
SAV_STAMP = (92, b"01 Jan 7000:00:00")  # offset of creation_date[9] + creation_time[8] in the SPSS header
DTA_STAMP = b"<timestamp>\x1101 Jan 1970 00:00</timestamp>"


def _fixed_stamp(path: Path, at: int, stamp: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + len(stamp)] = stamp
    path.write_bytes(bytes(data))


def write_sav(table: WideTable, path: Path) -> None:
    pyreadstat.write_sav(
        table.frame,
        str(path),
        column_labels=table.variable_labels,
        variable_value_labels=table.value_labels,
    )
    _fixed_stamp(path, *SAV_STAMP)


def write_dta(table: WideTable, path: Path) -> None:
    """Stata 15+ format (UTF-8). Stata's limits apply: variable labels are cut to 80 bytes and text answers
    to 2,045 bytes (the CSV and the .sav keep them whole)."""
    frame = table.frame.copy()
    for name in frame.columns:
        if pd.api.types.is_string_dtype(frame[name]):
            frame[name] = frame[name].map(lambda v: _cut(str(v), STATA_STRING_BYTES))
    pyreadstat.write_dta(
        frame,
        str(path),
        column_labels={n: _cut(label, STATA_LABEL_BYTES) for n, label in table.variable_labels.items()},
        variable_value_labels=table.value_labels,
    )
    at = path.read_bytes().find(DTA_STAMP[:12])
    if at < 0:
        raise ValueError(f"{path}: no <timestamp> in the Stata header pyreadstat wrote")
    _fixed_stamp(path, at, DTA_STAMP)
