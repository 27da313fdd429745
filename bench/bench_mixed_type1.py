"""Monte Carlo: type-I error and power of the primary (crossed mixed model) test beside the participant-mean test.

Each simulated study is a per-case 7-point item judged by P participants on Q cases, drawn anew from the variance
components of :class:`formats.planning.VarianceComponents` (participant SD 1, participant × condition 0.2, case
0.6, residual 1) with the case × condition SD of the cell (0, 0.2, 0.4), rounded and clipped as the bots answer
(:func:`analysis.power.simulate_trials`). Per study:

- the mixed model: :func:`analysis.mixed.linear.fit_linear` (the analysis' primary test, simplification rule and
  Satterthwaite df included), p of the visual − baseline contrast;
- the participant-mean test: the paired (within) or Welch (between) t-test of the participants' means, the
  analysis' secondary test (and the only one before mixed models).

Null studies (effect 0) give the type-I error at α = .05 with its Wilson 95 % interval; studies with the effect
``--effect`` (points) give power. Writes a Markdown table (stdout) and a CSV (``--out``).

    PYTHONPATH=. nice python bench/bench_mixed_type1.py --reps 500 --participants 40 --cases 10 \
        --designs within --out within.csv     # and --designs between; a cell's row is written when it ends
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from analysis.agreement import wilson_interval
from analysis.compare import paired_ttest, welch_ttest
from analysis.mixed import MixedModelError
from analysis.mixed.linear import fit_linear
from analysis.power import simulate_trials
from formats.planning import VarianceComponents

CONDITIONS = ("baseline", "visual")
BASE = VarianceComponents(
    participant=1.0, participant_condition=0.2, case=0.6, case_condition=0.0, residual=1.0
)


def participant_mean_p(trials: pd.DataFrame, design: str) -> float:
    """p of the participant-mean t-test (the toolkit's test before the mixed models)."""
    means = trials.groupby(["participant", "condition"])["y"].mean().unstack()
    if design == "within":
        return paired_ttest(means[CONDITIONS[1]].to_numpy(), means[CONDITIONS[0]].to_numpy())["p"]
    return welch_ttest(means[CONDITIONS[1]].dropna().to_numpy(), means[CONDITIONS[0]].dropna().to_numpy())[
        "p"
    ]


def mixed_p(trials: pd.DataFrame, design: str) -> float:
    fit = fit_linear(trials, design=design, conditions=CONDITIONS)
    return fit.contrasts[f"{CONDITIONS[1]} - {CONDITIONS[0]}"].p


def cell(
    design: str,
    sd: float,
    effect: float,
    reps: int,
    participants: int,
    cases: int,
    seed: list[int],
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """``reps`` studies of one cell; ``progress`` gets the row so far every 25 studies (a long run on a busy
    machine leaves its partial counts behind)."""
    rng = np.random.default_rng(seed)
    components = replace(BASE, case_condition=sd)
    hits = {"mixed": 0, "participant_mean": 0}
    failed = 0
    for done in range(1, reps + 1):
        trials = simulate_trials(design, participants, cases, effect, components, rng, conditions=CONDITIONS)
        hits["participant_mean"] += participant_mean_p(trials, design) < 0.05
        try:
            hits["mixed"] += mixed_p(trials, design) < 0.05
        except MixedModelError:
            failed += 1
        if progress is not None and (done % 25 == 0 or done == reps):
            progress(_row(design, sd, effect, done, hits, failed))
    return _row(design, sd, effect, reps, hits, failed)


def _row(design: str, sd: float, effect: float, reps: int, hits: dict[str, int], failed: int) -> dict:
    row = {"design": design, "case_condition_sd": sd, "effect": effect, "reps": reps, "mixed_failed": failed}
    for test, count in hits.items():
        n = reps - failed if test == "mixed" else reps
        low, high = wilson_interval(count, n, 0.95)
        row.update({test: count / n, f"{test}_ci_low": low, f"{test}_ci_high": high})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500, help="null studies per cell (default 500)")
    parser.add_argument("--power-reps", type=int, default=200, help="studies per power cell (default 200)")
    parser.add_argument("--participants", type=int, default=40, help="participants per study (default 40)")
    parser.add_argument("--cases", type=int, default=10, help="cases per participant (default 10)")
    parser.add_argument("--effect", type=float, default=0.5, help="planted effect for power, points (0.5)")
    parser.add_argument("--designs", default="within,between", help="designs to run (default within,between)")
    parser.add_argument("--sds", default="0.4,0.2,0", help="case × condition SDs (default 0.4,0.2,0)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", help="CSV of the table, rewritten after every cell")
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    for design in args.designs.split(","):
        for sd in (float(v) for v in args.sds.split(",")):
            for effect, reps in ((0.0, args.reps), (args.effect, args.power_reps)):
                if reps == 0:  # --reps 0 / --power-reps 0: that half of the table is run elsewhere
                    continue
                seed = [
                    args.seed,
                    design == "within",
                    round(100 * sd),
                    round(100 * effect),
                ]  # ints: no salted hash

                def save(partial: dict, done: list[dict] = rows) -> None:  # finished cells + this one so far
                    if args.out:
                        pd.DataFrame([*done, partial]).to_csv(args.out, index=False)

                rows.append(cell(design, sd, effect, reps, args.participants, args.cases, seed, save))
                print(f"{rows[-1]} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(markdown(rows))
    print(f"\n{args.participants} participants × {args.cases} cases; {time.perf_counter() - start:.0f} s")


def markdown(rows: list[dict]) -> str:
    """The table as docs/analysis.md shows it: rates with Wilson 95 % intervals."""
    lines = [
        "| design | case × condition SD | effect | studies | mixed model | participant-mean t-test | fits failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rates = [
            f"{r[t]:.3f} [{r[t + '_ci_low']:.3f}, {r[t + '_ci_high']:.3f}]"
            for t in ("mixed", "participant_mean")
        ]
        lines.append(
            f"| {r['design']} | {r['case_condition_sd']:g} | {r['effect']:g} | {r['reps']} | {rates[0]} | "
            f"{rates[1]} | {r['mixed_failed']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
