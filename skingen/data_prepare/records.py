"""What a dataset reader hands the pipeline, and the checked CSV reading every reader shares."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from skingen.errors import SkinGenError


@dataclass(frozen=True)
class RawRecord:
    """One image as its dataset labels it, before mapping onto the taxonomy.

    ``where`` names the file, line and column the image came from (for messages); ``unit`` groups records
    that must land in the same split (SCIN: the case, up to three images); empty means the image alone.
    """

    label: str
    image: Path
    where: str
    skin_tone: str = ""
    skin_tone_source: str = ""
    body_site: str | None = None
    unit: str = ""


@dataclass
class RawDataset:
    """A reader's result: the records, and rows it left out on the dataset's own say (reason → count)."""

    records: list[RawRecord]
    excluded: Counter[str] = field(default_factory=Counter)


def read_table(path: Path, required: Sequence[str], *, what: str) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` for every row of a CSV, values stripped; a missing file or column names it.

    ``what`` names the layout in messages ("Fitzpatrick17k's fitzpatrick17k.csv"). Every value is a string
    (SCIN's 64-bit case ids stay exact).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or ())
            missing = [c for c in required if c not in columns]
            if missing:
                raise SkinGenError(
                    f"{path}: missing column(s) {', '.join(missing)} ({what} has {', '.join(required)})"
                )
            rows = [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)})
                for row in reader
            ]
    except OSError as exc:
        raise SkinGenError(f"label file not readable: {path} ({exc.strerror})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SkinGenError(f"{path}: not a readable CSV file ({exc})") from exc
    return rows


def find_image(images: Path, names: Sequence[str]) -> Path:
    """The first of ``images/name`` that exists, else the first candidate (reported missing later)."""
    candidates = [images / name for name in names]
    return next((path for path in candidates if path.is_file()), candidates[0])
