"""Fitzpatrick17k (Groh et al. 2021): ``fitzpatrick17k.csv`` + images named ``<md5hash>.jpg``.

Columns: ``md5hash, fitzpatrick_scale`` (1–6, −1 unknown), ``fitzpatrick_centaur, label`` (lower case, e.g.
"squamous cell carcinoma"), ``nine_partition_label, three_partition_label, qc`` (mostly empty; "3 Wrongly
labelled" rows are left out), ``url, url_alphanum`` (``url``, the image's source page, is its attribution).
"""

from __future__ import annotations

from pathlib import Path

from skingen.data_prepare.records import RawDataset, RawRecord, find_image
from skingen.errors import SkinGenError
from skingen.skin_tone import FITZPATRICK_TYPES
from skingen.sources import read_table

NAME = "fitzpatrick17k"
LICENCE = "CC BY-NC-SA 3.0"
COLUMNS = ("md5hash", "fitzpatrick_scale", "label")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_WRONGLY_LABELLED = "3"  # the qc grade "3 Wrongly labelled"


def read(src: Path, images: Path) -> RawDataset:
    dataset = RawDataset([])
    for line, row in read_table(src, COLUMNS, what="Fitzpatrick17k's fitzpatrick17k.csv"):
        where = f"{src}, line {line}"
        qc = row.get("qc", "")
        if qc.split(" ", 1)[0] == _WRONGLY_LABELLED:
            dataset.excluded[f"qc {qc!r}"] += 1
            continue
        md5 = row["md5hash"]
        if not md5:
            raise SkinGenError(f"{where}, column md5hash: empty")
        tone = _skin_type(row["fitzpatrick_scale"], f"{where}, column fitzpatrick_scale")
        dataset.records.append(
            RawRecord(
                label=row["label"],
                image=find_image(images, [md5 + suffix for suffix in _IMAGE_SUFFIXES]),
                where=f"{where}, column md5hash",
                skin_tone=tone,
                skin_tone_source="dataset" if tone else "",
                attribution=row.get("url", ""),
            )
        )
    return dataset


def _skin_type(value: str, where: str) -> str:
    if value == "-1":
        return ""
    if value in {str(n) for n in range(1, 7)}:
        return FITZPATRICK_TYPES[int(value) - 1]
    raise SkinGenError(f"{where}: {value!r} is not a Fitzpatrick type 1–6 or -1 (unknown)")
