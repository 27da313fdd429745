"""Benchmark: the Laplace mixed models (analysis.mixed.laplace) on simulated crossed studies.

Each study: n participants × c cases, two conditions within participants (case order and condition
counterbalanced), four ordinal items per case (one row per answer: the frame fit_ordinal gets for a per-case
construct) and one binary answer per case with the AI wrong on 30 % of the cases (fit_logistic). Participant
SD 0.8, case SD 0.6, case × condition SD 0.4, condition effect 0.4 on the log-odds scale.

    PYTHONPATH=. python bench/bench_mixed_laplace.py              # 200 × 10 and 2,000 × 20
    PYTHONPATH=. python bench/bench_mixed_laplace.py 500x10       # chosen sizes, participants x cases
    PYTHONPATH=. python bench/bench_mixed_laplace.py --export DIR 200x10   # also write the frames as CSV

The exported frames are what bench/bench_mixed_laplace.R times R's clmm and glmer on (same formulas).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.mixed import MixedFit
from analysis.mixed.laplace import fit_logistic, fit_ordinal

CONDITIONS = ("baseline", "visual")
ITEMS = 4


def simulate(
    n_participants: int, n_cases: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ordinal frame with ITEMS rows per trial, binary frame with one row per trial)."""
    participant = np.repeat(np.arange(n_participants), n_cases)
    case = np.tile(np.arange(n_cases), n_participants)
    arm = (participant + case) % 2
    case_condition = rng.normal(0, 0.4, (n_cases, 2))[case, arm]
    eta = (
        0.4 * arm
        + rng.normal(0, 0.8, n_participants)[participant]
        + rng.normal(0, 0.6, n_cases)[case]
        + case_condition
    )
    trials = pd.DataFrame(
        {
            "participant": participant,
            "case": case,
            "condition": np.asarray(CONDITIONS)[arm],
            "ai_wrong": (case % 10 < 3).astype(int),
        }
    )
    latent = np.repeat(eta, ITEMS) + rng.logistic(size=len(eta) * ITEMS)
    ordinal = trials.loc[trials.index.repeat(ITEMS)].reset_index(drop=True)
    ordinal["y"] = np.digitize(latent, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]) + 1
    binary = trials.copy()
    binary["y"] = rng.binomial(1, 1 / (1 + np.exp(-(0.8 + eta - 1.5 * binary["ai_wrong"]))))
    return ordinal, binary


def main(sizes: list[tuple[int, int]], export: Path | None = None) -> None:
    print(
        "| participants × cases | ordinal rows | fit_ordinal s (CPU s) | binary rows | fit_logistic s (CPU s) |"
    )
    print("|---|---|---|---|---|")
    for n_participants, n_cases in sizes:
        ordinal, binary = simulate(n_participants, n_cases, np.random.default_rng(n_participants))
        if export is not None:
            ordinal.to_csv(export / f"ordinal_{n_participants}x{n_cases}.csv", index=False)
            binary.to_csv(export / f"binary_{n_participants}x{n_cases}.csv", index=False)
        ord_fit, ord_s = _timed(fit_ordinal, ordinal)
        bin_fit, bin_s = _timed(fit_logistic, binary)
        assert ord_fit.converged and bin_fit.converged
        print(
            f"| {n_participants:,} × {n_cases} | {len(ordinal):,} | {ord_s[0]:.1f} ({ord_s[1]:.1f}) "
            f"| {len(binary):,} | {bin_s[0]:.1f} ({bin_s[1]:.1f}) |",
            flush=True,
        )


def _timed(fit: Callable[..., MixedFit], frame: pd.DataFrame) -> tuple[MixedFit, tuple[float, float]]:
    """The fit with its wall-clock and process CPU seconds (CPU shows the cost on a busy machine too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(frame, conditions=CONDITIONS)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", default=["200x10", "2000x20"], help="participants x cases")
    parser.add_argument("--export", type=Path, help="folder to write the simulated frames to (CSV)")
    args = parser.parse_args()
    main([tuple(int(v) for v in size.split("x")) for size in args.sizes], args.export)
