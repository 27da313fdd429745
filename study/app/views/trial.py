"""A trial: the case photo, what the AI says, the reference images its condition shows, the questions."""

from __future__ import annotations

import streamlit as st

from skingen.bundle.manifest import Bundle, Case
from study.app import context, images, items, layout
from study.references import ReferenceKind, case_references

# What participants are told about each kind of reference image (heading, then a line under it).
_INTRODUCTIONS: dict[ReferenceKind, tuple[str, str]] = {
    "generated": (
        "Generated example pictures of {condition}",
        "A computer made these pictures to show what the condition the AI names typically looks like. "
        "They do not show the patient.",
    ),
    "retrieved": (
        "Real example pictures of {condition}",
        "These are photos of other people with the condition the AI names, from a collection of medical "
        "images. They do not show the patient.",
    ),
}


def _case(bundle: Bundle, case: Case) -> None:
    photo, ai = st.columns([5, 6], gap="large")
    with photo:
        images.show(bundle.path(case.image), caption="The skin area to assess")
    with ai, st.container(border=True):
        st.markdown("**The AI's diagnosis**")
        st.subheader(case.ai.display_name, anchor=False)
        st.write(case.ai.text)
        if case.ai.rationale:
            st.markdown(f"**Why the AI thinks so:** {case.ai.rationale}")


def references(bundle: Bundle, case: Case, kind: ReferenceKind) -> None:
    """Show the case's reference images of ``kind`` with their captions; nothing when it has none.

    What a condition's explanation calls for each kind of reference it shows."""
    shown = case_references(case, kind)
    if not shown:
        return
    heading, note = _INTRODUCTIONS[kind]
    st.markdown(f"**{heading.format(condition=case.ai.display_name.lower())}**")
    st.caption(note)
    for column, ref in zip(st.columns(len(shown)), shown, strict=True):
        with column:
            images.show(bundle.path(ref.image), caption=ref.caption)


def page() -> None:
    visit = context.current("trial")
    assert visit.engine is not None and visit.position is not None
    step = visit.position.step
    assert step.case_id is not None and step.condition is not None
    context.mark_shown(visit)
    layout.progress(visit.position)
    protocol = visit.engine.protocol
    bundle = visit.engine.loaded.bundle
    case = bundle.manifest.case(step.case_id)
    if protocol.design == "within" and step.period:
        st.caption(f"Part {step.period} of {len(protocol.conditions)}")
    _case(bundle, case)
    for kind in protocol.condition(step.condition).references:
        references(bundle, case, kind)
    st.divider()
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, bundle.manifest, errors)
        clicked = st.form_submit_button("Next", type="primary", on_click=context.submit, args=(visit,))
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)
