"""Questionnaire pages: entry questions, the questions after each block of cases, and the final ones."""

from __future__ import annotations

import streamlit as st

from app import context, items, layout
from app.i18n import N_, _

HEADINGS = {
    "entry": (N_("About you"), N_("A few questions before we start.")),
    "post_block": (N_("About the explanations"), N_("Please think about the cases you have just seen.")),
    "post": (N_("Almost done"), N_("A last question before you finish.")),
}


def page() -> None:
    visit = context.current("questions")
    assert visit.engine is not None and visit.position is not None
    step = visit.position.step
    context.mark_shown(visit)
    layout.progress(visit.position)
    title, intro = HEADINGS.get(step.section, (N_("Questions"), ""))
    title = _(title)
    if step.section == "post_block" and visit.engine.protocol.design == "within" and step.period:
        title = _("About part {part} of {parts}").format(
            part=step.period, parts=len(visit.engine.protocol.conditions)
        )
    st.header(title)
    if intro:
        st.write(_(intro))
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, visit.engine.loaded.bundle.manifest, errors)
        clicked = st.form_submit_button(_("Continue"), type="primary", on_click=context.submit, args=(visit,))
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)
