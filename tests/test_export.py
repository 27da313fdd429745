"""Exports: documented columns, derived variables, exclusions, de-identification, codebook from the protocol."""

from __future__ import annotations

import pandas as pd
import pytest

from app.study_command import main
from formats.contract import PARTICIPANT_COLUMNS, RESPONSE_COLUMNS
from study.export import export_frames
from study.simulate import Policy, simulate
from tests.participants import ENTRY, TICKED, answers_for


@pytest.fixture
def simulated(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    policy = Policy(kind="effect", effects={"trust": 1.5}, attention_fail_rate=0.2, dropout_rate=0.2)
    outcomes = simulate(engine, 30, seed=3, policy=policy, progress=False)
    return engine, outcomes


def test_columns_and_rows(simulated):
    engine, outcomes = simulated
    frames = export_frames(engine.db)
    responses, participants = frames["responses"], frames["participants"]
    assert list(responses.columns) == list(RESPONSE_COLUMNS)
    assert list(participants.columns) == list(PARTICIPANT_COLUMNS)
    assert len(participants) == 30
    assert (participants["status"] == "completed").sum() == sum(o.completed for o in outcomes)
    trial = responses[responses["item"] == "trust_1"]
    assert set(trial["step"].str[:4]) == {"p1.t"}
    assert trial["case_id"].ne("").all() and set(trial["condition"]) == {"baseline_text", "skingen_visual"}
    # every trial row of a participant carries their arm's condition (between design)
    assert (trial["condition"] == trial["arm"]).all()
    assert set(trial["ai_correct"]) == {0, 1}
    reverse = responses[responses["item"] == "trust_3"]
    assert set(reverse["reverse_coded"]) == {1} and set(reverse["construct"]) == {"trust"}
    assert (responses["rt_ms"] > 0).all()
    # rows with a construct always hold numbers
    assert pd.to_numeric(responses.loc[responses["construct"] != "", "value"]).notna().all()


def test_diagnosis_items_get_derived_agreement_rows(simulated):
    engine, _ = simulated
    responses = export_frames(engine.db)["responses"]
    manifest = engine.loaded.bundle.manifest
    chosen = responses[responses["item"] == "own_diagnosis"].set_index(["participant_id", "case_id"])["value"]
    agrees = responses[responses["item"] == "own_diagnosis__agrees_ai"].set_index(
        ["participant_id", "case_id"]
    )
    correct = responses[responses["item"] == "own_diagnosis__correct"].set_index(
        ["participant_id", "case_id"]
    )
    assert len(chosen) == len(agrees) == len(correct) > 0
    for (pid, case_id), value in chosen.items():
        case = manifest.case(case_id)
        assert agrees.loc[(pid, case_id), "value"] == str(int(value == case.ai.skin_condition))
        assert correct.loc[(pid, case_id), "value"] == str(int(value == case.ground_truth))
    assert set(agrees["construct"]) == {"agreement_with_ai"}


def test_exclusions_follow_the_protocol(simulated):
    engine, outcomes = simulated
    participants = export_frames(engine.db)["participants"]
    by_token = {o.token: o for o in outcomes}
    assert len(by_token) == 30
    inattentive_completed = sum(o.inattentive and o.completed for o in outcomes)
    incomplete = participants["status"] != "completed"
    assert inattentive_completed > 0 and incomplete.any()  # both rules have someone to exclude
    assert (participants["exclusion_reasons"].str.contains("attention_check")).sum() >= inattentive_completed
    assert (participants.loc[incomplete, "exclusion_reasons"].str.contains("incomplete")).all()
    assert set(participants.loc[incomplete, "status"]) <= {"dropped"}  # bots ran a day ago
    assert ((participants["excluded"] == 1) == (participants["exclusion_reasons"] != "")).all()


def test_too_fast_rule(protocol_file, make_engine):
    engine = make_engine(protocol_file())
    token = engine.consent(TICKED)  # real clock: the whole study in milliseconds
    engine.submit(token, "entry", ENTRY)
    position = engine.position(token)
    while not position.completed:
        position = engine.submit(token, position.step.key, answers_for(position.step))
    row = export_frames(engine.db)["participants"].iloc[0]
    assert row["exclusion_reasons"] == "too_fast" and row["duration_s"] < 120


def test_identifiers_only_on_request(protocol_file, make_engine, tmp_path, capsys):
    engine = make_engine(protocol_file())
    engine.consent(TICKED, {"PROLIFIC_PID": "5f1234567890abcdef123456", "STUDY_ID": "s1"})
    assert main(["export", "--db", engine.db.url, "--out", str(tmp_path / "plain")]) == 0
    for path in (tmp_path / "plain").glob("*.csv"):
        assert "5f1234567890abcdef123456" not in path.read_text()
    assert (
        main(["export", "--db", engine.db.url, "--out", str(tmp_path / "ids"), "--include-identifiers"]) == 0
    )
    participants = pd.read_csv(tmp_path / "ids" / "participants.csv")
    assert participants.loc[0, "PROLIFIC_PID"] == "5f1234567890abcdef123456"
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "allocation.csv",
        "codebook.csv",
        "events.csv",
        "hypotheses.csv",
        "image_views.csv",
        "instruments.csv",
        "participants.csv",
        "ratings.csv",
        "responses.csv",
        "responses_wide.csv",
        "responses_wide.dta",
        "responses_wide.sav",
        "study.csv",
    ]
    assert "wrote" in capsys.readouterr().out


def test_codebook_is_generated_from_the_protocol(simulated):
    engine, _ = simulated
    codebook = export_frames(engine.db)["codebook"].set_index("variable")
    items = engine.protocol.items()
    assert set(items) <= set(codebook.index)
    assert codebook.loc["trust_1", "value_labels"].startswith("1=Strongly disagree; 2=Disagree; 3=Somewhat")
    assert codebook.loc["trust_3", "reverse_coded"] == 1 and codebook.loc["trust_3", "construct"] == "trust"
    assert codebook.loc["attention_1", "attention_check"] == 1
    assert codebook.loc["own_diagnosis__agrees_ai", "source"] == "derived"
    assert codebook.loc["images_helpful", "shown_in"] == "skingen_visual"
    responses = export_frames(engine.db)["responses"]
    assert set(responses["item"]) <= set(codebook.index)  # every exported variable is documented
