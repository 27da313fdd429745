"""Benchmark: the Laplace mixed models (analysis.mixed.laplace) on simulated crossed studies.

Each study: n participants × c cases, two conditions within participants (case order and condition
counterbalanced), four ordinal items per case (one row per answer: the frame fit_ordinal gets for a per-case
construct) and one binary answer per case with the AI wrong on 30 % of the cases (fit_logistic). Participant
SD 0.8, case SD 0.6, case × condition SD 0.4, condition effect 0.4 on the log-odds scale.

    PYTHONPATH=. python bench/bench_mixed_laplace.py              # 200 × 10 and 2,000 × 20
    PYTHONPATH=. python bench/bench_mixed_laplace.py 500x10       # chosen sizes, participants x cases
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

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


def main(sizes: list[tuple[int, int]]) -> None:
    print("| participants × cases | ordinal rows | fit_ordinal s | binary rows | fit_logistic s |")
    print("|---|---|---|---|---|")
    for n_participants, n_cases in sizes:
        ordinal, binary = simulate(n_participants, n_cases, np.random.default_rng(n_participants))
        start = time.perf_counter()
        ord_fit = fit_ordinal(ordinal, conditions=CONDITIONS)
        ord_s = time.perf_counter() - start
        start = time.perf_counter()
        bin_fit = fit_logistic(binary, conditions=CONDITIONS)
        bin_s = time.perf_counter() - start
        assert ord_fit.converged and bin_fit.converged
        print(
            f"| {n_participants:,} × {n_cases} | {len(ordinal):,} | {ord_s:.1f} | {len(binary):,} | {bin_s:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:] or ["200x10", "2000x20"]
    main([tuple(int(v) for v in arg.split("x")) for arg in args])
