"""A trial: the case photo, what the AI says, the reference images its condition shows, the questions —
and in interactive conditions, questions to the live model and references generated for the case."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from PIL import Image

from db.jobs import JobQueue
from skingen.bundle.manifest import Bundle, Case
from skingen.interactive import JobRequest, chat_request, references_request
from skingen.skin_tone import estimate_skin_tone
from skingen.taxonomy import UNKNOWN
from study import live
from study.app import context, conversation, images, items, layout
from study.engine import TurnRecord, TurnRefused
from study.protocol import ExperimentalCondition
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
    why = f"\n\n**Why the AI thinks so:** {case.ai.rationale}" if case.ai.rationale else ""
    with ai, st.container(border=True):
        # One element, not four: each costs a message on every run (the CSS hides the heading's link icon).
        st.markdown(f"**The AI's diagnosis**\n\n### {case.ai.display_name}\n\n{case.ai.text}{why}")


def references(bundle: Bundle, case: Case, kind: ReferenceKind) -> None:
    """Show the case's reference images of ``kind`` with their captions; nothing when it has none.

    What a condition's explanation calls for each kind of reference it shows."""
    shown = case_references(case, kind)
    if not shown:
        return
    heading, note = _INTRODUCTIONS[kind]
    # the note in caption style on the heading's next line: one element, not two
    st.markdown(f"**{heading.format(condition=case.ai.display_name.lower())}**  \n:small[:gray[{note}]]")
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
    condition = protocol.condition(step.condition)
    if protocol.design == "within" and step.period:
        st.caption(f"Part {step.period} of {len(protocol.conditions)}")
    _case(bundle, case)
    for kind in condition.references:
        references(bundle, case, kind)
    if condition.interactive:
        _LiveCase(visit, case, bundle.path(case.image), condition).render()
    st.divider()
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, bundle.manifest, errors)
        clicked = st.form_submit_button("Next", type="primary", on_click=context.submit, args=(visit,))
    context.unhandled_click(visit, clicked)
    items.summary(step, errors)


@st.cache_data(show_spinner=False, max_entries=64)
def _photo(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


class _LiveCase:
    """Interactive conditions: questions to the live model about this case, and references made for it.

    Turns are stored when asked and completed when the worker's answer arrives (the engine keeps them, so a
    reload shows them again). The model's first answer is the case's own AI output: every participant's
    conversation starts from the diagnosis the protocol planted, right or wrong.
    """

    def __init__(
        self, visit: context.Visit, case: Case, photo: Path, condition: ExperimentalCondition
    ) -> None:
        assert visit.engine is not None and visit.position is not None
        self.visit, self.case, self.condition = visit, case, condition
        self.engine, self.step_key = visit.engine, visit.position.step.key
        self.queue: JobQueue = context.live_queue()
        self.photo = _photo(photo)
        self.names = {c.id: c.display_name for c in visit.engine.loaded.bundle.manifest.conditions}

    def render(self) -> None:
        turns = self._complete_answered(self.engine.turns(self.visit.token, self.step_key))
        history = [
            (
                live.DIAGNOSIS_QUESTION,
                f"Diagnosis: {self.case.ai.display_name}\nReasoning: {self.case.ai.rationale}",
            )
        ]
        st.markdown("**Ask the AI about this case**")
        open_jobs: list[int] = []
        for turn in turns:
            asked_after = list(history)  # what the model had heard before this turn, should it be asked again
            if turn.kind == "question":
                conversation.answer(turn.question, self._answered(turn))
                if turn.answered_at:
                    history.append((turn.question, turn.answer))
            if turn.answered_at is not None or turn.job_id is None:
                if turn.kind == "references" and turn.job_id is not None:
                    shown = live.state(self.queue, turn.job_id)
                    if shown.result is not None:
                        conversation.references(shown.result)
                continue
            job = self._open.get(turn.turn) or live.state(self.queue, turn.job_id)  # one reading per run
            if job.pending or job.result is not None:  # answered since the reading: the poller reruns
                conversation.pending_note(job)
                open_jobs.append(turn.job_id)
            else:
                conversation.failure_note(job, self._retry(turn, asked_after), f"turn:{turn.turn}")
        self._ask_more(turns, history)
        conversation.poll(self.queue, open_jobs)

    def _answered(self, turn: TurnRecord) -> dict | None:
        if turn.answered_at is None:
            return None
        name = self.names.get(turn.condition or "", "Unknown")
        return {"answer": turn.answer, "condition": turn.condition or UNKNOWN, "display_name": name}

    def _ask_more(self, turns: list[TurnRecord], history: list[tuple[str, str]]) -> None:
        left = self.condition.follow_up_questions - sum(turn.kind == "question" for turn in turns)
        if left > 0:
            st.caption(f"You can ask {left} more question{'s' if left != 1 else ''} about this case.")
            # In a container the box stays here, above the trial's questions, not pinned to the window's bottom.
            box = st.container()
            question = box.chat_input("Ask a question about this case", key=f"ask:{self.step_key}")
            if question:
                self._ask("question", question, chat_request(self.photo, history, question))
        wanted = self.condition.live_references and self.case.ai.condition != UNKNOWN
        asked = any(turn.kind == "references" for turn in turns)
        if wanted and not asked and st.button("Show what it looks like", key=f"show:{self.step_key}"):
            self._ask("references", "", self._references_request())

    def _references_request(self) -> JobRequest:
        skin_tone = self.case.skin_tone or estimate_skin_tone(self.photo).fitzpatrick
        return references_request(
            self.case.ai.condition, skin_tone, count=self.condition.live_references, photo=self.photo
        )

    def _ask(self, kind: str, question: str, request: JobRequest) -> None:
        job = live.submit(self.queue, request)
        # refused: another tab used the last question or moved on; the rerun shows what is current
        with contextlib.suppress(TurnRefused):
            self.engine.ask(self.visit.token, self.step_key, kind, question, job.id)
        st.rerun()

    def _retry(self, turn: TurnRecord, history: list[tuple[str, str]]) -> Callable[[], None]:
        """The "Try again" callback of a failed turn; the request is built only when it is clicked."""

        def again() -> None:
            request = (
                chat_request(self.photo, history, turn.question)
                if turn.kind == "question"
                else self._references_request()
            )
            job = live.submit(self.queue, request)
            self.engine.retry(self.visit.token, self.step_key, turn.turn, job.id)

        return again

    def _complete_answered(self, turns: list[TurnRecord]) -> list[TurnRecord]:
        """Store the answers workers have delivered since the last run; the turns as they are now.

        The jobs of turns still open are kept in ``self._open`` as read here, and the page draws them from
        that one reading: a job finishing a moment later is seen by the poller, never drawn as neither
        waiting nor answered.
        """
        completed = False
        self._open: dict[int, live.JobState] = {}
        for turn in turns:
            if turn.answered_at is not None or turn.job_id is None:
                continue
            job = live.state(self.queue, turn.job_id)
            result = job.result
            if result is None:
                self._open[turn.turn] = job
                continue
            images = tuple(image["key"] for image in result.get("images", ()))
            completed |= self.engine.answer(
                self.visit.token,
                self.step_key,
                turn.turn,
                answer=result.get("answer", ""),
                condition=result.get("condition"),
                model_id=result.get("model_id"),
                latency_ms=result.get("latency_ms"),
                images=images,
            )
        return self.engine.turns(self.visit.token, self.step_key) if completed else turns
