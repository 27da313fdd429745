"""A Likert item: one point of a rating scale 1..n with anchor labels; it may measure a construct."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from study.items.answers import AnswerProblem, Checked, coded_answer
from study.items.base import Item, WidgetPlace
from study.schema import Scale

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot


class LikertItem(Item):
    """Coded 1..``scale.points``; reverse-keyed items are reversed by the analysis (scale_min + scale_max − x)."""

    measures = True
    rating_scale = True
    planted = True
    level = "ordinal"

    type: Literal["likert"]
    scale: Scale

    @model_validator(mode="after")
    def _labelled_attention_point(self) -> LikertItem:
        expected = self.attention_check.expected if self.attention_check else None
        if isinstance(expected, int) and expected in self.codes and expected not in self.scale.anchors:
            raise ValueError(
                f"attention_check.expected {expected} has no anchor label in scale.anchors, so participants "
                "can't see which point the instruction means: label it"
            )
        return self

    def value_labels(self) -> dict[int, str]:
        return {p: self.scale.label(p) for p in range(1, self.scale.points + 1)}

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        return coded_answer(raw, self.codes)

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return {self.id: bot.scale_point(self, step)}

    def example_answer(self, level: int) -> dict[str, object]:
        return {self.id: min(max(level, 1), self.scale.points)}

    def widget(self, place: WidgetPlace) -> None:
        from study.items import widgets

        widgets.scale_radio(self.text, self.scale, place.key(self.id), self.help)
