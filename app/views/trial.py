"""A trial: the case photo, what the AI says, the reference images its condition shows, the questions —
and in interactive conditions, questions to the live model and references generated for the case."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from PIL import Image

from app import context, conversation, images, items, layout
from app.i18n import N_, _, ngettext
from db.jobs import JobQueue
from formats.bundle import Bundle, Case
from formats.contract import CONFIDENCE_SUFFIX
from formats.jobs import JobRequest, chat_request, references_request
from formats.taxonomy import UNKNOWN
from skingen.skin_tone import estimate_skin_tone
from study import live
from study.items.diagnosis import UNSURE_LABEL
from study.protocol.sections import ExperimentalCondition
from study.references import ReferenceKind, case_references
from study.refusals import EngineError, TurnRefused
from study.turn_log import TurnRecord

LOG = logging.getLogger("skingen.app")

# What participants are told about each kind of reference image (heading, then a line under it).
_INTRODUCTIONS: dict[ReferenceKind, tuple[str, str]] = {
    "generated": (
        N_("Generated example pictures of {condition}"),
        N_(
            "A computer made these pictures to show what the condition the AI names typically looks like. "
            "They do not show the patient."
        ),
    ),
    "retrieved": (
        N_("Real example pictures of {condition}"),
        N_(
            "These are photos of other people with the condition the AI names, from a collection of medical "
            "images. They do not show the patient."
        ),
    ),
}


# Text alternatives (what a screen reader says instead of the picture).
CASE_PHOTO_ALT = N_("Photo of the skin area to assess")
_REFERENCE_ALTS: dict[ReferenceKind, str] = {
    "generated": N_(
        "Computer-generated example picture {number} of {total} of {condition}, the condition the AI names"
    ),
    "retrieved": N_(
        "Photo of another person, example {number} of {total} of {condition}, the condition the AI names"
    ),
}

_ENLARGED_KEY = "skingen.enlarged"


def _enlarge(visit: context.Visit, image_kind: str, image: int) -> None:
    """The "Enlarge" button's callback: record the click (one server-side event per click, the engagement measure), then
    open the image in a dialog in the run that follows."""
    assert visit.engine is not None and visit.position is not None
    step_key = visit.position.step.key
    try:
        visit.engine.enlarge_image(visit.token, step_key, image_kind, image)
    except EngineError:
        return  # a stale page (another tab moved on): the next run shows whatever is current
    except Exception:  # the database is away: the image still opens; the click goes unrecorded
        LOG.exception("could not record an enlarged image on step %s", step_key)
    st.session_state[_ENLARGED_KEY] = (step_key, image_kind, image)


def _enlarged(path: Path, caption: str | None, alt: str) -> None:
    """The image large, in a dialog whose title is in the participant's language."""
    st.dialog(_("Enlarged image"), width="large")(images.show)(path, alt, caption=caption)


def _image(
    visit: context.Visit, path: Path, caption: str | None, alt: str, image_kind: str, image: int
) -> None:
    """A trial image that opens large when it is tapped or clicked: its "Enlarge" button lies over it (the
    CSS of :data:`app.layout.IMAGE_KEY`), so every enlargement goes through the server and is logged
    (Streamlit's own full-screen button is hidden). A keyboard reaches the image as that button."""
    assert visit.position is not None
    step_key = visit.position.step.key
    with st.container(key=f"{layout.IMAGE_KEY}-{image_kind}-{image}"):
        images.show(path, alt, caption=caption)
        st.button(
            _(images.ENLARGE),
            key=f"enlarge:{step_key}:{image_kind}:{image}",
            on_click=_enlarge,
            args=(visit, image_kind, image),
            type="tertiary",
            icon=":material/zoom_in:",
        )
    if st.session_state.get(_ENLARGED_KEY) == (step_key, image_kind, image):
        del st.session_state[_ENLARGED_KEY]
        _enlarged(path, caption, alt)


def _case(
    visit: context.Visit, bundle: Bundle, case: Case, advice: bool, condition: ExperimentalCondition
) -> None:
    """The case photo and, once the step shows advice, what the AI says beside it, with the reference images
    of the condition under its words: on a laptop the first question is then in view without scrolling, and
    on a phone (where the two columns stack) the references come as a row of thumbnails."""
    photo, beside = st.columns([5, 6], gap="large")
    with photo:
        # What it shows, never its diagnosis: that is what the participant is asked for.
        _image(
            visit, bundle.path(case.image), _("The skin area to assess"), _(CASE_PHOTO_ALT), "case_photo", 1
        )
    with beside:
        if not advice:
            with st.container(border=True):
                heading = _("Your own assessment first")
                text = _(
                    "Look at the photo and give your own diagnosis. "
                    "The AI's diagnosis follows on the next page, where you can keep or change your answer."
                )
                st.markdown(f"**{heading}**\n\n{text}")
            return
        why = f"\n\n**{_('Why the AI thinks so:')}** {case.ai.rationale}" if case.ai.rationale else ""
        with st.container(border=True):
            # One element, not four: each costs a message on every run (the CSS hides the heading's link icon).
            heading = _("The AI's diagnosis")
            st.markdown(f"**{heading}**\n\n### {case.ai.display_name}\n\n{case.ai.text}{why}")
        for kind in condition.references:
            references(visit, bundle, case, kind)


def references(visit: context.Visit, bundle: Bundle, case: Case, kind: ReferenceKind) -> None:
    """Show the case's reference images of ``kind`` with their captions, in one row; nothing when it has none.

    What a condition's explanation calls for each kind of reference it shows. Their text alternatives name
    the condition the AI names: the page says it above them (references are drawn only with the advice)."""
    shown = case_references(case, kind)
    if not shown:
        return
    heading, note = (_(text) for text in _INTRODUCTIONS[kind])
    condition = case.ai.display_name.lower()
    # the note in caption style on the heading's next line: one element, not two
    st.markdown(f"**{heading.format(condition=condition)}**  \n:small[:gray[{note}]]")
    # wrap=False: a row of thumbnails on a phone too, not one full-width image under the other
    for number, (column, ref) in enumerate(
        zip(st.columns(len(shown), wrap=False), shown, strict=True), start=1
    ):
        alt = _(_REFERENCE_ALTS[kind]).format(number=number, total=len(shown), condition=condition)
        with column:
            _image(visit, bundle.path(ref.image), ref.caption, alt, kind, number)


def _initial_answers(visit: context.Visit, initial_step: str) -> None:
    """The second half of a judge–advisor trial: the answer given before the advice, as stored."""
    assert visit.engine is not None
    try:
        stored = visit.engine.answers(visit.token, initial_step)
    except Exception:  # the database is away (the page is drawn from memory): the form still works
        LOG.exception("could not read the first answers of step %s", initial_step)
        return
    names = {c.id: c.display_name for c in visit.engine.loaded.bundle.manifest.skin_conditions}
    for item in visit.engine.protocol.initial_items:
        if item.id not in stored:
            continue
        answer = names.get(stored[item.id], _(UNSURE_LABEL))
        confidence = stored.get(item.id + CONFIDENCE_SUFFIX)
        if confidence and item.confidence:
            said = _(
                "Your answer before the AI's advice: **{answer}** (confidence {confidence} of {points}). "
                "You may keep it or change it below."
            ).format(answer=answer, confidence=confidence, points=item.confidence.points)
        else:
            said = _(
                "Your answer before the AI's advice: **{answer}**. You may keep it or change it below."
            ).format(answer=answer)
        st.info(said)


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
        st.caption(_("Part {part} of {parts}").format(part=step.period, parts=len(protocol.conditions)))
    # The advice (AI text, references, the live model) is drawn only on a step that shows it: before a
    # judge–advisor trial's first answer is stored, none of it reaches the browser.
    _case(visit, bundle, case, step.advice, condition)
    if step.advice and condition.interactive:
        _LiveCase(visit, case, bundle.path(case.image), condition).render()
    st.divider()
    if step.initial_step is not None:
        _initial_answers(visit, step.initial_step)
    errors = context.errors(step.key)
    with st.form(f"form:{step.key}", border=False, enter_to_submit=False):
        items.render(step, bundle.manifest, errors)
        clicked = st.form_submit_button(_("Next"), type="primary", on_click=context.submit, args=(visit,))
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
        self.names = {c.id: c.display_name for c in visit.engine.loaded.bundle.manifest.skin_conditions}

    def render(self) -> None:
        turns = self._complete_answered(self.engine.turn_log.of(self.visit.token, self.step_key))
        history = [
            (
                live.DIAGNOSIS_QUESTION,
                f"Diagnosis: {self.case.ai.display_name}\nReasoning: {self.case.ai.rationale}",
            )
        ]
        st.markdown(f"**{_('Ask the AI about this case')}**")
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
            st.caption(
                ngettext(
                    "You can ask {count} more question about this case.",
                    "You can ask {count} more questions about this case.",
                    left,
                ).format(count=left)
            )
            # In a container the box stays here, above the trial's questions, not pinned to the window's bottom.
            box = st.container()
            question = box.chat_input(_("Ask a question about this case"), key=f"ask:{self.step_key}")
            if question:
                self._ask("question", question, chat_request(self.photo, history, question))
        wanted = self.condition.live_references and self.case.ai.skin_condition != UNKNOWN
        asked = any(turn.kind == "references" for turn in turns)
        if wanted and not asked and st.button(_("Show what it looks like"), key=f"show:{self.step_key}"):
            self._ask("references", "", self._references_request())

    def _references_request(self) -> JobRequest:
        skin_tone = self.case.skin_tone or estimate_skin_tone(self.photo).fitzpatrick
        return references_request(
            self.case.ai.skin_condition, skin_tone, count=self.condition.live_references, photo=self.photo
        )

    def _ask(self, kind: str, question: str, request: JobRequest) -> None:
        job = live.submit(self.queue, request)
        # refused: another tab used the last question or moved on; the rerun shows what is current
        with contextlib.suppress(TurnRefused):
            self.engine.turn_log.ask(self.visit.token, self.step_key, kind, question, job.id)
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
            self.engine.turn_log.retry(self.visit.token, self.step_key, turn.turn, job.id)

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
            completed |= self.engine.turn_log.answer(
                self.visit.token,
                self.step_key,
                turn.turn,
                answer=result.get("answer", ""),
                condition=result.get("condition"),
                model_id=result.get("model_id"),
                latency_ms=result.get("latency_ms"),
                images=images,
            )
        return self.engine.turn_log.of(self.visit.token, self.step_key) if completed else turns
