"""A single-choice item: one of two or more options, coded 1..k in the order written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from study.items.answers import AnswerProblem, Checked, coded_answer
from study.items.base import Item, WidgetPlace
from study.texts import Text

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot


class SingleChoiceItem(Item):
    """Nominal: the options' order means nothing. A required one of the entry questions may stratify the
    randomization (its options are the strata)."""

    level = "nominal"

    type: Literal["single_choice"]
    options: tuple[Text, ...] = Field(min_length=2)

    def value_labels(self) -> dict[int, str]:
        return dict(enumerate(self.options, start=1))

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        return coded_answer(raw, self.codes)

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return {self.id: bot.rng.choice(self.codes)}

    def example_answer(self, level: int) -> dict[str, object]:
        return {self.id: min(max(level, 1), len(self.options))}

    def widget(self, place: WidgetPlace) -> None:
        from study.items import widgets

        widgets.choice_radio(self.text, self.value_labels(), place.key(self.id), self.help, horizontal=False)
