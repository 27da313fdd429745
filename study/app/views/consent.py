"""Consent: the information text and the statements to tick; consenting creates the participant's token."""

from __future__ import annotations

import streamlit as st

from study.app import context
from study.engine import ConsentRefused


def page() -> None:
    visit = context.current("consent")
    assert visit.engine is not None
    consent = visit.engine.protocol.consent
    st.title(visit.engine.protocol.study.title)
    st.markdown(consent.text)
    with st.form("form:consent", border=False, enter_to_submit=False):
        st.markdown("**Consent**")
        ticked = [s.id for s in consent.statements if st.checkbox(s.text, key=f"consent:{s.id}")]
        submitted = st.form_submit_button("I agree — start the study", type="primary")
    if submitted:
        try:
            token = visit.engine.consent(ticked, visit.entry.url_params if visit.entry else {})
        except ConsentRefused as refused:
            texts = {s.id: s.text for s in consent.statements}
            st.error(
                "To take part, please tick every statement. Not yet ticked: "
                + "; ".join(f"“{texts[m]}”" for m in refused.missing)
            )
            return
        context.start(visit, token)
