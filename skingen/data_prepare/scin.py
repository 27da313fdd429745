"""SCIN (Google, 2024): ``SRC/scin_cases.csv`` + ``SRC/scin_labels.csv``, joined on ``case_id``.

- ``case_id``: 64-bit integers, kept as strings (a float would round them).
- Condition: the argmax of ``weighted_skin_condition_label`` (a Python-literal dict string,
  ``"{'Eczema': 0.69, 'Psoriasis': 0.08}"``; names already merged by SCIN), else the most frequent name in
  ``dermatologist_skin_condition_on_label_name`` (a literal list string; the documented spelling without
  ``_on_`` is accepted too). Both are parsed with ``ast.literal_eval``, never ``eval``.
- Skin tone: the majority of ``dermatologist_fitzpatrick_skin_type_label_{1,2,3}`` (FST1–FST6; a label whose
  ``dermatologist_gradable_for_fitzpatrick_skin_type_N`` is NO is ignored; a tie goes to the lower median),
  else the self-reported ``fitzpatrick_skin_type`` (NONE_SELECTED / NONE_IDENTIFIED = unknown); the source is
  recorded.
- Images: ``image_{1,2,3}_path`` (``dataset/images/<id>.png``), looked up under ``--images`` as given or by
  file name; all images of a case go to the same split. Body site: the one ``body_parts_*`` column that says
  YES, if exactly one does.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from skingen.data_prepare.records import RawDataset, RawRecord, find_image
from skingen.errors import SkinGenError
from skingen.skin_tone import FITZPATRICK_TYPES
from skingen.sources import read_table

NAME = "scin"
LICENCE = "SCIN Data Use License"
CASES_FILE = "scin_cases.csv"
LABELS_FILE = "scin_labels.csv"
IMAGE_COLUMNS = ("image_1_path", "image_2_path", "image_3_path")
CASE_COLUMNS = ("case_id", *IMAGE_COLUMNS, "fitzpatrick_skin_type")
LABEL_NAMES = "dermatologist_skin_condition_on_label_name"
_LABEL_NAMES_DOCUMENTED = (
    "dermatologist_skin_condition_label_name"  # schema doc's spelling; the files use _on_
)
WEIGHTED = "weighted_skin_condition_label"
DERMATOLOGIST_TYPES = tuple(f"dermatologist_fitzpatrick_skin_type_label_{i}" for i in (1, 2, 3))
LABEL_COLUMNS = ("case_id", WEIGHTED, *DERMATOLOGIST_TYPES)
_FST = {f"FST{i}": tone for i, tone in enumerate(FITZPATRICK_TYPES, start=1)}
_BODY_PARTS = {
    "body_parts_head_or_neck": "head or neck",
    "body_parts_arm": "arm",
    "body_parts_palm": "palm",
    "body_parts_back_of_hand": "back of the hand",
    "body_parts_torso_front": "chest",
    "body_parts_torso_back": "back",
    "body_parts_genitalia_or_groin": "groin",
    "body_parts_buttocks": "buttocks",
    "body_parts_leg": "leg",
    "body_parts_foot_top_or_side": "foot",
    "body_parts_foot_sole": "sole of the foot",
}


def read(src: Path, images: Path) -> RawDataset:
    cases_path, labels_path = src / CASES_FILE, src / LABELS_FILE
    if not src.is_dir():
        raise SkinGenError(
            f"{src}: not a folder (the scin format needs {CASES_FILE} and {LABELS_FILE} in it)"
        )
    labels = _labels_by_case(labels_path)
    dataset = RawDataset([])
    for line, case in read_table(cases_path, CASE_COLUMNS, what=f"SCIN's {CASES_FILE}"):
        where = f"{cases_path}, line {line}"
        case_id = case["case_id"]
        if not case_id:
            raise SkinGenError(f"{where}, column case_id: empty")
        label_line, label_row = labels.get(case_id, (0, {}))
        label_where = f"{labels_path}, line {label_line}"
        tone, source = _dermatologist_type(label_row, label_where), "dermatologist"
        if not tone:
            tone = _fst(case["fitzpatrick_skin_type"], f"{where}, column fitzpatrick_skin_type")
            source = "self_reported"
        label = _condition(label_row, label_where) if label_row else ""
        sites = [site for column, site in _BODY_PARTS.items() if case.get(column, "").upper() == "YES"]
        for column in IMAGE_COLUMNS:
            if not case[column]:
                continue
            dataset.records.append(
                RawRecord(
                    label=label,
                    image=find_image(images, [case[column], Path(case[column]).name]),
                    where=f"{where}, column {column}",
                    skin_tone=tone,
                    skin_tone_source=source if tone else "",
                    body_site=sites[0] if len(sites) == 1 else None,
                    unit=case_id,
                )
            )
    return dataset


def _labels_by_case(path: Path) -> dict[str, tuple[int, dict[str, str]]]:
    rows = read_table(path, LABEL_COLUMNS, what=f"SCIN's {LABELS_FILE}")
    if rows and LABEL_NAMES not in rows[0][1] and _LABEL_NAMES_DOCUMENTED not in rows[0][1]:
        raise SkinGenError(f"{path}: missing column {LABEL_NAMES} (SCIN's {LABELS_FILE})")
    by_case: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        if row["case_id"] in by_case:
            raise SkinGenError(f"{path}, line {line}, column case_id: case {row['case_id']} labelled twice")
        by_case[row["case_id"]] = (line, row)
    return by_case


def _condition(row: dict[str, str], where: str) -> str:
    weights = _literal(row[WEIGHTED], dict, f"{where}, column {WEIGHTED}")
    if weights:
        return str(max(weights, key=lambda name: weights[name]))  # first of equal weights
    column = LABEL_NAMES if LABEL_NAMES in row else _LABEL_NAMES_DOCUMENTED
    names = _literal(row[column], list, f"{where}, column {column}")
    return str(Counter(names).most_common(1)[0][0]) if names else ""


def _literal(value: str, kind: type, where: str) -> dict | list:
    if not value:
        return kind()
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = None
    if not isinstance(parsed, kind):
        raise SkinGenError(f"{where}: {value!r} is not a Python-literal {kind.__name__}")
    return parsed


def _dermatologist_type(row: dict[str, str], where: str) -> str:
    types = []
    for i, column in enumerate(DERMATOLOGIST_TYPES, start=1):
        if row.get(f"dermatologist_gradable_for_fitzpatrick_skin_type_{i}", "").upper() == "NO":
            continue
        tone = _fst(row.get(column, ""), f"{where}, column {column}")
        if tone:
            types.append(tone)
    if not types:
        return ""
    counts = Counter(types)
    top = max(counts.values())
    if sum(1 for n in counts.values() if n == top) == 1:
        return counts.most_common(1)[0][0]
    ordered = sorted(types, key=FITZPATRICK_TYPES.index)
    return ordered[(len(ordered) - 1) // 2]  # a tie: the lower median of all labels


def _fst(value: str, where: str) -> str:
    if not value or value.upper().startswith("NONE"):
        return ""
    if value in _FST:
        return _FST[value]
    raise SkinGenError(f"{where}: {value!r} is not a Fitzpatrick type FST1–FST6")
