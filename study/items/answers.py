"""What can be wrong with one answer, and the checks several item kinds share (pure, no database).

Each item kind checks its own answers (:meth:`study.items.base.Item.check_answer`); they return an
:class:`AnswerProblem` — a code to branch on — or the answer as stored: its text form and, where the item is
numeric, its number. :func:`study.path.validate_answers` collects them for a whole step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Checked = tuple[str, float | None]
"""An accepted answer as stored: its text form, and its number where the item is numeric."""

ProblemCode = Literal[
    "required",
    "unknown_item",
    "not_a_whole_number",
    "out_of_range",
    "not_a_number",
    "not_finite",
    "off_step",
    "unknown_condition",
    "not_text",
    "too_long",
    "control_characters",
    "not_saved",
]


@dataclass(frozen=True)
class AnswerProblem:
    """What is wrong with one answer, as a code to branch on; :attr:`message` is built from it (and only here).

    ``low``/``high`` are the allowed range, ``limit`` a length limit (or a slider's step), ``got`` the
    offending value (as given). ``not_saved`` is never a validation result: the app uses it when storing valid
    answers failed.
    """

    code: ProblemCode
    low: float | None = None
    high: float | None = None
    limit: float | None = None
    got: object = None

    @property
    def message(self) -> str:
        from study.items.diagnosis import UNSURE  # here: the diagnosis kind builds on this module

        got = "" if self.got is None else f", got {_clip(self.got)}"
        messages: dict[ProblemCode, str] = {
            "required": "is required",
            "unknown_item": "is not an item of this step",
            "not_a_whole_number": f"must be a whole number {plain_number(self.low)}..{plain_number(self.high)}{got}",
            "out_of_range": _range(self.low, self.high) + got,
            "not_a_number": f"must be a number{got}",
            "not_finite": "must be a finite number",
            "off_step": f"must be {plain_number(self.low)} plus a multiple of {plain_number(self.limit)}{got}",
            "unknown_condition": f"must be one of the bundle's conditions or {UNSURE!r}{got}",
            "not_text": "must be text",
            "too_long": f"is longer than {plain_number(self.limit)} characters",
            "control_characters": "contains control characters (only line breaks and tabs are allowed)",
            "not_saved": "is not saved: something went wrong on our side. Please try again in a moment.",
        }
        return messages[self.code]


REQUIRED = AnswerProblem("required")


def _clip(value: object, limit: int = 40) -> str:
    """An offending value as shown in a message: a client can send megabytes, the message stays short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_number(value: float | None) -> str:
    """A number as written in the protocol: 1, not 1.0; 2.5 as it is."""
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _range(low: float | None, high: float | None) -> str:
    if low is None:
        return f"must be at most {plain_number(high)}"
    if high is None:
        return f"must be at least {plain_number(low)}"
    return f"must be between {plain_number(low)} and {plain_number(high)}"


def coded_answer(raw: object, codes: tuple[int, ...]) -> Checked | AnswerProblem:
    """A coded answer (a scale point, a choice's number): one of ``codes``, as an int or its digits."""
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


def number_answer(raw: object, low: float | None, high: float | None) -> float | AnswerProblem:
    """A finite number within ``low``..``high`` (either may be open)."""
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return AnswerProblem("not_a_number", got=raw)
    if not math.isfinite(number):
        return AnswerProblem("not_finite")
    if (low is not None and number < low) or (high is not None and number > high):
        return AnswerProblem("out_of_range", low, high)
    return number


# C0 controls except tab and line breaks, DEL, C1 controls: invisible, and they break CSV readers and terminals
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_answer(raw: object, max_length: int) -> Checked | AnswerProblem:
    """Text of at most ``max_length`` characters, without invisible control characters."""
    if not isinstance(raw, str):
        return AnswerProblem("not_text")
    if len(raw) > max_length:
        return AnswerProblem("too_long", limit=max_length)
    if _CONTROL.search(raw):
        return AnswerProblem("control_characters")
    return raw, None
