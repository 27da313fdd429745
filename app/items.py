"""A step's questionnaire items inside a page's form, with the engine's complaints beside them.

Each item draws its own widget (its kind's ``widget``, :mod:`study.items`), keyed by step key + field, so
every step starts blank and nothing is ever preselected; :func:`app.context.step_answers` reads them back.
Validation is the engine's: :func:`render` and :func:`summary` only show its messages.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app.context import PAGE, widget_key
from app.i18n import _
from formats.bundle import BundleManifest
from formats.contract import CONFIDENCE_SUFFIX
from study.items.answers import AnswerProblem
from study.items.base import WidgetPlace
from study.path import Step


def render(step: Step, manifest: BundleManifest, errors: Mapping[str, AnswerProblem]) -> None:
    """Draw every item of ``step`` (inside the step's ``st.form``), each engine complaint above its item."""
    place = WidgetPlace(
        key=lambda field: widget_key(step.key, field),
        skin_conditions={c.id: c.display_name for c in manifest.skin_conditions},
        translate=_,
    )
    for item in step.items:
        problems = [_message(f, errors[f]) for f in item.fields if f in errors]
        if problems:
            st.error(" ".join(problems))
        item.widget(place)


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
    texts = {field: item.text for item in step.items for field in item.fields}
    named = "; ".join(f"“{_short(t)}”" for t in dict.fromkeys(texts.get(f, f) for f in errors))
    if all(p.code == "required" for p in errors.values()):
        st.error(
            _("Your answers have not been saved yet. Please answer: {questions}").format(questions=named)
        )
    else:
        st.error(_("Your answers have not been saved yet. Please check: {questions}").format(questions=named))


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
