"""Questionnaire items as Streamlit widgets, inside a page's form; answers come back keyed by item id.

Widgets are keyed by step key + item id, so every step starts blank and nothing is ever preselected
(radios use ``index=None``). Validation is the engine's: :func:`show_errors` only places its messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from skingen.bundle.manifest import BundleManifest
from study.flow import CONFIDENCE_SUFFIX, Step
from study.protocol import UNSURE, Item

UNSURE_LABEL = "I'm not sure"
CONFIDENCE_TEXT = "How confident are you in your answer?"


@dataclass
class Rendered:
    """The answers a form holds now, and a message slot above each question for validation errors."""

    answers: dict[str, object]
    slots: dict[str, object]


def _key(step: Step, field: str) -> str:
    return f"{step.key}:{field}"


def _scale_radio(label: str, points: int, anchors: Mapping[int, str], key: str, help: str = "") -> object:
    """A horizontal 1..n rating row with the anchor labels under their points; nothing preselected."""
    return st.radio(
        label,
        options=list(range(1, points + 1)),
        index=None,
        horizontal=True,
        captions=[anchors.get(point, "") for point in range(1, points + 1)],
        key=key,
        help=help or None,
    )


def _item(step: Step, item: Item, manifest: BundleManifest, answers: dict[str, object]) -> None:
    key = _key(step, item.id)
    help_text = item.help or None
    if item.type == "likert":
        assert item.scale is not None
        answers[item.id] = _scale_radio(item.text, item.scale.points, item.scale.anchors, key, item.help)
    elif item.type == "single_choice":
        labels = item.value_labels()
        answers[item.id] = st.radio(
            item.text,
            options=list(labels),
            format_func=labels.__getitem__,
            index=None,
            key=key,
            help=help_text,
        )
    elif item.type == "diagnosis":
        names = {c.id: c.display_name for c in manifest.conditions} | {UNSURE: UNSURE_LABEL}
        answers[item.id] = st.selectbox(
            item.text,
            options=list(names),
            format_func=names.__getitem__,
            index=None,
            placeholder="Choose a condition…",
            key=key,
            help=help_text,
        )
        if item.confidence is not None:
            field = item.id + CONFIDENCE_SUFFIX
            answers[field] = _scale_radio(
                CONFIDENCE_TEXT, item.confidence.points, item.confidence.anchors, _key(step, field)
            )
    elif item.type == "number":
        answers[item.id] = st.number_input(
            item.text, value=None, min_value=item.minimum, max_value=item.maximum, key=key, help=help_text
        )
    else:  # free_text
        answers[item.id] = st.text_area(item.text, max_chars=item.max_length, key=key, help=help_text)


def render(step: Step, manifest: BundleManifest) -> Rendered:
    """Draw every item of ``step`` (call inside the step's ``st.form``)."""
    answers: dict[str, object] = {}
    slots: dict[str, object] = {}
    for item in step.items:
        slots[item.id] = st.empty()
        _item(step, item, manifest, answers)
        if item.type == "diagnosis" and item.confidence is not None:
            slots[item.id + CONFIDENCE_SUFFIX] = slots[item.id]
    return Rendered(answers, slots)


def _message(field: str, problem: str) -> str:
    if problem == "is required":
        what = "how confident you are" if field.endswith(CONFIDENCE_SUFFIX) else "this question"
        return f"Please answer {what}."
    return f"This answer {problem}."


def show_errors(step: Step, rendered: Rendered, errors: Mapping[str, str]) -> None:
    """Put each engine message above its question and a summary under the submit button."""
    by_slot: dict[int, list[str]] = {}
    for field, problem in errors.items():
        slot = rendered.slots.get(field)
        if slot is not None:
            by_slot.setdefault(id(slot), []).append(_message(field, problem))
            slot.error(" ".join(by_slot[id(slot)]))  # type: ignore[attr-defined]
    texts = {item.id: item.text for item in step.items}
    missing = [texts.get(f.removesuffix(CONFIDENCE_SUFFIX), f) for f in errors]
    unique = list(dict.fromkeys(missing))
    st.error(
        "Your answers have not been saved yet. Please answer: "
        + "; ".join(f"“{_short(text)}”" for text in unique)
    )


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
