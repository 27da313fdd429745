"""Benchmark: the cost of ``skingen evaluate`` against the number of images.

Two parts, timed separately because they scale differently:

- each metric once on precomputed random features of the whole set (d = 512, as CLIP ViT-B/32; n real =
  n generated; 5 conditions), with the command's defaults (k = 5, 100 KID subsets of ≤ 1000, one 1000-replicate
  bootstrap interval, the k-NN metrics and diversity on at most 10 000 per side; the k-NN metrics also on the
  whole set, for comparison); ``--full`` also times :func:`metrics_from_features` as the command runs it (the whole
  set, three groups and six types; ``--fid-bootstrap`` 0 there);
- feature extraction with the tiny CLIP of the tests (``tests/tiny_models.build_clip``) on 64×64 images.

    PYTHONPATH=. python bench/bench_evaluate.py                   # 1k, 5k, 20k features; 200, 800 images
    PYTHONPATH=. python bench/bench_evaluate.py --sizes 1000 5000 --images 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from skingen.evaluation import metrics
from skingen.evaluation.evaluator import Embedded, EvaluationSettings, knn_sample, metrics_from_features
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
    embedded = Embedded(real, fake, rng.normal(size=n), rng.normal(size=n))
    settings = EvaluationSettings(fid_bootstrap=0)
    # as the command runs them: on at most --knn-max-samples (default 10 000) per side
    knn_real, knn_fake = (knn_sample(n, settings, "all", side) for side in ("real", "generated"))
    conditions = [images[i].condition for i in knn_fake]
    return {
        "fid": _timed(metrics.fid, real, fake),
        "kid": _timed(metrics.kid, real, fake, subsets=100, subset_size=1000, seed=0),
        "prdc_all": _timed(metrics.manifold, real, fake, 5),
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--images", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--full", action="store_true", help="also time all metrics for all groups and types")
    args = parser.parse_args()
    print(f"metrics on random features, d={args.dim}, torch threads={torch.get_num_threads()}")
    print(
        "| n per side | FID s | KID s | P/R/D/C s | diversity s | bootstrap s | sum s | ms per image | full s "
        "| P/R/D/C without the cap s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        t = bench_metrics(n, args.dim, full=args.full)
        total = sum(t[k] for k in ("fid", "kid", "prdc", "diversity", "bootstrap"))
        print(
            f"| {n:,} | {t['fid']:.2f} | {t['kid']:.2f} | {t['prdc']:.2f} | {t['diversity']:.2f} | "
            f"{t['bootstrap']:.2f} | {total:.1f} | {1000 * total / (2 * n):.2f} | {t['all']:.1f} "
            f"| {t['prdc_all']:.2f} |",
            flush=True,
        )
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
