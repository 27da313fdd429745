"""A free-text item: the participant's own words (never scored; the export carries them as written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from study.items.answers import AnswerProblem, Checked, text_answer
from study.items.base import Item, WidgetPlace

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot


class FreeTextItem(Item):
    """At most ``max_length`` characters; control characters are refused (they break CSV readers)."""

    level = "text"

    type: Literal["free_text"]
    max_length: int = Field(default=2000, ge=1, le=20000)

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        return text_answer(raw, self.max_length)

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return {self.id: "simulated answer"} if self.required else {}

    def example_answer(self, level: int) -> dict[str, object]:
        return {self.id: "fine"}

    def widget(self, place: WidgetPlace) -> None:
        import streamlit as st

        st.text_area(self.text, max_chars=self.max_length, key=place.key(self.id), help=self.help or None)
