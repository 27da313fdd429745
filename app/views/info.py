"""Text pages without questions: the instructions before the cases and the debrief at the end."""

from __future__ import annotations

import streamlit as st

from app import context, items, layout
from app.i18n import N_, _

BUTTONS = {
    "instructions": N_("Start with the first case"),
    "debrief": N_("Finish and get your completion code"),
}


def page() -> None:
    visit = context.current("info")
    assert visit.engine is not None and visit.position is not None
    step = visit.position.step
    context.mark_shown(visit)
    layout.progress(visit.position)
    protocol = visit.protocol
    st.markdown(protocol.debrief.text if step.section == "debrief" else protocol.instructions)
    errors = context.errors(step.key)  # only "not saved" here: the page has no questions
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        clicked = st.form_submit_button(
            _(BUTTONS.get(step.section, N_("Continue"))),
            type="primary",
            on_click=context.submit,
            args=(visit,),
        )
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)
