"""Consent: the information text and the statements to tick; consenting creates the participant's token,
declining leads to a polite end page and stores nothing but a count (study/engine.py ``decline``)."""

from __future__ import annotations

import streamlit as st

from app import context
from app.i18n import N_, _

DECLINE = N_("I do not want to take part")  # a protocol's consent text may point to the button by this label


def page() -> None:
    visit = context.current("consent")
    assert visit.engine is not None
    protocol = visit.protocol
    consent = protocol.consent
    st.title(protocol.study.title)
    st.markdown(consent.text)
    missing = context.errors("consent")
    with st.form("form:consent", border=False, enter_to_submit=False):
        st.markdown(f"**{_('Consent')}**")
        for statement in consent.statements:
            st.checkbox(statement.text, key=context.widget_key("consent", statement.id))
        clicked = st.form_submit_button(
            _("I agree — start the study"),
            type="primary",
            on_click=context.consent,
            args=(visit,),
            key="consent.agree",
        )
    context.unhandled_click(visit, clicked)
    # Outside the form: declining submits nothing of it.
    st.button(_(DECLINE), key="consent.decline", on_click=context.decline, args=(visit,))
    if context.PAGE in missing:
        st.error(
            _("Your consent is not saved: something went wrong on our side. Please try again in a moment.")
        )
    elif missing:
        texts = {s.id: s.text for s in consent.statements}
        st.error(
            _("To take part, please tick every statement. Not yet ticked: {statements}").format(
                statements="; ".join(f"“{texts[m]}”" for m in missing)
            )
        )
