"""A yes/no item: No = 0, Yes = 1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from study.items.answers import N_, AnswerProblem, Checked, coded_answer
from study.items.base import Item, WidgetPlace

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot


WORDS = {0: N_("No"), 1: N_("Yes")}
"""The answers' words as participants read them (in their language; the codebook's labels are English)."""


class YesNoItem(Item):
    """Binary, coded so that its mean is the share of yes answers."""

    level = "binary"

    type: Literal["yes_no"]

    def value_labels(self) -> dict[int, str]:
        return {0: "No", 1: "Yes"}

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        return coded_answer(raw, self.codes)

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return {self.id: bot.rng.choice(self.codes)}

    def example_answer(self, level: int) -> dict[str, object]:
        return {self.id: min(max(level, 0), 1)}

    def widget(self, place: WidgetPlace) -> None:
        from study.items import widgets

        labels = {code: place.translate(WORDS[code]) for code in self.codes}
        widgets.choice_radio(self.text, labels, place.key(self.id), self.help, horizontal=True)
