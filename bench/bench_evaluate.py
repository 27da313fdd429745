"""Benchmark: the cost of ``skingen evaluate``'s metrics against the number of images, feature extraction
excluded (it is linear in the images and depends on the encoder and device; the tiny-CLIP rows show it).

Each metric once on the whole set of precomputed random features (n real = n generated; 5 conditions), with
the command's defaults: FD with its jackknife FD∞ interval (20 blocks per side), KD over all pairs with its
jackknife interval (on at most 10 000 per side), the k-NN metrics and diversity (on at most 10 000 per side,
k = 5), one 1000-replicate bootstrap of a per-image mean; ``--full`` also times :func:`metrics_from_features`
as the command runs it (the whole set, three skin-tone groups with FD at equal n, six types).

    PYTHONPATH=. python bench/bench_evaluate.py                         # 1k, 10k, 50k; d = 1024
    PYTHONPATH=. python bench/bench_evaluate.py --sizes 1000 10000 --dims 512 768 --images 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from skingen.evaluation import distances, metrics
from skingen.evaluation.evaluator import (
    Embedded,
    EvaluationSettings,
    cap_sample,
    knn_sample,
    metrics_from_features,
)
from skingen.evaluation.features import FeatureExtractor
from skingen.evaluation.inputs import EvalImage

TYPES = ("I", "II", "III", "IV", "V", "VI")
CONDITIONS = ("psoriasis", "eczema", "acne", "melanoma", "nevus")


def _timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def bench_metrics(n: int, dim: int, *, full: bool) -> dict[str, float]:
    rng = np.random.default_rng(n)
    real = torch.from_numpy(rng.normal(size=(n, dim))).float()
    fake = torch.from_numpy(rng.normal(size=(n, dim)) + 0.1).float()
    images = [EvalImage(Path(f"{i}.png"), CONDITIONS[i % 5], TYPES[i % 6], "p") for i in range(n)]
    settings = EvaluationSettings()
    jackknife = {"groups": settings.jackknife_groups, "confidence": settings.confidence}
    # as the command runs them: k-NN and KD on at most 10 000 per side
    knn_real, knn_fake = (knn_sample(n, settings, "all", side) for side in ("real", "generated"))
    kd_real, kd_fake = (
        cap_sample(n, settings.kd_max_samples, 0, f"kd:{side}") for side in ("real", "generated")
    )
    conditions = [images[i].condition for i in knn_fake]
    embedded = Embedded(real, fake, rng.normal(size=n), rng.normal(size=n))
    return {
        "fd": _timed(distances.fd, real, fake),
        "fd_inf": _timed(distances.fd_with_interval, real, fake, **jackknife, rng=rng),
        "kd": _timed(distances.kd_with_interval, real[kd_real], fake[kd_fake], **jackknife, rng=rng),
        "prdc": _timed(metrics.manifold, real[knn_real], fake[knn_fake], 5),
        "diversity": _timed(metrics.diversity, fake[knn_fake], conditions),
        "bootstrap": _timed(metrics.bootstrap_ci, rng.normal(size=n), replicates=1000, rng=rng),
        "all": _timed(metrics_from_features, embedded, images, images, settings) if full else float("nan"),
    }


def bench_features(n: int, folder: Path, clip: Path) -> float:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    extractor = FeatureExtractor(clip, device="cpu", batch_size=32)
    return _timed(extractor, paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[1024])
    parser.add_argument("--images", type=int, nargs="*", default=[200])
    parser.add_argument("--full", action="store_true", help="also time all metrics for all groups and types")
    args = parser.parse_args()
    print(f"metrics on random features, torch threads={torch.get_num_threads()}")
    print(
        "| d | n per side | FD (plug-in) s | FD + FD∞ interval s | KD + interval s | P/R/D/C s | diversity s "
        "| bootstrap s | sum s | full s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for dim in args.dims:
        for n in args.sizes:
            t = bench_metrics(n, dim, full=args.full)
            total = sum(t[k] for k in ("fd_inf", "kd", "prdc", "diversity", "bootstrap"))
            print(
                f"| {dim} | {n:,} | {t['fd']:.2f} | {t['fd_inf']:.2f} | {t['kd']:.2f} | {t['prdc']:.2f} "
                f"| {t['diversity']:.2f} | {t['bootstrap']:.2f} | {total:.1f} | {t['all']:.1f} |",
                flush=True,
            )
    if not args.images:
        return
    from tests.tiny_models import build_clip

    with tempfile.TemporaryDirectory() as tmp:
        clip = build_clip(Path(tmp) / "clip")
        print("\nfeature extraction, tiny CLIP, 64×64 PNGs, batch 32, CPU")
        print("| images | seconds | ms per image |")
        print("|---:|---:|---:|")
        for n in args.images:
            folder = Path(tmp) / f"images-{n}"
            folder.mkdir()
            seconds = bench_features(n, folder, clip)
            print(f"| {n:,} | {seconds:.2f} | {1000 * seconds / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
