"""Coverage of the FD and KD intervals on two Gaussians whose distance is known exactly.

The truth: X ~ N(0, I_d) and Y ~ N(δ·1/√d, diag(λ)) with λ evenly spaced in [0.5, 2] (``identical``: Y ~ X),
so FD = δ² + Σ(1 − √λᵢ)² and the MMD² of KID's kernel k(x, y) = (x·y/d + 1)³ follows from the Gaussian
moments (:func:`kernel_mean`, checked against a Monte-Carlo mean in tests/test_distances.py).

Two methods are compared on the same draws:

- **new** (``skingen evaluate``): FD∞ and KD with their delete-a-group jackknife intervals
  (:mod:`skingen.evaluation.distances`);
- **old** (before issue 22): the percentile bootstrap of the plug-in FD, both sides resampled with
  replacement (``--fid-bootstrap``), and ``kid ± std`` over 100 subsets of min(1000, n) images.

    PYTHONPATH=. python bench/interval_coverage.py                       # d = 16 and 64, n = 50, 200, 1000
    PYTHONPATH=. python bench/interval_coverage.py --dims 16 --sizes 50 200 --reps 200
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from skingen.evaluation import distances, metrics


def kernel_mean(a: np.ndarray, cov_a: np.ndarray, b: np.ndarray, cov_b: np.ndarray, d: int) -> float:
    """E[(x·y/d + 1)³] for independent x ~ N(a, A), y ~ N(b, B).

    Given y, z = x·y/d + 1 ~ N(m, v) with m = 1 + a·y/d, v = yᵀAy/d², so E[z³ | y] = m³ + 3mv; then
    t = a·y ~ N(a·b, aᵀBa) gives E[m³], and E[(a·y)(yᵀAy)] = a·b (bᵀAb + tr AB) + 2aᵀBAb gives E[mv].
    """
    p, q = a @ b, a @ cov_b @ a
    mean_m3 = 1 + 3 * p / d + 3 * (p**2 + q) / d**2 + (p**3 + 3 * p * q) / d**3
    quadratic = b @ cov_a @ b + np.trace(cov_a @ cov_b)
    mean_mv = quadratic / d**2 + (p * quadratic + 2 * a @ cov_b @ cov_a @ b) / d**3
    return float(mean_m3 + 3 * mean_mv)


@dataclass(frozen=True)
class GaussianPair:
    """Real ~ N(0, I), generated ~ N(shift·1/√d, diag(scales²)); the exact FD and MMD² between them."""

    d: int
    shift: float = 0.5
    identical: bool = False

    @property
    def mean(self) -> np.ndarray:
        return np.zeros(self.d) if self.identical else np.full(self.d, self.shift / np.sqrt(self.d))

    @property
    def variances(self) -> np.ndarray:
        return np.ones(self.d) if self.identical else np.linspace(0.5, 2.0, self.d)

    @property
    def fd(self) -> float:
        return float((self.mean**2).sum() + ((1 - np.sqrt(self.variances)) ** 2).sum())

    @property
    def mmd(self) -> float:
        zero, eye, mean, cov = np.zeros(self.d), np.eye(self.d), self.mean, np.diag(self.variances)
        return (
            kernel_mean(zero, eye, zero, eye, self.d)
            + kernel_mean(mean, cov, mean, cov, self.d)
            - 2 * kernel_mean(zero, eye, mean, cov, self.d)
        )

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        real = rng.normal(size=(n, self.d))
        fake = rng.normal(size=(n, self.d)) * np.sqrt(self.variances) + self.mean
        return torch.from_numpy(real), torch.from_numpy(fake)


@dataclass(frozen=True)
class Coverage:
    """Shares of the repetitions whose interval held the truth, and whose interval held its own estimate."""

    fd: float
    kd: float
    fd_estimate_inside: float
    kd_estimate_inside: float


def new_intervals(
    real: torch.Tensor, fake: torch.Tensor, rng: np.random.Generator, groups: int = 20
) -> tuple[distances.Interval, distances.Interval]:
    fd = distances.fd_with_interval(real, fake, groups=groups, confidence=0.95, rng=rng).inf
    kd = distances.kd_with_interval(real, fake, groups=groups, confidence=0.95, rng=rng).interval
    return fd, kd


def old_intervals(
    real: torch.Tensor, fake: torch.Tensor, rng: np.random.Generator, replicates: int = 50
) -> tuple[distances.Interval, distances.Interval]:
    """The previous release: FD's percentile bootstrap with replacement; KID ± its std over 100 subsets of
    min(1000, n) images (every subset the whole set once n ≤ 1000)."""
    plugin = distances.fd(real, fake)
    low, high = metrics.bootstrap_statistic(
        lambda r, f: distances.fd(real[r], fake[f]), len(real), len(fake), replicates=replicates, rng=rng
    )
    size = min(1000, len(real), len(fake))
    if size == len(real) == len(fake):  # every subset is the whole set, in another order: the same value
        draws = [distances.kd(real, fake)] * 100
    else:
        draws = [
            distances.kd(
                real[rng.choice(len(real), size, replace=False)],
                fake[rng.choice(len(fake), size, replace=False)],
            )
            for _ in range(100)
        ]
    kid, spread = float(np.mean(draws)), float(np.std(draws))
    return distances.Interval(plugin, low, high, 0.0), distances.Interval(
        kid, kid - spread, kid + spread, spread
    )


def coverage(pair: GaussianPair, n: int, reps: int, *, method: str = "new", seed: int = 0) -> Coverage:
    """``reps`` independent draws of n real and n generated images; each method's intervals against the truth."""
    rng = np.random.default_rng([seed, pair.d, n])
    intervals = new_intervals if method == "new" else old_intervals
    hits = np.zeros(4)
    for _ in range(reps):
        fd, kd = intervals(*pair.sample(n, rng), rng)
        hits += [
            fd.low <= pair.fd <= fd.high,
            kd.low <= pair.mmd <= kd.high,
            fd.low <= fd.estimate <= fd.high,
            kd.low <= kd.estimate <= kd.high,
        ]
    return Coverage(*(hits / reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--old-reps", type=int, default=100, help="repetitions of the (slower) old method")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| case | d | n | FD | MMD² | new: FD∞ CI covers | new: KD CI covers | old: FD CI covers "
          "| old: FD CI holds its estimate | old: KID ± std covers | seconds |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in args.dims:
        for identical in (False, True):
            pair = GaussianPair(d, identical=identical)
            for n in args.sizes:
                start = time.perf_counter()
                new = coverage(pair, n, args.reps)
                old = coverage(pair, n, args.old_reps, method="old")
                assert new.fd_estimate_inside == new.kd_estimate_inside == 1.0
                print(
                    f"| {'identical' if identical else 'shifted'} | {d} | {n:,} | {pair.fd:.3f} | {pair.mmd:.4g} "
                    f"| {new.fd:.3f} | {new.kd:.3f} | {old.fd:.3f} | {old.fd_estimate_inside:.3f} | {old.kd:.3f} "
                    f"| {time.perf_counter() - start:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
