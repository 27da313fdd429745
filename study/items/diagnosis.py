"""A diagnosis item: the participant names a condition of the bundle (or 'unsure'), optionally with their
confidence; per case the export derives whether it agrees with the AI and with the ground truth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from formats.contract import (
    ACCURACY_CONSTRUCT,
    AGREEMENT_CONSTRUCT,
    AGREES_AI,
    CONFIDENCE_SUFFIX,
    CORRECT,
    INITIAL_ACCURACY_CONSTRUCT,
    INITIAL_AGREEMENT_CONSTRUCT,
)
from study.items.answers import N_, AnswerProblem, Checked, coded_answer
from study.items.base import YES_NO, Item, Variable, WidgetPlace
from study.schema import Scale

if TYPE_CHECKING:
    from study.path import Step
    from study.simulate import Bot

UNSURE = "unsure"
"""The answer code of a diagnosis item for 'I don't know'."""
UNSURE_LABEL = N_("I'm not sure")
CONFIDENCE_TEXT = N_("How confident are you in your answer?")


class DiagnosisItem(Item):
    """Answers are condition ids; ``<id>_confidence`` (1..points) is a second answer field when asked."""

    diagnoses = True
    level = "condition_id"

    type: Literal["diagnosis"]
    confidence: Scale | None = Field(default=None, description="Diagnosis items: confidence rating scale.")

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.id,) if self.confidence is None else (self.id, self.id + CONFIDENCE_SUFFIX)

    def check_answer(self, field: str, raw: object, skin_conditions: set[str]) -> Checked | AnswerProblem:
        if field != self.id:
            assert self.confidence is not None
            return coded_answer(raw, tuple(range(1, self.confidence.points + 1)))
        if raw not in skin_conditions | {UNSURE}:
            return AnswerProblem("unknown_condition", got=raw)
        return str(raw), None

    def variables(self, section: str, *, initial: bool = False) -> list[Variable]:
        """The answer, its confidence, and the derived 0/1 agreement with the AI and with the truth (under the
        initial constructs for the answer before the advice, apart from the final answer's)."""
        text = f"Before the AI's advice: {self.text}" if initial else self.text
        agreement, accuracy = (
            (INITIAL_AGREEMENT_CONSTRUCT, INITIAL_ACCURACY_CONSTRUCT)
            if initial
            else (AGREEMENT_CONSTRUCT, ACCURACY_CONSTRUCT)
        )
        variables = [self.variable(self.id, text, self.level, section)]
        if self.confidence is not None:
            points = self.confidence.points
            labels = {p: self.confidence.label(p) for p in range(1, points + 1)}
            variables.append(
                self.variable(
                    self.id + CONFIDENCE_SUFFIX, f"Confidence: {text}", "ordinal", section, 1, points, labels
                )
            )
        return [
            *variables,
            self.variable(
                self.id + AGREES_AI,
                f"{self.id} equals the AI's diagnosis",
                "binary",
                "derived",
                0,
                1,
                YES_NO,
                agreement,
            ),
            self.variable(
                self.id + CORRECT,
                f"{self.id} equals the ground truth",
                "binary",
                "derived",
                0,
                1,
                YES_NO,
                accuracy,
            ),
        ]

    def bot_answer(self, bot: Bot, step: Step) -> dict[str, object]:
        return bot.diagnosis(step, self)

    def example_answer(self, level: int) -> dict[str, object]:
        answer: dict[str, object] = {self.id: UNSURE}
        if self.confidence is not None:
            answer[self.id + CONFIDENCE_SUFFIX] = min(max(level, 1), self.confidence.points)
        return answer

    def widget(self, place: WidgetPlace) -> None:
        import streamlit as st

        from study.items import widgets

        key = place.key(self.id)
        names = {**place.skin_conditions, UNSURE: place.translate(UNSURE_LABEL)}
        st.selectbox(
            self.text,
            options=widgets.known_choice(key, list(names)),
            format_func=names.__getitem__,
            index=None,
            placeholder=place.translate(N_("Choose a condition…")),
            key=key,
            help=self.help or None,
        )
        if self.confidence is not None:
            widgets.scale_radio(
                place.translate(CONFIDENCE_TEXT), self.confidence, place.key(self.id + CONFIDENCE_SUFFIX)
            )
