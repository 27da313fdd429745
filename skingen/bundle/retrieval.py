"""Retrieved real references: for a case, the k real images of the AI's diagnosis nearest to its photo.

The control SkinGEN lacked: real example photos of the diagnosed condition beside (or instead of) generated
ones. The candidates are the images of a prepared set (``skingen data prepare``'s ``metadata.csv``) labelled
with the AI's diagnosis — so a deliberately wrong diagnosis retrieves images of the wrong condition, as
generated references do. They are ranked by cosine distance to the case photo in the space of a local image
encoder (:class:`skingen.evaluation.features.FeatureExtractor`), images of the case's skin-tone group first
when both are known. Never offered: the case photo itself or a near-duplicate of it (pHash within
``phash_distance`` bits, as ``skingen data prepare`` dedupes), nor any image of the case's patient when both
the case and the set name patients.

Each condition's candidates are embedded once, on first use, in the set's order and batches, so every
process of a distributed build ranks them identically. Torch-free: the embedder is passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from formats.bundle import RetrievalProvenance
from skingen.dataset import Example, PreparedDataset
from skingen.errors import SkinGenError
from skingen.phash import hash_distances, perceptual_hash
from skingen.skin_tone import skin_tone_group
from skingen.sources import load_image

log = logging.getLogger(__name__)


class ImageEmbedder(Protocol):
    """What retrieval needs of a feature extractor: one row of features per image path."""

    def __call__(self, paths: Sequence[Path], *, desc: str = ...) -> object: ...


@dataclass(frozen=True)
class RetrievalSettings:
    """``--retrieve DATA --features PATH --retrieve-k K --retrieve-phash-distance N``."""

    data: Path
    features: Path
    k: int = 3
    phash_distance: int = 4

    def check(self) -> None:
        if self.k < 1:
            raise SkinGenError(f"--retrieve-k: must be ≥ 1, got {self.k}")
        if not 0 <= self.phash_distance <= 64:
            raise SkinGenError(
                f"--retrieve-phash-distance must be 0–64 bits (of a 64-bit pHash), got {self.phash_distance}"
            )


@dataclass(frozen=True)
class Query:
    """What retrieval knows of a case photo."""

    feature: np.ndarray
    phash: int
    skin_tone_group: str | None = None
    patient: str = ""


@dataclass(frozen=True)
class Candidates:
    """The images of one condition: their features (unit length), pHashes, skin-tone groups and patients."""

    examples: tuple[Example, ...]
    features: np.ndarray
    hashes: np.ndarray

    @property
    def groups(self) -> np.ndarray:
        return np.array([e.skin_tone_group or "" for e in self.examples], dtype=object)

    @property
    def patients(self) -> np.ndarray:
        return np.array([e.patient for e in self.examples], dtype=object)


@dataclass(frozen=True)
class Neighbour:
    """A retrieved image: 1-based ``rank``, cosine ``distance`` to the case photo."""

    example: Example
    rank: int
    distance: float
    same_skin_tone_group: bool | None


def unit_rows(features: object) -> np.ndarray:
    """Features (a tensor or array, ``(n, d)``) as float64 rows of length 1, so a dot product is a cosine."""
    rows = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def rank_neighbours(query: Query, candidates: Candidates, k: int, phash_distance: int) -> list[Neighbour]:
    """The ``k`` nearest allowed candidates: same skin-tone group first (when the query's is known), then by
    cosine distance, ties in the set's order. Excluded: pHash within ``phash_distance`` bits of the query
    (the photo itself, or a copy), and the query's patient."""
    distances = np.clip(1.0 - candidates.features @ query.feature, 0.0, 2.0)
    allowed = hash_distances(candidates.hashes, query.phash) > phash_distance
    if query.patient:
        allowed &= candidates.patients != query.patient
    same = candidates.groups == query.skin_tone_group if query.skin_tone_group else None
    other_group = np.zeros(len(distances), dtype=bool) if same is None else ~same
    order = np.lexsort((np.arange(len(distances)), distances, other_group))  # last key sorts first
    chosen = [int(i) for i in order if allowed[i]][:k]
    return [
        Neighbour(candidates.examples[i], rank, float(distances[i]), None if same is None else bool(same[i]))
        for rank, i in enumerate(chosen, start=1)
    ]


class ReferenceRetriever:
    """Retrieves, for a case photo and the AI's diagnosis, the real images to show beside it."""

    def __init__(
        self,
        dataset: PreparedDataset,
        embed: ImageEmbedder,
        settings: RetrievalSettings,
        *,
        feature_model_type: str = "",
    ) -> None:
        settings.check()
        self.dataset = dataset
        self.embed = embed
        self.settings = settings
        self.feature_model_type = feature_model_type
        self._by_condition: dict[str, list[Example]] = {}
        for example in dataset.examples:
            self._by_condition.setdefault(example.condition, []).append(example)
        self._candidates: dict[str, Candidates] = {}

    def candidates(self, condition: str) -> Candidates | None:
        """The condition's images, embedded and hashed on first use; None when the set has none."""
        examples = self._by_condition.get(condition)
        if not examples:
            return None
        if condition not in self._candidates:
            paths = [self.dataset.path(e) for e in examples]
            features = unit_rows(self.embed(paths, desc=f"retrieval set: {condition}"))
            hashes = np.array(
                [perceptual_hash(load_image(p, "retrieval set image")) for p in paths], dtype=np.uint64
            )
            self._candidates[condition] = Candidates(tuple(examples), features, hashes)
        return self._candidates[condition]

    def __call__(
        self,
        case_id: str,
        photo_path: Path,
        photo: Image.Image,
        condition: str,
        *,
        skin_tone: str | None,
        patient: str | None,
    ) -> list[Neighbour]:
        """The nearest real images of ``condition`` for this case photo (fewer, with a warning, if the set
        has fewer allowed ones)."""
        candidates = self.candidates(condition)
        if candidates is None:
            log.warning("case %s: the retrieval set has no images of %s", case_id, condition)
            return []
        query = Query(
            feature=unit_rows(self.embed([photo_path], desc="case photo"))[0],
            phash=perceptual_hash(photo),
            skin_tone_group=skin_tone_group(skin_tone),
            patient=patient or "",
        )
        neighbours = rank_neighbours(query, candidates, self.settings.k, self.settings.phash_distance)
        if len(neighbours) < self.settings.k:
            log.warning(
                "case %s: only %d of %d real images of %s can be shown (the rest are the case photo, its "
                "near-duplicates or its patient's)",
                case_id,
                len(neighbours),
                self.settings.k,
                condition,
            )
        return neighbours

    def provenance(self) -> RetrievalProvenance:
        settings = self.settings
        return RetrievalProvenance(
            data=str(settings.data),
            data_sha256=self.dataset.content_hash,
            features=str(settings.features),
            feature_model_type=self.feature_model_type,
            k=settings.k,
            phash_distance=settings.phash_distance,
            same_patient_excluded=any(e.patient for e in self.dataset.examples),
        )
