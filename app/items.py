"""Questionnaire items as Streamlit widgets, inside a page's form; answers come back keyed by item id.

Widgets are keyed by step key + item id, so every step starts blank and nothing is ever preselected
(radios use ``index=None``). Validation is the engine's: :func:`render` and :func:`summary` only show
its messages.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app.context import PAGE, widget_key
from app.i18n import N_, _
from formats.bundle import BundleManifest
from formats.contract import CONFIDENCE_SUFFIX
from study.path import AnswerProblem, Step
from study.protocol import UNSURE, Item

UNSURE_LABEL = N_("I'm not sure")
CONFIDENCE_TEXT = N_("How confident are you in your answer?")
YES_NO = {0: N_("No"), 1: N_("Yes")}


def _known_choice(key: str, options: list) -> list:
    """``options``, after dropping a widget state that is none of them. Only a crafted client sends one (the
    engine refused it); Streamlit could not draw the widget with it, so it starts blank again instead."""
    if key in st.session_state and st.session_state[key] not in (*options, None):
        del st.session_state[key]
    return options


def _scale_radio(label: str, points: int, anchors: Mapping[int, str], key: str, help: str = "") -> None:
    """A horizontal 1..n rating row with the anchor labels under their points; nothing preselected."""
    st.radio(
        label,
        options=_known_choice(key, list(range(1, points + 1))),
        index=None,
        horizontal=True,
        captions=[anchors.get(point, "") for point in range(1, points + 1)],
        key=key,
        help=help or None,
    )


def _item(step: Step, item: Item, manifest: BundleManifest) -> None:
    key = widget_key(step.key, item.id)
    help_text = item.help or None
    if item.type == "likert":
        assert item.scale is not None
        _scale_radio(item.text, item.scale.points, item.scale.anchors, key, item.help)
    elif item.type in {"single_choice", "yes_no"}:
        labels = {code: _(YES_NO[code]) for code in YES_NO} if item.type == "yes_no" else item.value_labels()
        st.radio(
            item.text,
            options=_known_choice(key, list(labels)),
            format_func=labels.__getitem__,
            index=None,
            horizontal=item.type == "yes_no",
            key=key,
            help=help_text,
        )
    elif item.type == "diagnosis":
        names = {c.id: c.display_name for c in manifest.skin_conditions} | {UNSURE: _(UNSURE_LABEL)}
        st.selectbox(
            item.text,
            options=_known_choice(key, list(names)),
            format_func=names.__getitem__,
            index=None,
            placeholder=_("Choose a condition…"),
            key=key,
            help=help_text,
        )
        if item.confidence is not None:
            field = item.id + CONFIDENCE_SUFFIX
            _scale_radio(
                _(CONFIDENCE_TEXT),
                item.confidence.points,
                item.confidence.anchors,
                widget_key(step.key, field),
            )
    elif item.type == "number":
        st.number_input(
            item.text, value=None, min_value=item.minimum, max_value=item.maximum, key=key, help=help_text
        )
    else:  # free_text
        st.text_area(item.text, max_chars=item.max_length, key=key, help=help_text)


def render(step: Step, manifest: BundleManifest, errors: Mapping[str, AnswerProblem]) -> None:
    """Draw every item of ``step`` (inside the step's ``st.form``), each engine complaint above its item."""
    for item in step.items:
        problems = [_message(f, errors[f]) for f in (item.id, item.id + CONFIDENCE_SUFFIX) if f in errors]
        if problems:
            st.error(" ".join(problems))
        _item(step, item, manifest)


def _message(field: str, problem: AnswerProblem) -> str:
    if problem.code == "required":
        if field.endswith(CONFIDENCE_SUFFIX):
            return _("Please answer how confident you are.")
        return _("Please answer this question.")
    return _("This answer {problem}.").format(problem=problem.render(_))


def summary(step: Step, errors: Mapping[str, AnswerProblem]) -> None:
    """Under the submit button: nothing was saved, and which questions need an answer."""
    if not errors:
        return
    if PAGE in errors:
        st.error(_("This page is not saved: something went wrong on our side. Please try again in a moment."))
        return
    texts = {item.id: item.text for item in step.items}
    named = "; ".join(
        f"“{_short(t)}”"
        for t in dict.fromkeys(texts.get(f.removesuffix(CONFIDENCE_SUFFIX), f) for f in errors)
    )
    if all(p.code == "required" for p in errors.values()):
        st.error(
            _("Your answers have not been saved yet. Please answer: {questions}").format(questions=named)
        )
    else:
        st.error(_("Your answers have not been saved yet. Please check: {questions}").format(questions=named))


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
