"""Reporting standards: participant flow per arm and missing data counted by hand on small fixed tables,
stratum adjustment against R's lm (tests/data/r/stratified.R), and a report whose every participant was
excluded says exactly that."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.consort import arm_flow, baseline_characteristics, flow_wide, missingness, step_text
from analysis.document import document
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_markdown
from analysis.stratified import stratum_adjusted
from tests.analysis_data import BASELINE, make_study

R_STRATIFIED = json.loads((Path(__file__).parent / "data" / "r" / "stratified.json").read_text())

PARTICIPANTS = pd.DataFrame(
    [
        # id, arm, status, current step, excluded, reasons
        ("P1", "vis", "completed", "done", 0, ""),
        ("P2", "vis", "completed", "done", 1, "attention_check;too_fast"),
        ("P3", "vis", "dropped", "p1.t03", 1, "incomplete"),
        ("P4", "base", "completed", "done", 0, ""),
        ("P5", "base", "dropped", "entry", 1, "incomplete"),
        ("P6", "base", "active", "p1.t01", 1, "incomplete"),
        ("P7", "", "consented", "entry", 1, "incomplete"),
    ],
    columns=["participant_id", "arm", "status", "current_step", "excluded", "exclusion_reasons"],
)
RESPONSES = pd.DataFrame(
    [
        # P5 left at the entry questions; everyone else answered a trial item at least once
        *[(p, "vis" if p < "P4" else "base", "trust_1", "1") for p in ("P1", "P2", "P3", "P4", "P6")],
        ("P1", "vis", "trust_1", "2"),
        ("P2", "vis", "trust_1", "3"),
        ("P4", "base", "trust_1", "3"),
        ("P1", "vis", "comments", "x"),
        *[(p, "", "expertise", code) for p, code in (("P1", "1"), ("P2", "2"), ("P4", "1"), ("P5", "2"))],
    ],
    columns=["participant_id", "condition", "item", "value"],
)


def test_flow_per_arm_counts_each_stage_by_hand():
    rows = arm_flow(PARTICIPANTS, RESPONSES, analysed_ids={"P1", "P4"}, design="between")
    table = flow_wide(rows, {"vis": "Visual", "base": "Text"}).set_index("Stage")
    assert table.loc["consented", "All"] == 7 and table.loc["not allocated", "All"] == 1
    assert table.loc["allocated", ["Visual", "Text"]].tolist() == [3, 3]
    assert table.loc["started", ["Visual", "Text"]].tolist() == [3, 2]  # P5 never reached a case
    assert table.loc["dropped out: part 1, case 3", ["Visual", "Text"]].tolist() == [1, "–"]
    assert table.loc["dropped out: entry questions", ["Visual", "Text"]].tolist() == ["–", 1]
    assert table.loc["in progress", ["Visual", "Text"]].tolist() == [0, 1]
    assert table.loc["completed", ["Visual", "Text"]].tolist() == [2, 1]
    assert table.loc["excluded: attention_check", "Visual"] == 1  # P2 counts under both of its reasons
    assert table.loc["excluded: too_fast", "Visual"] == 1 and table.loc["excluded", "Visual"] == 2
    assert table.loc["excluded: incomplete", ["Visual", "Text"]].tolist() == [1, 2]
    assert table.loc["analysed", ["All", "Visual", "Text"]].tolist() == [2, 1, 1]
    stages = list(table.index)  # CONSORT order: allocation, follow-up, exclusions, analysis
    assert stages.index("started") < stages.index("dropped out: entry questions") < stages.index("completed")
    assert stages.index("excluded: too_fast") < stages.index("excluded") < stages.index("analysed")
    assert step_text("p2.post") == "part 2 questions" and step_text("p1.t12") == "part 1, case 12"


def test_baseline_characteristics_and_missingness_by_hand():
    records = baseline_characteristics(
        RESPONSES, PARTICIPANTS, {"P1", "P2", "P4"}, "between", {"expertise": True}
    )
    cells = {(r["value"], r["arm"]): (r["n"], r["pct"]) for r in records}
    assert cells[("1", "vis")] == (1, 50.0) and cells[("2", "vis")] == (1, 50.0)
    assert cells[("1", "base")] == (1, 100.0) and cells[("2", "base")] == (0, 0.0)
    missing = {
        (r["item"], r["arm"]): r for r in missingness(RESPONSES, PARTICIPANTS, {"P1", "P2", "P4"}, "between")
    }
    # trust_1: P1 answered twice (the most anyone in 'vis' did), P2 twice → complete; 'base': P4 twice
    assert (
        missing[("trust_1", "vis")]["missing_pct"] == 0 and missing[("trust_1", "base")]["with_missing"] == 0
    )
    # comments: only P1 of the two analysed 'vis' participants answered
    assert (
        missing[("comments", "vis")]["with_missing"] == 1
        and missing[("comments", "vis")]["missing_pct"] == 50
    )


@pytest.mark.parametrize("paired", [False, True], ids=["between", "within"])
def test_stratum_adjustment_matches_r_lm(paired):
    ref = R_STRATIFIED["within" if paired else "between"]
    ids = [f"P{i}" for i in range(24)]
    strata = pd.Series(R_STRATIFIED["stratum"], index=ids)
    visual = pd.Series(R_STRATIFIED["visual"], index=ids)
    baseline = pd.Series(R_STRATIFIED["baseline"], index=ids)
    if not paired:
        arm = pd.Series(R_STRATIFIED["arm"], index=ids)
        visual, baseline = visual[arm == 1], baseline[arm == 0]
    res = stratum_adjusted(visual, baseline, strata, paired, 0.95)
    assert res["mean_diff"] == pytest.approx(ref["estimate"], rel=1e-10)
    assert res["se"] == pytest.approx(ref["se"], rel=1e-10) and res["df"] == ref["df"]
    assert res["p"] == pytest.approx(ref["p"], rel=1e-8) and res["ci"] == pytest.approx(ref["ci"], rel=1e-10)
    assert res["n_strata"] == 3


def test_a_report_with_every_participant_excluded_says_so():
    responses, participants, ratings = make_study(n=10, seed=4)
    participants["excluded"] = "1"
    participants["exclusion_reasons"] = "too_fast"
    data = build_study_data(responses, participants, ratings, design="within", baseline=BASELINE)
    results = run_analysis(data, AnalysisConfig(n_boot=0)).results
    assert results["n_analysed"] == 0 and results["constructs"] == {}
    md = render_markdown(document(results))
    assert "No participant was analysed: all 14 participants were excluded by the protocol's rules" in md
    assert "(completed too fast: 14)" in md and "not in the data" not in md
    assert "## Sensitivity analysis: all participants" in md  # the tests without the exclusions
    assert results["sensitivity"]["n_participants"] == 13


def test_image_sources_are_compared_with_raters_and_images_random():
    """A planted difference (generated images rated 0.8 points lower) under rater leniency, rater × source
    variation and image variation is recovered by the crossed model, which names its roles as raters and
    images; pooled ratings would ignore both sources of variation."""
    import numpy as np

    from analysis.ratings_model import source_comparison

    rng = np.random.default_rng(3)
    raters = {f"R{i}": (rng.normal(0, 0.5), rng.normal(0, 0.3)) for i in range(8)}
    rows = []
    for j in range(40):
        kind = "generated" if j % 2 else "case_photo"
        image_effect = rng.normal(0, 0.6)
        for rater, (lenient, slope) in raters.items():
            shift = -0.8 + slope if kind == "generated" else 0.0
            value = 3 + lenient + image_effect + shift + rng.normal(0, 0.7)
            rows.append(
                {
                    "rater_id": rater,
                    "image_id": f"img{j}",
                    "image_kind": kind,
                    "item": "realism",
                    "value": value,
                }
            )
    fit = source_comparison(pd.DataFrame(rows))["realism"]
    contrast = fit["contrasts"]["generated - case_photo"]
    assert (
        contrast["ci"][0] < -0.8 < contrast["ci"][1]
        and abs(contrast["estimate"] + 0.8) < 2.5 * contrast["se"]
    )
    assert fit["n_images"] == 40 and fit["n_raters"] == 8 and fit["n_obs"] == 320
    assert "(1 | image)" in fit["formula"] and "rater)" in fit["formula"] and "source" in fit["formula"]
    assert {"image", "residual"} <= set(fit["variance_components"]) and 20 < contrast["df"] < 320
