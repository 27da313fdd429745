"""Entrypoint of the participant app (``streamlit run app/main.py``; better: ``skingen-study serve``).

It only routes: the engine says which step the participant in the URL is on, and the one page for that
step kind is handed to ``st.navigation`` (hidden, so there is no page list to wander into).
"""

from __future__ import annotations

import streamlit as st

from app import access, context, layout, roles
from app.views import complete, consent, declined, error, info, questions, trial

if access.area() != "participant":  # raters and researchers: their own pages, nothing of participants'
    roles.run(access.area())
    st.stop()

PAGES = {
    "consent": st.Page(consent.page, title="Consent", url_path="consent"),
    "declined": st.Page(declined.page, title="Thank you", url_path="declined"),
    "questions": st.Page(questions.page, title="Questions", url_path="questions"),
    "info": st.Page(info.page, title="Information", url_path="information"),
    "trial": st.Page(trial.page, title="Case", url_path="case"),
    "complete": st.Page(complete.page, title="Thank you", url_path="complete"),
    "error": st.Page(error.page, title="Study not available", url_path="error"),
}

visit = context.resolve()
context.remember(visit)
title = visit.engine.protocol.study.title if visit.engine else "Study"
st.set_page_config(page_title=title, page_icon=":material/dermatology:", layout="centered")
layout.hide_chrome(top_of=visit.position.step.key if visit.position else visit.page)
st.navigation([PAGES[visit.page]], position="hidden").run()
if context.test_hooks_enabled():
    layout.run_counter(layout.input_count(visit))
