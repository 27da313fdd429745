"""Writes the simulated study exports the linear mixed model is checked against R on (mixed_exports.R).

Per-case trust scores (mean of 4 Likert items, 1–7) with case effects as issue 21 describes them: case SD 0.6,
case × condition SD 0.4, 10 cases; participant SD 0.8, participant × condition SD 0.3 (within designs).
Run from the repository root: ``python tests/data/r/mixed_exports.py``; then ``Rscript mixed_exports.R`` here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def simulate(
    seed: int,
    *,
    design: str,
    conditions: tuple[str, ...],
    n_participants: int,
    n_cases: int = 10,
    effects: tuple[float, ...] = (0.35,),
    case_sd: float = 0.6,
    case_condition_sd: float = 0.4,
    participant_sd: float = 0.8,
    participant_condition_sd: float = 0.3,
    items: int = 4,
    item_rows: bool = False,
) -> pd.DataFrame:
    """One row per participant × case: the mean of ``items`` Likert answers (``item_rows``: one row per
    answer instead). Within designs rotate the conditions over the cases (a Latin square), between designs
    give each participant one condition."""
    rng = np.random.default_rng(seed)
    k = len(conditions)
    shift = np.concatenate([[0.0], effects])
    case_int = rng.normal(0, case_sd, n_cases)
    case_cond = rng.normal(0, case_condition_sd, (n_cases, k))
    rows = []
    for p in range(n_participants):
        p_int = rng.normal(0, participant_sd)
        p_cond = rng.normal(0, participant_condition_sd, k) if design == "within" else np.zeros(k)
        for position, c in enumerate(rng.permutation(n_cases), start=1):
            arm = (p + c) % k if design == "within" else p % k
            latent = 4 + shift[arm] + p_int + p_cond[arm] + case_int[c] + case_cond[c, arm]
            answers = np.clip(np.round(latent + rng.normal(0, 1.0, items)), 1, 7)
            row = (f"P{p + 1:03d}", f"C{c + 1:02d}", conditions[arm], position)
            rows.extend([(*row, a) for a in answers] if item_rows else [(*row, answers.mean())])
    return pd.DataFrame(rows, columns=["participant", "case", "condition", "position", "y"])


EXPORTS = {
    "mixed_within": dict(
        seed=21, design="within", conditions=("baseline", "skingen_visual"), n_participants=120
    ),
    "mixed_between": dict(
        seed=22, design="between", conditions=("baseline", "skingen_visual"), n_participants=120
    ),
    "mixed_within3": dict(
        seed=23,
        design="within",
        conditions=("baseline", "skingen_visual", "retrieved_photos"),
        n_participants=90,
        n_cases=12,
        effects=(0.35, 0.15),
    ),
    # no slope variation at all: the maximal model is singular and the rule simplifies down to intercepts
    "mixed_singular": dict(
        seed=24,
        design="within",
        conditions=("baseline", "skingen_visual"),
        n_participants=30,
        n_cases=8,
        case_condition_sd=0.0,
        participant_condition_sd=0.0,
    ),
}

if __name__ == "__main__":
    for name, spec in EXPORTS.items():
        simulate(**spec).to_csv(HERE / f"{name}.csv", index=False, float_format="%.4g")
