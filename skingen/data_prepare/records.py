"""What a dataset reader hands the pipeline (the readers read CSVs with :func:`skingen.sources.read_table`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RawRecord:
    """One image as its dataset labels it, before mapping onto the taxonomy.

    ``where`` names the file, line and column the image came from (for messages); ``unit`` groups records
    that must land in the same split (SCIN: the case, up to three images); empty means the image alone. It
    is also written as the image's ``patient``. ``attribution`` is the credit the licence asks for (a URL).
    """

    label: str
    image: Path
    where: str
    skin_tone: str = ""
    skin_tone_source: str = ""
    body_site: str | None = None
    unit: str = ""
    attribution: str = ""


@dataclass
class RawDataset:
    """A reader's result: the records, and rows it left out on the dataset's own say (reason → count)."""

    records: list[RawRecord]
    excluded: Counter[str] = field(default_factory=Counter)


def find_image(images: Path, names: Sequence[str]) -> Path:
    """The first of ``images/name`` that exists, else the first candidate (reported missing later)."""
    candidates = [images / name for name in names]
    return next((path for path in candidates if path.is_file()), candidates[0])
