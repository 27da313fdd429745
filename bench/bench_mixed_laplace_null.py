"""Monte Carlo: false-positive rate and CI coverage of the Laplace mixed models' Wald z under the null.

Null studies like the toolkit's (condition effect 0): n participants × 10 cases, two conditions within
participants (counterbalanced per case), participant SD 0.8, case SD 0.6, case × condition SD 0.4. The
ordinal frame has one 7-level answer per case; the binary frame has the AI wrong on 3 of 10 cases. Reports
the share of studies with p < .05 for the condition term (ordinal) and for the condition effect when the AI
is right and wrong (logistic), with its binomial 95 % interval.

    PYTHONPATH=. python bench/bench_mixed_laplace_null.py --studies 200 --participants 40
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from analysis.mixed.laplace import fit_logistic, fit_ordinal
from bench.bench_mixed_laplace import CONDITIONS


def null_frames(
    n_participants: int, n_cases: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ordinal frame, binary frame) of one null study."""
    participant = np.repeat(np.arange(n_participants), n_cases)
    case = np.tile(np.arange(n_cases), n_participants)
    arm = (participant + case) % 2
    eta = (
        rng.normal(0, 0.8, n_participants)[participant]
        + rng.normal(0, 0.6, n_cases)[case]
        + rng.normal(0, 0.4, (n_cases, 2))[case, arm]
    )
    frame = pd.DataFrame(
        {
            "participant": participant,
            "case": case,
            "condition": np.asarray(CONDITIONS)[arm],
            "ai_wrong": case < 3,
        }
    )
    ordinal = frame.assign(
        y=np.digitize(eta + rng.logistic(size=len(eta)), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    )
    binary = frame.assign(
        ai_wrong=frame["ai_wrong"].astype(int),
        y=rng.binomial(1, 1 / (1 + np.exp(-(0.8 + eta - 1.5 * frame["ai_wrong"])))),
    )
    return ordinal, binary


def main(studies: int, participants: int, cases: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hits = {"ordinal": 0, "logistic, AI right": 0, "logistic, AI wrong": 0}
    for _ in range(studies):
        ordinal, binary = null_frames(participants, cases, rng)
        hits["ordinal"] += fit_ordinal(ordinal, conditions=CONDITIONS).terms["condition[visual]"].p < 0.05
        contrasts = fit_logistic(binary, conditions=CONDITIONS).contrasts
        for w, label in enumerate(("right", "wrong")):
            hits[f"logistic, AI {label}"] += contrasts[f"visual - baseline | ai_wrong={w}"].p < 0.05
    print(f"{studies} null studies, {participants} participants × {cases} cases, case × condition SD 0.4")
    print("| model | false-positive rate at α = .05 | 95 % interval |\n|---|---:|---|")
    for name, count in hits.items():
        lo, hi = proportion_confint(count, studies, method="wilson")
        print(f"| {name} | {count / studies:.3f} | [{lo:.3f}, {hi:.3f}] |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    main(args.studies, args.participants, args.cases, args.seed)
