"""A trial: the case photo, what the AI says, the reference images its condition shows, the questions."""

from __future__ import annotations

import streamlit as st

from skingen.bundle.manifest import Bundle, Case, ReferenceImage
from study.app import context, items, layout


def _case(bundle: Bundle, case: Case) -> None:
    photo, ai = st.columns([5, 6], gap="large")
    with photo:
        st.image(str(bundle.path(case.image)), caption="The skin area to assess", width="stretch")
    with ai, st.container(border=True):
        st.markdown("**The AI's diagnosis**")
        st.subheader(case.ai.display_name, anchor=False)
        st.write(case.ai.text)
        if case.ai.rationale:
            st.markdown(f"**Why the AI thinks so:** {case.ai.rationale}")


def _references(bundle: Bundle, case: Case, references: tuple[ReferenceImage, ...]) -> None:
    """Generated and retrieved references apart, each under its own heading (captions carry the licence)."""
    generated = [r for r in references if r.generated]
    retrieved = [r for r in references if not r.generated]
    name = case.ai.display_name.lower()
    if generated:
        st.markdown(f"**Generated example pictures of {name}**")
        st.caption(
            "A computer made these pictures to show what the condition the AI names typically looks like. "
            "They do not show the patient."
        )
        _images(bundle, generated)
    if retrieved:
        st.markdown(f"**Real example photos of {name}**")
        st.caption("Photos of other people with the condition the AI names. They do not show the patient.")
        _images(bundle, retrieved)


def _images(bundle: Bundle, references: list[ReferenceImage]) -> None:
    for column, ref in zip(st.columns(len(references)), references, strict=True):
        with column:
            st.image(str(bundle.path(ref.image)), caption=ref.caption, width="stretch")


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
    shown = protocol.condition(step.condition).shown_references(case)
    if shown:
        _references(bundle, case, shown)
    st.divider()
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, bundle.manifest, errors)
        clicked = st.form_submit_button("Next", type="primary", on_click=context.submit, args=(visit,))
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)
