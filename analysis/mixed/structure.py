"""The random-effects structure of the linear mixed model, its lme4 formula, and the simplification rule.

One implementation of the rule serves both backends: :func:`analysis.mixed.linear.fit_linear` fits a
structure (in Python or in R), asks :func:`simplify` for the next one while the fit is singular or has not
converged, and names the model it kept with :func:`formula`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from formats.planning import SIMPLIFICATION_RULE as PLANNED_SIMPLIFICATION_RULE

INTERCEPT = "1"
GROUPS = ("participant", "case")  # the fixed order ties are broken in

# the rule's text lives in the plan both layers read: the preregistration prints it, this module runs it
SIMPLIFICATION_RULE = PLANNED_SIMPLIFICATION_RULE


@dataclass(frozen=True)
class RandomStructure:
    """Random effects per grouping factor as correlated blocks of columns.

    A column is :data:`INTERCEPT` or a condition level (its treatment dummy). ``(("1", "b", "c"),)`` is
    ``(1 + condition | g)``; ``(("1",), ("b",), ("c",))`` the same without correlations.
    """

    participant: tuple[tuple[str, ...], ...]
    case: tuple[tuple[str, ...], ...]

    def blocks(self, group: str) -> tuple[tuple[str, ...], ...]:
        return self.participant if group == "participant" else self.case

    def columns(self, group: str) -> tuple[str, ...]:
        return tuple(c for block in self.blocks(group) for c in block)


def maximal(design: str, conditions: Sequence[str]) -> RandomStructure:
    """Barr et al.'s (2013) maximal structure the design allows."""
    full = (INTERCEPT, *conditions[1:])
    return RandomStructure(participant=(full,) if design == "within" else ((INTERCEPT,),), case=(full,))


def simplify(
    structure: RandomStructure, slope_sds: Mapping[tuple[str, str], float], conditions: Sequence[str]
) -> tuple[RandomStructure, str] | None:
    """The next model under :data:`SIMPLIFICATION_RULE` and the step's description; None at the floor.

    ``slope_sds`` maps (group, condition level) to the slope's SD in the fit being simplified, in residual
    SDs (lme4's θ scale, on which isSingular's 10⁻⁴ is read): rounded to 4 decimals, slopes at zero tie."""
    for group in reversed(GROUPS):  # cases first
        if any(len(b) > 1 for b in structure.blocks(group)):
            split = tuple((c,) for c in structure.columns(group))
            following = replace(structure, **{group: split})
            return following, f"dropped the correlations between the random effects of {group}s"
    slopes = [(g, c) for g in GROUPS for c in structure.columns(g) if c != INTERCEPT]
    if not slopes:
        return None
    order = {c: i for i, c in enumerate(conditions)}
    group, level = min(
        slopes,
        key=lambda s: (round(slope_sds[s], 4), GROUPS.index(s[0]), -order[s[1]]),
    )
    kept = {g: tuple(b for b in structure.blocks(g) if not (g == group and b == (level,))) for g in GROUPS}
    return RandomStructure(**kept), f"dropped the {group} slope of condition {level} (smallest SD)"


def _term(blocks: tuple[str, ...], group: str, conditions: Sequence[str]) -> str:
    if blocks == (INTERCEPT, *conditions[1:]) and len(conditions) > 1 and len(blocks) > 1:
        return f"(1 + condition | {group})"
    if blocks == (INTERCEPT,):
        return f"(1 | {group})"
    dummies = " + ".join(f'dummy(condition, "{c}")' for c in blocks if c != INTERCEPT)
    return f"({'1' if INTERCEPT in blocks else '0'} + {dummies} | {group})"


def formula(
    structure: RandomStructure, conditions: Sequence[str], *, position: bool, response: str = "y"
) -> str:
    """lme4 syntax of the model (runs as is in R, ``condition`` a factor with the baseline first)."""
    fixed = f"{response} ~ condition" + (" + position" if position else "")
    random = [_term(block, g, conditions) for g in GROUPS for block in structure.blocks(g)]
    return " + ".join([fixed, *random])


def component_name(group: str, column: str, conditions: Sequence[str]) -> str:
    """A random effect's key in ``MixedFit.variance_components``: ``case``, ``case:condition`` (two
    conditions) or ``case:condition[level]`` (more)."""
    if column == INTERCEPT:
        return group
    return f"{group}:condition" if len(conditions) == 2 else f"{group}:condition[{column}]"
