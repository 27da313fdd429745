"""A three-arm study end to end: the app shows each arm's references, bots walk the engine, the export and
codebook describe three conditions, and the analysis (and its bot power simulation) compares all of them."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.figures import build_figures
from analysis.load import StudyData, from_export
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import write_reports
from app.sources import bots_of
from study.allocation import arms
from study.botpower import EngineBotGenerator
from study.export import export_frames
from study.monitor import Monitor
from study.references import shown_references
from study.simulate import Policy, simulate
from tests.app_driver import AppParticipant
from tests.factories import make_bundle, multi_arm_protocol, write_protocol

ARMS = ("baseline_text", "skingen_visual", "retrieved_photos")
PLANTED = Policy(
    kind="effect",
    condition_effects={"skingen_visual": {"trust": 1.5}},  # retrieved_photos stays at the baseline's level
    attention_fail_rate=0.0,
    dropout_rate=0.0,
    think_seconds=(20.0, 40.0),  # nobody is excluded as too fast
)


@pytest.fixture(scope="module")
def retrieval_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle", retrieved=1)


@pytest.fixture
def three_arm(tmp_path, retrieval_bundle, make_engine):
    def make(design: str):
        path = write_protocol(tmp_path, multi_arm_protocol(design, 3), retrieval_bundle)
        return make_engine(path, f"sqlite:///{tmp_path}/{design}.db")

    return make


def test_a_three_arm_within_participant_sees_each_arms_references(three_arm, monkeypatch, tmp_path):
    engine = three_arm("within")
    monkeypatch.setenv("SKINGEN_DB_URL", str(engine.db.url))
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(engine.loaded.path))
    p = AppParticipant({"PROLIFIC_PID": "pp-3"})
    p.consent()
    p.advance(value=1)
    p.submit()
    shown: dict[str, set[tuple[str, ...]]] = {}
    while p.page != "complete":
        step = p.at.session_state["skingen.visit"].position.step
        if p.page == "trial":
            case = engine.loaded.bundle.manifest.case(step.case_id)
            captions = tuple(c for image in p.images()[1:] for c in image.captions)
            shown.setdefault(step.condition, set()).add(captions)
            text = p.text()
            assert ("Real example pictures" in text) == (step.condition == "retrieved_photos")
            assert ("Generated example pictures" in text) == (step.condition == "skingen_visual")
            expected = shown_references(case, engine.protocol.condition(step.condition).references)
            assert captions == tuple(r.caption for r in expected)
        p.advance()
    assert set(shown) == set(ARMS), "a within participant sees all three conditions"
    assert shown["baseline_text"] == {()}
    assert all("(CC BY 4.0)" in c for caps in shown["retrieved_photos"] for c in caps)  # licence caption


@pytest.mark.slow
@pytest.mark.parametrize(("design", "n"), [("between", 36), ("within", 36)])
def test_three_arm_study_through_bots_export_codebook_and_analysis(three_arm, tmp_path, design, n):
    engine = three_arm(design)
    simulate(engine, n, seed=3, policy=PLANTED, progress=False)
    frames = export_frames(engine.db)
    # 1. export and codebook describe the three conditions
    study = frames["study"].iloc[0]
    assert study["conditions"] == ";".join(ARMS) and study["visual"] == ""
    trials = frames["responses"][frames["responses"]["condition"] != ""]
    assert set(trials["condition"]) == set(ARMS)
    per_participant = trials.groupby("participant_id")["condition"].nunique()
    assert set(per_participant) == ({3} if design == "within" else {1})
    codebook = frames["codebook"].set_index("variable")
    assert codebook.loc["condition", "source"] == "design"
    assert all(f"{arm}=" in codebook.loc["condition", "value_labels"] for arm in ARMS)
    # 2. the dashboard counts every arm; whole blocks keep the arms balanced
    enrollment = Monitor.load(engine.db, engine.version_id, engine.loaded).enrollment()
    order = [a.id for a in arms(engine.protocol)]
    for _, stratum in enrollment.groupby("stratum"):
        assert list(stratum["arm"]) == order  # every arm, in protocol order (S2 before S10), zeros included
    per_arm = enrollment.groupby("arm")["allocated"].sum()
    assert len(per_arm) == engine.protocol.n_arms and per_arm.sum() == n
    if design == "between":
        assert set(per_arm.index) == set(ARMS)
    # 3. the analysis compares every pair and finds the planted one
    data = from_export(frames)
    assert data.conditions == ARMS
    analysis = run_analysis(data, AnalysisConfig(n_boot=0))
    results = analysis.results
    trust = results["constructs"]["trust"]
    omnibus = trust["omnibus"]["parametric"]
    assert omnibus["test"].startswith("Welch" if design == "between" else "repeated-measures")
    assert omnibus["p"] < 0.05, omnibus  # the planted effect is found at the conventional level
    vs_base = {r["b"]: r["parametric"] for r in trust["pairwise"]["vs_baseline"]}
    assert vs_base["skingen_visual"]["mean_diff"] > 0.8 and vs_base["skingen_visual"]["p"] < 0.05, vs_base
    assert abs(vs_base["retrieved_photos"]["mean_diff"]) < 0.6
    assert len(trust["pairwise"]["all_pairs"]) == 3
    assert [t["condition"] for t in trust["ordinal"]["terms"]] == list(ARMS[1:])
    assert set(results["trust_calibration"]["over_reliance"]) == set(ARMS[1:])
    # 4. figures and reports with all arms
    figures = build_figures(analysis)
    label = {c: data.labels.conditions[c] for c in ARMS}  # readers see the protocol's labels, not ids
    boxes = [t.name for t in figures["construct_trust"].data if t.type == "box"]
    assert boxes == [label[c] for c in ARMS]
    write_reports(results, {}, tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert f"{label['retrieved_photos']} − {label['baseline_text']}" in report
    assert f"{label['skingen_visual']} → {label['retrieved_photos']}" in report


@pytest.mark.slow
def test_bot_power_for_three_arms_plants_the_smallest_pairwise_effect(three_arm):
    engine = three_arm("between")
    bots = EngineBotGenerator(engine.loaded, "trust", pool_size=45, seed=1)
    try:
        assert bots.compared == "skingen_visual" and bots.conditions == ARMS
        sample = bots(12, 2.0, np.random.default_rng(0))
        arms = sample.drop_duplicates("participant_id")["arm"].value_counts()
        assert dict(arms) == dict.fromkeys(ARMS, 4)
        population = bots.population(2.0)
        scores = population[population["item"] == "trust_1"].assign(v=lambda f: f["value"].astype(float))
        means = scores.groupby("condition")["v"].mean()
        assert means["skingen_visual"] - means["baseline_text"] > 1.2  # planted: ≈ 2 points
        assert abs(means["retrieved_photos"] - means["baseline_text"]) < 0.8  # not planted
    finally:
        bots.close()


@pytest.mark.slow
def test_power_planning_for_three_arms_runs_the_study_bots(three_arm):
    engine = three_arm("within")
    protocol = engine.protocol
    planned = StudyData(None, None, None, "within", protocol.baseline, "", (), ARMS)
    config = AnalysisConfig(simulate=True, sim_sizes=(18,), sim_effects=(1.0,), sim_reps=3, sim_population=54)
    power = run_analysis(planned, config, bot_source=bots_of(engine.loaded)).results["power"]
    assert power["simulation"]["generator_kind"] == "engine_bots"
    [point] = power["simulation"]["curve"]
    assert point["n"] == 18 and point["mean_estimate"] > 0.3  # the planted pair, skingen_visual − baseline
    assert power["a_priori"]["k"] == 3 and power["a_priori"]["alpha_per_test"] == 0.025  # no hypotheses given
