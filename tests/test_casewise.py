"""Per-case items through the crossed mixed models (analysis.casewise): the long frame, the report's ``mixed``
block against R on the toolkit's own export, hypotheses tested with the model, and invalid input as notes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.casewise import per_case_rows, trial_frame
from analysis.constructs import prepare_responses
from analysis.document import document
from analysis.load import build_study_data, validate_hypotheses
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_latex, render_markdown

DATA = Path(__file__).parent / "data" / "r"
EXPORT = DATA / "mixed_export"
R = json.loads((DATA / "mixed_export.json").read_text())
BASELINE, VISUAL = "baseline_text", "skingen_visual"
CONFIG = AnalysisConfig(n_boot=0)


def _export(name: str) -> pd.DataFrame:
    return pd.read_csv(EXPORT / name, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def analysed():
    data = build_study_data(
        _export("responses.csv"), _export("participants.csv"), design="within", baseline=BASELINE
    )
    data = replace(data, hypotheses=validate_hypotheses(_export("hypotheses.csv")))
    return run_analysis(data, CONFIG)


def test_the_long_frame_has_one_row_per_participant_and_case():
    """Only the per-case item enters (trust_1; trust_2/3 are asked once per block), one row per trial, in the
    order the participant saw the cases."""
    data = build_study_data(_export("responses.csv"), design="within", baseline=BASELINE)
    prepared, _, _ = prepare_responses(data, CONFIG)
    rows = per_case_rows(prepared, "trust", (BASELINE, VISUAL))
    assert set(rows["item"]) == {"trust_1"}
    frame = trial_frame(rows)
    assert len(frame) == 80 * 10 == R["n_obs"]
    assert not frame.duplicated(["participant", "case"]).any()
    assert sorted(frame.loc[frame["participant"] == "P00001", "position"]) == list(range(1, 11))


def test_the_report_mixed_block_matches_lmertest_on_the_toolkits_export(analysed):
    """R: tests/data/r/mixed_export.R (lme4 1.1-31, lmerTest 3.1-3, Satterthwaite) on the same export."""
    mixed = analysed.results["constructs"]["trust"]["mixed"]
    assert mixed["formula"] == R["formula"] and not mixed["singular"]
    assert mixed["estimate"] == pytest.approx(R["estimate"], abs=1e-3)
    assert mixed["se"] == pytest.approx(R["se"], abs=1e-3)
    assert mixed["df"] == pytest.approx(R["df"], rel=0.01)
    assert mixed["p"] == pytest.approx(R["p"], abs=1e-3)
    assert mixed["ci"] == pytest.approx(R["ci"], abs=2e-3)
    sds = mixed["variance_components"]
    for ours, theirs in (
        ("participant", "participant"),
        ("participant:condition", "participant_condition"),
        ("case", "case"),
        ("case:condition", "case_condition"),
        ("residual", "residual"),
    ):
        assert sds[ours] == pytest.approx(R["sd"][theirs], abs=2e-3), ours
    assert "Satterthwaite" in mixed["df_method"] and "python" in mixed["backend"]
    assert mixed["random"].startswith("participants and cases")
    assert "ordinal_mixed" in analysed.results["constructs"]["trust"]


def test_the_hypothesis_is_tested_with_the_mixed_model_one_sided(analysed):
    (h1,) = analysed.results["hypotheses"]
    assert h1["test"].startswith("linear mixed model") and h1["test"].endswith("one-sided")
    assert h1["p"] == pytest.approx(R["p"] / 2, abs=1e-3)  # greater, and the estimate is positive
    # one-sided at α = .05: the 90 % interval, whose lower bound is the one-sided 95 % bound (as the t-test's)
    margin = stats.t.ppf(0.95, R["df"]) * R["se"]
    assert h1["mixed"]["ci_level"] == pytest.approx(0.9)
    assert h1["mixed"]["ci"] == pytest.approx([R["estimate"] - margin, R["estimate"] + margin], abs=2e-3)
    assert h1["secondary"]["test"].startswith("paired t-test")
    assert h1["p_adjusted"] == pytest.approx(h1["p"])  # the one tested hypothesis


def test_the_report_leads_with_the_mixed_model(analysed):
    text = render_markdown(document(analysed.results))
    mixed_at, secondary_at = (
        text.index("Linear mixed model (primary"),
        text.index("Secondary (participant means)"),
    )
    assert mixed_at < secondary_at
    assert "random: participants and cases" in text
    assert "tab:mixed" in render_latex(analysed.results)
    assert analysed.results["schema_version"] == 5


def _one_case(responses: pd.DataFrame) -> pd.DataFrame:
    return responses.assign(case_id=np.where(responses["case_id"] != "", "c01", ""))


def test_a_construct_with_one_case_is_a_note_not_a_crash():
    data = build_study_data(
        _one_case(_export("responses.csv")), _export("participants.csv"), design="within", baseline=BASELINE
    )
    data = replace(data, hypotheses=validate_hypotheses(_export("hypotheses.csv")))
    results = run_analysis(data, CONFIG).results
    mixed = results["constructs"]["trust"]["mixed"]
    assert set(mixed) == {"skipped"} and "case" in mixed["skipped"]
    assert (
        results["constructs"]["trust"]["omnibus"]["parametric"]["p"] is not None
    )  # the other tests still run
    assert f"Mixed model (primary) not fitted: {mixed['skipped']}" in render_markdown(document(results))
    (h1,) = results["hypotheses"]  # the plan's model could not run: the fallback is stated as a deviation
    assert h1["test"].startswith("paired t-test") and h1["mixed_skipped"] == mixed["skipped"]
    assert any(
        "planned mixed model could not be fitted" in d for d in results["preregistration"]["deviations"]
    )


def test_the_cases_power_uses_the_fitted_components(analysed):
    """This study as a pilot: "how many cases?" at --target-effect with the trust model's variance components."""
    cases = analysed.results["power"]["cases"]
    assert cases["source"].startswith("fitted: trust")
    assert cases["components"]["case_condition"] == pytest.approx(R["sd"]["case_condition"], abs=2e-3)
    power = {(r["participants"], r["cases"]): r["power"] for r in cases["grid"]}
    assert power[(240, 40)] > power[(240, 10)] > power[(40, 10)]
    assert "How many cases?" in render_markdown(document(analysed.results))


def _three_arm_trials(seed: int = 3) -> pd.DataFrame:
    """A within study of three conditions: 36 participants × 6 cases, two per condition, rotated over the
    participants (each case appears under every condition); an export-shaped per-case item."""
    rng = np.random.default_rng(seed)
    conditions = (BASELINE, VISUAL, "retrieved_photos")
    shift = {BASELINE: 0.0, VISUAL: 0.8, "retrieved_photos": 0.3}
    rows = []
    for i in range(36):
        level = rng.normal(4, 1)
        for j in range(6):
            condition = conditions[(j // 2 + i) % 3]
            value = np.clip(np.rint(level + shift[condition] + rng.normal(0, 1)), 1, 7)
            rows.append(
                {
                    "participant_id": f"P{i:03d}",
                    "condition": condition,
                    "case_id": f"c{j}",
                    "step": f"p{j // 2 + 1}.t{j % 2 + 1:02d}",
                    "item": "case_trust",
                    "construct": "trust",
                    "value": str(value),
                    "scale_min": "1",
                    "scale_max": "7",
                    "reverse_coded": "0",
                }
            )
    return pd.DataFrame(rows)


def test_k_conditions_get_an_omnibus_test_and_both_pairwise_families():
    from analysis.compare import holm

    conditions = (BASELINE, VISUAL, "retrieved_photos")
    data = build_study_data(_three_arm_trials(), design="within", baseline=BASELINE, conditions=conditions)
    results = run_analysis(data, CONFIG).results
    mixed = results["constructs"]["trust"]["mixed"]
    assert mixed["omnibus"]["df1"] == 2 and mixed["omnibus"]["p_holm"] == pytest.approx(mixed["omnibus"]["p"])
    families = mixed["pairwise"]
    assert [(r["a"], r["b"]) for r in families["vs_baseline"]] == [
        (BASELINE, VISUAL),
        (BASELINE, "retrieved_photos"),
    ]
    assert len(families["all_pairs"]) == 3
    for records in families.values():
        assert [r["p_holm"] for r in records] == pytest.approx(holm([r["p"] for r in records]))
    visual = families["vs_baseline"][0]
    assert visual["estimate"] == pytest.approx(0.8, abs=0.35)  # the planted shift
    text = render_markdown(document(results))
    assert "Linear mixed model (primary" in text and "vs baseline" in text
    slopes = [sd for key, sd in mixed["variance_components"].items() if key.startswith("case:condition[")]
    assert results["power"]["cases"]["components"]["case_condition"] == pytest.approx(max(slopes))


def test_a_single_participant_per_arm_is_a_note_not_a_crash():
    rows = _three_arm_trials()
    rows = rows[rows["participant_id"].isin(["P000", "P001"])].assign(
        condition=lambda f: np.where(f["participant_id"] == "P000", BASELINE, VISUAL)
    )
    data = build_study_data(rows, design="between", baseline=BASELINE)
    results = run_analysis(data, CONFIG).results
    block = results["constructs"]["trust"]
    assert "skipped" in block and set(block["mixed"]) == {"skipped"}
    text = render_markdown(document(results))
    assert "Mixed model (primary) not fitted" in text


def test_the_trial_position_term_is_fitted_and_reported():
    data = build_study_data(_export("responses.csv"), design="within", baseline=BASELINE)
    results = run_analysis(data, replace(CONFIG, position=True)).results
    mixed = results["constructs"]["trust"]["mixed"]
    assert "position" in mixed["terms"] and "+ position" in mixed["formula"]
    assert results["config"]["position"] is True
    assert "Trial position:" in render_markdown(document(results))
