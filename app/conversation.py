"""Drawing a conversation with the live model (explorer and interactive trials): the diagnosis, the follow-up
answers, the generated references, and a poller that reruns the page when a worker has finished a job.

Pages never wait for a model: they draw each job as it is now (waiting, done, or a calm note) and, while any
is open, a fragment re-reads the jobs every :data:`POLL_SECONDS` and reruns the page when one has finished.
Only that fragment reruns meanwhile, so other sessions and the rest of the page are untouched.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import streamlit as st

from app.i18n import _
from db.jobs import JobQueue, JobStatus
from study.live import JobState, progress

POLL_SECONDS = 1.0


def poll(queue: JobQueue, drawn_pending: Sequence[int]) -> None:
    """Rerun the page when any job it drew as waiting (``drawn_pending``) has finished: at once if one did
    while the page was drawn, else from a fragment that re-reads them every :data:`POLL_SECONDS`."""
    if not drawn_pending:
        return

    def still_open() -> dict[int, JobStatus] | None:
        """The jobs' statuses while all are open; None once one has finished (or is gone): time to redraw."""
        statuses = queue.statuses(drawn_pending)  # one small query: no photos, payloads or results
        now = [statuses.get(job_id) for job_id in drawn_pending]
        return None if any(job is None or job.finished for job in now) else statuses

    if still_open() is None:
        st.rerun(scope="app")

    @st.fragment(run_every=POLL_SECONDS)
    def waiting() -> None:
        # The fragment draws a line of its own, so it is visibly alive while it waits.
        statuses = still_open()
        if statuses is None:
            st.rerun(scope="app")
        st.caption(f":material/autorenew: {progress(queue, statuses[drawn_pending[0]])}")

    waiting()


def pending_note(job: JobState) -> None:
    st.caption(f":material/hourglass_top: {job.progress}")


def failure_note(job: JobState, retry: Callable[[], None] | None, key: str) -> None:
    """A calm note; with ``retry`` and a busy model, a button that asks again."""
    st.info(job.note, icon=":material/schedule:" if job.retry_later else ":material/info:")
    if retry is not None and job.retry_later:
        st.button(_("Try again"), key=f"retry:{key}", on_click=retry)


def diagnosis(result: dict) -> None:
    """The model's diagnosis (a ``diagnose`` job's result), its reasoning and its differential."""
    with st.container(border=True):
        heading = _("The AI's diagnosis")
        st.markdown(f"**{heading}**")
        st.subheader(result["display_name"], anchor=False)
        if result.get("rationale"):
            st.markdown(f"**{_('Why the AI thinks so:')}** {result['rationale']}")
        others = [entry["condition"] for entry in result["differential"][1:]]
        if others:
            st.markdown(f"**{_('It could also be:')}** " + ", ".join(result["names"][c] for c in others))
        st.caption(_("Model: {model}").format(model=result["model_id"]))


def answer(question: str, result: dict | None) -> None:
    """One follow-up turn: the question, and once answered (``answer``, ``condition``, ``display_name``) the
    answer and the condition it was mapped onto."""
    with st.chat_message("user"):
        st.write(question)
    if result is None:
        return
    with st.chat_message("assistant"):
        st.write(result["answer"])
        mapped = (
            _("Names no condition we know (mapped to *{name}*)")
            if result["condition"] == "unknown"
            else _("Mapped onto the taxonomy: **{name}**")
        )
        st.caption(mapped.format(name=result["display_name"]))


def references(result: dict) -> None:
    """The generated images (a ``references`` job's result), each captioned as generated, with its
    provenance on demand."""
    name = result["display_name"]
    heading = _("Generated example pictures of {condition}").format(condition=name.lower())
    skin = _("(skin type {skin_tone})").format(skin_tone=result["skin_tone"])
    st.markdown(f"**{heading}** {skin}")
    st.caption(
        _("A computer made these pictures. They show what the condition typically looks like, not you.")
    )
    images = result["images"]
    for column, image in zip(st.columns(len(images)), images, strict=True):
        with column:
            # the PNG as the worker made it: st.image sends PNG bytes as they are, a decoded image it re-encodes
            caption = _("AI-generated: {condition}").format(condition=name)
            st.image(base64.b64decode(image["png"]), caption=caption, width="stretch")
    with st.expander(_("How these pictures were made")):
        for image in images:
            record = image["provenance"]
            parts = [
                record["pipeline"],
                _("model {model}").format(model=record["model"]),
                _("seed {seed}").format(seed=record["seed"]),
            ]
            if record.get("ip_adapter"):
                parts.append(_("IP-Adapter on the uploaded photo"))
            if image.get("mask"):
                parts.append(_("inpainted into the photo, mask by {mask}").format(mask=image["mask"]))
            st.markdown(f"- `{image['key'][:12]}` · " + " · ".join(parts))
        st.json([image["provenance"] for image in images], expanded=False)
