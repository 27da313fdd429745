"""A participant's path through the study, and validation of the answers to one step (pure, no database).

The path is an explicit list of steps (oTree's ``page_sequence``) derived from the protocol and the
participant's allocation: consent → entry questions → instructions → per period: trials, post-block
questionnaire → post-study questionnaire → debrief → completion. A judge–advisor trial (protocol
``trial.advice: after_initial``) is two steps: ``<trial>.initial`` (the participant's own diagnosis, no advice
shown) and then ``<trial>`` (the AI's advice and every trial question). As two steps of the path, the first is
stored before the second is shown, a reload lands on the half the database says, and a passed step's answers
never change — the engine's rules for every step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from study.allocation import arm_by_id, arms, case_sets, trial_order
from study.items.answers import REQUIRED, AnswerProblem
from study.items.base import Item
from study.protocol.loading import LoadedProtocol

StepKind = Literal["consent", "questions", "info", "trial", "complete"]
INITIAL_STEP_SUFFIX = ".initial"
"""Step key of the first half of a judge–advisor trial: ``<trial key>.initial`` (e.g. ``p1.t03.initial``)."""


@dataclass(frozen=True)
class Step:
    key: str
    kind: StepKind
    section: str
    items: tuple[Item, ...] = ()
    period: int | None = None
    condition: str | None = None
    case_id: str | None = None
    trial_number: int | None = None
    trials_total: int | None = None
    advice: bool = True
    """A trial step shows the AI's advice (False: the first half of a judge–advisor trial)."""
    initial_step: str | None = None
    """The second half of a judge–advisor trial: the key of its first half (whose answers it shows)."""


@dataclass(frozen=True)
class Answer:
    """A validated answer as stored: text form, and the number where the item is numeric."""

    item: str
    value: str
    number: float | None


class AnswerError(ValueError):
    """Answers that can't be saved; ``errors`` maps item id → what is wrong (missing, out of range…)."""

    def __init__(self, step: str, errors: Mapping[str, AnswerProblem]) -> None:
        self.step = step
        self.errors = dict(errors)
        super().__init__(f"step {step!r}: " + "; ".join(f"{k}: {v.message}" for k, v in errors.items()))


def _shown(items: tuple[Item, ...], condition: str | None) -> tuple[Item, ...]:
    return tuple(i for i in items if i.show_in is None or condition is None or condition in i.show_in)


@dataclass(frozen=True)
class ParticipantPath:
    """One participant's steps in order, and the facts derived from them (one home for each)."""

    steps: tuple[Step, ...]

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def index(self, step_index: int) -> int:
        """The stored step index, clamped to the path (a path that ends before allocation stays at its end)."""
        return min(step_index, len(self.steps) - 1)

    def current(self, step_index: int) -> Step:
        return self.steps[self.index(step_index)]

    def passed(self, step_index: int) -> set[str]:
        """Keys of the steps before ``step_index`` (submitted already)."""
        return {s.key for s in self.steps[:step_index]}

    @property
    def total(self) -> int | None:
        """How many steps the whole study has for this participant; None before allocation (not known yet)."""
        return len(self.steps) if self.steps[-1].kind == "complete" else None

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)


class PathCache:
    """Participants' paths of one protocol, computed once per (arm, order seed): engine and export share it."""

    def __init__(self, loaded: LoadedProtocol) -> None:
        self.loaded = loaded
        self._paths: dict[tuple[str | None, int | None], ParticipantPath] = {}

    def __call__(self, arm_id: str | None, order_seed: int | None) -> ParticipantPath:
        key = (arm_id, order_seed)
        if key not in self._paths:
            self._paths[key] = participant_path(self.loaded, arm_id, order_seed)
        return self._paths[key]


def step_order(loaded: LoadedProtocol) -> tuple[str, ...]:
    """Every step key any participant of the protocol can have, in path order (the arms' paths merged).

    Step keys don't depend on the order seed, only on the arm: each arm's path is merged in, each new key
    placed after the key that precedes it on that path.
    """
    order: list[str] = []
    for arm in arms(loaded.protocol):
        at = -1
        for step in participant_path(loaded, arm.id, 0):
            if step.key in order:
                at = order.index(step.key)
            else:
                at += 1
                order.insert(at, step.key)
    return tuple(order)


def participant_path(loaded: LoadedProtocol, arm_id: str | None, order_seed: int | None) -> ParticipantPath:
    """Every step of one participant, in order. Before allocation the path ends after the entry questions."""
    protocol = loaded.protocol
    q = protocol.questionnaires
    steps = [Step("consent", "consent", "consent")]
    if q.entry:
        steps.append(Step("entry", "questions", "entry", q.entry))
    if arm_id is None or order_seed is None:
        return ParticipantPath(tuple(steps))
    if protocol.instructions:
        steps.append(Step("instructions", "info", "instructions"))
    arm = arm_by_id(protocol, arm_id)
    sets = case_sets(loaded)
    blocks = [
        (
            period,
            condition,
            trial_order(sets[case_set], order=protocol.cases.order, seed=order_seed, period=period),
        )
        for period, (condition, case_set) in enumerate(arm.periods, start=1)
    ]
    total = sum(len(cases) for _, _, cases in blocks)
    number = 0
    for period, condition, cases in blocks:
        for index, case_id in enumerate(cases, start=1):
            number += 1
            trial = Step(
                f"p{period}.t{index:02d}",
                "trial",
                "trial",
                _shown(q.trial, condition),
                period,
                condition,
                case_id,
                number,
                total,
            )
            if protocol.trial.judge_advisor:
                initial = replace(
                    trial,
                    key=trial.key + INITIAL_STEP_SUFFIX,
                    items=_shown(protocol.initial_items, condition),
                    advice=False,
                )
                steps.append(initial)
                trial = replace(trial, initial_step=initial.key)
            steps.append(trial)
        post_block = _shown(q.post_block, condition)
        if post_block:
            steps.append(Step(f"p{period}.post", "questions", "post_block", post_block, period, condition))
    if q.post:
        steps.append(Step("post", "questions", "post", q.post))
    if protocol.debrief.text:
        steps.append(Step("debrief", "info", "debrief"))
    steps.append(Step("complete", "complete", "complete"))
    return ParticipantPath(tuple(steps))


def expected_fields(step: Step) -> dict[str, Item]:
    """Answer keys a step accepts (each item's answer fields: its id, and e.g. a diagnosis' confidence)."""
    return {field: item for item in step.items for field in item.fields}


def validate_answers(step: Step, answers: Mapping[str, object], conditions: set[str]) -> list[Answer]:
    """Check a step's answers against the protocol: known ids, types, ranges, required items.

    Empty strings and None count as unanswered. Raises :class:`AnswerError` listing every problem.
    """
    fields = expected_fields(step)
    errors = {key: AnswerProblem("unknown_item") for key in answers if key not in fields}
    result = []
    for key, item in fields.items():
        raw = answers.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if item.required:
                errors[key] = REQUIRED
            continue
        checked = item.check_answer(key, raw, conditions)
        if isinstance(checked, AnswerProblem):
            errors[key] = checked
        else:
            result.append(Answer(key, *checked))
    if errors:
        raise AnswerError(step.key, errors)
    return result
