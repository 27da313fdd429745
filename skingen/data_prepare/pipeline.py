"""The one pipeline every format goes through: read → map → check images → dedupe → split → caption → write."""

from __future__ import annotations

import math
import random
import shlex
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from formats.atomic import atomic_directory, check_output_dir
from formats.taxonomy import Taxonomy
from skingen.data_prepare.datacard import DataCard, Duplicate, write_datacard
from skingen.data_prepare.formats import get_format
from skingen.data_prepare.records import RawRecord
from skingen.dataset import Example, load_dataset, write_metadata
from skingen.errors import SkinGenError
from skingen.phash import hash_distances, perceptual_hash
from skingen.prompts import PromptBuilder
from skingen.skin_tone import skin_tone_group

IMAGES_DIR = "images"


@dataclass(frozen=True)
class PrepareSettings:
    """Everything ``skingen data prepare`` was asked; :meth:`command` writes it back as one command line."""

    src: Path
    format: str
    out: Path
    images: Path | None = None  # default: SRC itself (the folder format)
    overwrite: bool = False
    validation_fraction: float = 0.2
    seed: int = 0
    phash_distance: int = 4
    licence: str | None = None  # default: the format's licence string
    taxonomy: Path | None = None
    templates: Path | None = None

    def check(self) -> None:
        get_format(self.format)
        if not 0 <= self.validation_fraction < 1:
            raise SkinGenError(f"--validation-fraction must be in [0, 1), got {self.validation_fraction}")
        if not 0 <= self.phash_distance <= 64:
            raise SkinGenError(
                f"--phash-distance must be 0–64 bits (of a 64-bit pHash), got {self.phash_distance}"
            )
        if self.images is None and self.format != "folder":
            raise SkinGenError(f"--images is required with --format {self.format}")
        if not self.src.exists():
            raise SkinGenError(f"SRC not found: {self.src}")
        if not self.image_root.is_dir():
            raise SkinGenError(f"--images is not a folder: {self.image_root}")
        check_output_dir(self.out, overwrite=self.overwrite)

    @property
    def image_root(self) -> Path:
        return self.images if self.images is not None else self.src

    def command(self) -> str:
        words = ["skingen", "data", "prepare", str(self.src), "--format", self.format]
        words += ["--images", str(self.image_root), "--out", str(self.out)]
        words += ["--validation-fraction", str(self.validation_fraction), "--seed", str(self.seed)]
        words += ["--phash-distance", str(self.phash_distance)]
        optional = {"--licence": self.licence, "--taxonomy": self.taxonomy, "--templates": self.templates}
        for flag, value in optional.items():
            if value is not None:
                words += [flag, str(value)]
        return shlex.join(words)


@dataclass(frozen=True)
class MappedRecord:
    """A record whose label names a taxonomy condition."""

    record: RawRecord
    condition: str


def prepare(settings: PrepareSettings, *, progress: bool = True) -> DataCard:
    """Prepare ``settings.out`` completely or not at all; returns what the data card says."""
    # 1. Check the arguments and read the dataset's label files
    settings.check()
    dataset_format = get_format(settings.format)
    taxonomy = Taxonomy.load(settings.taxonomy)
    prompts = PromptBuilder.load(taxonomy, settings.templates)
    raw = dataset_format.read(settings.src, settings.image_root)
    # 2. Map labels onto the taxonomy, exactly; the rest is counted and left out
    mapped, unmapped = map_labels(raw.records, taxonomy)
    if not mapped:
        common = ", ".join(f"{label!r} ×{n}" for label, n in unmapped.most_common(10))
        raise SkinGenError(
            f"{settings.src}: no image has a condition of the taxonomy (most common labels: {common})"
        )
    # 3. Every image of a mapped label must exist and be readable: its perceptual hash
    hashes = perceptual_hashes(mapped, progress=progress)
    # 4. Drop near-duplicates, keeping the first
    keep = near_duplicate_filter(hashes, settings.phash_distance)
    duplicates = [
        Duplicate(str(item.record.image), str(mapped[first].record.image))
        for item, first in zip(mapped, keep, strict=True)
        if first is not None
    ]
    kept = [item for item, first in zip(mapped, keep, strict=True) if first is None]
    # 5. Split train/validation, stratified by condition × skin-tone group, by unit (SCIN: case)
    splits = stratified_split(kept, settings.validation_fraction, settings.seed)
    # 6. Name, caption and write every image, the metadata and the data card
    licence = settings.licence or dataset_format.licence
    card = DataCard(
        source=dataset_format.name,
        licence=licence,
        command=settings.command(),
        unmapped=dict(unmapped.most_common()),
        excluded=dict(raw.excluded),
        duplicates=duplicates,
        phash_distance=settings.phash_distance,
    )
    with atomic_directory(settings.out, overwrite=settings.overwrite) as staging:
        examples = _write_images(staging, kept, splits, prompts, dataset_format.name, licence, progress)
        write_metadata(staging, examples)
        card.count(examples)
        write_datacard(staging, card)
        load_dataset(staging)  # what training will read back
    return card


def map_labels(records: list[RawRecord], taxonomy: Taxonomy) -> tuple[list[MappedRecord], Counter[str]]:
    """Records whose label *is* a taxonomy id, name or synonym (:meth:`Taxonomy.lookup`); label → count of the rest."""
    mapped, unmapped = [], Counter()
    for record in records:
        condition = taxonomy.lookup(record.label) if record.label else None
        if condition is None:
            unmapped[record.label or "(no label)"] += 1
        else:
            mapped.append(MappedRecord(record, condition))
    return mapped, unmapped


def perceptual_hashes(items: list[MappedRecord], *, progress: bool) -> list[int]:
    """The 64-bit pHash (imagehash) of every image; a missing or unreadable one names its label row."""
    hashes = []
    for item in tqdm(items, desc="reading images", unit="image", disable=not progress):
        path = item.record.image
        if not path.is_file():
            raise SkinGenError(f"{item.record.where}: image not found: {path}")
        try:
            with Image.open(path) as image:
                image.load()
                hashes.append(perceptual_hash(image))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise SkinGenError(f"{item.record.where}: not a readable image: {path} ({exc})") from exc
    return hashes


def near_duplicate_filter(hashes: list[int], max_distance: int) -> list[int | None]:
    """For each image, None to keep it, or the index of an earlier kept image within ``max_distance`` bits.

    Hamming distances of one hash against all kept ones at once (numpy popcount), so 17k images take a
    second, not the minutes of pairwise Python comparisons.
    """
    kept = np.zeros(len(hashes), dtype=np.uint64)
    kept_index: list[int] = []
    result: list[int | None] = []
    for index, value in enumerate(hashes):
        if kept_index:
            distances = hash_distances(kept[: len(kept_index)], value)
            nearest = int(distances.argmin())
            if int(distances[nearest]) <= max_distance:
                result.append(kept_index[nearest])
                continue
        kept[len(kept_index)] = value
        kept_index.append(index)
        result.append(None)
    return result


def stratified_split(items: list[MappedRecord], fraction: float, seed: int) -> list[str]:
    """train/validation per item: in each condition × skin-tone group, ``round(n · fraction)`` of its n units
    (images, or SCIN cases) go to validation, at most n − 1, so every stratum with ≥ 2 units is in both.

    Each stratum is shuffled by its own ``random.Random(f"{seed}:{stratum}")``: the same seed gives the same
    split, and adding images of one condition does not reshuffle the others.
    """
    unit_of = [item.record.unit or f"#{index}" for index, item in enumerate(items)]
    strata: dict[tuple[str, str], list[str]] = {}
    for item, unit in zip(items, unit_of, strict=True):
        stratum = (item.condition, skin_tone_group(item.record.skin_tone) or "unknown")
        units = strata.setdefault(stratum, [])
        if unit not in units:
            units.append(unit)
    validation: set[str] = set()
    for (condition, group), units in sorted(strata.items()):
        shuffled = list(units)
        random.Random(f"{seed}:{condition}:{group}").shuffle(shuffled)
        n_validation = min(len(units) - 1, math.floor(len(units) * fraction + 0.5))
        validation.update(shuffled[:n_validation])
    return ["validation" if unit in validation else "train" for unit in unit_of]


def _write_images(
    root: Path,
    items: list[MappedRecord],
    splits: list[str],
    prompts: PromptBuilder,
    source: str,
    licence: str,
    progress: bool,
) -> list[Example]:
    examples, taken = [], set()
    for item, split in tqdm(
        list(zip(items, splits, strict=True)), desc="writing images", unit="image", disable=not progress
    ):
        record = item.record
        name = f"{IMAGES_DIR}/{item.condition}/{record.image.name}"
        n = 1
        while name in taken:  # two sources' files of one name (e.g. the folder format's sub-folders)
            n += 1
            name = f"{IMAGES_DIR}/{item.condition}/{record.image.stem}_{n}{record.image.suffix}"
        taken.add(name)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record.image, root / name)
        caption = prompts.caption(item.condition, skin_tone=record.skin_tone, body_site=record.body_site)
        examples.append(
            Example(
                name,
                item.condition,
                record.skin_tone,
                caption,
                source,
                licence,
                split,
                record.skin_tone_source,
                patient=record.unit,
                attribution=record.attribution,
            )
        )
    return examples
