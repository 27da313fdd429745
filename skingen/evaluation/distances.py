"""Distances between two feature sets, with intervals that cover the true distance: Fréchet distance (FD) and
kernel distance (KD, the unbiased MMD² with KID's cubic polynomial kernel).

Why not the bootstrap: resampling images *with replacement* duplicates images, which shrinks the covariance
rank and inflates FD (identical Gaussians, d = 64, n = 200: FD 11.4, "95 % CI" 19.2–22.0 — the interval
excluded its own estimate), and FD's plug-in estimate is biased upward by O(d/n) anyway (Chong & Forsyth,
CVPR 2020), so an interval around it cannot cover the population distance at small n.

What is done instead, per side, the images split into ``groups`` blocks at random (a delete-a-group jackknife,
two-sample form of Arvesen 1969):

- **FD**: the plug-in value (what torchmetrics, clean-fid and papers report at their n) and the jackknife
  bias-corrected ``fd_inf``: ``θ̂ − Σ_side (G−1)(θ̄_(−g) − θ̂)``. Removing one block of n/G images moves the
  bias from c/n to c/(n − n/G), so this is exactly the linear extrapolation in 1/n to n = ∞ that Chong &
  Forsyth fit ("FID∞"), averaged over the G deletions. Its interval is ``fd_inf ± t·se`` with the jackknife
  standard error and Welch–Satterthwaite degrees of freedom; the estimate is always inside its interval.
- **KD**: the unbiased U-statistic over all pairs (no subsets, so no subset-size choice and no zero-spread
  "interval" when the subset is the whole set), with the same jackknife standard error and t interval.

Coverage of both intervals is measured in ``bench/bench_interval_coverage.py`` on Gaussians with a known
distance (table in docs/performance.md). FD over n ≲ a few × d is still unreliable: see
:func:`small_n_for_dimension`. Torch does the linear algebra in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

# distance blocks are kept to about this many entries (float64: 64 MiB), whatever the set sizes
_BLOCK_ENTRIES = 1 << 23
# FD needs more than this many images per feature dimension before its jackknife interval reaches the nominal
# coverage (bench/bench_interval_coverage.py); fewer, and ``small_n_for_dimension`` warns
MIN_IMAGES_PER_DIMENSION = 2


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval (``low``, ``high``) and the jackknife standard error."""

    estimate: float
    low: float
    high: float
    se: float

    @property
    def ci(self) -> tuple[float, float]:
        return self.low, self.high


@dataclass(frozen=True)
class FrechetResult:
    """``plugin``: FD of the two sets as they are (biased up by O(d/n)); ``inf``: bias-corrected, with interval
    (None when a side has fewer than 2 blocks' worth of images)."""

    plugin: float
    inf: Interval | None


@dataclass(frozen=True)
class KernelResult:
    """``estimate``: the unbiased MMD²; ``interval``: its jackknife interval (None with < 2 blocks per side)."""

    estimate: float
    interval: Interval | None


def frechet_distance(
    mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """‖μ₁−μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, through symmetric eigen-decompositions (no complex
    ``sqrtm``, and singular covariances — n ≤ d — are fine: negative rounding is clipped to 0)."""
    root1 = _psd_sqrt(cov1)
    return _fd_with_root(mean1, cov1, mean2, cov2, root1)


def fd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Plug-in Fréchet distance of two feature sets (covariances with n − 1, as torchmetrics and clean-fid).

    With far fewer images than dimensions (a group in Inception's 2048-d space) the covariances have rank < n
    and the d×d route wastes its work: then tr (Σ₁Σ₂)^½ is the sum of the singular values of the n₁×n₂ matrix
    A₁A₂ᵀ/√((n₁−1)(n₂−1)) of the centred features (the non-zero eigenvalues of Σ₁Σ₂ are its squared singular
    values) — the same number at a fraction of the cost.
    """
    real, fake = real.double(), fake.double()
    if _low_rank(real, fake):
        return _fd_low_rank(real, fake)
    return frechet_distance(real.mean(0), _cov(real), fake.mean(0), _cov(fake))


def fd_with_interval(
    real: torch.Tensor, fake: torch.Tensor, *, groups: int, confidence: float, rng: np.random.Generator
) -> FrechetResult:
    """Plug-in FD and the jackknife FD∞ with its interval (see the module docstring); ``groups`` blocks per
    side (fewer when a side has fewer images), images assigned to blocks at random by ``rng``."""
    real, fake = real.double(), fake.double()
    if _low_rank(real, fake):  # far fewer images than dimensions: recompute each replicate by the n×n route
        return _fd_by_recomputing(real, fake, groups, confidence, rng)
    centre = torch.cat([real, fake]).mean(0)  # shift-invariant; keeps X'X − n μμ' free of cancellation
    sides = [_Moments.of(real - centre, groups, rng), _Moments.of(fake - centre, groups, rng)]
    full = [side.whole() for side in sides]
    roots = [_psd_sqrt(cov) for _, cov in full]
    plugin = _fd_with_root(*full[0], *full[1], roots[0])
    if min(side.groups for side in sides) < 2:
        return FrechetResult(plugin, None)
    deleted = []
    for k, side in enumerate(sides):
        other = full[1 - k]
        # tr sqrt(Σ₁Σ₂) is symmetric in its arguments: hold the other side's root fixed, one eigvalsh each
        deleted.append(
            np.array([_fd_with_root(*other, *side.without(g), roots[1 - k]) for g in range(side.groups)])
        )
    return FrechetResult(plugin, _jackknife(plugin, deleted, confidence))


def kd_with_interval(
    real: torch.Tensor, fake: torch.Tensor, *, groups: int, confidence: float, rng: np.random.Generator
) -> KernelResult:
    """Unbiased MMD² with KID's kernel k(x, y) = (x·y/d + 1)³ over all pairs, and its jackknife interval.

    The kernel sums are accumulated per pair of blocks, so every delete-a-block replicate is exact arithmetic
    on a G×G table: the cost is the three kernel matrices once (in memory-bounded blocks). Needs ≥ 2 images
    per side; the interval needs ≥ 2 blocks per side.
    """
    real, fake = real.double(), fake.double()
    d = real.shape[1]
    labels = [_block_labels(len(real), groups, rng), _block_labels(len(fake), groups, rng)]
    xx = _block_kernel_sums(real, real, labels[0], labels[0], d, exclude_diagonal=True)
    yy = _block_kernel_sums(fake, fake, labels[1], labels[1], d, exclude_diagonal=True)
    xy = _block_kernel_sums(real, fake, labels[0], labels[1], d, exclude_diagonal=False)
    sizes = [np.bincount(lab) for lab in labels]

    def mmd(keep_x: np.ndarray, keep_y: np.ndarray) -> float:
        m, n = sizes[0][keep_x].sum(), sizes[1][keep_y].sum()
        sxx = xx[np.ix_(keep_x, keep_x)].sum()
        syy = yy[np.ix_(keep_y, keep_y)].sum()
        sxy = xy[np.ix_(keep_x, keep_y)].sum()
        return float(sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n))

    all_x, all_y = np.ones(len(sizes[0]), bool), np.ones(len(sizes[1]), bool)
    estimate = mmd(all_x, all_y)
    if min(len(s) for s in sizes) < 2:
        return KernelResult(estimate, None)
    deleted = [
        np.array([mmd(all_x & (np.arange(len(all_x)) != g), all_y) for g in range(len(all_x))]),
        np.array([mmd(all_x, all_y & (np.arange(len(all_y)) != g)) for g in range(len(all_y))]),
    ]
    # a U-statistic is unbiased: no bias correction, only the jackknife standard error around it
    return KernelResult(estimate, _jackknife(estimate, deleted, confidence, correct_bias=False))


def kd(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The unbiased MMD² (KID's kernel) over all pairs, without an interval."""
    return kd_with_interval(real, fake, groups=1, confidence=0.95, rng=np.random.default_rng(0)).estimate


def fd_at_equal_n(
    real: torch.Tensor, fake: torch.Tensor, n_real: int, n_fake: int, *, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Plug-in FD of ``draws`` random subsets of ``n_real`` real and ``n_fake`` generated images (without
    replacement): FD's bias depends on n, so groups compared at the same n have the same bias."""
    real, fake = real.double(), fake.double()
    out = np.empty(draws)
    for i in range(draws):
        r = torch.from_numpy(rng.choice(len(real), n_real, replace=False))
        f = torch.from_numpy(rng.choice(len(fake), n_fake, replace=False))
        out[i] = fd(real[r], fake[f])
    return out


def small_n_for_dimension(n: int, dim: int) -> bool:
    """Whether ``n`` images are too few for an FD in ``dim`` dimensions (see MIN_IMAGES_PER_DIMENSION)."""
    return n < MIN_IMAGES_PER_DIMENSION * dim


# --- internals ---------------------------------------------------------------------------------------------


def _fd_by_recomputing(
    real: torch.Tensor, fake: torch.Tensor, groups: int, confidence: float, rng: np.random.Generator
) -> FrechetResult:
    """:func:`fd_with_interval` for n < d: each leave-a-block-out FD recomputed from the images (the same
    blocks, drawn in the same order)."""
    labels = [_block_labels(len(real), groups, rng), _block_labels(len(fake), groups, rng)]
    plugin = fd(real, fake)
    if min(int(lab.max()) + 1 for lab in labels) < 2:
        return FrechetResult(plugin, None)
    deleted = []
    for k, label in enumerate(labels):
        values = []
        for g in range(int(label.max()) + 1):
            keep = torch.from_numpy(np.flatnonzero(label != g))
            values.append(fd(real[keep], fake) if k == 0 else fd(real, fake[keep]))
        deleted.append(np.array(values))
    return FrechetResult(plugin, _jackknife(plugin, deleted, confidence))


def _low_rank(real: torch.Tensor, fake: torch.Tensor) -> bool:
    """Whether the n×n route is cheaper: an n₁×n₂×d product and an eigvalsh of min(n) against a d×d one."""
    return 2 * max(len(real), len(fake)) <= real.shape[1]


def _fd_low_rank(real: torch.Tensor, fake: torch.Tensor) -> float:
    a, b = real - real.mean(0), fake - fake.mean(0)
    scale = ((len(real) - 1) * (len(fake) - 1)) ** 0.5
    cross = a @ b.T
    gram = cross.T @ cross if cross.shape[1] <= cross.shape[0] else cross @ cross.T  # singular values²
    trace_sqrt = torch.linalg.eigvalsh(gram).clamp(min=0).sqrt().sum() / scale
    traces = (a * a).sum() / (len(real) - 1) + (b * b).sum() / (len(fake) - 1)
    return float(((real.mean(0) - fake.mean(0)) ** 2).sum() + traces - 2 * trace_sqrt)


def _cov(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(0)
    return centred.T @ centred / (len(x) - 1)


def _psd_sqrt(cov: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def _fd_with_root(
    mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor, root1: torch.Tensor
) -> float:
    """FD given Σ₁^½ (``root1``): the eigenvalues of Σ₁^½Σ₂Σ₁^½ are those of Σ₁Σ₂."""
    product = root1 @ cov2 @ root1
    eigenvalues = torch.linalg.eigvalsh((product + product.T) / 2)
    trace_sqrt = eigenvalues.clamp(min=0).sqrt().sum()
    value = ((mean1 - mean2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return float(value)


def _block_labels(n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
    """Each of ``n`` items' block, ``min(groups, n // 2)`` blocks of near-equal size, assigned at random: every
    block holds ≥ 2 items, so leaving one out keeps ≥ 2 (a covariance or an unbiased MMD² needs 2); with
    fewer than 4 items there is one block, and so no interval."""
    count = max(1, min(groups, n // 2))
    return rng.permutation(np.arange(n) % count)


@dataclass(frozen=True)
class _Moments:
    """One side's first and second moments, whole and per block, so each leave-a-block-out covariance is a
    subtraction instead of a pass over the images."""

    n: int
    total: torch.Tensor
    outer: torch.Tensor
    sizes: np.ndarray
    block_totals: torch.Tensor
    block_outers: list[torch.Tensor]

    @classmethod
    def of(cls, x: torch.Tensor, groups: int, rng: np.random.Generator) -> _Moments:
        labels = _block_labels(len(x), groups, rng)
        count = int(labels.max()) + 1
        index = [torch.from_numpy(np.flatnonzero(labels == g)) for g in range(count)]
        blocks = [x[i] for i in index]
        return cls(
            n=len(x),
            total=x.sum(0),
            outer=x.T @ x,
            sizes=np.array([len(i) for i in index]),
            block_totals=torch.stack([b.sum(0) for b in blocks]),
            block_outers=[b.T @ b for b in blocks],
        )

    @property
    def groups(self) -> int:
        return len(self.sizes)

    def whole(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._moments(self.n, self.total, self.outer)

    def without(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._moments(
            self.n - int(self.sizes[g]), self.total - self.block_totals[g], self.outer - self.block_outers[g]
        )

    @staticmethod
    def _moments(n: int, total: torch.Tensor, outer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = total / n
        return mean, (outer - n * torch.outer(mean, mean)) / (n - 1)


def _jackknife(
    estimate: float, deleted: list[np.ndarray], confidence: float, *, correct_bias: bool = True
) -> Interval:
    """Two-sample delete-a-group jackknife: bias-corrected estimate (or ``estimate`` itself) ± t·se, with
    Welch–Satterthwaite degrees of freedom from the per-side variance estimates."""
    variances, corrected = [], estimate
    for values in deleted:
        g = len(values)
        mean = values.mean()
        variances.append((g - 1) / g * ((values - mean) ** 2).sum())
        if correct_bias:
            corrected -= (g - 1) * (mean - estimate)
    variance = sum(variances)
    se = float(np.sqrt(variance))
    denominator = sum(v**2 / (len(values) - 1) for v, values in zip(variances, deleted, strict=True))
    df = variance**2 / denominator if denominator > 0 else float(min(len(v) for v in deleted) - 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, max(df, 1.0))) * se
    return Interval(float(corrected), float(corrected) - half, float(corrected) + half, se)


def _block_kernel_sums(
    x: torch.Tensor,
    y: torch.Tensor,
    labels_x: np.ndarray,
    labels_y: np.ndarray,
    d: int,
    *,
    exclude_diagonal: bool,
) -> np.ndarray:
    """``S[g, h]`` = Σ k(xᵢ, yⱼ) over i in block g of x, j in block h of y (i ≠ j when x is y)."""
    one_x = torch.nn.functional.one_hot(torch.from_numpy(labels_x), int(labels_x.max()) + 1).double()
    one_y = torch.nn.functional.one_hot(torch.from_numpy(labels_y), int(labels_y.max()) + 1).double()
    sums = torch.zeros(one_x.shape[1], one_y.shape[1], dtype=torch.float64)
    rows = max(1, _BLOCK_ENTRIES // max(len(y), 1))
    for start in range(0, len(x), rows):
        kernel = (x[start : start + rows] @ y.T / d + 1) ** 3
        if exclude_diagonal:
            span = torch.arange(start, min(start + rows, len(x)))
            kernel[span - start, span] = 0.0
        sums += one_x[start : start + rows].T @ (kernel @ one_y)
    return sums.numpy()
