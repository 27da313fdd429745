"""Benchmark: the full report (no static image export) for simulated studies of growing size.

Each study has n participants × 2 conditions (within) × 20 Likert items (4 constructs × 5 items), written as
the export's responses.csv; the timed part is exactly ``skingen-analysis report --responses … --no-static``
(reading and validating the CSV, all statistics, HTML figures, report.md/html, tables.tex, results.json).

    PYTHONPATH=. python bench/bench_analysis.py            # 1k, 10k, 50k participants
    PYTHONPATH=. python bench/bench_analysis.py 1000 5000  # chosen sizes
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.power import LikertGenerator
from app.analysis_command import main

CONSTRUCTS = ("trust", "comprehension", "usefulness", "confidence")


def bench(n: int, folder: Path) -> tuple[int, float]:
    generator = LikertGenerator(constructs=CONSTRUCTS, n_items=5)
    responses = generator(n, 0.3, np.random.default_rng(n))
    csv = folder / f"responses_{n}.csv"
    responses.to_csv(csv, index=False)
    start = time.perf_counter()
    code = main(
        [
            "report",
            "--responses",
            str(csv),
            "--design",
            "within",
            "--baseline",
            generator.baseline,
            "--no-static",
            "--quiet",
            "--out",
            str(folder / f"report_{n}"),
        ]
    )
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"report failed for n={n} (exit {code})")
    return len(responses), elapsed


def run(sizes: list[int]) -> None:
    print(f"{'participants':>12} {'rows':>10} {'seconds':>8} {'µs/row':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            rows, seconds = bench(n, Path(tmp))
            print(f"{n:>12,} {rows:>10,} {seconds:>8.2f} {1e6 * seconds / rows:>7.1f}", flush=True)


if __name__ == "__main__":
    run([int(x) for x in sys.argv[1:]] or [1_000, 10_000, 50_000])
