"""The metrics, on features already extracted (``(n, d)`` float tensors), so each image is embedded once.

Which comes from where, and why:

- **FD, KD** (Fréchet and kernel distance, FID/KID in Inception space) are in :mod:`.distances`, with
  jackknife intervals; the tests check them against torchmetrics and clean-fid.
- **Precision, recall, density, coverage** (Naeem et al. 2020, arXiv 2002.09797): written here. torchmetrics has
  none; ``prdc`` (the authors' package) is unmaintained since 2020, prints to stdout and builds full
  ``n×n`` distance matrices (about 10 GB at 20k images), so this is the same k-NN definition computed in
  blocks, and it also returns the per-image indicators the bootstrap resamples.
- **CLIP score**: written here (``100·cos(image, prompt)`` per image). torchmetrics' ``CLIPScore`` refuses local
  model paths, breaks with transformers 5 (``get_*_features`` return an output object) and only returns
  ``max(mean, 0)``, never the per-image scores a bootstrap or a per-group breakdown needs.
- **Diversity** and the **bootstrap**: written here (a mean of distances; a percentile bootstrap), nothing to import.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# distance blocks are kept to about this many entries (float64: 64 MiB), whatever the set sizes
_BLOCK_ENTRIES = 1 << 23


@dataclass(frozen=True)
class Manifold:
    """Per-image results of the k-NN manifold comparison; the four metrics are their means.

    ``precision``: each fake image lies inside some real image's k-NN ball; ``density``: how many real balls
    contain it, divided by k; ``recall``: each real image lies inside some fake ball; ``coverage``: each real
    ball contains at least one fake image.
    """

    precision: np.ndarray
    density: np.ndarray
    recall: np.ndarray
    coverage: np.ndarray


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point (as prdc: the (k+1)-th smallest, self first)."""
    features = features.double()
    radii = []
    for block in _blocks(features, len(features)):
        distances = torch.cdist(block, features)
        radii.append(distances.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def manifold(real: torch.Tensor, fake: torch.Tensor, k: int) -> Manifold:
    """Precision / recall / density / coverage per image (Naeem et al. 2020), in memory-bounded blocks.

    Needs more than ``k`` images on each side. Same strict ``<`` comparisons as the authors' ``prdc``; an image
    present in both sets ties a distance with a k-NN radius, which float rounding then decides.
    """
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    precision, density = [], []
    recall = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), torch.inf, dtype=torch.float64)
    start = 0
    for block in _blocks(fake, len(real)):
        distances = torch.cdist(block, real)  # (fakes in block, reals)
        inside = distances < real_radii[None, :]
        precision.append(inside.any(dim=1))
        density.append(inside.sum(dim=1).double() / k)
        block_radii = fake_radii[start : start + len(block)]
        recall |= (distances < block_radii[:, None]).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, distances.min(dim=0).values)
        start += len(block)
    return Manifold(
        precision=torch.cat(precision).numpy().astype(float),
        density=torch.cat(density).numpy(),
        recall=recall.numpy().astype(float),
        coverage=(nearest_fake < real_radii).numpy().astype(float),
    )


def clip_scores(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> np.ndarray:
    """``100·cos`` between each image and its own text (row i with row i); not clamped per image."""
    cosine = torch.nn.functional.cosine_similarity(image_embeddings.double(), text_embeddings.double(), dim=1)
    return (100.0 * cosine).numpy()


def diversity(features: torch.Tensor, groups: Sequence[Hashable]) -> np.ndarray:
    """Per image: its mean distance to the other images of its group (a condition); NaN if alone.

    The mean over the images of one group is that group's mean pairwise feature distance.
    """
    out = np.full(len(features), np.nan)
    labels = np.array([str(g) for g in groups], dtype=object)
    features = features.double()
    for label in dict.fromkeys(labels):
        index = np.flatnonzero(labels == label)
        if len(index) < 2:
            continue
        members = features[index]
        sums = torch.cat([torch.cdist(block, members).sum(dim=1) for block in _blocks(members, len(members))])
        out[index] = (sums / (len(index) - 1)).numpy()
    return out


def bootstrap_ci(
    values: np.ndarray, *, replicates: int, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped); None if fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2 or replicates < 1:
        return None
    means = []
    chunk = max(1, _BLOCK_ENTRIES // len(values))
    for start in range(0, replicates, chunk):
        index = rng.integers(0, len(values), (min(chunk, replicates - start), len(values)))
        means.append(values[index].mean(axis=1))
    return _percentiles(np.concatenate(means), confidence)


def bootstrap_statistic(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    n_real: int,
    n_fake: int,
    *,
    replicates: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of a two-sample statistic, both sides resampled with replacement.

    Not for FD or KD on their own (duplicated images inflate them; :mod:`.distances` has their intervals);
    ``skingen lora grid`` uses it for the difference between two runs on the same images.
    """
    if replicates < 1:
        return None
    draws = [
        statistic(rng.integers(0, n_real, n_real), rng.integers(0, n_fake, n_fake)) for _ in range(replicates)
    ]
    return _percentiles(np.asarray(draws), confidence)


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def _blocks(rows: torch.Tensor, columns: int):
    """``rows`` in slices small enough that a (slice × columns) distance matrix stays bounded."""
    size = max(1, _BLOCK_ENTRIES // max(columns, 1))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
