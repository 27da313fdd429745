"""The page for links that don't work and for a study that can't be opened; it never shows internals."""

from __future__ import annotations

import streamlit as st

from app import context
from app.i18n import _


def page() -> None:
    visit = context.current("error")
    st.title(_("We could not open the study"))
    st.warning(_(visit.problem or context.UNAVAILABLE))
    st.caption(_("If the problem persists, please contact the research team named in the study invitation."))
