"""FD and KD with their intervals (``skingen.evaluation.distances``): the point values against torchmetrics and
SciPy, the jackknife against recomputing the distance without each block, the known-truth Gaussians of
``bench/interval_coverage.py`` against Monte Carlo, and (slow) the coverage of the intervals against the truth,
where the previous bootstrap fails."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")
scipy_linalg = pytest.importorskip("scipy.linalg")
pytest.importorskip("torchmetrics")

from bench.interval_coverage import GaussianPair, coverage, kernel_mean  # noqa: E402
from skingen.evaluation import distances  # noqa: E402


def _features(n: int, d: int = 16, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)) + shift)


class _PassThrough(torch.nn.Module):
    """torchmetrics' feature extractor slot, given features already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.double()


def test_fd_equals_torchmetrics_and_scipy() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _features(80, seed=1), _features(70, shift=0.5, seed=2)
    reference = FrechetInceptionDistance(feature=_PassThrough(16))
    reference.update(real, real=True)
    reference.update(fake, real=False)
    r, f = real.numpy(), fake.numpy()
    covmean = scipy_linalg.sqrtm(np.cov(r, rowvar=False) @ np.cov(f, rowvar=False)).real
    by_scipy = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(
        np.cov(r, rowvar=False) + np.cov(f, rowvar=False) - 2 * covmean
    )
    assert distances.fd(real, fake) == pytest.approx(float(reference.compute()), rel=1e-9)
    assert distances.fd(real, fake) == pytest.approx(by_scipy, rel=1e-9)
    assert distances.fd(real, real) == pytest.approx(0.0, abs=1e-9)


def _mmd_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with KID's polynomial kernel (x·y/d + 1)³, any two sizes."""
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def test_kd_equals_torchmetrics_kid_on_the_whole_set(monkeypatch) -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _features(60, seed=3), _features(60, shift=0.3, seed=4)
    # one "subset" of the whole set: torchmetrics' KID is then the unbiased MMD² of all the images
    reference = KernelInceptionDistance(feature=_PassThrough(16), subsets=1, subset_size=60)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    assert distances.kd(real, fake) == pytest.approx(float(reference.compute()[0]), rel=1e-9)
    # unequal sizes, and the kernel sums accumulated over many small blocks
    monkeypatch.setattr(distances, "_BLOCK_ENTRIES", 97)
    other = _features(45, shift=0.3, seed=5)
    result = distances.kd_with_interval(real, other, groups=7, confidence=0.95, rng=np.random.default_rng(0))
    assert result.estimate == pytest.approx(_mmd_unbiased(real.numpy(), other.numpy()), rel=1e-9)


def _labels(n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
    """The documented block draw: ``n`` items dealt into ``groups`` blocks (≤ n // 2), then permuted."""
    return rng.permutation(np.arange(n) % min(groups, n // 2))


@pytest.mark.parametrize(("statistic", "d"), [("fd", 6), ("fd", 128), ("kd", 6)])  # FD: n > d, n ≪ d
def test_jackknife_equals_recomputing_without_each_block(statistic: str, d: int) -> None:
    real, fake = _features(53, d=d, seed=6), _features(41, d=d, shift=0.4, seed=7)
    groups, confidence = 5, 0.9
    rng = np.random.default_rng(11)
    if statistic == "fd":
        result = distances.fd_with_interval(real, fake, groups=groups, confidence=confidence, rng=rng).inf
        plain = distances.fd
    else:
        result = distances.kd_with_interval(
            real, fake, groups=groups, confidence=confidence, rng=rng
        ).interval
        plain = distances.kd
    rng = np.random.default_rng(11)  # the same blocks: real's labels first, then generated's
    labels = (_labels(53, groups, rng), _labels(41, groups, rng))
    full = plain(real, fake)
    estimate, variances, dfs = full, [], []
    for side, label in enumerate(labels):
        deleted = []
        for g in range(groups):
            keep = torch.from_numpy(np.flatnonzero(label != g))
            deleted.append(plain(real[keep], fake) if side == 0 else plain(real, fake[keep]))
        deleted = np.array(deleted)
        if statistic == "fd":
            estimate -= (groups - 1) * (deleted.mean() - full)  # linear extrapolation in 1/n (FD∞)
        variances.append((groups - 1) / groups * ((deleted - deleted.mean()) ** 2).sum())
        dfs.append(groups - 1)
    se = np.sqrt(sum(variances))
    df = sum(variances) ** 2 / sum(v**2 / f for v, f in zip(variances, dfs, strict=True))
    from scipy import stats

    half = stats.t.ppf(0.95, df) * se
    assert result.estimate == pytest.approx(estimate, rel=1e-9)
    assert result.se == pytest.approx(se, rel=1e-9)
    assert (result.low, result.high) == pytest.approx((estimate - half, estimate + half), rel=1e-9)


def test_fd_of_singular_covariances_is_finite() -> None:
    """n ≤ d (covariance of rank n − 1): eigen-decompositions clip rounding instead of a complex sqrtm."""
    real, fake = _features(10, d=32, seed=8), _features(12, d=32, seed=9)  # 2n ≤ d: the n×n route
    by_covariances = distances.frechet_distance(
        real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T)
    )  # the d×d route; fd() takes the n×n one here
    # the d×d route takes square roots of ~1e-16 rounding in the zero eigenvalues (+1e-8 each): close, not exact
    assert distances.fd(real, fake) == pytest.approx(by_covariances, rel=1e-7)
    result = distances.fd_with_interval(real, fake, groups=20, confidence=0.95, rng=np.random.default_rng(0))
    assert np.isfinite(result.plugin) and result.plugin > 0 and np.isfinite(result.inf.estimate)
    assert distances.small_n_for_dimension(10, 32) and not distances.small_n_for_dimension(64, 32)
    # 3 images: one block (no interval); 4: two blocks of 2, each deletion leaving 2 — never a division by 0
    tiny = _features(3, d=4, seed=1)
    assert (
        distances.fd_with_interval(
            tiny, tiny + 1, groups=20, confidence=0.95, rng=np.random.default_rng(0)
        ).inf
        is None
    )
    four = distances.kd_with_interval(_features(4, d=4), _features(4, d=4, seed=2), groups=20, confidence=0.95,
                                      rng=np.random.default_rng(0))  # fmt: skip
    assert np.isfinite(four.interval.low) and np.isfinite(four.interval.high)


def test_known_truth_of_the_coverage_simulation() -> None:
    """The exact FD and E k(x, y) used as truth, against closed forms and a Monte-Carlo mean."""
    pair = GaussianPair(4)
    lam = np.linspace(0.5, 2.0, 4)
    assert pair.fd == pytest.approx(0.25 + ((1 - np.sqrt(lam)) ** 2).sum())
    assert GaussianPair(4, identical=True).fd == 0.0 and GaussianPair(4, identical=True).mmd == pytest.approx(
        0
    )
    rng = np.random.default_rng(0)
    a, b = np.array([0.3, -0.2, 0.5, 0.1]), np.array([0.1, 0.4, -0.3, 0.2])
    cov_a, cov_b = np.diag([0.5, 1.0, 1.5, 2.0]), np.diag([1.2, 0.7, 0.9, 1.1])
    x = a + rng.normal(size=(400_000, 4)) * np.sqrt(np.diag(cov_a))
    y = b + rng.normal(size=(400_000, 4)) * np.sqrt(np.diag(cov_b))
    monte_carlo = ((x * y).sum(1) / 4 + 1) ** 3
    exact = kernel_mean(a, cov_a, b, cov_b, 4)
    assert exact == pytest.approx(monte_carlo.mean(), abs=4 * monte_carlo.std() / np.sqrt(len(x)))


@pytest.mark.slow
def test_intervals_cover_the_true_distance_where_the_bootstrap_did_not() -> None:
    """Two Gaussians with a known FD and MMD² (d = 8): the new 95 % intervals hold the truth about 95 % of
    the time at n = 50 and 200 and always hold their own estimate; the old FD bootstrap (with replacement)
    and KID ± std almost never hold the truth. ~4 s of CPU on one thread (with torch's default threads the
    many small decompositions spin: ~100 s of CPU on 2 loaded cores)."""
    pair = GaussianPair(8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n in (50, 200):
            new = coverage(pair, n, 150, seed=1)
            assert 0.88 <= new.fd <= 0.99 and 0.88 <= new.kd <= 0.99, (n, new)
            assert new.fd_estimate_inside == new.kd_estimate_inside == 1.0
            old = coverage(pair, n, 30, method="old", seed=1)
            assert old.fd < 0.5 and old.kd < 0.5, (n, old)
    finally:
        torch.set_num_threads(threads)
