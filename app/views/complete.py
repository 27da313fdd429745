"""The completion page: shown to every participant who finished, also when they reopen their link."""

from __future__ import annotations

import logging

import streamlit as st

from app import context
from app.i18n import _, ngettext

LOG = logging.getLogger("skingen.app")


def page() -> None:
    visit = context.current("complete")
    assert visit.engine is not None
    protocol = visit.protocol
    completion = protocol.completion
    st.title(_("Thank you!"))
    st.success(completion.message or _("Thank you for taking part."))
    if protocol.debrief.reveal_wrong_ai:
        _wrong_ai_cases(visit)
    st.markdown(_("Your completion code:"))
    st.code(completion.code, language=None)
    if completion.redirect_url:
        url = completion.redirect_url.replace("{code}", completion.code)
        st.write(_("Please use the button below to confirm your participation on the study platform."))
        st.link_button(_("Return to the study platform"), url, type="primary")
    st.caption(_("You can close this page now."))


def _wrong_ai_cases(visit: context.Visit) -> None:
    """Which of this participant's cases had a deliberately wrong AI diagnosis (the bundle's cases whose AI
    diagnosis is not the ground truth), by the number the case had on its page."""
    assert visit.engine is not None
    try:
        path = visit.engine.path_of(visit.token)
    except Exception:  # the database is away: the code matters more than the list; the next visit shows it
        LOG.exception("could not read the path of a completed participant")
        return
    manifest = visit.engine.loaded.bundle.manifest
    names = {c.id: c.display_name for c in manifest.skin_conditions}
    wrong = [
        (step.trial_number, manifest.case(step.case_id))
        for step in path
        if step.kind == "trial"
        and step.advice
        and step.case_id
        and not manifest.case(step.case_id).ai_correct
    ]
    if not wrong:
        st.markdown(_("In all of your cases the AI's diagnosis was the true one."))
        return
    lines = [
        _("Case {number}: the AI said **{ai}**; the skin shown has **{truth}**.").format(
            number=number, ai=case.ai.display_name, truth=names.get(case.ground_truth, case.ground_truth)
        )
        for number, case in wrong
    ]
    heading = ngettext(
        "In {count} of your cases the AI's diagnosis was deliberately wrong:",
        "In {count} of your cases the AI's diagnosis was deliberately wrong:",
        len(wrong),
    ).format(count=len(wrong))
    st.markdown(heading + "\n\n" + "\n".join(f"- {line}" for line in lines))
