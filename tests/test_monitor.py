"""The dashboard's tables, from a simulated study (no Streamlit)."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from study.labelled import wide_table
from study.monitor import Monitor
from study.path import step_order
from study.rating import RatingPanel
from study.simulate import Policy, simulate


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, bundle_dir, module_database_url):
    from db.session import Database
    from study.engine import StudyEngine
    from study.protocol.loading import load_protocol
    from study.registry import register
    from tests.factories import example_protocol, write_protocol

    directory = tmp_path_factory.mktemp("monitor")
    path = write_protocol(directory, example_protocol("within"), bundle_dir)
    db = Database(module_database_url)
    register(db, load_protocol(path))
    engine = StudyEngine.open(db, str(path))
    outcomes = simulate(
        engine, 24, seed=2, policy=Policy(dropout_rate=0.25, attention_fail_rate=0.2), progress=False
    )
    panel = RatingPanel(db, engine.loaded)
    rater, _ = panel.add_rater("derm")
    for _ in range(3):
        task = panel.next_task(rater.id)
        panel.submit(rater.id, task.image.image_id, {"relevant": 1, "realism": 3, "show_patient": 1})
    return Monitor.load(db, engine.version_id, engine.loaded), engine, outcomes


@pytest.fixture(scope="module")
def monitor(simulated):
    return simulated[0]


def test_steps_are_in_the_protocols_order_not_parsed_from_keys(simulated):
    monitor, engine, _ = simulated
    periods = [[f"p{period}.t{i:02d}" for i in range(1, 4)] + [f"p{period}.post"] for period in (1, 2)]
    expected = ("consent", "entry", "instructions", *periods[0], *periods[1], "post", "debrief", "complete")
    assert step_order(engine.loaded) == monitor.steps == expected
    for table in (monitor.funnel(), monitor.step_times()):
        shown = list(table["step"])
        assert shown == [s for s in monitor.steps if s in shown]


def test_engine_export_and_monitor_agree_on_every_participant(simulated):
    monitor, engine, outcomes = simulated
    rows = monitor.participants.set_index("participant_id")
    for outcome in outcomes:
        position = engine.position(outcome.token)
        row = rows.loc[position.public_id]
        assert row["current_step"] == position.step.key
        assert row["steps_total"] == (position.total or "")
        assert position.step.key in monitor.steps
    assert (rows["steps_total"] == len(monitor.steps)).any()


def test_enrollment_matches_the_allocation_table(monitor):
    enrollment = monitor.enrollment()
    assert enrollment["allocated"].sum() == (monitor.participants["arm"] != "").sum()
    assert set(enrollment["arm"]) <= {"S1", "S2", "S3", "S4"}
    assert (enrollment["completed"] <= enrollment["allocated"]).all()


def test_funnel_is_in_path_order_and_never_grows(monitor):
    funnel = monitor.funnel()
    steps = list(funnel["step"])
    assert steps[:3] == ["consent", "entry", "instructions"] and steps[-1] == "complete"
    assert steps.index("p1.post") < steps.index("p2.t01") < steps.index("post")
    counts = list(funnel["participants"])
    assert counts == sorted(counts, reverse=True) and counts[0] == 24


def test_step_times_and_status(monitor):
    times = monitor.step_times()
    assert (times["median_s"] > 0).all() and times["step"].iloc[0] == "entry"
    status = monitor.status_counts().iloc[0]
    assert status["consented"] == 24 and status["completed"] + status["dropped"] + status["active"] == 24
    assert status["excluded"] >= status["dropped"]
    assert monitor.last_activity()


def test_rater_progress(monitor):
    per_rater, per_image = monitor.rater_progress()
    assert per_rater["images_rated"].tolist() == [3] and len(per_image) == 3


def test_wide_export_has_one_row_per_participant(monitor):
    wide = wide_table(monitor.frames, monitor.steps).frame
    assert len(wide) == 24 and "entry__expertise" in wide.columns
    answers = [c for c in wide.columns if "__" in c]
    assert answers[0].startswith("entry__") and wide.columns[0] == "participant_id"


def test_funnel_and_steps_have_readable_names(monitor):
    """Within design, 2 blocks of 3 cases: the funnel names steps for readers, never by their ids."""
    funnel = monitor.funnel().set_index("step")["label"]
    assert funnel["consent"] == "Consent" and funnel["complete"] == "Completed"
    assert funnel["p1.t01"] == "Case 1 of 6" and funnel["p2.t03"] == "Case 6 of 6"
    assert funnel["p1.post"] == "Questions after block 1" and funnel["post"] == "Final questions"
    assert not set(funnel) & set(monitor.steps)
    assert monitor.label("p9.t99") == "p9.t99"  # a step no version of the protocol has: its key


def test_judge_advisor_halves_are_named_apart(protocol_file, make_engine):
    from study.monitor import step_labels

    engine = make_engine(protocol_file(trial={"advice": "after_initial"}))
    labels = step_labels(engine.loaded)
    assert labels["p1.t02.initial"] == "Case 2 of 6: own diagnosis (before the AI's)"
    assert labels["p1.t02"] == "Case 2 of 6: after the AI's advice"
    assert labels["p1.post"] == "Questions after the cases"  # one block


def test_participant_table_is_pseudonymous_with_readable_steps(simulated):
    monitor, engine, outcomes = simulated
    table = monitor.participant_table()
    assert list(table.columns) == [
        "participant_id", "arm", "status", "current_step", "last_activity", "attention_failures"
    ]  # fmt: skip
    assert len(table) == 24 and table["participant_id"].str.fullmatch(r"P\d{5}").all()
    row = table.set_index("participant_id")
    for outcome in outcomes:
        position = engine.position(outcome.token)
        assert row.loc[position.public_id, "current_step"] == monitor.label(position.step.key)
    events = monitor.frames["events"]
    first = table["participant_id"].iloc[0]
    latest = pd.Timestamp(events[events["participant_id"] == first]["at"].max())
    assert row.loc[first, "last_activity"] == latest
    ids = pd.DataFrame({"participant_id": [first], "PROLIFIC_PID": ["5f00"]})
    with_ids = monitor.participant_table(ids).set_index("participant_id")
    assert with_ids.loc[first, "PROLIFIC_PID"] == "5f00"


def test_enrollment_by_day_counts_calendar_days_in_the_researchers_time_zone():
    """Hand-made: P1 consents 22:30 UTC on 1 March and completes 23:10 UTC (00:10 on 2 March in Berlin);
    P2 consents 08:00 UTC on 2 March and never completes; P3 consents and completes on 4 March."""
    participants = pd.DataFrame(
        {
            "participant_id": ["P00001", "P00002", "P00003"],
            "started_at": [
                "2026-03-01T22:30:00.000Z",
                "2026-03-02T08:00:00.000Z",
                "2026-03-04T10:00:00.000Z",
            ],
            "completed_at": ["2026-03-01T23:10:00.000Z", "", "2026-03-04T10:40:00.000Z"],
        }
    )
    monitor = Monitor({"participants": participants}, ())
    berlin = monitor.enrollment_by_day(ZoneInfo("Europe/Berlin"))
    assert [str(d) for d in berlin["day"]] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert berlin["enrolled"].tolist() == [1, 2, 2, 3] and berlin["completed"].tolist() == [0, 1, 1, 2]
    utc = monitor.enrollment_by_day(UTC)
    assert utc["completed"].tolist() == [1, 1, 1, 2]
    tokyo = monitor.enrollment_by_day(ZoneInfo("Asia/Tokyo"))  # UTC+9: 22:30 on 1 March is 07:30 on 2 March
    assert [str(d) for d in tokyo["day"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert tokyo["enrolled"].tolist() == [2, 2, 3] and tokyo["completed"].tolist() == [1, 1, 2]


def test_the_tables_of_a_study_nobody_has_joined_are_empty(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    monitor = Monitor.load(engine.db, engine.version_id, engine.loaded)
    assert monitor.participant_table().empty and monitor.enrollment_by_day(UTC).empty
