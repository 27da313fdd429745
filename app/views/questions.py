"""Questionnaire pages: entry questions, the questions after each block of cases, and the final ones."""

from __future__ import annotations

import streamlit as st

from app import context, items, layout

HEADINGS = {
    "entry": ("About you", "A few questions before we start."),
    "post_block": ("About the explanations", "Please think about the cases you have just seen."),
    "post": ("Almost done", "A last question before you finish."),
}


def page() -> None:
    visit = context.current("questions")
    assert visit.engine is not None and visit.position is not None
    step = visit.position.step
    context.mark_shown(visit)
    layout.progress(visit.position)
    title, intro = HEADINGS.get(step.section, ("Questions", ""))
    if step.section == "post_block" and visit.engine.protocol.design == "within" and step.period:
        title = f"About part {step.period} of {len(visit.engine.protocol.conditions)}"
    st.header(title)
    if intro:
        st.write(intro)
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, visit.engine.loaded.bundle.manifest, errors)
        clicked = st.form_submit_button("Continue", type="primary", on_click=context.submit, args=(visit,))
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)
