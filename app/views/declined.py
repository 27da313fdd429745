"""The end page of someone who chose not to take part: polite, and true about what was kept (a count only)."""

from __future__ import annotations

import streamlit as st

from app import context
from app.i18n import _


def page() -> None:
    context.current("declined")
    st.title(_("Thank you for considering our study"))
    st.markdown(
        _(
            "You chose not to take part. Nothing you entered and none of your identifiers were stored; we only "
            "count that someone declined, without any detail about you."
        )
    )
    st.markdown(
        _(
            "If you came from a study platform (for example Prolific), please return the study there. "
            "You can close this page now."
        )
    )
