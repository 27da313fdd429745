"""What every page needs: the cached engine, the participant's token, and their current position.

Nothing about the participant lives only in the Streamlit session: the token is in the URL and everything
else is read from the database on each rerun, so a reload, a reconnect or a server restart resumes the study
exactly where it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import streamlit as st

from app import catalogs, i18n, images
from app.i18n import N_
from db.jobs import DEFAULT_HOLD_S, DEFAULT_JOB_TTL_S, JobQueue
from db.session import DB_ENV, Database, database_url
from study.engine import Position, StudyEngine
from study.items.answers import AnswerProblem
from study.path import AnswerError, Step
from study.protocol.model import Protocol
from study.refusals import ConsentRefused, EngineError, ResumeRefused, StepConflict, UnknownToken, Withdrawn
from study.registry import RegistryError

LOG = logging.getLogger("skingen.app")

PROTOCOL_ENV = "SKINGEN_PROTOCOL"
JOB_TTL_ENV = "SKINGEN_JOB_TTL"  # seconds an open model job may wait (serve --job-ttl)
JOB_HOLD_ENV = "SKINGEN_JOB_HOLD"  # seconds a left explorer page's photo survives (serve --job-hold)
TEST_HOOKS_ENV = "SKINGEN_TEST_HOOKS"
TOKEN_PARAM = "token"

_ENTRY_KEY = "skingen.entry"
_VISIT_KEY = "skingen.visit"
_SHOWN_KEY = "skingen.shown"
_ERRORS_KEY = "skingen.errors"
_HANDLED_KEY = "skingen.handled"
_MOVED_KEY = "skingen.moved"
_DECLINED_KEY = "skingen.declined"

# The error page's problems, in English as marked for the catalog: the page draws them translated.
INVALID_LINK = N_(
    "This link is not valid. Please open the study with the exact link you were given. "
    "If you copied it by hand, check that nothing is missing at its end."
)
UNAVAILABLE = N_("The study is not available right now. Please try again in a few minutes.")
WITHDRAWN = N_("You have withdrawn from this study; nothing of your answers is kept.")
RESUME_REFUSED = N_(
    "This study was started from another session of the recruiting platform. Please continue it with the "
    "link you got then, or contact the researchers."
)
SAVE_FAILED = AnswerProblem("not_saved")
PAGE = ""  # errors-dict key of a problem with the whole page rather than one item


@dataclass(frozen=True)
class Entry:
    """What the URL said when this browser session started (read once: Streamlit may drop it later)."""

    token: str | None
    url_params: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    """The language the URL asked for (``?lang=``): it wins over the browser's."""
    accept_language: str | None = None
    """The browser's ``Accept-Language`` header (or its locale): the language a new participant gets, else."""


@dataclass(frozen=True)
class Visit:
    """One rerun's view of the participant: the page to show and what it needs."""

    page: str  # consent | declined | questions | info | trial | complete | error
    engine: StudyEngine | None = None
    entry: Entry | None = None
    position: Position | None = None
    problem: str = ""  # the error page's message, in English as marked for the catalog
    language: str = catalogs.SOURCE_LANGUAGE

    @property
    def token(self) -> str:
        assert self.entry is not None and self.entry.token is not None
        return self.entry.token

    @property
    def protocol(self) -> Protocol:
        """The protocol with its texts in the participant's language: what the pages draw."""
        assert self.engine is not None
        return self.engine.localized(self.language).protocol


@st.cache_resource(show_spinner=False)
def open_engine(db_url: str, protocol_path: str | None) -> StudyEngine:
    """One engine (and connection pool) per database + protocol, shared by all sessions of this server; its
    bundle's images start encoding for the browser at once."""
    engine = StudyEngine.open(Database(db_url), protocol_path)
    images.warm(engine.loaded.bundle.images())
    return engine


_opened: dict[tuple[str, str | None], StudyEngine] = {}


def configured_engine() -> StudyEngine:
    """The engine of the configured database and protocol. Every run asks for it: a plain dict answers, as
    ``st.cache_resource`` hashes its arguments on each call (~0.2 ms); it still opens each engine once."""
    key = (database_url(os.environ.get(DB_ENV)), os.environ.get(PROTOCOL_ENV) or None)
    engine = _opened.get(key)
    if engine is None:
        engine = _opened[key] = open_engine(*key)
    return engine


def live_queue() -> JobQueue:
    """The model workers' job queue, in the study's database (cheap: it shares the engine's pool), with the
    server's job TTL and page hold."""
    return configured_queue(configured_engine().db)


def configured_queue(db: Database, *, ttl: float | None = None, hold: float | None = None) -> JobQueue:
    """A job queue on ``db`` with the server's job TTL and page hold: ``ttl``/``hold`` when given, else the
    environment that ``serve --job-ttl/--job-hold`` sets, else the defaults."""
    return JobQueue(
        db,
        ttl_seconds=ttl or seconds_setting(JOB_TTL_ENV, DEFAULT_JOB_TTL_S),
        hold_seconds=hold or seconds_setting(JOB_HOLD_ENV, DEFAULT_HOLD_S),
    )


def seconds_setting(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable ``name`` (``default`` when unset)."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name}: must be > 0 seconds, got {raw!r}")
    return value


def _entry() -> Entry:
    if _ENTRY_KEY not in st.session_state:
        params = {key: st.query_params.get(key, "") for key in st.query_params}
        token = params.pop(TOKEN_PARAM, "") or None
        language, accept_language = i18n.requested()
        params.pop(i18n.LANGUAGE_PARAM, None)
        st.session_state[_ENTRY_KEY] = Entry(token, params, language, accept_language)
    return st.session_state[_ENTRY_KEY]


def _language(entry: Entry, offered: tuple[str, ...]) -> str:
    """The language a participant not yet enrolled gets: the URL's, the browser's, or the first offered."""
    return i18n.negotiate(offered, entry.language, entry.accept_language)


def _returning(engine: StudyEngine, entry: Entry) -> Entry:
    """Someone back through the recruiting link (no token, a known participant label): their own study.

    Raises :class:`ResumeRefused` when the label is known but the platform's per-attempt parameters differ.
    """
    try:
        token = engine.resume(entry.url_params)
    except ResumeRefused:
        raise
    except Exception:  # the database is down: the consent page's own submit will say so
        LOG.exception("could not look up a returning participant")
        return entry
    if token is None:
        return entry
    st.query_params[TOKEN_PARAM] = token
    st.session_state[_ENTRY_KEY] = Entry(token, entry.url_params, entry.language, entry.accept_language)
    return st.session_state[_ENTRY_KEY]


def resolve() -> Visit:
    """Work out this rerun's page from the URL token and the database. Never raises to the participant."""
    entry = _entry()
    try:
        engine = configured_engine()
    except (RegistryError, EngineError, ValueError, OSError):
        LOG.exception("the study engine could not be opened")
        return Visit("error", problem=UNAVAILABLE, language=_language(entry, catalogs.languages()))
    language = _language(entry, engine.protocol.languages)  # until the database says the participant's own
    if entry.token is None:
        try:
            entry = _returning(engine, entry)
        except ResumeRefused:
            return Visit("error", engine, entry, problem=RESUME_REFUSED, language=language)
    if entry.token is None:
        return Visit(
            "declined" if st.session_state.get(_DECLINED_KEY) else "consent", engine, entry, language=language
        )
    try:
        position = _moved_to(entry.token) or engine.position(entry.token)
    except UnknownToken:
        return Visit("error", engine, entry, problem=INVALID_LINK, language=language)
    except Withdrawn:
        return Visit("error", engine, entry, problem=WITHDRAWN, language=language)
    except EngineError:
        LOG.exception("could not read the position of a participant")
        return Visit("error", engine, entry, problem=UNAVAILABLE, language=language)
    except Exception:  # the database is down, …: log it, show the participant a calm page, never a traceback
        LOG.exception("could not read the position of a participant")
        return _last_page(engine, entry) or Visit(
            "error", engine, entry, problem=UNAVAILABLE, language=language
        )
    return Visit(position.step.kind, engine, entry, position, language=position.language)


def _moved_to(token: str) -> Position | None:
    """The position the submit callback of this very run read back from its committed transaction: the
    database's answer already, so the run doesn't ask again (one read transaction less per submit)."""
    moved: tuple[str, Position] | None = st.session_state.pop(_MOVED_KEY, None)
    return moved[1] if moved is not None and moved[0] == token else None


def _last_page(engine: StudyEngine, entry: Entry) -> Visit | None:
    """While the database is away, the page this session showed last, drawn again from memory: the
    participant keeps what they entered and reads "not saved, please try again" (the submit callback's
    error) instead of losing the page. Their next submit goes to the database, the source of truth, which
    moves them on or (if the first submit was stored after all) ignores the repeat."""
    last: Visit | None = st.session_state.get(_VISIT_KEY)
    if (
        last is None
        or last.position is None
        or last.entry != entry
        or last.page not in {"questions", "info", "trial"}
    ):
        return None
    return Visit(last.page, engine, entry, last.position, language=last.language)


def remember(visit: Visit) -> None:
    st.session_state[_VISIT_KEY] = visit


def current(page: str) -> Visit:
    """The visit main.py resolved for this rerun; a page refuses to render another page's step."""
    visit: Visit | None = st.session_state.get(_VISIT_KEY)
    if visit is None or visit.page != page:
        st.error(i18n._(UNAVAILABLE))
        st.stop()
    return visit


def mark_shown(visit: Visit) -> None:
    """Stamp the step's first display once per session and step (the engine keeps the first stamp)."""
    assert visit.engine is not None and visit.position is not None
    shown = (visit.token, visit.position.index)
    if st.session_state.get(_SHOWN_KEY) != shown:
        try:
            visit.engine.mark_shown(visit.token, visit.position.index)
        except Exception:  # the database is away: the page still shows; the next run stamps it
            LOG.exception("could not stamp when step %s was shown", visit.position.step.key)
            return
        st.session_state[_SHOWN_KEY] = shown


# --- form callbacks: they run before the next script run, so a submit costs one run, not two (no st.rerun) ---
def widget_key(step_key: str, field: str) -> str:
    """Session-state key of a step's answer widget: a new step starts with blank widgets."""
    return f"{step_key}:{field}"


def step_answers(step: Step) -> dict[str, object]:
    """A step's answers (field → value) as its widgets hold them: each item reads its own widgets."""

    def state(name: str) -> object:
        return st.session_state.get(widget_key(step.key, name))

    return {field: value for item in step.items for field, value in item.read(state).items()}


def consent(visit: Visit) -> None:
    """Consent-button callback: record consent; the new token goes into the URL (a reload resumes)."""
    assert visit.engine is not None and visit.entry is not None
    st.session_state[_HANDLED_KEY] = "consent"
    statements = visit.engine.protocol.consent.statements
    ticked = [s.id for s in statements if st.session_state.get(widget_key("consent", s.id))]
    try:
        token = visit.engine.consent(ticked, visit.entry.url_params, visit.language)
    except ConsentRefused as refused:
        keep_errors("consent", refused.errors)
        return
    except ResumeRefused:
        return  # the label is another session's: the next run's resolve() shows why
    except Exception:
        LOG.exception("could not record consent")
        keep_errors("consent", {PAGE: SAVE_FAILED})
        return
    st.query_params[TOKEN_PARAM] = token
    entry = visit.entry
    st.session_state[_ENTRY_KEY] = Entry(token, entry.url_params, entry.language, entry.accept_language)


def decline(visit: Visit) -> None:
    """Decline-button callback: count the decline (nothing about the person) and show the end page."""
    assert visit.engine is not None
    try:
        visit.engine.decline()
    except Exception:  # the count is lost, the person still gets their polite end page
        LOG.exception("could not count a decline")
    st.session_state[_DECLINED_KEY] = True


def submit(visit: Visit) -> None:
    """Submit-button callback: hand the step's answers to the engine; keep its item errors for the page."""
    assert visit.engine is not None and visit.position is not None
    step = visit.position.step
    st.session_state[_HANDLED_KEY] = step.key
    answers = step_answers(step)
    try:
        moved = visit.engine.submit(visit.token, step.key, answers, next_shown=True)
    except AnswerError as exc:
        keep_errors(step.key, exc.errors)
        return
    except (StepConflict, UnknownToken):
        return  # a stale page (another tab moved on): the next run shows whatever is current
    except Exception:
        LOG.exception("could not store the answers of step %s", step.key)
        keep_errors(step.key, {PAGE: SAVE_FAILED})
        return
    st.session_state[_MOVED_KEY] = (visit.token, moved)
    if moved.index == visit.position.index + 1:  # this run shows that step; the submit stamped it shown
        st.session_state[_SHOWN_KEY] = (visit.token, moved.index)


def unhandled_click(visit: Visit, clicked: bool) -> None:
    """Pass the submit button's return value. Streamlit runs a button's callback only for widgets it saw in
    an earlier run of the session; when the session starts with the click (the server restarted while the
    page was open, and the browser reconnected), the callback is skipped: submit here instead."""
    key = visit.position.step.key if visit.position else visit.page
    handled = st.session_state.pop(_HANDLED_KEY, None)
    if clicked and handled != key:
        if visit.page == "consent":
            consent(visit)
        else:
            submit(visit)
        st.rerun()


def keep_errors(step_key: str, problems: Mapping[str, AnswerProblem]) -> None:
    """Hand a submit's problems to the next run of the page of ``step_key`` (a form callback can't draw)."""
    st.session_state[_ERRORS_KEY] = (step_key, dict(problems))


def errors(step_key: str) -> dict[str, AnswerProblem]:
    """The engine's complaints about the last submit of ``step_key`` (shown once, then forgotten)."""
    key, found = st.session_state.pop(_ERRORS_KEY, (None, {}))
    return found if key == step_key else {}


def test_hooks_enabled() -> bool:
    return os.environ.get(TEST_HOOKS_ENV, "") == "1"
