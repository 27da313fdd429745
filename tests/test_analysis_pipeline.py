"""The analysis path on synthetic exports: exclusions, scoring, schema, recovery of planted effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.constructs import primary_result
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.power import LikertGenerator, power_curve
from analysis.scores import reverse_code, scale_bounds
from tests.analysis_data import BASELINE, VISUAL, make_study

FAST = AnalysisConfig(n_boot=50)


@pytest.fixture(scope="module")
def within():
    responses, participants, ratings = make_study(n=40, seed=1)
    data = build_study_data(responses, participants, ratings, design="within", baseline=BASELINE)
    return run_analysis(data, FAST)


def test_results_schema_within(within):
    res = within.results
    assert set(res["constructs"]) == {"trust", "comprehension"}  # derived 0/1 constructs are not confirmatory
    for block in res["constructs"].values():
        for cond in (BASELINE, VISUAL):
            assert set(block["descriptives"][cond]) >= {"n", "mean", "sd", "median", "iqr"}
        par = block["omnibus"]["parametric"]
        assert set(par) >= {"test", "statistic", "df", "p", "p_holm", "mean_diff", "ci", "effect_size"}
        assert par["test"] == "paired t-test" and par["effect_size"]["name"] == "d_z"
        assert set(par["effect_size"]) == {"name", "value", "ci"}
        assert block["omnibus"]["nonparametric"]["test"] == "Wilcoxon signed-rank"
        assert block["omnibus"]["nonparametric"]["effect_size"]["name"] == "rank_biserial"
        # k = 2: both families hold the one pair, the omnibus test's numbers (p adjusted within the family)
        (pair,) = block["pairwise"]["vs_baseline"]
        assert block["pairwise"]["all_pairs"] == [pair] and (pair["a"], pair["b"]) == (BASELINE, VISUAL)
        assert {k: v for k, v in pair["parametric"].items() if k != "p_holm"} == {
            k: v for k, v in par.items() if k != "p_holm"
        }
        assert pair["parametric"]["p_holm"] == par["p"]
        assert isinstance(block["alpha"], float) and pair["relative_change_pct"] is not None
        mean_diff = block["descriptives"][VISUAL]["mean"] - block["descriptives"][BASELINE]["mean"]
        assert par["mean_diff"] == pytest.approx(mean_diff)  # visual − baseline
        assert block["means"][VISUAL] - block["means"][BASELINE] == pytest.approx(mean_diff)
        assert pair["relative_change_pct"] == pytest.approx(
            100 * mean_diff / block["descriptives"][BASELINE]["mean"]
        )
        assert block["ordinal"]["n_clusters"] == 40 and "limitation" in block["ordinal"]
        assert block["period_effect"]["n_compared_first"] + block["period_effect"]["n_baseline_first"] == 40
    p = [b["omnibus"]["parametric"]["p"] for b in res["constructs"].values()]
    assert max(b["omnibus"]["parametric"]["p_holm"] for b in res["constructs"].values()) == pytest.approx(
        min(1.0, max(max(p), 2 * min(p)))
    )


def test_exclusions_and_flow(within):
    res = within.results
    flow = {row["stage"]: row["n"] for row in res["participant_flow"]}
    assert flow == {
        "enrolled": 44,
        "allocated": 43,
        "completed": 42,
        "excluded": 4,
        "excluded: attention_check": 2,
        "excluded: incomplete": 2,
        "excluded: too_fast": 1,
        "analysed": 40,
    }
    assert res["n_participants"] == {BASELINE: 40, VISUAL: 40}
    responses, _, _ = make_study(n=40, seed=1)
    everyone = run_analysis(
        build_study_data(responses, None, None, design="within", baseline=BASELINE), FAST
    ).results
    assert everyone["n_participants"][VISUAL] == 43
    assert any("no participants file" in w for w in everyone["warnings"])


def test_reverse_coding_uses_scale_columns_or_flags():
    frame = pd.DataFrame(
        {
            "participant_id": ["P1"] * 2,
            "condition": ["a"] * 2,
            "item": ["x", "y"],
            "construct": ["c", "c"],
            "value": [2.0, 2.0],
            "reverse_coded": [0.0, 1.0],
        }
    )
    filled, notes = scale_bounds(frame, 1, 7)
    assert reverse_code(filled)["value"].tolist() == [2.0, 6.0] and notes == []
    inferred, notes = scale_bounds(frame)
    assert "inferred from the observed data range" in notes[0]
    assert reverse_code(inferred.assign(scale_min=1.0, scale_max=5.0))["value"].tolist() == [2.0, 4.0]


def test_trust_calibration_detects_over_reliance(within):
    trust = within.results["trust_calibration"]
    cells = {(r["condition"], r["ai_correct"]): r for r in trust["agreement_with_ai"]}
    assert cells[(VISUAL, 0)]["mean"] > cells[(BASELINE, 0)]["mean"]  # planted: 0.8 vs 0.2
    assert set(trust["over_reliance"]) == {VISUAL}  # each condition vs the baseline
    assert trust["over_reliance"][VISUAL]["mean_diff"] > 0 and trust["over_reliance"][VISUAL]["p"] < 0.05
    trust_cells = {(r["condition"], r["ai_correct"]): r["mean"] for r in trust["trust"]}
    assert trust_cells[(BASELINE, 1)] > trust_cells[(BASELINE, 0)]  # trust higher on correct cases


def test_ratings_block(within):
    ratings = within.results["ratings"]
    assert set(ratings) == {"quality", "relevant"}
    quality = ratings["quality"]
    for key in (
        "percent_agreement",
        "fleiss_kappa",
        "gwet_ac1",
        "krippendorff_alpha_nominal",
        "krippendorff_alpha_ordinal",
        "proportion_positive",
    ):
        assert isinstance(quality[key], float), key
    assert set(quality["icc"]) == {"ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"}
    assert set(quality["proportion_positive_by_skin_condition"]) == {"psoriasis", "eczema"}
    assert ratings["relevant"]["type"] == "binary" and ratings["relevant"]["icc"] is None


def test_between_design_and_construct_selection():
    responses, participants, _ = make_study(n=60, design="between", seed=2)
    data = build_study_data(responses, participants, design="between", baseline=BASELINE)
    res = run_analysis(data, AnalysisConfig(constructs=("comprehension",), n_boot=0)).results
    block = res["constructs"]["comprehension"]
    assert list(res["constructs"]) == ["comprehension"]
    tests = block["omnibus"]
    assert (
        tests["parametric"]["test"] == "Welch t-test"
        and tests["parametric"]["effect_size"]["name"] == "hedges_g"
    )
    assert tests["nonparametric"]["test"] == "Mann-Whitney U"
    assert block["period_effect"] is None
    assert res["power"]["sensitivity"]["effect_name"] == "d"


@pytest.mark.parametrize("design", ["within", "between"])
def test_planted_effect_is_recovered(design):
    """The generator plants d (d_z within) on construct scores; the full analysis path must recover it."""
    gen = LikertGenerator(design=design)
    estimates = [
        primary_result(gen(3000, 0.5, np.random.default_rng(s)), design, gen.conditions, gen.compared)
        for s in range(2)
    ]
    assert np.mean([e["effect"] for e in estimates]) == pytest.approx(0.5, abs=0.06)
    null = primary_result(gen(3000, 0.0, np.random.default_rng(9)), design, gen.conditions, gen.compared)
    assert abs(null["effect"]) < 0.08


def test_power_curve_increases_with_n_and_effect():
    gen = LikertGenerator()
    curve = power_curve(
        gen,
        lambda f: primary_result(f, "within", gen.conditions, gen.compared),
        sample_sizes=(10, 50),
        effects=(0.2, 0.8),
        n_sims=30,
        seed=3,
    )
    power = curve.set_index(["effect", "n"])["power"]
    assert power[(0.8, 50)] > power[(0.8, 10)] and power[(0.8, 50)] > power[(0.2, 50)]
    assert power[(0.8, 50)] > 0.9 and power[(0.2, 10)] < 0.4
    assert curve["mean_estimate"].between(-0.5, 1.5).all()
