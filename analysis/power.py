"""Power: analytic sensitivity and a-priori n, and a simulation-based power curve.

The analytic numbers are :mod:`formats.planning`'s (the planned test's α and sidedness, the exact noncentral t),
so the report prints the n the preregistration prints for the same protocol and target effect.

The simulation feeds simulated studies through the same analysis path as real data. A *generator* is any
callable ``generator(n_participants, effect, rng) -> responses`` returning the export's long responses frame
with a planted standardized effect. :class:`LikertGenerator` is the fast in-process one (used for CSV input);
``study.botpower.EngineBotGenerator`` samples studies from populations of the study engine's bots (used when
the protocol is known; imported lazily by ``analysis.pipeline``, never here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis.agreement import wilson_interval
from analysis.casewise import component_sd
from formats.planning import (
    PlannedTest,
    VarianceComponents,
    minimum_effect,
    planned_test,
    power_grid,
    required_sample,
    t_test_power,
)

Generator = Callable[[int, float, np.random.Generator], pd.DataFrame]
Analyse = Callable[[pd.DataFrame], dict]


def study_plan(hypotheses: pd.DataFrame | None, k: int, alpha: float = 0.05) -> PlannedTest:
    """The planned test of an analysed study (:func:`formats.planning.planned_test`): its preregistered
    hypotheses (the export's ``hypotheses`` table, validated) are the confirmatory family; without them, the k − 1
    comparisons with the baseline at ``alpha`` (``--alpha``)."""
    if hypotheses is None or hypotheses.empty:
        return planned_test((), (), "holm", k, alpha=alpha)
    return planned_test(
        [float(a) for a in hypotheses["alpha"]],
        [str(d) for d in hypotheses["direction"]],
        str(hypotheses["correction"].iloc[0]),
        k,
        alpha=alpha,
    )


def _plan_keys(plan: PlannedTest, k: int) -> dict:
    """What the α of a power record was split over (:func:`formats.planning.planned_test`)."""
    return {
        "alpha": plan.declared,
        "alpha_per_test": plan.alpha,
        "sided": plan.sided,
        "family": plan.family,
        "family_of": plan.family_of,
        "correction": plan.correction,
        "k": k,
    }


def sensitivity(n: int, design: str, plan: PlannedTest, power: float = 0.8, k: int = 2) -> dict:
    """Smallest effect (d_z within, d between) detectable with ``n`` participants by the planned test
    (:func:`formats.planning.minimum_effect` at ``plan``'s α per test and sidedness).

    ``n`` counts participants; a between design is assumed balanced (n/k per arm), and the effect is that of
    one condition vs the baseline. Keys: ``design, n, power, min_effect, effect_name, alpha`` (declared),
    ``alpha_per_test, sided, family, family_of, correction, k``.
    """
    effect = minimum_effect(n, design, alpha=plan.alpha, power=power, sided=plan.sided, k=k)
    return {
        "design": design,
        "n": n,
        "power": power,
        "min_effect": effect,
        "effect_name": "d_z" if design == "within" else "d",
        **_plan_keys(plan, k),
    }


def required_n(effect: float, design: str, plan: PlannedTest, power: float = 0.8, k: int = 2) -> dict:
    """Participants needed to detect ``effect`` (d_z within; d between, one condition vs the baseline) with the
    planned test (:func:`formats.planning.required_sample`) — the number the preregistration prints for the
    same protocol.

    Keys: ``design, effect, power, n_exact`` (pairs within, per group between), ``n_per_group``, ``n_total``
    (between: k groups), ``alpha`` (declared), ``alpha_per_test, sided, family, family_of, correction, k``.
    Example: d = 0.5 paired, two-sided α = .05 → n_exact = 33.37, n_total = 34 (as R ``power.t.test``).
    """
    needed = required_sample(effect, design, alpha=plan.alpha, power=power, sided=plan.sided, k=k)
    return {
        "design": design,
        "effect": effect,
        "power": power,
        "n_exact": needed.exact,
        "n_per_group": needed.per_group,
        "n_total": needed.total,
        **_plan_keys(plan, k),
    }


def analytic_power_curve(
    design: str, sample_sizes: Iterable[int], effects: Iterable[float], plan: PlannedTest, k: int = 2
) -> pd.DataFrame:
    """Power of the planned test at each n (participants; between: n/k per arm) × effect. Columns ``n,
    effect, power``."""
    rows = [
        {
            "n": int(n),
            "effect": float(effect),
            "power": t_test_power(n, effect, design, alpha=plan.alpha, sided=plan.sided, k=k),
        }
        for effect in effects
        for n in sample_sizes
    ]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LikertGenerator:
    """Simulated Likert study in the export's long format with a planted standardized effect.

    Answer = round(mid + u_i + δ·compared + e_ic + ε_item), clipped to the scale, with participant intercepts
    u ~ N(0, sd_participant²), participant × condition noise e ~ N(0, sd_condition²) and item noise
    ε ~ N(0, sd_item²). δ is chosen so that the *construct score* effect is ``effect`` in d_z units (within:
    SD of the compared − baseline difference of construct scores) or d units (between: SD of construct scores),
    counting rounding as uniform noise. The last item of each construct is reverse coded (stored raw).

    ``others`` adds conditions without an effect (k > 2 arms: the effect is planted on ``compared`` only, the
    least favourable case for detecting it). Within, participant i sees the conditions in the cyclic order
    starting at i mod k; between, participant i gets condition i mod k.
    """

    design: str = "within"
    constructs: tuple[str, ...] = ("trust",)
    n_items: int = 5
    scale_min: int = 1
    scale_max: int = 7
    sd_participant: float = 0.8
    sd_condition: float = 0.6
    sd_item: float = 0.8
    baseline: str = "baseline"  # labels of the simulated conditions (the study's ids when known)
    compared: str = "visual"
    others: tuple[str, ...] = field(default=(), repr=False)  # repr: two-arm results read as before

    @property
    def conditions(self) -> tuple[str, ...]:
        return (self.baseline, self.compared, *self.others)

    def shift(self, effect: float) -> float:
        """Latent shift δ that plants ``effect`` on construct scores."""
        item_var = (self.sd_item**2 + 1 / 12) / self.n_items
        if self.design == "within":
            return effect * math.sqrt(2 * self.sd_condition**2 + 2 * item_var)
        return effect * math.sqrt(self.sd_participant**2 + self.sd_condition**2 + item_var)

    def __call__(self, n: int, effect: float, rng: np.random.Generator) -> pd.DataFrame:
        conditions = self.conditions
        k = len(conditions)
        delta, mid = self.shift(effect), (self.scale_min + self.scale_max) / 2
        pid = np.arange(n)
        start = pid % k  # first condition of participant i (within), or their arm (between)
        orders = np.array([">".join(conditions[(s + p) % k] for p in range(k)) for s in range(k)])
        if self.design == "within":
            p_idx, c_idx = np.repeat(pid, k), np.tile(np.arange(k), n)
            period = (c_idx - start[p_idx]) % k + 1
            arm = np.char.add("S", (start[p_idx] + 1).astype(str))
        else:
            p_idx, c_idx = pid, start
            period, arm = np.ones(n, dtype=int), np.array(conditions)[c_idx]
        u = rng.normal(0, self.sd_participant, n)[p_idx]
        frames = []
        for construct in self.constructs:
            e = rng.normal(0, self.sd_condition, len(p_idx))
            latent = mid + u + delta * (c_idx == 1) + e
            answers = latent[:, None] + rng.normal(0, self.sd_item, (len(p_idx), self.n_items))
            answers = np.clip(np.rint(answers), self.scale_min, self.scale_max)
            answers[:, -1] = (
                self.scale_min + self.scale_max - answers[:, -1]
            )  # reverse-coded item, stored raw
            m = self.n_items
            frames.append(
                pd.DataFrame(
                    {
                        "participant_id": np.repeat([f"P{i + 1:05d}" for i in p_idx], m),
                        "arm": np.repeat(arm, m),
                        "sequence": np.repeat(orders[start[p_idx]], m),
                        "period": np.repeat(period, m),
                        "condition": np.repeat(np.array(conditions)[c_idx], m),
                        "item": np.tile([f"{construct}_{j + 1}" for j in range(m)], len(p_idx)),
                        "construct": construct,
                        "value": answers.ravel(),
                        "reverse_coded": np.tile([0] * (m - 1) + [1], len(p_idx)),
                        "scale_min": self.scale_min,
                        "scale_max": self.scale_max,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def power_curve(
    generator: Generator,
    analyse: Analyse,
    sample_sizes: Iterable[int],
    effects: Iterable[float],
    n_sims: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = False,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Power of the confirmatory test at each n × planted effect, from ``n_sims`` simulated studies each.

    ``analyse(responses)`` must return ``{"p": ..., "effect": ...}`` for the primary construct (the CLI runs
    the full analysis path). Columns: ``n, effect, power, ci_low, ci_high`` (Wilson, at ``confidence``),
    ``mean_estimate`` (mean estimated effect), ``n_sims``.
    """
    rng = np.random.default_rng(seed)
    grid = [(n, e) for e in effects for n in sample_sizes]
    rows = []
    for n, effect in tqdm(grid, desc="power simulation", disable=not progress):
        results = [analyse(generator(n, effect, rng)) for _ in range(n_sims)]
        hits = sum(r["p"] < alpha for r in results)
        lo, hi = wilson_interval(hits, n_sims, confidence)
        rows.append(
            {
                "n": n,
                "effect": effect,
                "power": hits / n_sims,
                "ci_low": lo,
                "ci_high": hi,
                "mean_estimate": float(np.mean([r["effect"] for r in results])),
                "n_sims": n_sims,
            }
        )
    return pd.DataFrame(rows)


def simulate_trials(
    design: str,
    n_participants: int,
    n_cases: int,
    effect: float,
    components: VarianceComponents,
    rng: np.random.Generator,
    *,
    conditions: tuple[str, str] = ("baseline", "visual"),
    scale: tuple[int, int] = (1, 7),
) -> pd.DataFrame:
    """One simulated study of a per-case Likert item as the mixed model reads it (one row per participant ×
    case: ``y, participant, case, condition, position``), drawn from the variance components with the bots'
    answer model (:class:`study.simulate.CaseEffects`): clip(round(mid + participant + case + (effect +
    participant × condition + case × condition)·[compared] + residual)) on ``scale``.

    Within: every participant judges every case once, half of the cases under each condition, the halves
    swapped between odd and even participants (counterbalanced); between: odd and even participants get one
    condition each and judge every case. Cases are drawn anew for every study — they are a sample too.
    """
    c = components
    participant = np.repeat(np.arange(n_participants), n_cases)
    case = np.tile(np.arange(n_cases), n_participants)
    counterbalanced = (case < n_cases // 2) ^ (participant % 2 == 0)  # within: half the cases per condition
    compared = counterbalanced if design == "within" else participant % 2 == 0
    u, s = (
        rng.normal(0, c.participant, n_participants),
        rng.normal(0, c.participant_condition, n_participants),
    )
    a, b = rng.normal(0, c.case, n_cases), rng.normal(0, c.case_condition, n_cases)
    latent = (
        (scale[0] + scale[1]) / 2
        + u[participant]
        + a[case]
        + compared * (effect + s[participant] + b[case])
        + rng.normal(0, c.residual, len(case))
    )
    position = np.tile(np.arange(1, n_cases + 1), n_participants)
    return pd.DataFrame(
        {
            "y": np.clip(np.rint(latent), *scale),
            "participant": [f"P{i:04d}" for i in participant],
            "case": [f"c{j:02d}" for j in case],
            "condition": np.where(compared, conditions[1], conditions[0]),
            "position": position,
        }
    )


CASES_GRID = (4, 6, 10, 16, 20, 30, 40)  # cases per participant in the "how many cases?" table
PARTICIPANTS_GRID = (20, 40, 60, 80, 120, 160, 240)


def fitted_components(mixed: dict) -> VarianceComponents:
    """The variance components of a fitted ``mixed`` block as planning inputs (SDs the model dropped are 0;
    k > 2 conditions: the largest slope SD of each group)."""
    sds = mixed["variance_components"]
    names = ("participant", "participant:condition", "case", "case:condition", "residual")
    return VarianceComponents(*(component_sd(sds, name) or 0.0 for name in names))


def case_power_block(
    design: str,
    effect_d: float,
    components: VarianceComponents,
    source: str,
    plan: PlannedTest,
    *,
    k: int = 2,
    participants: tuple[int, ...] = PARTICIPANTS_GRID,
    cases: tuple[int, ...] = CASES_GRID,
) -> dict:
    """``power.cases``: the mixed model's power for participants × cases ("how many cases?"; Westfall,
    Kenny & Judd 2014, :func:`formats.planning.case_power`) with the planned test's α per test and sidedness,
    as the other power keys and the preregistration's table.

    ``effect_d`` is standardized as Westfall et al. do: the effect over the SD of a single answer
    (√ of the sum of all variance components), so ``effect_points`` = d · that SD. Keys: ``design, k, alpha``
    (per test), ``sided, effect_d, effect_points, components`` (SDs), ``source`` (where the components come
    from), ``grid`` (``[{participants, cases, power, df, ncp}]``)."""
    points = effect_d * components.total_sd
    grid = [
        {"participants": r.participants, "cases": r.cases, "power": r.power, "df": r.df, "ncp": r.ncp}
        for r in power_grid(
            points,
            design,
            tuple(n for n in participants if n >= 2 * k),  # the design needs two per condition
            tuple(q for q in cases if q >= 2 * k),
            components,
            alpha=plan.alpha,
            sided=plan.sided,
            k=k,
        )
    ]
    return {
        "design": design,
        "k": k,
        "alpha": plan.alpha,
        "sided": plan.sided,
        "effect_d": effect_d,
        "effect_points": points,
        "components": dict(components.__dict__),
        "source": source,
        "grid": grid,
    }
