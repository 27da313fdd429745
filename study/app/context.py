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

from db.session import Database, database_url
from study.engine import EngineError, Position, StepConflict, StudyEngine, UnknownToken
from study.flow import AnswerError
from study.registry import RegistryError

LOG = logging.getLogger("skingen.app")

DB_ENV = "SKINGEN_DB_URL"
PROTOCOL_ENV = "SKINGEN_PROTOCOL"
TEST_HOOKS_ENV = "SKINGEN_TEST_HOOKS"
TOKEN_PARAM = "token"

_ENTRY_KEY = "skingen.entry"
_VISIT_KEY = "skingen.visit"
_SHOWN_KEY = "skingen.shown"

INVALID_LINK = (
    "This link is not valid. Please open the study with the exact link you were given. "
    "If you copied it by hand, check that nothing is missing at its end."
)
UNAVAILABLE = "The study is not available right now. Please try again in a few minutes."


@dataclass(frozen=True)
class Entry:
    """What the URL said when this browser session started (read once: Streamlit may drop it later)."""

    token: str | None
    url_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Visit:
    """One rerun's view of the participant: the page to show and what it needs."""

    page: str  # consent | questions | info | trial | complete | error
    engine: StudyEngine | None = None
    entry: Entry | None = None
    position: Position | None = None
    problem: str = ""

    @property
    def token(self) -> str:
        assert self.entry is not None and self.entry.token is not None
        return self.entry.token


@st.cache_resource(show_spinner=False)
def open_engine(db_url: str, protocol_path: str | None) -> StudyEngine:
    """One engine (and connection pool) per database + protocol, shared by all sessions of this server."""
    return StudyEngine.open(Database(db_url), protocol_path)


def configured_engine() -> StudyEngine:
    protocol = os.environ.get(PROTOCOL_ENV) or None
    return open_engine(database_url(os.environ.get(DB_ENV)), protocol)


def _entry() -> Entry:
    if _ENTRY_KEY not in st.session_state:
        params = {key: st.query_params.get(key, "") for key in st.query_params}
        token = params.pop(TOKEN_PARAM, "") or None
        st.session_state[_ENTRY_KEY] = Entry(token, params)
    return st.session_state[_ENTRY_KEY]


def resolve() -> Visit:
    """Work out this rerun's page from the URL token and the database. Never raises to the participant."""
    try:
        engine = configured_engine()
    except (RegistryError, EngineError, ValueError, OSError):
        LOG.exception("the study engine could not be opened")
        return Visit("error", problem=UNAVAILABLE)
    entry = _entry()
    if entry.token is None:
        return Visit("consent", engine, entry)
    try:
        position = engine.position(entry.token)
    except UnknownToken:
        return Visit("error", engine, entry, problem=INVALID_LINK)
    except EngineError as exc:
        return Visit("error", engine, entry, problem=str(exc).capitalize())
    return Visit(position.step.kind, engine, entry, position)


def remember(visit: Visit) -> None:
    st.session_state[_VISIT_KEY] = visit


def current(page: str) -> Visit:
    """The visit main.py resolved for this rerun; a page refuses to render another page's step."""
    visit: Visit | None = st.session_state.get(_VISIT_KEY)
    if visit is None or visit.page != page:
        st.error(UNAVAILABLE)
        st.stop()
    return visit


def mark_shown(visit: Visit) -> None:
    """Stamp the step's first display once per session and step (the engine keeps the first stamp)."""
    assert visit.engine is not None and visit.position is not None
    shown = (visit.token, visit.position.index)
    if st.session_state.get(_SHOWN_KEY) != shown:
        visit.engine.mark_shown(visit.token, visit.position.index)
        st.session_state[_SHOWN_KEY] = shown


def start(visit: Visit, token: str) -> None:
    """After consent: the new token goes into the URL (so a reload resumes) and into this session."""
    assert visit.entry is not None
    st.query_params[TOKEN_PARAM] = token
    st.session_state[_ENTRY_KEY] = Entry(token, visit.entry.url_params)
    st.rerun()


def submit(visit: Visit, answers: Mapping[str, object]) -> dict[str, str]:
    """Hand a step's answers to the engine; on success rerun (next step), else return the item errors."""
    assert visit.engine is not None and visit.position is not None
    try:
        visit.engine.submit(visit.token, visit.position.step.key, answers)
    except AnswerError as exc:
        return exc.errors
    except (StepConflict, UnknownToken):
        pass  # a stale page (another tab moved on): show whatever is current now
    st.rerun()
    raise AssertionError("unreachable")  # pragma: no cover - st.rerun() raises


def test_hooks_enabled() -> bool:
    return os.environ.get(TEST_HOOKS_ENV, "") == "1"
