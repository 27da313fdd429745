"""The explorer (``/?area=explore``): try SkinGEN on your own photo — diagnosis, questions, references.

Access: a signed-in researcher, or anyone when the server was started with ``--explorer-open``. The photo
lives in this browser session's memory and in the inputs of its open jobs: cleared when each ends, when it
expires (``serve --job-ttl``), and — the page holds its jobs while it is open — with the jobs' results once
the page has been left for ``serve --job-hold`` seconds (2 minutes by default; db/jobs.py). It is written to
disk only when the server has a photo folder (``--explorer-photos DIR``) and the user ticks the box that asks
for consent. Nothing of the explorer is part of a study export.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st
from PIL import Image, UnidentifiedImageError

from app import access, conversation, images
from app.context import live_queue
from app.views import admin
from db.jobs import QUEUED, JobQueue
from formats.jobs import chat_request, diagnose_request, references_request
from formats.taxonomy import UNKNOWN
from skingen.skin_tone import FITZPATRICK_TYPES, estimate_skin_tone
from study.live import DIAGNOSIS_QUESTION, NO_WORKER, JobState, state, submit, worker_command

OPEN_ENV = "SKINGEN_EXPLORER_OPEN"
PHOTOS_ENV = "SKINGEN_EXPLORER_PHOTOS"
REFERENCES_ENV = "SKINGEN_EXPLORER_REFERENCES"
_SESSION_KEY = "skingen.explore"
THUMBNAIL_WIDTH = 240


def allowed() -> bool:
    """Open to all with ``--explorer-open``; otherwise to signed-in researchers only (checked every run)."""
    if os.environ.get(OPEN_ENV) == "1":
        return True
    who = access.identity()
    return who is not None and who.role == "admin"


@dataclass
class Exploration:
    """One photo's session: its diagnosis job, the follow-up turns and the reference requests, in order."""

    photo: Image.Image
    digest: str
    skin_tone: str
    ita: float
    thumbnail: bytes  # what the page shows of the photo, encoded once (st.image re-encodes an image each run)
    diagnosis_job: int | None = None
    turns: list[tuple[str, int]] = field(default_factory=list)  # (question, job id)
    shown: list[int] = field(default_factory=list)  # references job ids

    def job_ids(self) -> list[int]:
        diagnosis = [self.diagnosis_job] if self.diagnosis_job is not None else []
        return diagnosis + [job for _, job in self.turns] + self.shown


def _read_photo() -> tuple[bytes, Exploration] | None:
    """The uploaded photo's bytes and its exploration (a new photo starts a new one; the same photo is
    decoded once, not on every rerun)."""
    use_camera = st.toggle("Use the camera", key="explore.camera")
    upload = (
        st.camera_input("Take a photo of the skin area")
        if use_camera
        else st.file_uploader("A photo of the skin area", type=["png", "jpg", "jpeg", "webp"])
    )
    if upload is None:
        return None
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    current: Exploration | None = st.session_state.get(_SESSION_KEY)
    if current is not None and current.digest == digest:
        return data, current
    try:
        with Image.open(io.BytesIO(data)) as image:
            photo = image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        st.error("This file is not a photo we can read. Please use a PNG or JPEG image.")
        return None
    estimate = estimate_skin_tone(photo)
    current = Exploration(photo, digest, estimate.fitzpatrick, estimate.ita, _thumbnail(photo))
    st.session_state[_SESSION_KEY] = current
    return data, current


def _thumbnail(photo: Image.Image) -> bytes:
    shown = photo.copy()
    shown.thumbnail((2 * THUMBNAIL_WIDTH, 2 * THUMBNAIL_WIDTH))  # sharp on high-density screens
    out = io.BytesIO()
    shown.save(out, format="JPEG", quality=images.JPEG_QUALITY)
    return out.getvalue()


def _keep_photo_with_consent(exploration: Exploration, data: bytes) -> None:
    folder = os.environ.get(PHOTOS_ENV)
    if not folder:
        return
    if st.checkbox(
        "Keep my photo for the research team (optional; without this tick it is not stored)",
        key=f"explore.keep:{exploration.digest}",
    ):
        target = Path(folder) / f"{exploration.digest}.png"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            exploration.photo.save(target)
            consent = {
                "consented_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sha256": exploration.digest,
            }
            target.with_suffix(".json").write_text(json.dumps(consent) + "\n")
        st.caption("Your photo is kept, with the time you agreed.")


def _skin_tone(exploration: Exploration) -> None:
    tones = list(FITZPATRICK_TYPES)
    chosen = st.selectbox(
        "Skin type of the references (estimated from the skin around the spot; change it if it is wrong)",
        tones,
        index=tones.index(exploration.skin_tone),
        key=f"explore.tone:{exploration.digest}",
        help=f"Individual typology angle of the surrounding skin: {exploration.ita:.0f}°",
    )
    exploration.skin_tone = chosen


def page() -> None:
    if not allowed():
        admin.sign_in()
        return
    st.title("SkinGEN explorer")
    st.caption("Show a skin photo to the AI, ask it questions, and see generated pictures of what it names.")
    read = _read_photo()
    if read is None:
        st.info("Upload a photo (or take one with the camera) to begin.")
        return
    data, exploration = read
    photo = exploration.photo
    queue = live_queue()
    st.image(exploration.thumbnail, caption="Your photo", width=THUMBNAIL_WIDTH)
    _keep_photo_with_consent(exploration, data)
    _skin_tone(exploration)
    if exploration.diagnosis_job is None:
        exploration.diagnosis_job = submit(queue, diagnose_request(photo), held=True).id
    diagnosed = state(queue, exploration.diagnosis_job)
    waiting: list[int] = []  # the jobs this run draws as waiting: the poller reruns when one finishes

    def retry_diagnosis() -> None:
        exploration.diagnosis_job = None

    if diagnosed.pending:
        _no_worker_note(diagnosed, queue)
        conversation.pending_note(diagnosed)
        waiting.append(diagnosed.job.id)
    elif diagnosed.result is None:
        conversation.failure_note(diagnosed, retry_diagnosis, "diagnosis")
    else:
        conversation.diagnosis(diagnosed.result)
        waiting += _references_section(exploration, diagnosed, queue)
        waiting += _chat_section(exploration, diagnosed, queue)
    conversation.poll(queue, waiting)
    _hold(queue, exploration.job_ids())


def _no_worker_note(job: JobState, queue: JobQueue) -> None:
    """When no worker serves a waiting job, say so and name the command that starts one (its database as
    this server uses it): else the page would wait for nothing."""
    if job.job.status == QUEUED and not job.workers:
        st.warning(
            f"{NO_WORKER} Start one on a machine with the models: `{worker_command(queue.db.url)}` "
            "(docs/workers.md). This request is dropped if no worker takes it within "
            f"{queue.ttl.total_seconds() / 60:g} minutes.",
            icon=":material/power_off:",
        )


def _hold(queue: JobQueue, job_ids: list[int]) -> None:
    """Hold this page's jobs while it is open (a timer of the browser's renews the hold); once the user has
    left, the holds lapse and the sweeper erases the photo and the results (db/jobs.py)."""
    if not job_ids:
        return

    @st.fragment(run_every=queue.hold_for.total_seconds() / 4)
    def holding() -> None:
        queue.hold(job_ids)

    holding()


def _references_section(exploration: Exploration, diagnosed: JobState, queue: JobQueue) -> list[int]:
    """The reference buttons and images; returns the jobs drawn as waiting."""
    count = int(os.environ.get(REFERENCES_ENV, "3"))
    conditions = [entry["condition"] for entry in diagnosed.result["differential"]]
    wanted = [c for c in conditions if c != UNKNOWN]
    names = diagnosed.result["names"]
    inpaint = st.checkbox(
        "Paint it into my photo (SkinGEN's inpainting; needs a worker started with --inpaint-sd)",
        key=f"explore.inpaint:{exploration.digest}",
    )
    for index, condition in enumerate(wanted):
        label = "Show what it looks like" if index == 0 else f"Show {names[condition].lower()}"
        if st.button(label, key=f"explore.show:{condition}", type="primary" if index == 0 else "secondary"):
            request = references_request(
                condition, exploration.skin_tone, count=count, photo=exploration.photo, inpaint=inpaint
            )
            job = submit(queue, request, held=True).id
            if job not in exploration.shown:
                exploration.shown.append(job)
    waiting = []
    for job_id in exploration.shown:
        shown = state(queue, job_id)
        if shown.pending:
            _no_worker_note(shown, queue)
            conversation.pending_note(shown)
            waiting.append(job_id)
        elif shown.result is None:
            conversation.failure_note(shown, None, f"references:{job_id}")
        else:
            conversation.references(shown.result)
    return waiting


def _chat_section(exploration: Exploration, diagnosed: JobState, queue: JobQueue) -> list[int]:
    """The follow-up questions and answers and the chat box; returns the jobs drawn as waiting.

    The chat box is read before the conversation above it is drawn, so a new question is drawn, waiting,
    in the run that sent it (no second run for it)."""
    st.markdown("**Ask about this photo**")
    conversation_box = st.container()
    # In a container, the chat box stays under the conversation instead of pinned to the window's bottom.
    question = st.container().chat_input("Ask a follow-up question")
    turns = [(asked, state(queue, job_id)) for asked, job_id in exploration.turns]
    if question:
        history = [(DIAGNOSIS_QUESTION, diagnosed.result["raw_output"])]
        history += [(asked, turn.result["answer"]) for asked, turn in turns if turn.result is not None]
        job = submit(queue, chat_request(exploration.photo, history, question), held=True).id
        exploration.turns.append((question, job))
        turns.append((question, state(queue, job)))
    waiting = []
    with conversation_box:
        for asked, turn in turns:
            conversation.answer(asked, turn.result)
            if turn.pending:
                conversation.pending_note(turn)
                waiting.append(turn.job.id)
            elif turn.result is None:
                conversation.failure_note(turn, None, f"turn:{turn.job.id}")
    return waiting
