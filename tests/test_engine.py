"""The study engine against a real SQLite file: order, validation, idempotency, resume, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from db.models import AllocationSlot, ConsentRecord, Event, Participant, Response
from study.engine import StudyEngine
from study.path import AnswerError
from study.refusals import ConsentRefused, ResumeRefused, StepConflict, UnknownToken
from tests.participants import ENTRY, TICKED, answers_for


def count(engine: StudyEngine, model) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def finish(engine: StudyEngine, token: str):
    position = engine.position(token)
    while not position.completed:
        position = engine.submit(token, position.step.key, answers_for(position.step))
    return position


def test_walks_the_whole_path(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED, {"PROLIFIC_PID": "abc", "unknown_param": "x"})
    assert len(token) >= 40  # 256 random bits, URL-safe
    position = engine.position(token)
    assert (position.step.key, position.total) == ("entry", None)
    position = engine.submit(token, "entry", ENTRY)
    assert position.step.key == "instructions" and position.total == 13
    assert position.arm in {"baseline_text", "skingen_visual"}
    final = finish(engine, token)
    assert final.completed and final.status == "completed"
    with engine.db.read() as session:
        participant = session.scalar(select(Participant))
        assert participant.url_params == {"PROLIFIC_PID": "abc"}  # undeclared parameters are not recorded
        assert participant.stratum == "Medical student"
        assert participant.token_hash != token and token not in participant.token_hash
        consent = session.scalar(select(ConsentRecord))
        assert consent.ticked == sorted(TICKED) and "Participant information" in consent.consent_text
        kinds = [e.kind for e in session.scalars(select(Event).order_by(Event.id))]
    assert kinds[:3] == ["register", "consent", "allocate"] and kinds.count("submit") == 11


def test_consent_must_be_complete_and_writes_nothing_otherwise(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    with pytest.raises(ConsentRefused) as info:
        engine.consent(["read_information"], {})
    assert info.value.missing == ["voluntary", "agree_data"]
    assert {item: p.code for item, p in info.value.errors.items()} == dict.fromkeys(
        info.value.missing, "required"
    )
    assert count(engine, Participant) == 0 and count(engine, ConsentRecord) == 0


def test_double_submit_stores_each_answer_once_and_never_goes_back(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)
    engine.submit(token, "entry", ENTRY)
    engine.submit(token, "instructions", {})
    step = engine.position(token).step
    first = engine.submit(token, step.key, answers_for(step, 6))
    again = engine.submit(token, step.key, answers_for(step, 2))  # replay with other values: ignored
    assert first.index == again.index == 4
    with engine.db.read() as session:
        rows = session.scalars(select(Response).where(Response.step_key == step.key)).all()
        assert sorted(r.item_id for r in rows) == sorted(answers_for(step))
        assert {r.value for r in rows if r.item_id == "trust_1"} == {"6"}
        assert (
            session.scalar(select(func.count()).select_from(Event).where(Event.kind == "resubmit_ignored"))
            == 1
        )
    replay_entry = engine.submit(token, "entry", {"expertise": 3, "age_group": 2})
    assert replay_entry.index == 4


def test_refusals_write_nothing(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)
    before = (count(engine, Response), count(engine, Event))
    with pytest.raises(UnknownToken):
        engine.submit("forged-token", "entry", ENTRY)
    with pytest.raises(UnknownToken):
        engine.position("forged-token")
    with pytest.raises(StepConflict, match="not this participant's current step"):
        engine.submit(token, "p1.t03", {})  # tampered step key: skipping ahead
    with pytest.raises(AnswerError) as info:
        engine.submit(token, "entry", {"expertise": 9, "age_group": 1, "injected": "x"})
    assert set(info.value.errors) == {"expertise", "injected"}
    assert (count(engine, Response), count(engine, Event) - 2) == before  # only the two refusals logged
    with engine.db.read() as session:
        logged = session.scalars(select(Event).where(Event.id > before[1]).order_by(Event.id)).all()
    assert [(e.kind, e.step_key, e.detail) for e in logged] == [
        ("submit_refused", None, {"reason": "step_conflict"}),
        (
            "submit_refused",
            "entry",
            {"reason": "answers", "problems": {"expertise": "out_of_range"}, "unknown_fields": 1},
        ),
    ]
    assert engine.position(token).step.key == "entry"
    with engine.db.read() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(AllocationSlot)
                .where(AllocationSlot.participant_id.is_not(None))
            )
            == 0
        )


def test_completed_participant_cannot_submit_again(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)
    engine.submit(token, "entry", ENTRY)
    finish(engine, token)
    responses = count(engine, Response)
    with pytest.raises(StepConflict, match="already completed"):
        engine.submit(token, "complete", {})
    assert engine.submit(token, "post", {}).completed  # a replayed old step just shows completion
    assert count(engine, Response) == responses


def test_position_is_rebuilt_from_the_database(protocol_file, make_engine):
    engine = make_engine(protocol_file("within"))
    token = engine.consent(TICKED)
    engine.submit(token, "entry", ENTRY)
    engine.submit(token, "instructions", {})
    step = engine.position(token).step
    engine.submit(token, step.key, answers_for(step))
    fresh = StudyEngine.open(engine.db)  # another process: nothing shared but the database
    assert fresh.position(token) == engine.position(token)
    assert fresh.position(token).step.key == "p1.t02"


def test_response_times_count_from_first_display(protocol_file, make_engine):
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    engine = make_engine(protocol_file())
    engine.clock = lambda: clock[0]
    token = engine.consent(TICKED)
    position = engine.position(token)
    engine.mark_shown(token, position.index)
    clock[0] += timedelta(seconds=4)
    engine.mark_shown(token, position.index)  # a rerun of the same page keeps the first stamp
    clock[0] += timedelta(seconds=3.5)
    engine.submit(token, "entry", ENTRY)
    with engine.db.read() as session:
        rts = {r.rt_ms for r in session.scalars(select(Response))}
    assert rts == {7500}


def test_dropout_is_derived_from_inactivity(protocol_file, make_engine):
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    engine = make_engine(protocol_file())
    engine.clock = lambda: clock[0]
    token = engine.consent(TICKED)
    assert engine.position(token).status == "active"
    clock[0] += timedelta(minutes=61)
    assert engine.position(token).status == "dropped"


def test_events_are_append_only(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    engine.consent(TICKED)
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with pytest.raises(Exception, match="append-only"), engine.db.write() as session:
            session.execute(text(statement))
    assert count(engine, Event) == 2


def test_allocation_table_extends_when_used_up(protocol_file, make_engine):
    engine = make_engine(protocol_file(randomization__table_size=4, randomization__block_sizes=[2]))
    arms = []
    for _ in range(9):
        token = engine.consent(TICKED)
        arms.append(engine.submit(token, "entry", {"expertise": 1, "age_group": 1}).arm)
    for block in range(4):
        assert sorted(arms[2 * block : 2 * block + 2]) == ["baseline_text", "skingen_visual"]
    with engine.db.read() as session:
        slots = session.scalars(
            select(AllocationSlot)
            .where(AllocationSlot.stratum == "Layperson")
            .order_by(AllocationSlot.position)
        ).all()
    assert [s.position for s in slots] == list(range(len(slots))) and len(slots) >= 9


def test_a_returning_participant_resumes_by_label(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    assert engine.protocol.participant_label == "PROLIFIC_PID"
    link = {"PROLIFIC_PID": "p-1", "SESSION_ID": "s-1"}
    first = engine.consent(TICKED, link)
    engine.submit(first, "entry", ENTRY)
    assert engine.resume({"PROLIFIC_PID": "p-2", "SESSION_ID": "s-1"}) is None and engine.resume({}) is None
    again = engine.resume(link)  # the recruiting link again, without the token
    assert again and again != first
    assert engine.position(again).step.key == "instructions"
    with pytest.raises(UnknownToken):
        engine.position(first)  # the old link was replaced
    third = engine.consent(TICKED, link)  # consenting again enrolls nobody new
    assert engine.position(third).step.key == "instructions"
    assert count(engine, Participant) == 1 and count(engine, ConsentRecord) == 1


@pytest.mark.parametrize("session", [None, "", "s-2"])
def test_resume_by_label_needs_the_recorded_platform_session(protocol_file, make_engine, session):
    engine = make_engine(protocol_file())
    assert engine.protocol.resume_requires == ("SESSION_ID",)
    token = engine.consent(TICKED, {"PROLIFIC_PID": "p-1", "SESSION_ID": "s-1"})
    attempt = {"PROLIFIC_PID": "p-1"} | ({} if session is None else {"SESSION_ID": session})
    for take_over in (engine.resume, lambda params: engine.consent(TICKED, params)):
        with pytest.raises(ResumeRefused, match="another session of the recruiting platform"):
            take_over(attempt)
    assert engine.position(token).step.key == "entry"  # the owner's link is untouched
    assert count(engine, Participant) == 1
    with engine.db.read() as session_:
        refused = session_.scalars(select(Event).where(Event.kind == "resume_refused")).all()
    assert [e.detail for e in refused] == [{"differ": ["SESSION_ID"]}] * 2


def test_without_resume_requires_the_label_alone_resumes(protocol_file, make_engine):
    """The documented trade-off: a platform without per-attempt ids can resume by label alone."""
    engine = make_engine(protocol_file(resume_requires=[]))
    engine.consent(TICKED, {"PROLIFIC_PID": "p-1", "SESSION_ID": "s-1"})
    assert engine.resume({"PROLIFIC_PID": "p-1"}) is not None


def test_participant_label_must_be_a_url_parameter(protocol_file):
    from study.protocol.loading import ProtocolError, load_protocol

    with pytest.raises(ProtocolError, match="participant_label: 'NOPE' must be one of url_parameters"):
        load_protocol(protocol_file(participant_label="NOPE"))
    with pytest.raises(ProtocolError, match="resume_requires: 'NOPE' must be one of url_parameters"):
        load_protocol(protocol_file(resume_requires=["NOPE"]))
