"""Simulation-based power from the study engine's bots: a bot population per planted effect, sampled per study.

Bots are slow (they walk the real study engine and write every answer to a database, ≈ 20 participants/s), so
:class:`EngineBotGenerator` does not run one bot study per simulated study. For each planted effect it runs a
*population* of bot participants once through the real engine on a private in-memory SQLite database
(register → :func:`~study.simulate.simulate` → :func:`~study.export.export_frames`), keeps the export's
responses of the participants the protocol does not exclude, and then serves
``generator(n, effect, rng) -> responses`` by sampling ``n`` participants without replacement, spread as evenly
as possible over the protocol's arms (as permuted-block allocation does). Power is thus estimated by sampling
studies from a simulated population; the population is ``max(4 × n, 200)`` participants for the largest ``n``
asked for, and grows on demand.

Effects are standardized (d_z within, d between) on construct scores; the bots plant a shift in Likert points
on their latent level (:class:`~study.simulate.Bot`). :func:`point_shift` converts one into the other.

This module does not import torch (nor does anything it imports), so the analysis can use it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy.pool import StaticPool
from tqdm import tqdm

from db.session import Database
from formats.contract import construct_order
from study.allocation import arms
from study.engine import StudyEngine
from study.export import export_frames
from study.path import participant_path
from study.protocol.loading import LoadedProtocol
from study.protocol.model import Protocol
from study.registry import register
from study.simulate import NO_CASE_EFFECTS, Policy, simulate

POOL_MARGIN = 4  # population = POOL_MARGIN × the largest n sampled from it …
MIN_POOL = 200  # … and never fewer participants than this
DEFAULT_CASE_WORLDS = 20  # draws of the cases' effects per planted effect, when cases vary
CASE_STREAM = (
    1  # tags the cases' seeds apart from the bots' chunk seeds (ints: hash() is not salted for them)
)
CHUNK = 25  # bots per simulate() call (the progress bar's step)
ROUNDING_VARIANCE = 1 / 12  # variance of rounding a continuous answer to whole scale points (Sheppard)


def construct_items(loaded: LoadedProtocol, construct: str) -> dict[str, float]:
    """Likert items of ``construct`` a participant answers per condition (trial items × cases of the period
    plus post-block items), averaged over the arms as 1/k (the quantity the score variance depends on).

    Returns ``{condition: k}`` (harmonic mean over arms); a condition where the construct is never asked
    is left out.
    """
    inverse: dict[str, list[float]] = {}
    for arm in arms(loaded.protocol):
        counts: dict[str, int] = {}
        for step in participant_path(loaded, arm.id, 0):
            if step.condition is None:
                continue
            k = sum(1 for i in step.items if i.planted and i.construct == construct)
            counts[step.condition] = counts.get(step.condition, 0) + k
        for condition, k in counts.items():
            if k:
                inverse.setdefault(condition, []).append(1 / k)
    return {condition: 1 / float(np.mean(values)) for condition, values in inverse.items()}


def planted_condition(protocol: Protocol) -> str:
    """The condition the bots plant the effect on: the compared one of a two-arm study, else the first
    non-baseline condition (the others stay at the baseline's level: the smallest pairwise effect)."""
    return next(c for c in protocol.condition_ids if c != protocol.baseline)


def plantable_constructs(loaded: LoadedProtocol) -> list[str]:
    """Constructs the bots can plant an effect on: Likert constructs asked under the baseline and the planted
    condition, in the analysis' order (:func:`formats.contract.construct_order`)."""
    protocol = loaded.protocol
    names = construct_order(i.construct for i in protocol.items().values() if i.planted)
    compared = {protocol.baseline, planted_condition(protocol)}
    return [c for c in names if compared <= set(construct_items(loaded, c))]


def point_shift(
    effect: float,
    design: str,
    items: dict[str, float],
    noise_sd: float,
    person_sd: float,
    baseline: str,
    compared: str,
    slope_sd: float = 0.0,
) -> float:
    """Shift δ (Likert points on the bots' latent level) that plants the standardized ``effect``.

    Bot model, per participant i and construct: latent level L_i ~ N(mid, τ²) (τ = ``person_sd``); each item
    answer = clip(round(L_i + δ·[compared] + ε), 1, K) with ε ~ N(0, σ²) (σ = ``noise_sd``). Rounding adds
    ≈ 1/12 variance, so a construct score (mean of k_c items in condition c) has within-person variance
    v_c = (σ² + 1/12) / k_c. Hence

    - within (d_z = δ / SD of the compared − baseline difference): δ = d_z · √(v_baseline + v_visual + σ_s²);
    - between (d = δ / SD of construct scores, pooled over arms): δ = d · √(τ² + σ_s²/2 + (v_baseline +
      v_visual)/2),

    with σ_s the SD of the participants' own condition effects (``slope_sd``,
    :attr:`~study.simulate.CaseEffects.participant_condition_sd`). The cases' effects (intercepts, case ×
    condition) are not part of the standardizer: every participant of a study shares them, so they move the
    study's estimate, not the spread of its participants (the mixed model counts them; the power analysis of
    ``analysis.power`` takes them as variance components).

    Clipping at the scale ends is ignored: it attenuates large shifts (and latent levels far from the middle),
    so recovered effects fall short of planted ones as δ grows.
    """
    v_base = (noise_sd**2 + ROUNDING_VARIANCE) / items[baseline]
    v_visual = (noise_sd**2 + ROUNDING_VARIANCE) / items[compared]
    if design == "within":
        return effect * math.sqrt(v_base + v_visual + slope_sd**2)
    return effect * math.sqrt(person_sd**2 + slope_sd**2 / 2 + (v_base + v_visual) / 2)


@dataclass
class _Population:
    """One planted effect's bot participants: the database they ran in and their exported responses."""

    db: Database
    engine: StudyEngine
    responses: pd.DataFrame  # export format, as text (as the analysis reads --db), sorted by participant
    bounds: dict[str, tuple[int, int]]  # participant → [start, stop) rows in ``responses``
    by_arm: dict[str, list[str]]  # arm → participant ids (not excluded)
    runs: int = 0
    bots: int = 0


def _fits(population: _Population, quotas: dict[str, int]) -> bool:
    return all(len(population.by_arm.get(arm, [])) >= quota for arm, quota in quotas.items())


class EngineBotGenerator:
    """Power-simulation generator backed by the study engine's bots (see the module docstring).

    ``generator(n, effect, rng)`` returns the export's long responses frame (text columns, as
    ``analysis.load.load_db`` hands them to the analysis) of ``n`` participants: ``n`` in total for both
    designs (between: n/k per arm, the convention of ``formats.planning``), spread evenly over the arms.

    ``policy`` supplies the bots' answer model (``noise_sd``, ``person_sd``, ``think_seconds``,
    ``agree_with_ai``); its kind, effects, dropout and attention failures are replaced (effect bots, nobody
    drops out or fails a check); its ``case_effects`` stay (:class:`~study.simulate.CaseEffects`). ``pool_size``
    sets the population size (default: ``max(4 × n, 200)`` for the largest n prepared or requested); a sample
    that needs more participants of an arm than the population holds runs more bots.

    ``case_worlds``: with case effects the cases are a sample too, so a simulated study must not reuse one
    draw of the cases' effects. Each planted effect gets ``case_worlds`` populations, each with its own draw
    (``Policy.case_seed``), and each simulated study samples its participants from one world chosen at random
    (default: 1 without case effects, else 20). Power is then averaged over draws of the cases as well as of
    the participants; with a single world it would be conditional on that world's cases.
    """

    def __init__(
        self,
        loaded: LoadedProtocol,
        construct: str | None = None,
        *,
        policy: Policy | None = None,
        pool_size: int | None = None,
        seed: int = 0,
        case_worlds: int | None = None,
        progress: bool = False,
    ) -> None:
        protocol = loaded.protocol
        plantable = plantable_constructs(loaded)
        if construct is None:
            if not plantable:
                raise ValueError(
                    f"protocol {protocol.study.id!r} has no Likert construct asked under both conditions"
                )
            construct = plantable[0]
        elif construct not in plantable:
            raise ValueError(
                f"construct {construct!r}: the bots can only plant effects on Likert constructs asked under "
                f"both conditions of protocol {protocol.study.id!r} ({', '.join(plantable) or 'none'})"
            )
        if pool_size is not None and pool_size < 2:
            raise ValueError(f"pool_size must be at least 2, got {pool_size}")
        if case_worlds is not None and case_worlds < 1:
            raise ValueError(f"case_worlds must be at least 1, got {case_worlds}")
        self.loaded = loaded
        self.construct = construct
        self.design = protocol.design
        self.baseline = protocol.baseline
        self.compared = planted_condition(protocol)
        self.conditions = (self.baseline, *(c for c in protocol.condition_ids if c != self.baseline))
        self.policy = replace(
            policy or Policy(),
            kind="effect",
            effects={},
            condition_effects={},
            dropout_rate=0.0,
            attention_fail_rate=0.0,
        )
        self.pool_size = pool_size
        self.seed = seed
        self.progress = progress
        self.items = construct_items(loaded, construct)
        self.arms = tuple(a.id for a in arms(protocol))
        self.case_effects = self.policy.case_effects.get(construct, NO_CASE_EFFECTS)
        varying_cases = self.case_effects.case_sd > 0 or self.case_effects.case_condition_sd > 0
        self.case_worlds = (
            case_worlds if case_worlds is not None else (DEFAULT_CASE_WORLDS if varying_cases else 1)
        )
        self._populations: dict[tuple[float, int], _Population] = {}  # (effect, world) → its bots

    # --- the effect model ---------------------------------------------------------------------------------
    def shift(self, effect: float) -> float:
        """Latent shift in Likert points that plants ``effect`` (d_z within, d between); see :func:`point_shift`."""
        return point_shift(
            effect,
            self.design,
            self.items,
            self.policy.noise_sd,
            self.policy.person_sd,
            self.baseline,
            self.compared,
            self.case_effects.participant_condition_sd,
        )

    def population_size(self, n: int) -> int:
        return self.pool_size if self.pool_size is not None else max(POOL_MARGIN * n, MIN_POOL)

    # --- populations --------------------------------------------------------------------------------------
    def prepare(self, effects: list[float] | tuple[float, ...], max_n: int) -> None:
        """Run the bot populations for every effect (and case world) up front (one progress bar), big enough
        for ``max_n``."""
        target = self.population_size(max_n)
        todo = [(float(e), w) for e in effects for w in range(self.case_worlds) if self._size(e, w) < target]
        with tqdm(
            total=sum(target - self._size(*key) for key in todo),
            desc="bot population",
            unit="bot",
            disable=not self.progress,
        ) as bar:
            for effect, world in todo:
                self._grow(effect, world, target, bar)

    def population(self, effect: float, world: int = 0) -> pd.DataFrame:
        """The responses of every (non-excluded) bot participant run so far for ``effect`` (in ``world``)."""
        return self._populations[(float(effect), world)].responses

    def _size(self, effect: float, world: int) -> int:
        population = self._populations.get((float(effect), world))
        return 0 if population is None else population.bots

    def _grow(self, effect: float, world: int, target: int, bar: tqdm | None = None) -> _Population:
        population = self._populations.get((effect, world))
        if population is None:
            # In-memory SQLite shared by one connection: no file to clean up. (A temporary file database runs
            # the bots at the same speed: the cost is the ORM, not I/O.)
            db = Database("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
            register(db, self.loaded)
            population = _Population(db, StudyEngine.open(db), pd.DataFrame(), {}, {})
            self._populations[(effect, world)] = population
        extra = target - population.bots
        if extra <= 0:
            return population
        policy = replace(
            self.policy,
            condition_effects={self.compared: {self.construct: self.shift(effect)}},
            case_seed=hash((self.seed, CASE_STREAM, world)) & 0x7FFFFFFF,  # one draw of the cases per world
        )
        done = 0
        while done < extra:  # in chunks, so the progress bar moves; each chunk has its own random streams
            chunk = min(CHUNK, extra - done)
            # stable across processes (hash of ints and floats is not salted): bots of a later chunk or run
            # never repeat an earlier one's answers
            chunk_seed = hash((self.seed, round(effect, 12), world, population.runs)) & 0x7FFFFFFF
            simulate(population.engine, chunk, seed=chunk_seed, policy=policy, progress=False)
            population.runs += 1
            done += chunk
            if bar is not None:
                bar.update(chunk)
        population.bots = target
        self._index(population)
        return population

    def _index(self, population: _Population) -> None:
        frames = export_frames(population.db)
        participants = frames["participants"]
        kept = participants[participants["excluded"].astype(int) == 0]
        responses = frames["responses"]
        responses = responses[responses["participant_id"].isin(kept["participant_id"])]
        responses = responses.sort_values("participant_id", kind="stable").reset_index(drop=True)
        population.responses = responses.astype(object).where(responses.notna(), "").astype(str)
        ids = population.responses["participant_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        stops = np.r_[starts[1:], len(ids)]
        population.bounds = {ids[s]: (int(s), int(e)) for s, e in zip(starts, stops, strict=True)}
        population.by_arm = {
            str(arm): sorted(group["participant_id"])
            for arm, group in kept[kept["participant_id"].isin(population.bounds)].groupby("arm")
        }

    # --- sampling -----------------------------------------------------------------------------------------
    def quotas(self, n: int, rng: np.random.Generator) -> dict[str, int]:
        """Participants per arm: n split evenly, the remainder to randomly chosen arms."""
        base, rest = divmod(n, len(self.arms))
        lucky = set(rng.choice(len(self.arms), size=rest, replace=False).tolist()) if rest else set()
        return {arm: base + (i in lucky) for i, arm in enumerate(self.arms)}

    def __call__(self, n: int, effect: float, rng: np.random.Generator) -> pd.DataFrame:
        """Responses of ``n`` participants sampled without replacement from ``effect``'s bot population (of a
        case world chosen at random)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        effect = float(effect)
        world = int(rng.integers(self.case_worlds)) if self.case_worlds > 1 else 0
        quotas = self.quotas(n, rng)
        population = self._populations.get((effect, world))
        if population is None or not _fits(population, quotas):
            with tqdm(desc="bot population", unit="bot", disable=not self.progress) as bar:
                size = max(self.population_size(n), self._size(effect, world))
                population = self._grow(effect, world, size, bar)
                for _ in range(3):  # arms are balanced by blocks per stratum; exclusions can leave one short
                    if _fits(population, quotas):
                        break
                    population = self._grow(effect, world, population.bots + max(n, 20), bar)
            if not _fits(population, quotas):
                have = {a: len(population.by_arm.get(a, [])) for a in quotas}
                raise RuntimeError(f"bot population too small for n = {n}: participants per arm {have}")
        rows = []
        for arm, quota in quotas.items():
            if quota:
                for pid in rng.choice(population.by_arm[arm], size=quota, replace=False):
                    start, stop = population.bounds[pid]
                    rows.append(np.arange(start, stop))
        return population.responses.iloc[np.concatenate(rows)].reset_index(drop=True)

    # --- reporting ----------------------------------------------------------------------------------------
    def describe(self) -> dict:
        """JSON-ready description for results.json."""
        protocol = self.loaded.protocol
        return {
            "kind": "engine_bots",
            "protocol_id": protocol.study.id,
            "protocol_version": protocol.study.version,
            "design": self.design,
            "construct": self.construct,
            "items_per_condition": dict(self.items),
            "noise_sd": self.policy.noise_sd,
            "person_sd": self.policy.person_sd,
            "case_effects": asdict(self.case_effects),
            "case_worlds": self.case_worlds,
            "point_shift": {str(e): self.shift(e) for e in sorted({e for e, _ in self._populations})},
            "population": {
                str(e): sum(len(p.bounds) for (e2, _), p in self._populations.items() if e2 == e)
                for e in sorted({e for e, _ in self._populations})
            },
            "sampling": "n participants per simulated study, drawn without replacement from a bot population "
            "run once per effect through the study engine, spread evenly over the arms",
        }

    def close(self) -> None:
        """Drop the bot databases."""
        for population in self._populations.values():
            population.db.dispose()
        self._populations.clear()

    def __repr__(self) -> str:
        return (
            f"EngineBotGenerator(protocol={self.loaded.protocol.study.id!r}, design={self.design!r}, "
            f"construct={self.construct!r}, noise_sd={self.policy.noise_sd}, "
            f"person_sd={self.policy.person_sd}, pool_size={self.pool_size})"
        )
