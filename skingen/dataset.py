"""The prepared image set (``DATA/``): what ``skingen data prepare`` writes and training and evaluation read.

::

    DATA/
      metadata.csv     # one row per image: file, condition, skin_tone, caption, source, licence, split
      images/...       # the images, paths in ``file`` relative to DATA/

``condition`` is a taxonomy id; ``skin_tone`` a Fitzpatrick type (I–VI), a group (I-II, III-IV, V-VI, as
DDI labels them) or empty when unknown; ``split`` is ``train`` or ``validation``. Torch-free.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from skingen.errors import SkinGenError
from skingen.skin_tone import skin_tone_group

METADATA_FILE = "metadata.csv"
METADATA_COLUMNS = ("file", "condition", "skin_tone", "caption", "source", "licence", "split")
SPLITS = ("train", "validation")


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
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = tuple(reader.fieldnames or ())
    except OSError as exc:
        raise SkinGenError(f"prepared data not readable: {path} ({exc.strerror})") from exc
    missing = [c for c in METADATA_COLUMNS if c not in columns]
    if missing:
        raise SkinGenError(f"{path}: missing column(s) {', '.join(missing)} (run `skingen data prepare`)")
    examples = []
    for line, row in enumerate(rows, start=2):
        example = Example(**{c: (row[c] or "").strip() for c in METADATA_COLUMNS})
        where = f"{path}, line {line}"
        if example.split not in SPLITS:
            raise SkinGenError(f"{where}: split {example.split!r} must be one of {'/'.join(SPLITS)}")
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
