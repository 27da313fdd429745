"""The protocol's cross-checks: rules that need several sections at once (conditions and items, the
randomization and the design, hypotheses and constructs). Each function returns its problems, one line per
offending field, so :class:`~study.protocol.model.Protocol` reports every one of them together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formats.contract import INITIAL_SUFFIX
from study.protocol.sections import EQUIVALENCE_DIRECTIONS

if TYPE_CHECKING:
    from study.protocol.model import Protocol


def cross_check_problems(protocol: Protocol) -> list[str]:
    """Every cross-section problem of ``protocol``, in the order of its sections."""
    condition_ids = list(protocol.condition_ids)
    item_ids, item_problems = _item_problems(protocol, condition_ids)
    return [
        *_condition_problems(protocol, condition_ids),
        *item_problems,
        *_trial_problems(protocol, item_ids),
        *_manipulation_check_problems(protocol, condition_ids),
        *_randomization_problems(protocol),
        *_instrument_problems(protocol, condition_ids),
        *_hypothesis_problems(protocol, condition_ids),
        *_url_parameter_problems(protocol),
        *_stratum_problems(protocol),
        *_construct_problems(protocol),
    ]


def _condition_problems(protocol: Protocol, condition_ids: list[str]) -> list[str]:
    """Condition ids unique, the baseline one of them, and no two conditions showing the same."""
    problems = []
    if len(set(condition_ids)) != len(condition_ids):
        problems.append("conditions: ids must be unique")
    if protocol.baseline not in condition_ids:
        problems.append(f"baseline: {protocol.baseline!r} is not one of the conditions {condition_ids}")
    explanations: dict[tuple[str, ...], str] = {}
    for index, condition in enumerate(protocol.conditions):
        twin = explanations.setdefault(condition.explanation, condition.id)
        if twin != condition.id:
            shown = " + ".join(condition.explanation) or "none"
            problems.append(
                f"conditions[{index}].references: {condition.id!r} shows the same as {twin!r} ({shown}); "
                "conditions must differ in their explanation"
            )
    return problems


def _item_problems(protocol: Protocol, condition_ids: list[str]) -> tuple[set[str], list[str]]:
    """Item ids used once across the questionnaires (returned too), instrument origins and show_in."""
    problems = []
    seen: set[str] = set()
    for section, items in protocol.questionnaires.sections().items():
        for item in items:
            if item.id in seen:
                origin = (
                    f" (by instrument {item.instrument.id}: set instruments[].prefix)"
                    if item.instrument
                    else ""
                )
                problems.append(f"questionnaires.{section}: item id {item.id!r} is used twice{origin}")
            seen.add(item.id)
            if item.instrument and item.instrument.id not in {u.id for u in protocol.instruments}:
                problems.append(
                    f"questionnaires.{section}: {item.id}.instrument is set by the 'instruments' section only"
                )
            unknown = set(item.show_in or ()) - set(condition_ids)
            if unknown and not item.instrument:  # reported once, at instruments[i].show_in
                problems.append(
                    f"questionnaires.{section}: {item.id}.show_in names unknown {sorted(unknown)}"
                )
    return seen, problems


def _randomization_problems(protocol: Protocol) -> list[str]:
    n_arms = protocol.n_arms
    return [
        f"randomization.block_sizes: {size} is not a multiple of the {n_arms} "
        f"{'sequences' if protocol.design == 'within' else 'arms'} of a {protocol.design} design"
        for size in protocol.randomization.block_sizes
        if size % n_arms
    ]


def _instrument_problems(protocol: Protocol, condition_ids: list[str]) -> list[str]:
    problems = []
    for index, use in enumerate(protocol.instruments):
        unknown = set(use.show_in or ()) - set(condition_ids)
        if unknown:
            problems.append(f"instruments[{index}].show_in: unknown conditions {sorted(unknown)}")
        problems += [f"instruments[{index}].{p}" for p in use.translation_problems(protocol.languages)]
    return problems


def _url_parameter_problems(protocol: Protocol) -> list[str]:
    """The returning participant's label and the per-attempt parameters are URL parameters."""
    problems = []
    if protocol.participant_label is not None and protocol.participant_label not in protocol.url_parameters:
        problems.append(f"participant_label: {protocol.participant_label!r} must be one of url_parameters")
    for name in protocol.resume_requires:
        if name not in protocol.url_parameters or name == protocol.participant_label:
            problems.append(
                f"resume_requires: {name!r} must be one of url_parameters other than participant_label"
            )
    if protocol.resume_requires and protocol.participant_label is None:
        problems.append("resume_requires: needs a participant_label (resume is by label)")
    return problems


def _stratum_problems(protocol: Protocol) -> list[str]:
    """The stratifying item's answers are the strata: a required item of nominal options, asked before
    allocation."""
    strat = protocol.randomization.stratify_by
    if strat is None:
        return []
    entry = {i.id: i for i in protocol.questionnaires.entry}
    if strat not in entry or entry[strat].level != "nominal" or not entry[strat].required:
        return [
            f"randomization.stratify_by: {strat!r} must be a required single_choice item of "
            "questionnaires.entry"
        ]
    return []


def _construct_problems(protocol: Protocol) -> list[str]:
    """A construct score is the mean of its items' answers: a construct with a continuous item (a slider's
    0–100) holds only items of that kind and range, or the mean would mix unlike numbers."""
    problems = []
    for construct in protocol.constructs:
        items = [i for i in protocol.items().values() if i.construct == construct]
        if any(i.continuous for i in items) and len({(i.type, i.bounds) for i in items}) > 1:
            scales = ", ".join(f"{i.id} ({i.type} {_range(i.bounds)})" for i in items)
            problems.append(
                f"questionnaires: construct {construct!r} averages items on different scales ({scales}); "
                "give a slider's construct only sliders of the same range"
            )
    return problems


def _range(bounds: tuple[float | None, float | None]) -> str:
    low, high = bounds
    return f"{low:g}..{high:g}" if low is not None and high is not None else "unbounded"


def _manipulation_check_problems(protocol: Protocol, condition_ids: list[str]) -> list[str]:
    """A manipulation check names an expected answer for every condition it is shown in, and is asked
    where a condition is in force: after allocation, and in a within design within a period."""
    problems = []
    for section, items in protocol.questionnaires.sections().items():
        for item in items:
            if item.manipulation_check is None:
                continue
            where = f"questionnaires.{section}: {item.id}.manipulation_check"
            named = set(item.manipulation_check.expected)
            if unknown := sorted(named - set(condition_ids)):
                problems.append(f"{where}.expected names unknown conditions {unknown}")
            if missing := [c for c in (item.show_in or condition_ids) if c not in named]:
                problems.append(f"{where}.expected: give the expected answer under {missing}")
            if section == "entry" or (section == "post" and protocol.design == "within"):
                problems.append(
                    f"{where}: ask it in trial or post_block"
                    + ("" if section == "entry" else " (a within design's post questions have no condition)")
                )
    return problems


def _trial_problems(protocol: Protocol, item_ids: set[str]) -> list[str]:
    """A judge–advisor trial needs a diagnosis item to ask twice, and the initial answers' ids free."""
    if not protocol.trial.judge_advisor:
        return []
    if not any(i.diagnoses for i in protocol.questionnaires.trial):
        return [
            "trial.advice: after_initial asks the trial's diagnosis items before and after the AI's advice, "
            "but questionnaires.trial has no diagnosis item"
        ]
    return [
        f"questionnaires: item id {i.id!r} is the initial answer of diagnosis item "
        f"{i.id.removesuffix(INITIAL_SUFFIX)!r} (trial.advice: after_initial): rename it"
        for i in protocol.initial_items
        if i.id in item_ids
    ]


def _hypothesis_problems(protocol: Protocol, condition_ids: list[str]) -> list[str]:
    problems = []
    measured = protocol.constructs
    ids = [h.id for h in protocol.hypotheses]
    if len(set(ids)) != len(ids):
        problems.append("hypotheses: ids must be unique")
    compared = {
        i.construct
        for section in ("trial", "post_block")
        for i in protocol.questionnaires.sections()[section]
    }
    for index, hypothesis in enumerate(protocol.hypotheses):
        where = f"hypotheses[{index}]"
        if hypothesis.construct not in measured:
            problems.append(
                f"{where}.construct: {hypothesis.construct!r} is not measured (constructs: {measured})"
            )
        elif hypothesis.construct not in compared:
            problems.append(
                f"{where}.construct: {hypothesis.construct!r} is asked only outside the conditions (entry/post); "
                "a hypothesis compares conditions, so ask it in trial or post_block"
            )
        unknown = [c for c in hypothesis.comparison if c not in condition_ids]
        if unknown:
            problems.append(f"{where}.comparison: {unknown} are not conditions {condition_ids}")
        elif hypothesis.comparison[0] == hypothesis.comparison[1]:
            problems.append(f"{where}.comparison: compare two different conditions")
        if hypothesis.direction in EQUIVALENCE_DIRECTIONS and hypothesis.sesoi is None:
            problems.append(
                f"{where}.sesoi: direction {hypothesis.direction!r} needs a smallest effect size of interest "
                "(construct-score points, e.g. sesoi: 0.5)"
            )
        elif hypothesis.direction not in EQUIVALENCE_DIRECTIONS and hypothesis.sesoi is not None:
            problems.append(
                f"{where}.sesoi: only equivalent and non_inferior hypotheses use it (direction is "
                f"{hypothesis.direction!r})"
            )
    return problems
