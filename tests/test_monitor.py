"""The dashboard's tables, from a simulated study (no Streamlit)."""

from __future__ import annotations

import pytest

from study.monitor import Monitor, wide_responses
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
    wide = wide_responses(monitor.frames["responses"], monitor.steps)
    assert len(wide) == 24 and "entry__expertise" in wide.columns
    assert wide.columns[1] == "entry__age_group" or wide.columns[1].startswith("entry__")
