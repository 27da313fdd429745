"""A slider item: a visual analogue scale — a marker placed on a line between two labelled ends (0–100 by
default), stored as the number it marks; it may measure a construct, as a continuous score.

A slider always shows its marker somewhere, so a marker left where it started is no answer: the participant
confirms the position ("This is my answer") and only a confirmed position is stored; unconfirmed, the item
is unanswered (and a required one is asked for again). The marker starts in the middle of the line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator

from study.items.answers import N_, AnswerProblem, Checked, number_answer, plain_number
from study.items.base import Item, Variable, WidgetPlace
from study.schema import Model
from study.texts import Text

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot

CONFIRM = ".confirmed"
"""Widget name suffix of the confirmation box beside a slider (a widget, not an answer field)."""
CONFIRM_TEXT = N_("This is my answer")


class SliderAnchors(Model):
    """The labels at the two ends of the line."""

    low: Text = Field(min_length=1, description="Label at the minimum (left end).")
    high: Text = Field(min_length=1, description="Label at the maximum (right end).")


class SliderItem(Item):
    """Answers are ``minimum + k·step`` for whole k, within ``minimum``..``maximum``."""

    measures = True
    rating_scale = True
    continuous = True
    level = "numeric"

    type: Literal["slider"]
    minimum: int = Field(default=0, description="The left end (a whole number: the codebook labels it).")
    maximum: int = Field(default=100, validate_default=True, description="The right end (a whole number).")
    step: float = Field(
        default=1, gt=0, validate_default=True, description="Answers are minimum + a whole number of steps."
    )
    anchors: SliderAnchors

    @field_validator("maximum")
    @classmethod
    def _above_minimum(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("minimum")
        if low is not None and value <= low:
            raise ValueError(f"must be larger than minimum ({plain_number(low)})")
        return value

    @field_validator("step")
    @classmethod
    def _divides_range(cls, value: float, info: ValidationInfo) -> float:
        low, high = info.data.get("minimum"), info.data.get("maximum")
        if low is None or high is None:
            return value
        steps = (high - low) / value
        if value > high - low or not math.isclose(steps, round(steps), abs_tol=1e-9):
            raise ValueError(
                f"{plain_number(value)} does not divide the range {plain_number(low)}..{plain_number(high)} "
                "into whole steps"
            )
        return value

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return self.minimum, self.maximum

    @property
    def n_steps(self) -> int:
        return round((self.maximum - self.minimum) / self.step)

    def at(self, k: int) -> float:
        """The position ``k`` steps from the minimum (exact where the numbers are whole)."""
        return self.minimum + k * self.step

    def variables(self, section: str, *, initial: bool = False) -> list[Variable]:
        """Its answer, continuous over minimum..maximum, with the two anchors as the ends' labels."""
        ends = {self.minimum: self.anchors.low, self.maximum: self.anchors.high}
        return [self.variable(self.id, self.text, self.level, section, self.minimum, self.maximum, ends)]

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        if isinstance(raw, bool):
            return AnswerProblem("not_a_number", got=raw)
        number = number_answer(raw, self.minimum, self.maximum)
        if isinstance(number, AnswerProblem):
            return number
        k = round((number - self.minimum) / self.step)
        if not math.isclose(self.at(k), number, abs_tol=1e-9 * max(1.0, self.maximum - self.minimum)):
            return AnswerProblem("off_step", self.minimum, self.maximum, self.step, got=raw)
        value = self.at(k)
        return plain_number(value), value

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return {self.id: self.at(bot.rng.randint(0, self.n_steps))}

    def example_answer(self, level: int) -> dict[str, object]:
        return {self.id: self.at(min(max(level, 0), self.n_steps))}

    def widget(self, place: WidgetPlace) -> None:
        import streamlit as st

        number = int if float(self.step).is_integer() else float  # Streamlit wants one type for all four
        key = place.key(self.id)
        st.slider(
            self.text,
            min_value=number(self.minimum),
            max_value=number(self.maximum),
            value=number(self.at(self.n_steps // 2)),
            step=number(self.step),
            key=key,
            help=self.help or None,
        )
        low, high = st.columns(2)
        low.caption(self.anchors.low)
        high.caption(self.anchors.high, text_alignment="right")
        st.checkbox(place.translate(CONFIRM_TEXT), key=place.key(self.id + CONFIRM))

    def read(self, widget_value: Callable[[str], object]) -> dict[str, object]:
        """The marked number once confirmed; None (unanswered) while the box is unticked."""
        confirmed = bool(widget_value(self.id + CONFIRM))
        return {self.id: widget_value(self.id) if confirmed else None}

    def widget_values(self, answers: Mapping[str, object]) -> dict[str, object]:
        value = answers.get(self.id)
        return {self.id: value, self.id + CONFIRM: value is not None}
