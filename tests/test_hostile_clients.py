"""Crafted requests that bypass the UI: what a client can send is never more than what the page would accept.

Engine-level cases call the engine API directly; the websocket cases speak Streamlit's protocol to a real
`skingen-study serve` (bench/loadgen's client), sending widget states no browser page would produce.
Each refusal writes nothing but a content-free audit event (or a log line when there is no participant).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil

import pytest
from sqlalchemy import func, select
from streamlit.proto.WidgetStates_pb2 import WidgetState

from app import server as study_server
from app.analysis_command import main as analysis_main
from app.context import INVALID_LINK
from app.study_command import main as study_main
from bench.loadgen import Page, StreamlitClient
from bench.servers import app_server
from db.models import Event, Participant, Response
from db.session import Database
from formats.bundle import BundleError
from skingen.sources import read_table
from study.auth import Auth
from study.engine import StudyEngine
from study.path import AnswerError
from study.protocol.loading import load_protocol
from study.rating import RatingPanel
from study.refusals import StepConflict, UnknownToken
from study.registry import register
from study.simulate import Policy, simulate
from tests.factories import example_protocol, write_protocol
from tests.participants import ENTRY, TICKED, answers_for

MEGABYTE = "x" * 1_000_000
HOSTILE_TEXT = '<script>alert("x")</script><img src=x onerror=alert(1)> =HYPERLINK("http://evil")'


def _count(engine: StudyEngine, model, *where) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _to_step(engine: StudyEngine, token: str, item: str):
    """Answer honestly up to the first step that asks ``item``; returns that step."""
    position = engine.position(token)
    while item not in {i.id for i in position.step.items}:
        position = engine.submit(token, position.step.key, answers_for(position.step))
    return position.step


# --- the engine API ----------------------------------------------------------------------------------------
def test_a_token_of_another_study_or_a_completed_participant_writes_nothing(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    other = make_engine(protocol_file(study__id="other_study"))
    theirs = other.consent(TICKED)
    with pytest.raises(UnknownToken, match="another version of the study"):
        engine.submit(theirs, "entry", ENTRY)
    done = engine.consent(TICKED)
    position = engine.submit(done, "entry", ENTRY)
    while not position.completed:
        position = engine.submit(done, position.step.key, answers_for(position.step))
    answers = _count(engine, Response)
    with pytest.raises(StepConflict, match="already completed"):
        engine.submit(done, "complete", {"anything": 1})
    position = engine.submit(done, "entry", {"expertise": 3, "age_group": 3})  # an old step replayed
    assert position.completed and _count(engine, Response) == answers
    with engine.db.read() as session:
        stored = session.execute(
            select(Response.item_id, Response.value).where(
                Response.step_key == "entry", Response.participant_id == position.participant_id
            )
        ).all()
    assert sorted(stored) == sorted((k, str(v)) for k, v in ENTRY.items())  # the replay changed nothing
    assert _count(other, Response, Response.participant_id == other.position(theirs).participant_id) == 0


@pytest.mark.parametrize(
    ("answers", "codes"),
    [
        ({"comments": MEGABYTE}, {"comments": "too_long"}),
        ({"comments": "fine\x00hidden\x1b[2J"}, {"comments": "control_characters"}),
        ({"comments": ["a", "list"]}, {"comments": "not_text"}),
        ({"trust_2": "7; DROP TABLE responses"}, {"trust_2": "not_a_whole_number"}),
        ({"trust_2": 99}, {"trust_2": "out_of_range"}),
        ({"trust_2": True}, {"trust_2": "not_a_whole_number"}),
        ({"trust_2": 4.5}, {"trust_2": "not_a_whole_number"}),
        ({"expertise": 1}, {}),  # an item of another step: only counted as unknown
    ],
)
def test_bad_values_are_refused_and_logged_without_content(protocol_file, make_engine, answers, codes):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)
    step = _to_step(engine, token, "trust_2" if "trust_2" in answers else "comments")
    before = _count(engine, Response)
    with pytest.raises(AnswerError) as refused:
        engine.submit(token, step.key, answers_for(step) | answers)
    assert {k: p.code for k, p in refused.value.errors.items() if p.code != "unknown_item"} == codes
    assert len(str(refused.value)) < 500  # a megabyte sent is not a megabyte echoed
    assert _count(engine, Response) == before and engine.position(token).step == step
    with engine.db.read() as session:
        event = session.scalars(select(Event).where(Event.kind == "submit_refused")).one()
    assert event.detail["problems"] == codes
    assert "DROP" not in json.dumps(event.detail) and "hidden" not in json.dumps(event.detail)


def test_line_breaks_and_tabs_in_free_text_are_kept(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)
    step = _to_step(engine, token, "comments")
    engine.submit(token, step.key, {"comments": "line one\r\n\tline two"})
    with engine.db.read() as session:
        assert (
            session.scalar(select(Response.value).where(Response.item_id == "comments"))
            == "line one\r\n\tline two"
        )


def test_hostile_free_text_is_stored_verbatim_and_escaped_in_report_html(
    protocol_file, make_engine, tmp_path
):
    """HTML/JS in an answer is data: exported as written (CSV-quoted), never markup in report.html."""

    engine = make_engine(protocol_file("within"))
    simulate(engine, 8, seed=3, policy=Policy(kind="effect", effects={"trust": 1.0}), progress=False)
    token = engine.consent(TICKED)
    step = _to_step(engine, token, "comments")
    engine.submit(token, step.key, {"comments": HOSTILE_TEXT})
    assert study_main(["export", "--db", engine.db.url, "--out", str(tmp_path / "export")]) == 0
    rows = read_table(tmp_path / "export" / "responses.csv", ["value"], what="responses.csv")
    assert HOSTILE_TEXT in {row["value"] for _, row in rows}
    out = tmp_path / "report"
    assert (
        analysis_main(
            ["report", "--db", engine.db.url, "--out", str(out), "--no-figures", "--bootstrap", "0"]
        )
        == 0
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "onerror=alert" not in html


def test_a_rater_session_is_no_participant_token_and_the_reverse(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    panel = RatingPanel(engine.db, engine.loaded)
    _, invite = panel.add_rater("derm")
    auth = Auth(engine.db, engine.protocol.study.id)
    session = auth.accept_invite(invite, "a long enough password")
    with pytest.raises(UnknownToken):
        engine.submit(session, "entry", ENTRY)
    participant = engine.consent(TICKED)
    assert auth.identity(participant) is None and auth.renew(participant) is None


# --- through the websocket ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory, bundle_dir):
    """A real `skingen-study serve` on a SQLite file the test's engine shares."""

    directory = tmp_path_factory.mktemp("hostile")
    protocol = write_protocol(directory, example_protocol("between"), bundle_dir)
    url = f"sqlite:///{directory}/study.db"
    db = Database(url)
    register(db, load_protocol(protocol))
    try:
        with app_server("tuned", protocol, directory, db_url=url) as (base, _, _):
            yield base, StudyEngine.open(db, str(protocol))
    finally:
        db.dispose()


def _visit(base: str, query: str, *sends: list[WidgetState]) -> list[Page]:
    """Open the app with ``query``, then send each list of widget states as one script run."""

    async def go() -> list[Page]:
        async with StreamlitClient(base, query) as client:
            pages = [await client.run()]
            for states in sends:
                pages.append(await client.run(states))
            return pages

    return asyncio.run(go())


def _states(page: Page, values: dict[str, object], submit: bool = True) -> list[WidgetState]:
    """Widget states for the widgets of ``page`` whose label starts with a key of ``values``."""
    states = []
    for widget in page.widgets:
        for label, value in values.items():
            if widget.label.startswith(label):
                state = WidgetState(id=widget.id)
                if isinstance(value, bool):
                    state.bool_value = value
                elif isinstance(value, float):
                    state.double_value = value
                elif isinstance(value, int):
                    state.int_value = value
                else:
                    state.string_value = value
                states.append(state)
    if submit:
        assert page.submit is not None
        states.append(WidgetState(id=page.submit.id, trigger_value=True))
    return states


@pytest.mark.parametrize("query", ["token=forged", "token=", "area=rate&session=forged"])
def test_forged_links_get_the_invalid_link_page_over_the_websocket(server, query):
    base, engine = server
    participants, events = _count(engine, Participant), _count(engine, Event)
    (page,) = _visit(base, query)
    text = " ".join(page.texts)
    if "session" in query:
        assert "sign in" in text.lower() and "Image" not in text
    elif query == "token=forged":
        assert INVALID_LINK in text and page.submit is None
    assert (_count(engine, Participant), _count(engine, Event)) == (participants, events)


def test_a_participant_token_opens_no_rater_or_admin_page(server):
    base, engine = server
    token = engine.consent(TICKED)
    for area in ("rate", "admin"):
        (page,) = _visit(base, f"area={area}&session={token}")
        assert re.search("sign[ -]in", " ".join(page.texts).lower()) and page.images == []


def test_replayed_and_out_of_turn_submits_store_each_answer_once(server):
    base, engine = server
    token = engine.consent(TICKED)
    (entry,) = _visit(base, f"token={token}")
    submit = _states(entry, {"Which best describes": "Clinician", "Your age group": "18–29"})
    first, replay, again = _visit(base, f"token={token}", submit, submit, submit)[1:]
    assert engine.position(token).step.key == "instructions"  # moved on once, not three times
    assert _count(engine, Response, Response.participant_id == engine.position(token).participant_id) == 2
    assert replay.form == first.form == again.form  # the old page's button no longer exists: nothing ran


def _refusals(engine: StudyEngine, pid: int) -> list[Event]:
    with engine.db.read() as session:
        return list(
            session.scalars(select(Event).where(Event.kind == "submit_refused", Event.participant_id == pid))
        )


def test_oversized_and_control_character_text_over_the_websocket_writes_nothing(server):
    base, engine = server
    token = engine.consent(TICKED)
    step = _to_step(engine, token, "comments")
    pid = engine.position(token).participant_id
    (page,) = _visit(base, f"token={token}")
    label = "Is there anything else"
    pages = _visit(
        base, f"token={token}", _states(page, {label: "bell\x07"}), _states(page, {label: MEGABYTE})
    )
    assert "control characters" in " ".join(pages[1].texts) and pages[1].form == page.form
    assert [e.detail["problems"] for e in _refusals(engine, pid)] == [{"comments": "control_characters"}]
    assert all("bell" not in json.dumps(e.detail) for e in _refusals(engine, pid))
    with engine.db.read() as session:
        stored = session.scalars(
            select(Response.value).where(Response.participant_id == pid, Response.item_id == "comments")
        ).all()
    limit = step.items[0].max_length
    assert stored and all(len(value) <= limit for value in stored)  # Streamlit cuts at max_chars; never 1 MB


def test_wrong_types_and_foreign_widgets_over_the_websocket_write_nothing(server):
    base, engine = server
    token = engine.consent(TICKED)
    step = _to_step(engine, token, "trust_2")
    pid = engine.position(token).participant_id
    before = _count(engine, Response, Response.participant_id == pid)
    (page,) = _visit(base, f"token={token}")
    radios = [w.label for w in page.widgets if w.options]
    attempts = [
        _states(page, dict.fromkeys(radios, "not an option")),
        _states(page, dict.fromkeys(radios, 12345)),
        _states(page, dict.fromkeys(radios, 2.5)),
        [WidgetState(id="$$ID-forged-None-entry:expertise", int_value=3), *_states(page, {})],
    ]
    *pages, after = _visit(base, f"token={token}", *attempts, [])[1:]
    assert "got 'not an option'" in " ".join(pages[0].texts)
    assert "got 12345" in " ".join(pages[1].texts) and "whole number" in " ".join(pages[2].texts)
    assert "Please answer this question." in pages[3].texts  # the forged widget's value went nowhere
    assert _count(engine, Response, Response.participant_id == pid) == before
    assert engine.position(token).step == step
    assert all(p.form == page.form for p in (*pages, after))  # the page is drawn again, blank, every time
    assert len(_refusals(engine, pid)) == len(attempts)


# --- the stimulus bundle -----------------------------------------------------------------------------------
def test_a_bundle_file_swapped_for_a_symlink_after_registration_is_never_served(
    protocol_file, bundle_dir, tmp_path, monkeypatch, capsys
):
    """Load time already refuses `../` and outside symlinks (tests/test_protocol.py); a link placed later
    is refused when serving starts, and by Bundle.path at the moment a page would show it."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    path = protocol_file(cases__bundle=str(bundle))
    loaded = load_protocol(path)
    url = f"sqlite:///{tmp_path}/swap.db"
    assert study_main(["init", "--db", url, "--protocol", str(path)]) == 0
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not a stimulus")
    image = loaded.bundle.manifest.cases[0].image
    (bundle / image).unlink()
    (bundle / image).symlink_to(secret)
    started = []
    monkeypatch.setattr(study_server, "serve", lambda *a, **k: started.append(a))
    assert study_main(["serve", "--db", url]) == 2 and not started
    assert f"{image!r} resolves outside the bundle directory" in capsys.readouterr().err
    with pytest.raises(BundleError, match="resolves outside the bundle directory"):
        loaded.bundle.path(image)
