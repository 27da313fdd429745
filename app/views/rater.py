"""The dermatologists' pages: set a password from the one-time link, sign in, rate images one by one.

Raters see the stated condition and the image only — never whether it was generated, retrieved or a case
photo, nor its provenance or licence.
Each rating is saved on submit; position and progress come from the database, so a reload resumes.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app import access, images, items
from app.context import configured_engine, errors, keep_errors, step_answers
from study.auth import MIN_PASSWORD_LENGTH, AuthError, Invite
from study.path import AnswerError, Step
from study.rating import RatingError, RatingPanel, RatingTask

INPUTS_KEY = "skingen.rating_inputs"  # answer widgets on the page, for the browser tests' rerun hook


def _panel() -> RatingPanel:
    engine = configured_engine()
    return RatingPanel(engine.db, engine.loaded)


def page() -> None:
    st.session_state[INPUTS_KEY] = 0
    invite = st.query_params.get(access.INVITE_PARAM)
    who = access.identity()
    if who is not None and who.role == "rater":
        _rating(who.rater_id)
    elif invite:
        _set_password(invite)
    else:
        _sign_in()


def _set_password(invite: str) -> None:
    """The one-time link's page: the set-password form with the name to sign in with, or — for a link that
    was used, mistyped or replaced — a page that says which, and what to do."""
    try:
        state = _invite(invite)
    except AuthError as exc:  # throttled
        st.error(access.message(exc))
        return
    if state.state != "open":
        _invite_problem(state.state)
        return
    st.title("Welcome to the rating panel")
    st.write("You sign in with this name (capitalisation does not matter):")
    st.code(state.name, language=None)
    st.write(
        f"Choose a password (at least {MIN_PASSWORD_LENGTH} characters). From now on you sign in with your "
        "name and this password; this link works only once."
    )
    with st.form("invite", enter_to_submit=False):
        password = st.text_input("New password", type="password")
        again = st.text_input("Repeat the password", type="password")
        submitted = st.form_submit_button("Set password and start", type="primary")
    if submitted:
        if password != again:
            st.error("The two passwords differ.")
            return
        try:
            access.start_session(access.auth().accept_invite(invite, password, source=access.client_source()))
        except AuthError as exc:
            st.error(access.message(exc))
            return
        st.session_state.pop(_INVITE_KEY, None)
        st.rerun()


_INVITE_KEY = "skingen.invite"


def _invite(invite: str) -> Invite:
    """The link's state, checked once per tab (an Argon2 check; each widget click reruns the page)."""
    cached = st.session_state.get(_INVITE_KEY)
    if cached is None or cached[0] != invite:
        cached = (invite, access.auth().invite(invite, source=access.client_source()))
        st.session_state[_INVITE_KEY] = cached
    return cached[1]


_INVITE_PROBLEMS: dict[str, tuple[str, str]] = {
    "used": (
        "This sign-in link has already been used",
        "Your password is set: sign in with your name and that password. If you have forgotten the "
        "password, ask the researcher for a new link.",
    ),
    "malformed": (
        "This sign-in link is incomplete",
        "The link seems cut short or mistyped (e-mail programs sometimes break long links). Copy the whole "
        "link from the message into the address bar, or ask the researcher to send it again.",
    ),
    "invalid": (
        "This sign-in link is not valid",
        "It may have been replaced by a newer link, or the rater account was closed. Ask the researcher for "
        "a new link.",
    ),
}


def _invite_problem(state: str) -> None:
    title, advice = _INVITE_PROBLEMS[state]
    st.title(title)
    st.info(advice)
    if st.button("Go to sign-in", type="primary"):
        st.query_params.pop(access.INVITE_PARAM, None)
        st.session_state.pop(_INVITE_KEY, None)
        st.rerun()


def _sign_in() -> None:
    st.title("Rating panel — sign in")
    with st.form("sign-in", enter_to_submit=True):
        name = st.text_input("Name", help="The name on your invitation; capitalisation does not matter.")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            access.start_session(access.auth().sign_in_rater(name, password, source=access.client_source()))
        except AuthError as exc:
            st.error(access.message(exc))
            return
        st.rerun()


def _rating(rater_id: int | None) -> None:
    access.require("rater")
    assert rater_id is not None
    panel = _panel()
    task = panel.next_task(rater_id)
    if task is None:
        _, total = panel.progress(rater_id)
        st.title("All images rated")
        st.success(f"Thank you — you rated all {total} images assigned to you. You can close this page.")
        _sign_out_button()
        return
    panel.mark_shown(rater_id, task.image.image_id)
    _show(task, panel, rater_id)


def _show(task: RatingTask, panel: RatingPanel, rater_id: int) -> None:
    st.caption(f"Image {task.number} of {task.total}")
    st.progress((task.number - 1) / task.total)
    if panel.rating.instructions and task.number == 1:
        st.markdown(panel.rating.instructions)
    st.subheader(f"Stated condition: {task.skin_condition_name}")
    # The text alternative says what the page says, never whether it is a photo or generated.
    images.show(
        panel.loaded.bundle.path(task.image.image), f"The image to rate, of {task.skin_condition_name}"
    )
    step = _step(task)
    problems = errors(step.key)
    st.session_state[INPUTS_KEY] = len(step.items)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, panel.loaded.bundle.manifest, problems)
        st.form_submit_button("Save and next", type="primary", on_click=_submit, args=(panel, rater_id, task))
    items.summary(step, problems)
    _sign_out_button()


def _step(task: RatingTask) -> Step:
    """The rating form's step, keyed by the image's place in the rater's list, so each image starts with blank
    answers. Not by image id: keys become CSS classes in the page, and an id says whether the image is a case
    photo, a retrieved or a generated one (raters must not be able to tell)."""
    return replace(task.step, key=f"rating:{task.number}")


def _submit(panel: RatingPanel, rater_id: int, task: RatingTask) -> None:
    """Form callback: save before the next run, so a submit costs one run."""
    step = _step(task)
    answers = step_answers(step)
    try:
        panel.submit(rater_id, task.image.image_id, answers)
    except AnswerError as exc:
        keep_errors(step.key, exc.errors)
    except RatingError:
        pass  # a stale page: the next run shows the current image


def _sign_out_button() -> None:
    if st.button("Sign out", type="tertiary"):
        access.sign_out()
        st.rerun()
