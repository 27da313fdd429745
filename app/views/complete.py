"""The completion page: shown to every participant who finished, also when they reopen their link."""

from __future__ import annotations

import streamlit as st

from app import context


def page() -> None:
    visit = context.current("complete")
    assert visit.engine is not None
    completion = visit.engine.protocol.completion
    st.title("Thank you!")
    st.success(completion.message)
    st.markdown("Your completion code:")
    st.code(completion.code, language=None)
    if completion.redirect_url:
        url = completion.redirect_url.replace("{code}", completion.code)
        st.write("Please use the button below to confirm your participation on the study platform.")
        st.link_button("Return to the study platform", url, type="primary")
    st.caption("You can close this page now.")
