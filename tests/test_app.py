"""The participant app, headless (Streamlit AppTest): every page type in both designs, refusals, resume.

The app only renders and submits; these tests check that what the participant does in the UI reaches the
engine (and the database) exactly once, and that nothing is written when the engine refuses.
"""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, func, select

from app.context import INVALID_LINK
from db.models import ConsentRecord, Event, Participant, Response
from tests.app_driver import AppParticipant
from tests.factories import make_bundle


@pytest.fixture
def study(protocol_file, make_engine, monkeypatch, database_url):
    """Register a protocol (``design``) in a fresh database (SQLite, then PostgreSQL) and point the app at it."""

    def make(design: str = "between", **changes):
        path = protocol_file(design, **changes)
        engine = make_engine(path)
        monkeypatch.setenv("SKINGEN_DB_URL", database_url)
        monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
        return engine

    return make


def count(engine, model, *where) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def responses(engine, step_key: str) -> dict[str, str]:
    with engine.db.read() as session:
        rows = session.execute(select(Response.item_id, Response.value).where(Response.step_key == step_key))
        return dict(rows.all())


@pytest.mark.parametrize("design", ["between", "within"])
def test_a_participant_completes_every_page_type(study, design):
    engine = study(design)
    p = AppParticipant({"PROLIFIC_PID": "pp-1"})
    assert p.page == "consent" and "Participant information" in p.text()
    p.consent()
    assert p.token and p.page == "questions" and "About you" in p.text()
    p.advance(value=2)
    assert p.page == "info" and "How this works" in p.text()
    p.submit()
    seen_pages, reference_trials, plain_trials = set(), 0, 0
    while p.page != "complete":
        seen_pages.add((p.page, p.at.session_state["skingen.visit"].position.step.section))
        step = p.at.session_state["skingen.visit"].position.step
        if p.page == "trial":
            assert f"Case {step.trial_number} of {step.trials_total}" in p.text()
            case = engine.loaded.bundle.manifest.case(step.case_id)
            assert case.ai.display_name in p.text() and case.ai.text in p.text()
            images = p.images()
            if engine.protocol.condition(step.condition).references:
                reference_trials += 1
                assert len(images) == 1 + len(case.references)
                assert [c for i in images[1:] for c in i.captions] == [r.caption for r in case.references]
            else:
                plain_trials += 1
                assert len(images) == 1
            assert all(r.value is None for r in p.at.radio), "no answer may be preselected"
        p.advance()
    assert ("trial", "trial") in seen_pages and ("questions", "post_block") in seen_pages
    assert ("questions", "post") in seen_pages and ("info", "debrief") in seen_pages
    if design == "within":
        assert reference_trials and plain_trials, "a within participant sees both conditions"
    else:
        assert not (reference_trials and plain_trials), "a between participant sees one condition"
    assert "Thank you" in p.text() and engine.protocol.completion.code in p.text()
    [link] = p.at.get("link_button")
    assert link.proto.url.endswith("cc=" + engine.protocol.completion.code)
    with engine.db.read() as session:
        participant = session.scalar(select(Participant))
        assert participant.status == "completed" and participant.url_params == {"PROLIFIC_PID": "pp-1"}
    assert responses(engine, "entry") == {"expertise": "2", "age_group": "2"}


def test_missing_consent_statement_is_named_and_nothing_is_written(study):
    engine = study()
    p = AppParticipant().consent(ticked=("read_information",))
    assert p.page == "consent" and p.token is None
    assert "understand that taking part is voluntary" in p.at.error[0].value
    assert count(engine, Participant) == 0 and count(engine, ConsentRecord) == 0


def test_declining_ends_politely_and_stores_nothing_but_a_count(study):
    engine = study()
    before = count(engine, Event)
    p = AppParticipant({"PROLIFIC_PID": "pid-who-declines", "STUDY_ID": "study-of-theirs"})
    p.at.checkbox[0].check()  # something ticked before changing their mind: not stored either
    p.at.button(key="consent.decline").click().run()
    p.check()
    assert p.page == "declined" and p.token is None
    assert "You chose not to take part" in p.text() and "return the study" in p.text()
    assert count(engine, Participant) == 0 and count(engine, ConsentRecord) == 0
    with engine.db.read() as session:
        [event] = session.scalars(select(Event).order_by(Event.id).offset(before)).all()
        tables = MetaData()
        tables.reflect(engine.db.engine)
        stored = [
            str(v) for table in tables.sorted_tables for row in session.execute(select(table)) for v in row
        ]
    assert (event.kind, event.participant_id, event.detail, event.step_key) == (
        "decline",
        None,
        {},
        "consent",
    )
    assert (event.at.hour, event.at.minute, event.at.second, event.at.microsecond) == (0, 0, 0, 0)  # the day
    assert not any("pid-who-declines" in value or "study-of-theirs" in value for value in stored)
    p.at.run()
    assert p.page == "declined"  # stays on its end page (a rerun counts nothing again)
    assert count(engine, Event) == before + 1


def test_missing_required_answer_shows_a_message_and_saves_nothing(study):
    engine = study()
    p = AppParticipant().consent()
    p.answer(skip=("age_group",)).submit()
    assert p.step_key == "entry"
    assert "Please answer this question." in [e.value for e in p.at.error]
    assert "Your age group" in p.at.error[-1].value and "not been saved" in p.at.error[-1].value
    assert count(engine, Response) == 0
    p.answer().submit()  # the answers given are kept in the form; completing it moves on
    assert p.step_key == "instructions" and count(engine, Response) == 2

    p.submit()
    p.answer(skip=("own_diagnosis_confidence", "trust_1")).submit()
    assert p.page == "trial" and count(engine, Response, Response.step_key.like("p1.%")) == 0
    messages = [e.value for e in p.at.error]
    assert "Please answer how confident you are." in messages and "Please answer this question." in messages


def test_reload_returns_to_the_same_step_with_answers_kept(study):
    engine = study()
    p = AppParticipant({"PROLIFIC_PID": "pp-2"}).consent().advance().submit()
    p.advance()  # first trial answered
    step, token = p.step_key, p.token
    assert step == "p1.t02"
    again = p.reload()
    assert again.token == token and again.step_key == step and "Case 2 of 6" in again.text()
    assert len(responses(engine, "p1.t01")) == 4  # diagnosis, confidence, trust, comprehension
    assert count(engine, Participant) == 1


def test_two_tabs_submitting_the_same_step_store_one_answer(study):
    engine = study()
    first = AppParticipant().consent().advance().submit()
    second = first.reload()
    assert first.step_key == second.step_key == "p1.t01"
    first.advance(value=6)
    second.advance(value=2)  # a stale page: the engine ignores it, the tab shows the current step
    assert second.step_key == first.step_key == "p1.t02"
    stored = responses(engine, "p1.t01")
    assert stored["trust_1"] == "6" and count(engine, Response, Response.step_key == "p1.t01") == 4


def test_completed_link_shows_the_completion_page(study):
    engine = study()
    p = AppParticipant().consent()
    while p.page != "complete":
        p.advance()
    before = count(engine, Response)
    again = p.reload()
    assert again.page == "complete" and engine.protocol.completion.code in again.text()
    assert not again.at.checkbox and not again.at.radio, "no new study for a completed participant"
    assert count(engine, Response) == before and count(engine, Participant) == 1


@pytest.mark.parametrize("token", ["forged-token-0000", "", "x" * 300])
def test_unknown_token_gets_a_friendly_page_and_nothing_is_written(study, token):
    engine = study()
    events = count(engine, Event)
    p = AppParticipant({"token": token, "PROLIFIC_PID": "x"})
    if not token:  # an empty token is no token: the study starts at consent
        assert p.page == "consent"
        return
    assert p.page == "error" and INVALID_LINK in p.text()
    assert "Traceback" not in p.text() and not p.at.button
    assert count(engine, Participant) == 0 and count(engine, Event) == events


def test_unregistered_study_shows_an_error_page_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("SKINGEN_DB_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.delenv("SKINGEN_PROTOCOL", raising=False)
    p = AppParticipant()
    assert p.page == "error" and "not available" in p.text()


def test_run_counter_only_with_test_hooks(study, monkeypatch):
    study()
    p = AppParticipant()
    assert not any('id="skingen-run"' in h.proto.body for h in p.at.get("html"))
    monkeypatch.setenv("SKINGEN_TEST_HOOKS", "1")
    p.at.run()
    assert any('id="skingen-run" data-inputs="3">' in h.proto.body for h in p.at.get("html"))


def test_a_database_failure_shows_a_calm_message_not_a_traceback(study, monkeypatch):
    from sqlalchemy.exc import OperationalError

    study()
    p = AppParticipant().consent()
    engine = p.at.session_state["skingen.visit"].engine

    def broken(*args, **kwargs):
        raise OperationalError("INSERT …", {}, Exception("disk I/O error"))

    monkeypatch.setattr(engine, "submit", broken)
    p.answer().submit()
    assert p.step_key == "entry" and "something went wrong on our side" in p.at.error[-1].value
    # The whole database away (submit, position and the shown-stamp fail): the page stays, with what the
    # participant entered and the "not saved, try again" message; nothing was written.
    monkeypatch.setattr(engine, "position", broken)
    monkeypatch.setattr(engine, "mark_shown", broken)
    p.answer(value=3).submit()
    p.check()
    assert p.page == "questions" and "something went wrong on our side" in p.at.error[-1].value
    assert [r.value for r in p.at.radio] == [min(3, len(r.options)) for r in p.at.radio]
    assert count(engine, Response) == 0
    # A reload has no page to keep: the calm "not available" page.
    again = p.reload()
    again.check()
    assert again.page == "error" and "not available" in again.text()


def test_an_information_page_says_when_its_continue_was_not_saved(study, monkeypatch):
    from sqlalchemy.exc import OperationalError

    study()
    p = AppParticipant().consent().advance(value=2)
    assert p.page == "info"
    engine = p.at.session_state["skingen.visit"].engine

    def broken(*args, **kwargs):
        raise OperationalError("UPDATE …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(engine, "submit", broken)
    monkeypatch.setattr(engine, "position", broken)
    p.submit()
    assert p.page == "info" and "something went wrong on our side" in p.at.error[-1].value


def test_number_and_free_text_items(study):
    entry = [
        {"id": "age", "text": "Your age in years", "type": "number", "minimum": 18, "maximum": 99},
        {
            "id": "expertise",
            "text": "Background",
            "type": "single_choice",
            "options": ["Lay", "Student", "Doctor"],
        },
        {
            "id": "why",
            "text": "Why do you take part?",
            "type": "free_text",
            "max_length": 50,
            "required": False,
        },
    ]
    engine = study(questionnaires__entry=entry)
    p = AppParticipant().consent()
    assert [w.label for w in p.at.number_input] == ["Your age in years"] and p.at.number_input[
        0
    ].value is None
    p.at.radio[0].set_value(2)
    p.submit()
    assert (
        p.step_key == "entry" and "Your age in years" in p.at.error[-1].value and count(engine, Response) == 0
    )
    p.at.number_input[0].set_value(42)
    p.submit()
    assert p.step_key == "instructions"
    assert responses(engine, "entry") == {"age": "42.0", "expertise": "2"}  # the optional text left empty


def test_a_click_whose_callback_streamlit_skipped_still_submits_once(study, monkeypatch):
    """After a server restart the browser's first click starts a new session, and Streamlit skips the
    button's callback (it never saw the widget); the page submits after the form instead."""
    import streamlit as st

    engine = study()
    p = AppParticipant().consent()
    original = st.form_submit_button

    def without_callback(*args, on_click=None, **kwargs):
        return original(*args, **kwargs)

    monkeypatch.setattr(st, "form_submit_button", without_callback)
    p.submit()
    assert p.step_key == "entry" and "not been saved" in p.at.error[-1].value and count(engine, Response) == 0
    p.answer().submit()
    assert p.step_key == "instructions" and count(engine, Response) == 2
    p.submit()
    assert p.page == "trial"


def test_the_recruiting_link_again_resumes_the_same_participant(study):
    engine = study()
    link = {"PROLIFIC_PID": "returning-1", "SESSION_ID": "attempt-1"}
    p = AppParticipant(link)
    p.consent()
    p.advance(value=2)
    assert p.page == "info"
    back = AppParticipant(link)  # new tab from Prolific: no token in the URL
    assert back.page == "info" and back.token and back.token != p.token
    assert count(engine, Participant) == 1
    stranger = AppParticipant({"PROLIFIC_PID": "someone-else", "SESSION_ID": "x"})
    assert stranger.page == "consent"


def test_a_known_label_from_another_platform_session_takes_nothing_over(study):
    """Knowing someone's PROLIFIC_PID is not enough: the per-attempt SESSION_ID must match (resume_requires)."""
    engine = study()
    owner = AppParticipant({"PROLIFIC_PID": "victim", "SESSION_ID": "theirs"}).consent()
    for link in ({"PROLIFIC_PID": "victim"}, {"PROLIFIC_PID": "victim", "SESSION_ID": "mine"}):
        intruder = AppParticipant(link)
        assert intruder.page == "error" and "another session of the recruiting platform" in intruder.text()
        assert intruder.token is None and not intruder.at.button
    assert count(engine, Participant) == 1 and count(engine, Event, Event.kind == "resume_refused") == 2
    assert owner.reload().page == "questions"  # the owner's own link still works


def test_the_page_words_each_problem_by_its_code(study, monkeypatch):
    """Not "is required": the page names the problem and asks to check the answer, not to give one."""
    from study.engine import StudyEngine
    from study.items.answers import AnswerProblem
    from study.path import AnswerError

    study()
    p = AppParticipant().consent()

    def refuse(self, token, step_key, answers, **options):
        raise AnswerError(step_key, {"expertise": AnswerProblem("out_of_range", 1, 3, got=9)})

    monkeypatch.setattr(StudyEngine, "submit", refuse)
    p.advance()
    messages = [e.value for e in p.at.error]
    assert "This answer must be between 1 and 3, got 9." in messages
    assert "Please check" in messages[-1] and "Please answer" not in messages[-1]


def test_a_withdrawn_participants_link_says_so_and_offers_nothing(study):
    from study.data_rights import withdraw

    engine = study()
    p = AppParticipant().consent()
    withdraw(engine, token=p.token)
    again = p.reload()
    assert again.page == "error" and "You have withdrawn from this study" in again.text()
    assert not again.at.button and count(engine, Response) == 0


def test_retrieved_real_references_show_with_the_caption_their_licence_requires(study, tmp_path):
    bundle = make_bundle(tmp_path / "retrieval-bundle", retrieved=2)
    engine = study("within", cases__bundle=str(bundle), conditions__1__references=["generated", "retrieved"])
    p = AppParticipant().consent().advance(value=2).submit()
    shown = {"references": 0, "plain": 0}
    while p.page != "complete":
        step = p.at.session_state["skingen.visit"].position.step
        if p.page == "trial":
            case = engine.loaded.bundle.manifest.case(step.case_id)
            captions = [c for image in p.images()[1:] for c in image.captions]
            if engine.protocol.condition(step.condition).references:
                shown["references"] += 1
                # generated first, then the real photos, each credited as its licence asks
                assert captions == [r.caption for r in case.references] + [r.caption for r in case.retrieved]
                assert captions[-1] == (
                    f"Real example of {case.ai.skin_condition} — not the patient. "
                    "Photo: Atlas (CC BY 4.0), photo by Dr. Example 1"
                )
                assert f"Real example pictures of {case.ai.display_name.lower()}" in p.text()
            else:
                shown["plain"] += 1
                assert captions == [] and "Real example" not in p.text()
        p.advance()
    assert shown["references"] and shown["plain"]
