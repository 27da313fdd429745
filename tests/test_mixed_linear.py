"""The linear mixed model (analysis.mixed.linear, Python backend) against R.

References, each computed once with R 4.2.2 / lme4 1.1-31 / lmerTest 3.1-3 and stored beside the script that
made it: lme4's published ``sleepstudy`` and ``Penicillin`` fits (tests/data/r/lme4_published.R), and lmerTest
fits of simulated study exports with case effects (tests/data/r/mixed_exports.py → mixed_exports.R, formulas
typed by hand in R, not produced by the toolkit).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.mixed import MixedModelError, reml
from analysis.mixed.linear import SIMPLIFICATION_RULE, fit_linear
from analysis.mixed.reml import RandomTerm, RemlProblem, fit_reml, satterthwaite_df
from analysis.mixed.structure import maximal, simplify

DATA = Path(__file__).parent / "data" / "r"
TWO = ["baseline", "skingen_visual"]
THREE = ["baseline", "skingen_visual", "retrieved_photos"]
R = json.loads((DATA / "mixed_exports.json").read_text())
PUBLISHED = json.loads((DATA / "lme4_published.json").read_text())


def export(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{name}.csv")


def r_name(name: str) -> str:
    return name.replace("condition[", "condition").replace("]", "")


# --- the REML core on lme4's published examples ---------------------------------------------------------


def test_sleepstudy_random_slope_matches_lme4_and_lmertest():
    """lmer(Reaction ~ Days + (Days | Subject)): Days 10.467, SE 1.546, Satterthwaite df 17.0 (published)."""
    data = pd.read_csv(DATA / "sleepstudy.csv")
    codes, levels = pd.factorize(data["Subject"])
    x = np.column_stack([np.ones(len(data)), data["Days"]])
    term = RandomTerm("Subject", ("(Intercept)", "Days"), codes, len(levels), x, ((0, 1),))
    fit = fit_reml(RemlProblem(x, data["Reaction"].to_numpy(), [term]))
    ref = PUBLISHED["sleepstudy"]
    days = np.array([0.0, 1.0])
    assert fit.beta[1] == pytest.approx(ref["estimate"], abs=5e-4)  # 10.467
    assert math.sqrt(fit.vcov[1, 1]) == pytest.approx(ref["se"], abs=5e-4)  # 1.546
    assert satterthwaite_df(fit, days) == pytest.approx(ref["df"], abs=5e-3)  # 17.0
    assert fit.deviance == pytest.approx(ref["reml_deviance"], abs=1e-4)
    sd = np.sqrt(np.diag(fit.covariance(0)))
    assert sd == pytest.approx([ref["sd"]["Subject (Intercept)"], ref["sd"]["Subject Days"]], abs=5e-3)
    assert fit.sigma == pytest.approx(ref["sd"]["Residual"], abs=5e-4)
    assert fit.converged and not fit.singular


def test_penicillin_crossed_variance_components_match_lme4():
    """lmer(diameter ~ 1 + (1 | plate) + (1 | sample)): SDs 0.84670 / 1.93161 / 0.54992, intercept 22.97222."""
    data = pd.read_csv(DATA / "penicillin.csv")
    terms = []
    for group in ("plate", "sample"):  # plate (24 levels) is the block-diagonal factor, sample the dense one
        codes, levels = pd.factorize(data[group])
        terms.append(
            RandomTerm(group, ("(Intercept)",), codes, len(levels), np.ones((len(data), 1)), ((0,),))
        )
    fit = fit_reml(RemlProblem(np.ones((len(data), 1)), data["diameter"].to_numpy(), terms))
    ref = PUBLISHED["penicillin"]
    assert fit.beta[0] == pytest.approx(ref["intercept"], abs=5e-4)
    assert math.sqrt(fit.covariance(0)[0, 0]) == pytest.approx(ref["sd"]["plate (Intercept)"], abs=5e-4)
    assert math.sqrt(fit.covariance(1)[0, 0]) == pytest.approx(ref["sd"]["sample (Intercept)"], abs=5e-4)
    assert fit.sigma == pytest.approx(ref["sd"]["Residual"], abs=5e-4)
    assert math.sqrt(fit.vcov[0, 0]) == pytest.approx(ref["se"], abs=5e-4)
    assert satterthwaite_df(fit, np.array([1.0])) == pytest.approx(ref["df"], rel=0.01)


# --- the toolkit's model on simulated exports with case effects -------------------------------------------


def assert_matches_r(fit, ref: dict, names: list[str]) -> None:
    """Estimate and SE to ~3 decimals, df within 1 %, p to 3 decimals, SDs to ~3 decimals."""
    for name in names:
        term, expected = fit.terms[name], ref["coefficients"][r_name(name)]
        assert term.estimate == pytest.approx(expected["Estimate"], abs=1e-3), name
        assert term.se == pytest.approx(expected["Std. Error"], abs=1e-3), name
        assert term.df == pytest.approx(expected["df"], rel=0.01), name
        assert term.p == pytest.approx(expected["Pr(>|t|)"], abs=1e-3), name
    for key, value in fit.variance_components.items():
        group, slope, level = key.partition(":condition")
        column = f"condition{level.strip('[]') or 'skingen_visual'}" if slope else "(Intercept)"
        r_key = "Residual" if key == "residual" else f"{group} {column}"
        assert value == pytest.approx(ref["sd"][r_key], abs=2e-3), key


@pytest.fixture(scope="module")
def within_fit():
    return fit_linear(export("mixed_within"), design="within", conditions=TWO)


def test_within_design_matches_lmertest(within_fit):
    assert within_fit.formula == R["within"]["formula"]
    assert within_fit.simplified == () and not within_fit.singular and within_fit.converged
    assert within_fit.df_method.startswith("Satterthwaite")
    assert_matches_r(within_fit, R["within"], ["condition[skingen_visual]"])
    contrast = within_fit.contrasts["skingen_visual - baseline"]
    assert contrast == replace(
        within_fit.terms["condition[skingen_visual]"], name="skingen_visual - baseline"
    )
    assert within_fit.n_cases == 10 and within_fit.n_participants == 120 and within_fit.n_obs == 1200
    assert within_fit.log_likelihood == pytest.approx(-R["within"]["reml_deviance"] / 2, abs=1e-4)


def test_ci_is_the_t_interval_at_the_requested_confidence():
    from scipy import stats

    fit = fit_linear(export("mixed_between"), design="between", conditions=TWO, confidence=0.9)
    term = fit.terms["condition[skingen_visual]"]
    half = stats.t.ppf(0.95, term.df) * term.se
    assert term.ci == pytest.approx((term.estimate - half, term.estimate + half))
    assert fit.confidence == 0.9


def test_position_term_matches_lmertest():
    fit = fit_linear(export("mixed_within"), design="within", conditions=TWO, position=True)
    assert fit.formula == R["within_position"]["formula"]
    assert_matches_r(fit, R["within_position"], ["condition[skingen_visual]", "position"])


def test_between_design_matches_lmertest():
    fit = fit_linear(export("mixed_between"), design="between", conditions=TWO)
    assert fit.formula == R["between"]["formula"]
    assert "participant:condition" not in fit.variance_components
    assert_matches_r(fit, R["between"], ["condition[skingen_visual]"])


def test_three_arm_within_matches_lmertest_with_omnibus_and_contrasts():
    fit = fit_linear(export("mixed_within3"), design="within", conditions=THREE)
    ref = R["within3"]
    assert_matches_r(fit, ref, ["condition[skingen_visual]", "condition[retrieved_photos]"])
    assert list(fit.contrasts) == [
        "skingen_visual - baseline",
        "retrieved_photos - baseline",
        "retrieved_photos - skingen_visual",
    ]
    c_b = fit.contrasts["retrieved_photos - skingen_visual"]
    assert c_b.estimate == pytest.approx(ref["contrast_c_b"]["estimate"], abs=1e-3)
    assert c_b.se == pytest.approx(ref["contrast_c_b"]["se"], abs=1e-3)
    assert c_b.df == pytest.approx(ref["contrast_c_b"]["df"], rel=0.01)
    assert fit.omnibus["statistic"] == pytest.approx(ref["omnibus"]["F"], abs=1e-3)
    assert fit.omnibus["df1"] == 2
    assert fit.omnibus["df2"] == pytest.approx(ref["omnibus"]["df2"], rel=0.01)
    assert fit.omnibus["p"] == pytest.approx(ref["omnibus"]["p"], abs=1e-3)
    assert set(fit.correlations) >= {"case ~ case:condition[retrieved_photos]"}
    assert fit.correlations["case ~ case:condition[retrieved_photos]"] == pytest.approx(
        ref["sd"]["case (Intercept) conditionretrieved_photos"], abs=5e-3
    )


def test_singular_maximal_model_is_simplified_as_r_finds_it():
    """R: every fit of the sequence is singular but the last (in the uncorrelated fit both slopes are exactly
    0: a tie, the participant slope goes first) — the rule must end where R's fits say it does."""
    sequence = ["maximal", "no_case_correlation", "uncorrelated", "no_participant_slope", "intercepts"]
    assert [R[f"singular_{k}"]["singular"] for k in sequence] == [True, True, True, True, False]
    assert R["singular_uncorrelated"]["sd"]['participant.1 dummy(condition, "skingen_visual")'] == 0
    fit = fit_linear(export("mixed_singular"), design="within", conditions=TWO)
    assert fit.formula == R["singular_intercepts"]["formula"]
    assert [s.split(" (")[0] for s in fit.simplified] == [
        "dropped the correlations between the random effects of cases",
        "dropped the correlations between the random effects of participants",
        "dropped the participant slope of condition skingen_visual",
        "dropped the case slope of condition skingen_visual",
    ]
    assert not fit.singular and fit.converged
    assert_matches_r(fit, R["singular_intercepts"], ["condition[skingen_visual]"])


def test_simplification_order_is_deterministic():
    """The smaller slope goes first; ties (at zero) break participant before case, later conditions first."""
    start = maximal("within", THREE)
    case_split, step = simplify(start, {}, THREE)
    assert step == "dropped the correlations between the random effects of cases"
    assert case_split.case == (("1",), ("skingen_visual",), ("retrieved_photos",))
    assert case_split.participant == start.participant
    uncorrelated, step = simplify(case_split, {}, THREE)
    assert step == "dropped the correlations between the random effects of participants"
    sds = {(g, c): 0.3 for g in ("participant", "case") for c in THREE[1:]}
    _, step = simplify(uncorrelated, {**sds, ("case", "skingen_visual"): 0.1}, THREE)
    assert step.startswith("dropped the case slope of condition skingen_visual")
    _, step = simplify(uncorrelated, {**sds, ("case", "skingen_visual"): 0.3}, THREE)
    assert step.startswith("dropped the participant slope of condition retrieved_photos")
    floor = maximal("between", TWO)
    floor = simplify(simplify(floor, {}, TWO)[0], {("case", "skingen_visual"): 0.0}, TWO)[0]
    assert floor.case == (("1",),)
    assert simplify(floor, {}, TWO) is None
    assert "correlations between the random effects of cases" in SIMPLIFICATION_RULE
    assert "smallest estimated SD" in SIMPLIFICATION_RULE


def test_failed_satterthwaite_falls_back_to_a_named_conservative_df(monkeypatch, within_fit):
    """Never a silent z: when the Hessian is unusable the t tests use min(participants, cases) − k, which is
    below Satterthwaite's df on every export here (so it is the conservative side)."""
    for name, _design, conditions in [
        ("mixed_within", "within", TWO),
        ("mixed_between", "between", TWO),
        ("mixed_within3", "within", THREE),
    ]:
        ref = R[name.removeprefix("mixed_")]
        n = export(name)
        fallback = min(n["participant"].nunique(), n["case"].nunique()) - len(conditions)
        assert all(fallback < c["df"] for k, c in ref["coefficients"].items() if k.startswith("condition")), (
            name
        )
    monkeypatch.setattr(reml, "_satterthwaite_pieces", lambda problem, varpar: (None, None))
    fit = fit_linear(export("mixed_within"), design="within", conditions=TWO)
    term = fit.terms["condition[skingen_visual]"]
    assert fit.df_method.startswith("conservative") and term.df == 8
    assert term.estimate == within_fit.terms["condition[skingen_visual]"].estimate
    assert term.p > within_fit.terms["condition[skingen_visual]"].p
    assert any("Satterthwaite" in note for note in fit.notes)


def test_item_rows_give_the_fit_of_their_case_means():
    """Several items per case are several rows: with the same items everywhere (no missing answers) the
    fixed effect is the per-case-mean fit's; the residual variance is then the items' and differs."""
    data = export("mixed_between")
    items = pd.concat([data.assign(y=data["y"] + shift) for shift in (-0.5, 0.0, 0.5)], ignore_index=True)
    fit = fit_linear(items, design="between", conditions=TWO)
    assert fit.n_obs == 3 * len(data)
    reference = fit_linear(data, design="between", conditions=TWO)
    assert fit.terms["condition[skingen_visual]"].estimate == pytest.approx(
        reference.terms["condition[skingen_visual]"].estimate, abs=1e-6
    )


def test_record_is_json_ready(within_fit):
    record = json.loads(json.dumps(within_fit.to_record()))
    assert record["family"] == "gaussian" and record["backend"].startswith("python")
    assert (
        record["terms"]["condition[skingen_visual]"]["ci"][0]
        < record["terms"]["condition[skingen_visual]"]["ci"][1]
    )


# --- invalid input: a message a researcher can act on -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "design", "message"),
    [
        (lambda d: d.assign(case="C01"), "within", "at least two cases"),
        (  # P002 is the only participant in skingen_visual
            lambda _: export("mixed_between").query("participant in ['P001', 'P002', 'P003']"),
            "between",
            "['skingen_visual'] have a single participant",
        ),
        (lambda d: d[d["condition"] == "baseline"], "within", "['skingen_visual'] have no observations"),
        (lambda d: d.assign(y=4.0), "within", "no variation"),
        (
            lambda d: d.assign(condition=d["condition"].replace("baseline", "control")),
            "within",
            "['control']",
        ),
        (lambda d: d.drop(columns="case"), "within", "lacks column(s) ['case']"),
        (lambda d: d.assign(y=d["y"].where(d.index != 7, np.nan)), "within", "rows 7"),
        (lambda d: d, "between", "answered in several conditions"),
        (lambda d: d, "crossed", "design must be one of"),
    ],
)
def test_invalid_input_names_the_problem(change, design, message):
    with pytest.raises(MixedModelError, match=re.escape(message)):
        fit_linear(change(export("mixed_within")), design=design, conditions=TWO)


def test_within_design_with_one_condition_per_participant_is_rejected():
    with pytest.raises(MixedModelError, match="is the design 'between'"):
        fit_linear(export("mixed_between"), design="within", conditions=TWO)


def test_unknown_backend_is_rejected():
    with pytest.raises(MixedModelError, match="backend must be one of"):
        fit_linear(export("mixed_between"), design="between", conditions=TWO, backend="julia")


@pytest.mark.slow  # statsmodels' dense crossed fit: ~1 min
def test_statsmodels_variance_components_agree_but_its_z_test_is_anti_conservative():
    """statsmodels' MixedLM (crossed effects as variance components, no correlations) is an independent fit
    of the uncorrelated model: same estimate and SE; its z p is ~50× smaller than Satterthwaite's t p."""
    import statsmodels.formula.api as smf

    from analysis.mixed.checks import check_frame
    from analysis.mixed.linear import _python_step
    from analysis.mixed.structure import RandomStructure

    data = export("mixed_within")
    data["v"], data["all"] = (data["condition"] == "skingen_visual").astype(float), 1
    components = {
        "participant": "0 + C(participant)",
        "participant_slope": "0 + C(participant):v",
        "case": "0 + C(case)",
        "case_slope": "0 + C(case):v",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its convergence chatter on the boundary of the variance space
        reference = smf.mixedlm("y ~ v", data, groups="all", vc_formula=components, re_formula="0").fit(
            reml=True
        )
    uncorrelated = RandomStructure(
        participant=(("1",), ("skingen_visual",)), case=(("1",), ("skingen_visual",))
    )
    step = _python_step(
        check_frame(data, design="within", conditions=TWO),
        uncorrelated,
        conditions=TWO,
        confidence=0.95,
        position=False,
    )
    term = step.terms["condition[skingen_visual]"]
    assert term.estimate == pytest.approx(reference.params["v"], abs=1e-4)
    assert term.se == pytest.approx(reference.bse["v"], abs=1e-3)
    assert reference.pvalues["v"] < 1e-4 < 1e-3 < term.p  # 4.4e-5 (z) vs .0024 (t, df 9.6)
    assert term.df == pytest.approx(9.6, abs=0.1)


def test_a_fit_that_fails_the_convergence_check_is_restarted_once(monkeypatch):
    """lme4's ?convergence advice, in both backends: restart from the point reached before giving up."""
    checked, starts = [], []
    real_check, real_minimise = reml._converged, reml._minimise

    def fails_first(problem, theta):
        checked.append(theta)
        return len(checked) > 1 and real_check(problem, theta)

    def minimise(problem, start):
        starts.append(start.copy())
        return real_minimise(problem, start)

    monkeypatch.setattr(reml, "_converged", fails_first)
    monkeypatch.setattr(reml, "_minimise", minimise)
    fit = fit_linear(export("mixed_between"), design="between", conditions=TWO)
    assert fit.converged and fit.simplified == () and len(starts) == 2
    assert starts[1] == pytest.approx(checked[0])  # the restart began where the first run stopped
