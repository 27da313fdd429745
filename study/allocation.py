"""Randomization: arms, permuted-block allocation tables and within-subject case sets (pure functions).

The allocation table is generated in advance from the protocol's seed (REDCap-style) and stored; enrollment
then claims the next free slot of the participant's stratum. Regenerating from the same seed gives the same
table, so the sequence is reproducible and auditable, and it is concealed because participants never see it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from study.crossover import williams_orders
from study.protocol.loading import LoadedProtocol
from study.protocol.model import Protocol


@dataclass(frozen=True)
class Arm:
    """What an allocation slot assigns: per period, the explanation condition and the case set shown."""

    id: str
    periods: tuple[tuple[str, int], ...]

    @property
    def sequence(self) -> str:
        """Order of conditions, e.g. ``baseline_text>skingen_visual``."""
        return ">".join(condition for condition, _ in self.periods)


@dataclass(frozen=True)
class SlotSpec:
    position: int
    block: int
    block_size: int
    arm: str


def arms(protocol: Protocol) -> tuple[Arm, ...]:
    """Between: one arm per condition. Within: Williams condition orders × cyclic case-set rotations.

    A within sequence ``S{r*k+s+1}`` shows, in period p, condition ``W[r][p]`` of the Williams design
    (:func:`~study.crossover.williams_orders`: every condition follows every other equally often) with case set
    ``(s+p) mod k``. Over one full block every condition order meets every case-set rotation once, so each case
    set appears equally often under every condition and in every position. For k = 2 the orders are AB/BA.
    """
    conditions = protocol.condition_ids
    k = len(conditions)
    if protocol.design == "between":
        return tuple(Arm(c, ((c, 0),)) for c in conditions)
    return tuple(
        Arm(f"S{r * k + s + 1}", tuple((conditions[c], (s + p) % k) for p, c in enumerate(order)))
        for r, order in enumerate(williams_orders(k))
        for s in range(k)
    )


def arm_by_id(protocol: Protocol, arm_id: str) -> Arm:
    for arm in arms(protocol):
        if arm.id == arm_id:
            return arm
    raise KeyError(f"arm {arm_id!r} is not an arm of protocol {protocol.study.id!r}")


def allocation_table(protocol: Protocol, stratum: str, n_slots: int) -> list[SlotSpec]:
    """The first ``n_slots`` (rounded up to whole blocks) slots of a stratum's permuted-block sequence.

    Block sizes are drawn at random from the declared sizes (mixed sizes make the next allocation harder to
    guess). Each stratum has its own stream, seeded by ``"{seed}:{stratum}"`` (string seeds hash stably).
    """
    rng = random.Random(f"{protocol.randomization.seed}:{stratum}")
    arm_ids = [a.id for a in arms(protocol)]
    slots: list[SlotSpec] = []
    block = 0
    while len(slots) < n_slots:
        size = rng.choice(protocol.randomization.block_sizes)
        assignment = arm_ids * (size // len(arm_ids))
        rng.shuffle(assignment)
        start = len(slots)
        slots.extend(SlotSpec(start + i, block, size, arm) for i, arm in enumerate(assignment))
        block += 1
    return slots


def case_sets(loaded: LoadedProtocol) -> tuple[tuple[str, ...], ...]:
    """Split the study's cases into one set per period.

    Between designs show all cases in one block. Within designs deal the cases round-robin after sorting by
    (AI correct?, ground truth, id), so every set gets a like share of wrong-AI cases and conditions.
    """
    case_ids = loaded.case_ids()
    if loaded.protocol.design == "between":
        return (case_ids,)
    k = len(loaded.protocol.conditions)
    manifest = loaded.bundle.manifest
    ordered = sorted(case_ids, key=lambda c: (manifest.case(c).ai_correct, manifest.case(c).ground_truth, c))
    return tuple(tuple(ordered[i::k]) for i in range(k))


def trial_order(cases: Sequence[str], *, order: str, seed: int, period: int) -> list[str]:
    """The order a participant sees one block's cases: shuffled by their stored seed, or as declared."""
    cases = list(cases)
    if order == "random":
        random.Random(f"{seed}:{period}").shuffle(cases)
    return cases
