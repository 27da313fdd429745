"""Engagement and manipulation checks by condition (analysis/engagement.py), on bot studies whose timing,
clicks and answers are known, and the reliance and engagement blocks of a judge–advisor study's report."""

from __future__ import annotations

import pytest

from analysis.load import from_export
from analysis.pipeline import AnalysisConfig, run_analysis
from study.export import export_frames
from study.protocol.loading import ProtocolError, load_protocol
from study.simulate import Policy, simulate
from tests.participants import answers_for

SEEN_IMAGES = {
    "id": "saw_images",
    "text": "Did you see example pictures of the conditions?",
    "type": "yes_no",
    "manipulation_check": {"expected": {"baseline_text": 0, "skingen_visual": 1}},
}


def _post_block(extra: dict) -> list[dict]:
    from tests.factories import example_protocol

    return [*example_protocol("between")["questionnaires"]["post_block"], extra]


def test_manipulation_checks_are_validated(protocol_file):
    wrong_code = {
        **SEEN_IMAGES,
        "manipulation_check": {"expected": {"baseline_text": 0, "skingen_visual": 3}},
    }
    with pytest.raises(ProtocolError, match=r"manipulation_check.expected \{'skingen_visual': 3\}"):
        load_protocol(protocol_file(questionnaires__post_block=_post_block(wrong_code)))
    one = {**SEEN_IMAGES, "manipulation_check": {"expected": {"baseline_text": 0, "unknown_arm": 1}}}
    with pytest.raises(ProtocolError) as refused:
        load_protocol(protocol_file(questionnaires__post_block=_post_block(one)))
    assert "unknown conditions ['unknown_arm']" in str(refused.value)
    assert "give the expected answer under ['skingen_visual']" in str(refused.value)
    with pytest.raises(ProtocolError, match="ask it in trial or post_block"):
        load_protocol(protocol_file(questionnaires__entry=[SEEN_IMAGES]))
    with pytest.raises(ProtocolError, match="within design's post questions have no condition"):
        load_protocol(protocol_file("within", questionnaires__post=[SEEN_IMAGES]))
    from study.prereg import document

    prereg = document(
        load_protocol(protocol_file(questionnaires__post_block=_post_block(SEEN_IMAGES))).protocol
    )
    assert "Manipulation check `saw_images`" in prereg and "skingen_visual: Yes" in prereg


@pytest.mark.parametrize("notice", [1.0, 0.0])
def test_manipulation_check_by_arm(protocol_file, make_engine, notice):
    engine = make_engine(protocol_file(questionnaires__post_block=_post_block(SEEN_IMAGES)))
    simulate(engine, 8, seed=2, policy=Policy(notice_manipulation=notice), progress=False)
    frames = export_frames(engine.db)
    rows = frames["responses"][frames["responses"]["item"] == "saw_images__as_intended"]
    assert len(rows) == 8 and set(rows["value"]) == {str(int(notice))}
    block = run_analysis(from_export(frames), AnalysisConfig(full=False)).results["engagement"]
    checks = block["manipulation_checks"]["saw_images"]
    participants = frames["participants"]
    arms = participants[participants["excluded"].astype(int) == 0].groupby("arm").size()  # the analysed
    assert set(checks) == set(arms.index)
    for arm, record in checks.items():
        assert (record["n"], record["as_intended"]) == (arms[arm], arms[arm] * int(notice))
        assert record["share"] == notice and record["ci"][0] - 1e-12 <= notice <= record["ci"][1] + 1e-12


@pytest.mark.parametrize("advice", ["with_case", "after_initial"])
def test_time_per_case_from_known_think_times(protocol_file, make_engine, advice):
    """Bots think exactly 12 s per step (11 steps: past the 120 s minimum duration): a case takes 12 s, or
    24 s as a judge–advisor trial's two halves."""
    engine = make_engine(protocol_file(trial={"advice": advice}))
    simulate(engine, 4, seed=5, policy=Policy(think_seconds=(12.0, 12.0)), progress=False)
    results = run_analysis(from_export(export_frames(engine.db)), AnalysisConfig(full=False)).results
    timing = results["engagement"]["time_per_case"]
    expected = 24.0 if advice == "after_initial" else 12.0
    assert sum(r["n_participants"] for r in timing.values()) == 4
    for record in timing.values():
        assert record["median"] == pytest.approx(expected) and record["mean"] == pytest.approx(expected)
        assert record["n_cases"] == 6 * record["n_participants"]


def test_image_views_by_condition(protocol_file, make_engine):
    engine = make_engine(protocol_file(exclusions__min_duration_seconds=None))  # clicked through at once
    tokens = {}
    for _ in range(4):  # permuted blocks: two participants per arm
        token = engine.consent(["read_information", "voluntary", "agree_data"], {})
        position = engine.submit(token, "entry", {"expertise": 1, "age_group": 1})
        tokens[token] = engine.submit(token, position.step.key, {})  # at the first trial
    clicks = {}
    for number, (token, position) in enumerate(tokens.items()):
        step = position.step
        visual = engine.protocol.condition(step.condition).shows("generated")
        if number % 2 == 0:  # every other participant enlarges the photo, and a reference where shown
            engine.enlarge_image(token, step.key, "case_photo", 1)
            clicks[token] = 1
            if visual:
                engine.enlarge_image(token, step.key, "generated", 1)
                clicks[token] += 1
        position = engine.submit(token, step.key, answers_for(step))
        while not position.completed:
            position = engine.submit(token, position.step.key, answers_for(position.step))
    frames = export_frames(engine.db)
    views = run_analysis(from_export(frames), AnalysisConfig(full=False)).results["engagement"]["image_views"]
    arm = {p.participant_id: p.arm for p in frames["participants"].itertuples()}
    by_participant = frames["image_views"].groupby("participant_id").size()
    assert set(views) == {"baseline_text", "skingen_visual"}
    for condition, record in views.items():
        members = [p for p, a in arm.items() if a == condition]
        assert record["n_participants"] == len(members)
        counts = [int(by_participant.get(p, 0)) for p in members]
        assert record["views"] == sum(counts) and record["participants_enlarging"] == sum(
            c > 0 for c in counts
        )
        assert record["views_per_case"] == pytest.approx(sum(c / 6 for c in counts) / len(members))
    assert sum(v["views"] for v in views.values()) == sum(clicks.values())
    assert views["skingen_visual"]["by_kind"].get("generated", 0) == sum(
        1 for t, c in clicks.items() if c == 2
    )


def test_judge_advisor_study_report_blocks(protocol_file, make_engine):
    engine = make_engine(protocol_file(trial={"advice": "after_initial"}))
    simulate(engine, 8, seed=4, progress=False)
    results = run_analysis(from_export(export_frames(engine.db)), AnalysisConfig(full=False)).results
    block = results["reliance"]
    assert block["judge_advisor"] and block["items"] == ["own_diagnosis"]
    assert {"rair", "rsr", "switch_rate", "accuracy_before"} <= set(block["metrics"])
    assert {r["condition"] for r in block["by_condition"]} == {"baseline_text", "skingen_visual"}
    # the derived initial constructs are not tested as constructs
    assert not {"initial_diagnostic_accuracy", "initial_agreement_with_ai"} & set(results["constructs"])
    from analysis.document import document
    from analysis.render import render_markdown

    report = render_markdown(document(results))
    assert "## Reliance on the AI's advice" in report and "Relative AI reliance (RAIR)" in report
    assert "## Engagement and manipulation checks" in report and "Time per case" in report
