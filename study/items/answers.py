"""What can be wrong with one answer, and the checks several item kinds share (pure, no database).

Each item kind checks its own answers (:meth:`study.items.base.Item.check_answer`); they return an
:class:`AnswerProblem` — a code to branch on — or the answer as stored: its text form and, where the item is
numeric, its number. :func:`study.path.validate_answers` collects them for a whole step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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
    "off_step": N_("must be {low} plus a multiple of {step}"),
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

    ``low``/``high`` are the allowed range, ``limit`` a length limit (or a slider's step), ``got`` the
    offending value (as given).
    ``not_saved`` is never a validation result: the app uses it when storing valid answers failed.
    """

    code: ProblemCode
    low: float | None = None
    high: float | None = None
    limit: float | None = None
    got: object = None

    @property
    def message(self) -> str:
        return self.render()

    def render(self, translate: Callable[[str], str] = N_) -> str:
        """The message, each template passed through ``translate`` (the app's gettext) before it is filled."""
        from study.items.diagnosis import UNSURE  # here: the diagnosis kind builds on this module

        template = self.code
        if template == "out_of_range" and (self.low is None or self.high is None):
            template = "at_most" if self.low is None else "at_least"
        text = translate(_TEMPLATES[template]).format(
            low=plain_number(self.low),
            high=plain_number(self.high),
            limit=plain_number(self.limit),
            step=plain_number(self.limit),
            unsure=repr(UNSURE),
        )
        shows_value = self.code in {
            "not_a_whole_number",
            "out_of_range",
            "not_a_number",
            "off_step",
            "unknown_condition",
        }
        return text + (
            translate(_GOT).format(got=_clip(self.got)) if shows_value and self.got is not None else ""
        )


def _clip(value: object, limit: int = 40) -> str:
    """An offending value as shown in a message: a client can send megabytes, the message stays short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_number(value: float | None) -> str:
    """A number as written in the protocol: 1, not 1.0; 2.5 as it is."""
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


REQUIRED = AnswerProblem("required")


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
