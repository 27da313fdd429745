"""Withdrawal, identifier retention, and backups: what is removed, what stays, and that the audit log holds
no answer content (it must stay append-only through a withdrawal)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.sources import load_db
from app.study_command import main
from db.models import ConsentRecord, Event, Participant, Response
from study.data_rights import DataRightsError, purge_identifiers, withdraw
from study.export import export_frames
from study.monitor import Monitor
from study.refusals import Withdrawn
from tests.participants import TICKED, complete

SECRET = "my neighbour Ann Example has this rash"  # free text that must never reach the audit log


def _rows(engine, model, participant_id: int) -> int:
    with engine.db.read() as session:
        return session.scalar(
            select(func.count()).select_from(model).where(model.participant_id == participant_id)
        )


@pytest.fixture
def two(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    leaving = complete(
        engine, {"PROLIFIC_PID": "leaver", "SESSION_ID": "s1", "STUDY_ID": "st"}, comments=SECRET
    )
    staying = complete(
        engine, {"PROLIFIC_PID": "stayer", "SESSION_ID": "s2", "STUDY_ID": "st"}, comments=SECRET
    )
    return engine, leaving, staying


def test_withdraw_removes_answers_consent_and_identifiers_and_keeps_a_content_free_event(two):
    engine, leaving, staying = two
    pid = engine.position(leaving).participant_id
    answers = _rows(engine, Response, pid)
    assert answers > 0
    done = withdraw(engine, token=leaving)
    assert done.answers_removed == answers and done.participant_id == f"P{pid:05d}"
    assert _rows(engine, Response, pid) == 0 and _rows(engine, ConsentRecord, pid) == 0
    with engine.db.read() as session:
        row = session.get(Participant, pid)
        assert row.url_params == {} and row.label_hash is None and row.status == "withdrawn"
        event = session.scalars(select(Event).where(Event.kind == "withdraw")).one()
    assert event.participant_id == pid and event.detail == {"answers_removed": answers}
    with pytest.raises(Withdrawn, match="you have withdrawn"):
        engine.position(leaving)
    assert engine.resume({"PROLIFIC_PID": "leaver", "SESSION_ID": "s1"}) is None  # the label is gone
    assert engine.position(staying).completed  # nobody else touched
    with pytest.raises(DataRightsError, match="already withdrawn"):
        withdraw(engine, token=leaving)


def test_exports_analysis_and_dashboard_leave_the_withdrawn_participant_out(two):
    engine, leaving, staying = two
    public = engine.position(leaving).public_id
    withdraw(engine, token=leaving)
    frames = export_frames(engine.db, include_identifiers=True)
    assert list(frames["participants"]["participant_id"]) == [engine.position(staying).public_id]
    assert public not in set(frames["responses"]["participant_id"])
    assert public not in set(frames["events"]["participant_id"])
    assert public not in set(frames["allocation"]["participant_id"])
    assert (frames["events"]["kind"] == "withdraw").sum() == 1  # counted, without an id
    status = Monitor(frames, ()).status_counts().iloc[0]
    assert status["withdrawn"] == 1 and status["consented"] == 1
    claimed = frames["allocation"]["claimed"].sum()
    assert claimed == 2  # the slot stays used: the block randomisation stays balanced and auditable
    others = [
        complete(engine, {"PROLIFIC_PID": f"p{i}", "SESSION_ID": "s"}, comments=SECRET) for i in range(2)
    ]
    analysed = load_db(engine.db.url)  # skingen-analysis --db: both arms are there again, the leaver is not
    expected = {engine.position(t).public_id for t in (staying, *others)}
    assert set(analysed.responses["participant_id"]) == expected


def test_withdraw_by_label_and_refusals(two):
    engine, _, staying = two
    assert withdraw(engine, label="stayer").answers_removed > 0
    with pytest.raises(Withdrawn):
        engine.position(staying)
    for kwargs, message in [
        ({"label": "nobody"}, "no participant of this study has PROLIFIC_PID='nobody'"),
        ({"token": "forged"}, "no participant of this study has this token"),
        ({}, "exactly one of --token or --label"),
        ({"token": "a", "label": "b"}, "exactly one of --token or --label"),
    ]:
        with pytest.raises(DataRightsError, match=message):
            withdraw(engine, **kwargs)


def test_the_audit_log_never_holds_answer_content_or_identifiers(two):
    engine, _, _ = two
    with engine.db.read() as session:
        stored = {v for (v,) in session.execute(select(Response.value)) if not v.isdigit() and len(v) > 3}
        details = [(e.kind, e.detail) for e in session.scalars(select(Event))]
    assert SECRET in stored
    dumped = json.dumps(details)
    for text in [*stored, "leaver", "stayer", "s1", "s2"]:
        assert text not in dumped, text
    allowed = {"answers", "stratum", "slot", "arm", "answers_removed", "retention_days", "version"}
    assert {key for _, detail in details for key in detail} <= allowed


def test_cli_withdraw(two, capsys):
    engine, leaving, _ = two
    # --token=T: a token may begin with '-', which argparse would take for an option after a space
    assert main(["withdraw", "--db", engine.db.url, f"--token={leaving}"]) == 0
    assert "withdrawn" in capsys.readouterr().out
    assert main(["withdraw", "--db", engine.db.url, f"--token={leaving}"]) == 2
    assert "already withdrawn" in capsys.readouterr().err


def test_identifiers_are_purged_after_the_retention_days(protocol_file, make_engine, capsys):
    engine = make_engine(protocol_file(retention_days=30))
    old = engine.consent(TICKED, {"PROLIFIC_PID": "old", "SESSION_ID": "s"})
    recent = engine.consent(TICKED, {"PROLIFIC_PID": "recent", "SESSION_ID": "s"})
    start = engine.clock()
    engine.clock = lambda: start + timedelta(days=20)
    engine.submit(recent, "entry", {"expertise": 1, "age_group": 1})  # still active 20 days later
    engine.clock = lambda: start + timedelta(days=31)
    assert purge_identifiers(engine) == 1
    assert purge_identifiers(engine) == 0  # once
    with engine.db.read() as session:
        rows = {p.id: p for p in session.scalars(select(Participant))}
        purged = session.scalars(select(Event).where(Event.kind == "identifiers_purged")).all()
    by_token = {t: engine.position(t).participant_id for t in (old, recent)}
    assert rows[by_token[old]].url_params == {} and rows[by_token[old]].label_hash is None
    assert rows[by_token[recent]].url_params["PROLIFIC_PID"] == "recent"
    assert [(e.participant_id, e.detail) for e in purged] == [(by_token[old], {"retention_days": 30})]
    assert engine.position(old).step.key == "entry"  # the study link still works; only identifiers went
    assert main(["purge", "--db", engine.db.url]) == 0  # real clock: nothing is 30 days old yet
    assert "purged the identifiers of 0 participants (retention 30 days)" in capsys.readouterr().out


def test_without_retention_days_nothing_is_purged(protocol_file, make_engine):
    engine = make_engine(protocol_file(retention_days=None))
    engine.consent(TICKED, {"PROLIFIC_PID": "p", "SESSION_ID": "s"})
    start = engine.clock()
    engine.clock = lambda: start + timedelta(days=10_000)
    assert purge_identifiers(engine) == 0


def _snapshot(url: str) -> dict[str, str]:
    from db.session import Database

    db = Database(url)
    frames = export_frames(db)
    db.dispose()
    return {name: frames[name].drop(columns="exported_at", errors="ignore").to_csv() for name in frames}


def test_backup_is_an_online_consistent_copy_and_restores(two, tmp_path, capsys):
    """Taken while another connection is mid-write: the copy has every committed row and nothing of
    the transaction still open then; restoring it gives the same export."""
    engine, _, _ = two
    out = tmp_path / "backups" / "study-backup.db"
    with engine.db.write() as session:
        session.add(Event(kind="not_committed"))
        session.flush()
        assert main(["backup", "--db", engine.db.url, "--out", str(out)]) == 0
    assert out.is_file() and not list(out.parent.glob(".*partial"))
    assert main(["backup", "--db", engine.db.url, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    restored = _restore_target(engine, tmp_path)
    assert main(["restore", str(out), "--db", restored]) == 0
    assert _snapshot(restored) == _snapshot(engine.db.url)
    late = select(func.count()).where(Event.kind == "not_committed")
    with engine.db.read() as session:
        assert session.scalar(late) == 1  # committed after the backup began
    from db.session import Database

    with Database(restored).read() as session:
        assert session.scalar(late) == 0
    assert main(["restore", str(out), "--db", restored]) == 2  # never over an existing database


def _restore_target(engine, tmp_path) -> str:
    if engine.db.url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/restored/study.db"
    from tests.conftest import _fresh_postgres_database

    return _fresh_postgres_database(engine.db.url)


def test_restoring_something_that_is_no_backup_leaves_nothing(two, tmp_path, capsys):
    from sqlalchemy import inspect

    from db.session import Database

    engine, _, _ = two
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a backup" * 100)
    target = _restore_target(engine, tmp_path)
    assert main(["restore", str(junk), "--db", target]) == 2
    assert "skingen-study restore:" in capsys.readouterr().err
    if target.startswith("sqlite"):
        assert list((tmp_path / "restored").iterdir()) == []  # not even a partial file
    else:
        assert inspect(Database(target).engine).get_table_names() == []
