"""The audit check: after bots take part it explains every row; each kind of unexplained row is named."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from app.study_command import main
from db.models import Participant, Response
from study.audit import audit
from study.simulate import Policy, simulate


def test_bots_leave_nothing_unexplained_and_tampering_is_named(protocol_file, make_engine, tmp_path, capsys):
    path = protocol_file("between")
    engine = make_engine(path)
    simulate(engine, 6, seed=3, policy=Policy(dropout_rate=0.3), progress=False)
    report = audit(engine)
    assert report.ok, report.problems
    assert report.participants == 6 and report.responses > 0 and report.events > report.participants
    assert main(["audit", "--db", engine.db.url, "--protocol", str(path)]) == 0
    assert "every row explained" in capsys.readouterr().out

    with engine.db.write() as session:
        first, second = session.scalars(select(Participant).order_by(Participant.id).limit(2)).all()
        now = datetime.now(UTC)
        row = {"value": "1", "shown_at": now, "submitted_at": now, "rt_ms": 0}
        session.execute(
            insert(Response), [{"participant_id": first.id, "step_key": "zz", "item_id": "x", **row}]
        )
        session.execute(update(Participant).where(Participant.id == second.id).values(step_index=99))
    codes = {(p.code, p.participant) for p in audit(engine).problems}
    assert ("answers", first.public_id) in codes and ("step", second.public_id) in codes
    assert main(["audit", "--db", engine.db.url, "--protocol", str(path)]) == 1
    assert "answer rows without a submit event" in capsys.readouterr().err


def test_a_withdrawal_is_explained_and_leftover_answers_are_not(protocol_file, make_engine):
    from study.data_rights import withdraw
    from tests.participants import complete

    engine = make_engine(protocol_file("between"))
    simulate(engine, 3, seed=1, progress=False)
    leaving = complete(engine, {"PROLIFIC_PID": "leaving", "SESSION_ID": "s1"})
    withdraw(engine, token=leaving)
    assert audit(engine).ok, audit(engine).problems  # answers and consent gone: the withdraw event says why
    with engine.db.write() as session:
        gone = session.scalar(select(Participant).where(Participant.status == "withdrawn"))
        now = datetime.now(UTC)
        row = {"value": "1", "shown_at": now, "submitted_at": now, "rt_ms": 0}
        session.execute(
            insert(Response), [{"participant_id": gone.id, "step_key": "zz", "item_id": "x", **row}]
        )
    assert {(p.code, p.participant) for p in audit(engine).problems} == {("withdrawal", gone.public_id)}
