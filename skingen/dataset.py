"""The prepared image set (``DATA/``): what ``skingen data prepare`` writes and training and evaluation read.

::

    DATA/
      metadata.csv     # one row per image: file, condition, skin_tone, caption, source, licence, split
                       # [, skin_tone_source, patient, attribution]
      images/...       # the images, paths in ``file`` relative to DATA/
      datacard.md/.json/.html  # what ``skingen data prepare`` counted (not read back)

``condition`` is a taxonomy id; ``skin_tone`` a Fitzpatrick type (I–VI), a group (I-II, III-IV, V-VI, as
DDI labels them) or empty when unknown; ``split`` is ``train`` or ``validation``. The optional
``skin_tone_source`` says where the tone came from: ``dataset`` (the dataset's one skin-tone label),
``dermatologist`` or ``self_reported`` (SCIN has both), empty when unknown. The optional ``patient`` groups
the images of one person (SCIN: the case id), so retrieval never shows a patient their own other photos; the
optional ``attribution`` is what the licence asks to credit besides source and licence (Fitzpatrick17k: the
image's source page). ``caption`` is the training caption. Torch-free.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from skingen.errors import SkinGenError
from skingen.skin_tone import skin_tone_group
from skingen.sources import read_table

METADATA_FILE = "metadata.csv"
METADATA_COLUMNS = ("file", "condition", "skin_tone", "caption", "source", "licence", "split")
OPTIONAL_COLUMNS = ("skin_tone_source", "patient", "attribution")
SPLITS = ("train", "validation")
SKIN_TONE_SOURCES = ("dataset", "dermatologist", "self_reported", "")


@dataclass(frozen=True)
class Example:
    """One image of a prepared set."""

    file: str
    condition: str
    skin_tone: str
    caption: str
    source: str
    licence: str
    split: str
    skin_tone_source: str = ""
    patient: str = ""
    attribution: str = ""

    @property
    def skin_tone_group(self) -> str | None:
        return skin_tone_group(self.skin_tone)


@dataclass(frozen=True)
class PreparedDataset:
    root: Path
    examples: tuple[Example, ...]

    def path(self, example: Example) -> Path:
        return self.root / example.file

    def split(self, name: str) -> tuple[Example, ...]:
        return tuple(e for e in self.examples if e.split == name)

    @property
    def content_hash(self) -> str:
        """SHA-256 of metadata.csv and every image's bytes, in file order: what a training run was fed."""
        digest = hashlib.sha256((self.root / METADATA_FILE).read_bytes())
        for example in self.examples:
            digest.update(self.path(example).read_bytes())
        return digest.hexdigest()


def load_dataset(root: str | Path) -> PreparedDataset:
    """Read and check ``root/metadata.csv``; every problem names the file, the row and the column."""
    root = Path(root)
    path = root / METADATA_FILE
    examples = []
    for line, row in read_table(path, METADATA_COLUMNS, what="prepared data"):
        example = Example(**{c: row[c] for c in (*METADATA_COLUMNS, *OPTIONAL_COLUMNS) if c in row})
        where = f"{path}, line {line}"
        if example.split not in SPLITS:
            raise SkinGenError(f"{where}: split {example.split!r} must be one of {'/'.join(SPLITS)}")
        if example.skin_tone_source not in SKIN_TONE_SOURCES:
            raise SkinGenError(
                f"{where}: skin_tone_source {example.skin_tone_source!r} must be one of "
                f"{'/'.join(SKIN_TONE_SOURCES[:-1])} or empty"
            )
        try:
            skin_tone_group(example.skin_tone)
        except ValueError as exc:
            raise SkinGenError(f"{where}: {exc}") from None
        if not (root / example.file).is_file():
            raise SkinGenError(f"{where}: image {example.file!r} does not exist")
        examples.append(example)
    if not examples:
        raise SkinGenError(f"{path}: no images")
    return PreparedDataset(root, tuple(examples))


def write_metadata(root: str | Path, examples: list[Example] | tuple[Example, ...]) -> Path:
    """Write ``root/metadata.csv`` (every column, optional ones included) in the order given."""
    path = Path(root) / METADATA_FILE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow((*METADATA_COLUMNS, *OPTIONAL_COLUMNS))
        for example in examples:
            row = asdict(example)
            writer.writerow(row[c] for c in (*METADATA_COLUMNS, *OPTIONAL_COLUMNS))
    return path
