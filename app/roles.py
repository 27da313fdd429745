"""Routing for raters and researchers: each audience gets only its own pages.

Participants never reach this module's pages (``main.py`` routes them by their URL token), raters get the
rating pages, researchers the sign-in page until they have signed in, then the dashboard pages; the explorer
is one page for signed-in researchers, or for anyone when the server runs with ``--explorer-open``.
"""

from __future__ import annotations

import logging

import streamlit as st

from app import access, layout
from app.context import UNAVAILABLE, configured_engine, test_hooks_enabled
from app.views import admin, explore, rater

LOG = logging.getLogger("skingen.app")


def run(area: str) -> None:
    try:
        title = configured_engine().protocol.study.title
    except Exception:  # the database or protocol is unusable: say so calmly, log the cause
        LOG.exception("the study engine could not be opened")
        st.error(UNAVAILABLE)
        return
    if area == "rate":
        st.set_page_config(page_title=f"Rating — {title}", layout="centered")
        layout.hide_chrome()
        st.navigation([st.Page(rater.page, title="Rating", url_path="rate")], position="hidden").run()
    elif area == "explore":
        st.set_page_config(page_title="SkinGEN explorer", layout="centered")
        layout.hide_chrome()
        # explore.page checks access itself on every run (researcher sign-in, or --explorer-open)
        st.navigation([st.Page(explore.page, title="Explorer", url_path="explore")], position="hidden").run()
    else:
        st.set_page_config(page_title=f"Dashboard — {title}", layout="wide")
        _researcher_pages()
    if test_hooks_enabled():
        layout.run_counter(st.session_state.get(rater.INPUTS_KEY, 0) if area == "rate" else 0)


def _researcher_pages() -> None:
    """The sign-in page until a researcher has signed in; then the dashboard pages."""
    who = access.identity()
    if who is None or who.role != "admin":
        layout.hide_chrome()
        st.navigation([st.Page(admin.sign_in, title="Sign in", url_path="admin")], position="hidden").run()
        return
    pages = [
        st.Page(admin.dashboard, title="Dashboard", url_path="admin", default=True),
        st.Page(admin.downloads, title="Downloads", url_path="downloads"),
        st.Page(admin.analysis, title="Analysis", url_path="analysis"),
        st.Page(admin.raters, title="Raters", url_path="raters"),
        st.Page(admin.sign_out, title="Sign out", url_path="sign-out"),
    ]
    st.html("<style>#skingen-run { display: none; }</style>")
    st.navigation(pages, position="top").run()
