"""A participant's path through the study, and validation of the answers to one step (pure, no database).

The path is an explicit list of steps (oTree's ``page_sequence``) derived from the protocol and the
participant's allocation: consent → entry questions → instructions → per period: trials, post-block
questionnaire → post-study questionnaire → debrief → completion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from study.allocation import arm_by_id, case_sets, trial_order
from study.contract import CONFIDENCE_SUFFIX
from study.protocol import CODED_TYPES, UNSURE, Item, LoadedProtocol

StepKind = Literal["consent", "questions", "info", "trial", "complete"]


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


@dataclass(frozen=True)
class Answer:
    """A validated answer as stored: text form, and the number where the item is numeric."""

    item: str
    value: str
    number: float | None


class AnswerError(ValueError):
    """Answers that can't be saved; ``errors`` maps item id → what is wrong (missing, out of range…)."""

    def __init__(self, step: str, errors: dict[str, str]) -> None:
        self.step = step
        self.errors = errors
        super().__init__(f"step {step!r}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))


def _shown(items: tuple[Item, ...], condition: str | None) -> tuple[Item, ...]:
    return tuple(i for i in items if i.show_in is None or condition is None or condition in i.show_in)


def participant_path(loaded: LoadedProtocol, arm_id: str | None, order_seed: int | None) -> list[Step]:
    """Every step of one participant, in order. Before allocation the path ends after the entry questions."""
    protocol = loaded.protocol
    q = protocol.questionnaires
    steps = [Step("consent", "consent", "consent")]
    if q.entry:
        steps.append(Step("entry", "questions", "entry", q.entry))
    if arm_id is None or order_seed is None:
        return steps
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
            steps.append(
                Step(
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
            )
        post_block = _shown(q.post_block, condition)
        if post_block:
            steps.append(Step(f"p{period}.post", "questions", "post_block", post_block, period, condition))
    if q.post:
        steps.append(Step("post", "questions", "post", q.post))
    if protocol.debrief:
        steps.append(Step("debrief", "info", "debrief"))
    steps.append(Step("complete", "complete", "complete"))
    return steps


def expected_fields(step: Step) -> dict[str, Item]:
    """Answer keys a step accepts: one per item, plus ``<id>_confidence`` for diagnosis items."""
    fields: dict[str, Item] = {}
    for item in step.items:
        fields[item.id] = item
        if item.type == "diagnosis" and item.confidence is not None:
            fields[item.id + CONFIDENCE_SUFFIX] = item
    return fields


def _coded(raw: object, codes: tuple[int, ...]) -> tuple[str, float] | str:
    low, high = min(codes), max(codes)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return f"must be a whole number {low}..{high}"
    try:
        value = int(raw)
    except ValueError:
        return f"must be a whole number {low}..{high}, got {raw!r}"
    if value not in codes:
        return f"must be between {low} and {high}, got {value}"
    return str(value), float(value)


def _check(key: str, item: Item, raw: object, conditions: set[str]) -> tuple[str, float | None] | str:
    """One answer → (stored text, number) or an error message."""
    if key != item.id:  # the confidence rating of a diagnosis item
        assert item.confidence is not None
        return _coded(raw, tuple(range(1, item.confidence.points + 1)))
    if item.type in CODED_TYPES:
        return _coded(raw, item.codes)
    if item.type == "number":
        try:
            number = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return f"must be a number, got {raw!r}"
        if not math.isfinite(number):
            return "must be a finite number"
        if (item.minimum is not None and number < item.minimum) or (
            item.maximum is not None and number > item.maximum
        ):
            return f"must lie between {item.minimum} and {item.maximum}"
        return repr(number), number
    if item.type == "diagnosis":
        if raw not in conditions | {UNSURE}:
            return f"must be one of the bundle's conditions or {UNSURE!r}, got {raw!r}"
        return str(raw), None
    if not isinstance(raw, str):
        return "must be text"
    if len(raw) > item.max_length:
        return f"is longer than {item.max_length} characters"
    return raw, None


def validate_answers(step: Step, answers: Mapping[str, object], conditions: set[str]) -> list[Answer]:
    """Check a step's answers against the protocol: known ids, types, ranges, required items.

    Empty strings and None count as unanswered. Raises :class:`AnswerError` listing every problem.
    """
    fields = expected_fields(step)
    errors = {key: "is not an item of this step" for key in answers if key not in fields}
    result = []
    for key, item in fields.items():
        raw = answers.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if item.required:
                errors[key] = "is required"
            continue
        checked = _check(key, item, raw, conditions)
        if isinstance(checked, str):
            errors[key] = checked
        else:
            result.append(Answer(key, *checked))
    if errors:
        raise AnswerError(step.key, errors)
    return result
