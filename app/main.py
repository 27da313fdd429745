"""Entrypoint of the participant app (``streamlit run app/main.py``; better: ``skingen-study serve``).

It only routes: the engine says which step the participant in the URL is on, and the one page for that
step kind is handed to ``st.navigation`` (hidden, so there is no page list to wander into).
"""

from __future__ import annotations

import streamlit as st

from app import access, context, i18n, layout, roles
from app.i18n import N_, _
from app.views import complete, consent, declined, error, info, questions, trial

if access.area() != "participant":  # raters and researchers: their own pages, nothing of participants'
    roles.run(access.area())
    st.stop()

# page → (its function, title as marked for the catalog, URL path)
PAGES = {
    "consent": (consent.page, N_("Consent"), "consent"),
    "declined": (declined.page, N_("Thank you"), "declined"),
    "questions": (questions.page, N_("Questions"), "questions"),
    "info": (info.page, N_("Information"), "information"),
    "trial": (trial.page, N_("Case"), "case"),
    "complete": (complete.page, N_("Thank you"), "complete"),
    "error": (error.page, N_("Study not available"), "error"),
}

visit = context.resolve()
context.remember(visit)
i18n.activate(visit.language)
title = visit.protocol.study.title if visit.engine else _("Study")
st.set_page_config(page_title=title, page_icon=":material/dermatology:", layout="centered")
layout.hide_chrome(top_of=visit.position.step.key if visit.position else visit.page, language=visit.language)
page, page_title, url_path = PAGES[visit.page]
st.navigation([st.Page(page, title=_(page_title), url_path=url_path)], position="hidden").run()
if context.test_hooks_enabled():
    layout.run_counter(layout.input_count(visit))
