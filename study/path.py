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

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from formats.contract import CONFIDENCE_SUFFIX
from study.allocation import arm_by_id, arms, case_sets, trial_order
from study.protocol import CODED_TYPES, UNSURE, Item, LoadedProtocol

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


ProblemCode = Literal[
    "required",
    "unknown_item",
    "not_a_whole_number",
    "out_of_range",
    "not_a_number",
    "not_finite",
    "unknown_condition",
    "not_text",
    "too_long",
    "control_characters",
    "not_saved",
]


def N_(message: str) -> str:
    """Marks a message for the app's message catalog (Babel extracts ``N_("…")``); returns it unchanged."""
    return message


# The templates of :attr:`AnswerProblem.message`, in English; the app shows them in the participant's language
# through its catalog (app/locale), which holds these very strings.
_TEMPLATES: dict[str, str] = {
    "required": N_("is required"),
    "unknown_item": N_("is not an item of this step"),
    "not_a_whole_number": N_("must be a whole number {low}..{high}"),
    "out_of_range": N_("must be between {low} and {high}"),
    "at_most": N_("must be at most {high}"),
    "at_least": N_("must be at least {low}"),
    "not_a_number": N_("must be a number"),
    "not_finite": N_("must be a finite number"),
    "unknown_condition": N_("must be one of the bundle's conditions or {unsure}"),
    "not_text": N_("must be text"),
    "too_long": N_("is longer than {limit} characters"),
    "control_characters": N_("contains control characters (only line breaks and tabs are allowed)"),
    "not_saved": N_("is not saved: something went wrong on our side. Please try again in a moment."),
}
_GOT = N_(", got {got}")


@dataclass(frozen=True)
class AnswerProblem:
    """What is wrong with one answer, as a code to branch on; :meth:`render` builds its message (only here).

    ``low``/``high`` are the allowed range, ``limit`` a length limit, ``got`` the offending value (as given).
    ``not_saved`` is never a validation result: the app uses it when storing valid answers failed.
    """

    code: ProblemCode
    low: float | None = None
    high: float | None = None
    limit: int | None = None
    got: object = None

    @property
    def message(self) -> str:
        return self.render()

    def render(self, translate: Callable[[str], str] = N_) -> str:
        """The message, each template passed through ``translate`` (the app's gettext) before it is filled."""
        template = self.code
        if template == "out_of_range" and (self.low is None or self.high is None):
            template = "at_most" if self.low is None else "at_least"
        text = translate(_TEMPLATES[template]).format(
            low=_num(self.low), high=_num(self.high), limit=self.limit, unsure=repr(UNSURE)
        )
        shows_value = self.code in {"not_a_whole_number", "out_of_range", "not_a_number", "unknown_condition"}
        return text + (
            translate(_GOT).format(got=_clip(self.got)) if shows_value and self.got is not None else ""
        )


def _clip(value: object, limit: int = 40) -> str:
    """An offending value as shown in a message: a client can send megabytes, the message stays short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float | None) -> str:
    """A range bound as written in the protocol: 1, not 1.0."""
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


REQUIRED = AnswerProblem("required")


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
    """Answer keys a step accepts: one per item, plus ``<id>_confidence`` for diagnosis items."""
    fields: dict[str, Item] = {}
    for item in step.items:
        fields[item.id] = item
        if item.type == "diagnosis" and item.confidence is not None:
            fields[item.id + CONFIDENCE_SUFFIX] = item
    return fields


def _coded(raw: object, codes: tuple[int, ...]) -> tuple[str, float] | AnswerProblem:
    low, high = min(codes), max(codes)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return AnswerProblem("not_a_whole_number", low, high)
    try:
        value = int(raw)
    except ValueError:
        return AnswerProblem("not_a_whole_number", low, high, got=raw)
    if value not in codes:
        return AnswerProblem("out_of_range", low, high, got=value)
    return str(value), float(value)


# C0 controls except tab and line breaks, DEL, C1 controls: invisible, and they break CSV readers and terminals
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _check(
    key: str, item: Item, raw: object, conditions: set[str]
) -> tuple[str, float | None] | AnswerProblem:
    """One answer → (stored text, number) or what is wrong with it."""
    if key != item.id:  # the confidence rating of a diagnosis item
        assert item.confidence is not None
        return _coded(raw, tuple(range(1, item.confidence.points + 1)))
    if item.type in CODED_TYPES:
        return _coded(raw, item.codes)
    if item.type == "number":
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return AnswerProblem("not_a_number", got=raw)
        if not math.isfinite(number):
            return AnswerProblem("not_finite")
        if (item.minimum is not None and number < item.minimum) or (
            item.maximum is not None and number > item.maximum
        ):
            return AnswerProblem("out_of_range", item.minimum, item.maximum)
        return repr(number), number
    if item.type == "diagnosis":
        if raw not in conditions | {UNSURE}:
            return AnswerProblem("unknown_condition", got=raw)
        return str(raw), None
    if not isinstance(raw, str):
        return AnswerProblem("not_text")
    if len(raw) > item.max_length:
        return AnswerProblem("too_long", limit=item.max_length)
    if _CONTROL.search(raw):
        return AnswerProblem("control_characters")
    return raw, None


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
        checked = _check(key, item, raw, conditions)
        if isinstance(checked, AnswerProblem):
            errors[key] = checked
        else:
            result.append(Answer(key, *checked))
    if errors:
        raise AnswerError(step.key, errors)
    return result
