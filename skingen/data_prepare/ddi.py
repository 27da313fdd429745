"""DDI, Diverse Dermatology Images (Daneshjou et al. 2022): ``ddi_metadata.csv`` + images ``DDI_file``.

Columns: (a leading unnamed index column), ``DDI_ID, DDI_file`` ("000001.png"), ``skin_tone`` (12 / 34 / 56
= Fitzpatrick I–II / III–IV / V–VI: a group, kept as the group), ``malignant`` ("True"/"False"), ``disease``
(lower case and hyphenated: "melanoma-in-situ").
"""

from __future__ import annotations

from pathlib import Path

from skingen.data_prepare.records import RawDataset, RawRecord
from skingen.errors import SkinGenError
from skingen.sources import read_table

NAME = "ddi"
LICENCE = "DDI terms of use (Stanford AIMI dataset research use agreement)"
COLUMNS = ("DDI_file", "skin_tone", "disease")
_GROUPS = {"12": "I-II", "34": "III-IV", "56": "V-VI"}


def read(src: Path, images: Path) -> RawDataset:
    dataset = RawDataset([])
    for line, row in read_table(src, COLUMNS, what="DDI's ddi_metadata.csv"):
        where = f"{src}, line {line}"
        if not row["DDI_file"]:
            raise SkinGenError(f"{where}, column DDI_file: empty")
        if row["skin_tone"] not in _GROUPS:
            raise SkinGenError(
                f"{where}, column skin_tone: {row['skin_tone']!r} is not one of {', '.join(_GROUPS)}"
            )
        dataset.records.append(
            RawRecord(
                label=row["disease"],
                image=images / row["DDI_file"],
                where=f"{where}, column DDI_file",
                skin_tone=_GROUPS[row["skin_tone"]],
                skin_tone_source="dataset",
            )
        )
    return dataset
