"""A number item: any finite number within optional bounds (an age, years of practice); it may measure a
construct."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from study.items.answers import AnswerProblem, Checked, number_answer
from study.items.base import Item, WidgetPlace

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot

BOT_RANGE = (0.0, 100.0)
"""Where bots draw the answer of an unbounded number item."""


class NumberItem(Item):
    """Stored as Python's ``repr`` of the float (``42.0``), the number column as the number."""

    measures = True
    level = "numeric"

    type: Literal["number"]
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _ordered_bounds(self) -> NumberItem:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("'minimum' is larger than 'maximum'")
        return self

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return self.minimum, self.maximum

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        number = number_answer(raw, self.minimum, self.maximum)
        return number if isinstance(number, AnswerProblem) else (repr(number), number)

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        low = self.minimum if self.minimum is not None else BOT_RANGE[0]
        high = self.maximum if self.maximum is not None else BOT_RANGE[1]
        return {self.id: round(bot.rng.uniform(low, high), 2)}

    def example_answer(self, level: int) -> dict[str, object]:
        low = self.minimum if self.minimum is not None else float("-inf")
        high = self.maximum if self.maximum is not None else float("inf")
        return {self.id: min(max(float(level), low), high)}

    def widget(self, place: WidgetPlace) -> None:
        import streamlit as st

        st.number_input(
            self.text,
            value=None,
            min_value=self.minimum,
            max_value=self.maximum,
            key=place.key(self.id),
            help=self.help or None,
        )
