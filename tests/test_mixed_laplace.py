"""The Laplace GLMMs (analysis.mixed.laplace) against R: ordinal::clmm and lme4::glmer.

Reference values were computed once in R and are stored beside the R scripts that made them
(tests/data/r/laplace_published.R, laplace_crossed.R), so these tests need no R.

Tolerances, and why. Where R reaches the maximum (clmm's defaults; glmer with tight tolerances) estimates,
SEs and SDs agree to 1e-4 or better: the same Laplace likelihood maximised twice. glmer's *default* fit stops
short of the maximum on these data (its log-likelihood is 2.8e-4 lower on ``cbpp`` and up to 1.8e-3 lower on
the crossed frames; estimates move by up to 1.6e-3 when R's tolerances are tightened), so against it the
tests allow 5e-3 and assert that ours is the higher likelihood.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.mixed import MixedModelError
from analysis.mixed.families import BernoulliLogit, CumulativeLogit
from analysis.mixed.laplace import ORDINAL_FORMULA, fit_logistic, fit_ordinal, logistic_formula
from analysis.mixed.laplace_engine import GlmmData, LaplaceObjective, fit_laplace

R_DATA = Path(__file__).parent / "data" / "r"
PUBLISHED = json.loads((R_DATA / "laplace_published.json").read_text())
CROSSED = json.loads((R_DATA / "laplace_crossed.json").read_text())
TWO, THREE = ["baseline", "visual"], ["baseline", "photos", "visual"]


def _codes(values: pd.Series) -> np.ndarray:
    return pd.factorize(values)[0]


def test_wine_matches_clmm():
    """``clmm(rating ~ temp + contact + (1 | judge), wine)``: tempwarm 3.06300 (SE 0.59538), contactyes
    1.83489 (SE 0.51253), judge variance 1.27946 — a general fixed design and one grouping factor."""
    wine = pd.read_csv(R_DATA / "laplace_wine.csv")
    ref = PUBLISHED["wine"]
    design = np.column_stack([wine["temp"] == "warm", wine["contact"] == "yes"]).astype(float)
    data = GlmmData(
        y=wine["rating"].to_numpy() - 1,
        weights=np.ones(len(wine)),
        design=design,
        factors=(("judge", _codes(wine["judge"])),),
    )
    fit = fit_laplace(CumulativeLogit(5), data)
    assert fit.converged
    assert fit.beta == pytest.approx([ref["estimate"]["tempwarm"], ref["estimate"]["contactyes"]], abs=2e-5)
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(
        [ref["se"]["tempwarm"], ref["se"]["contactyes"]], abs=1e-4
    )
    assert fit.sds["judge"] ** 2 == pytest.approx(ref["judge_variance"], abs=1e-4)
    assert CumulativeLogit(5).thresholds(fit.extra) == pytest.approx(
        list(ref["thresholds"].values()), abs=2e-5
    )
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-5)  # clmm stops its inner loop at 1e-6


def test_wine_as_a_study_nested_cases_and_a_singular_fit_match_clmm():
    """The wine tasting in fit_ordinal's shape: judges = participants, bottles = cases, temperature × contact =
    four conditions. Each bottle has one condition, so (1 | case:condition) is dropped (and said so); the
    bottle SD is at the boundary (clmm 3e-6): a singular fit, with clmm's estimates, SEs, contrasts and χ²."""
    wine = pd.read_csv(R_DATA / "laplace_wine.csv")
    ref = PUBLISHED["wine_study"]
    frame = pd.DataFrame(
        {
            "y": wine["rating"],
            "participant": wine["judge"],
            "case": wine["bottle"],
            "condition": wine["temp"] + "_" + wine["contact"],
        }
    )
    conditions = ["cold_no", "cold_yes", "warm_no", "warm_yes"]
    fit = fit_ordinal(frame, conditions=conditions)
    assert fit.formula == "y ~ condition + (1 | participant) + (1 | case)"
    assert fit.simplified and "case:condition" in fit.simplified[0]
    assert fit.singular and fit.variance_components["case"] < 1e-4
    assert any("singular" in note for note in fit.notes)
    assert fit.variance_components["participant"] == pytest.approx(ref["sd"]["judge"], abs=1e-4)
    names = {f"condition[{c}]": f"condition{c}" for c in conditions[1:]}
    for ours, r in names.items():
        assert fit.terms[ours].estimate == pytest.approx(ref["estimate"][r], abs=1e-4)
        assert fit.terms[ours].se == pytest.approx(ref["se"][r], abs=1e-4)
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-5)
    _check_contrasts(fit, ref, conditions, "")


def test_cbpp_binomial_counts_match_glmer():
    """``glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), binomial, cbpp)``: each herd-period
    enters as a success row and a failure row weighted by their counts."""
    cbpp = pd.read_csv(R_DATA / "laplace_cbpp.csv")
    period = np.eye(4)[cbpp["period"].to_numpy() - 1]
    design = np.column_stack([np.ones(len(cbpp)), period[:, 1:]])
    failures = (cbpp["size"] - cbpp["incidence"]).to_numpy()
    weights = np.concatenate([cbpp["incidence"].to_numpy(), failures]).astype(float)
    keep = weights > 0
    data = GlmmData(
        y=np.repeat([1.0, 0.0], len(cbpp))[keep],
        weights=weights[keep],
        design=np.vstack([design, design])[keep],
        factors=(("herd", np.tile(_codes(cbpp["herd"]), 2)[keep]),),
    )
    fit = fit_laplace(BernoulliLogit(), data)
    assert fit.converged
    tight, default = PUBLISHED["cbpp"]["tight"], PUBLISHED["cbpp"]["default"]
    assert fit.beta == pytest.approx(list(tight["estimate"].values()), abs=1e-5)
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(list(tight["se"].values()), abs=1e-5)
    assert fit.sds["herd"] == pytest.approx(tight["herd_sd"], abs=1e-5)
    assert fit.beta == pytest.approx(list(default["estimate"].values()), abs=1e-3)
    assert fit.sds["herd"] == pytest.approx(default["herd_sd"], abs=1e-3)
    # glmer's binomial log-likelihood includes log C(size, incidence); ours (per row) does not
    constant = sum(np.log(np.arange(1, n + 1)).sum() for n in cbpp["size"]) - sum(
        np.log(np.arange(1, n + 1)).sum() for n in np.concatenate([cbpp["incidence"], failures])
    )
    assert fit.loglik + constant == pytest.approx(tight["logLik"], abs=1e-6)
    assert fit.loglik + constant > default["logLik"]


def _r_terms(ref: dict, conditions: list[str]) -> dict[str, str]:
    """Our term names → R's (``condition[visual]`` → ``conditionvisual``)."""
    names = {}
    for c in conditions[1:]:
        names[f"condition[{c}]"] = f"condition{c}"
        names[f"condition[{c}]:ai_wrong"] = f"condition{c}:ai_wrong"
    names["ai_wrong"] = "ai_wrong"
    return {ours: r for ours, r in names.items() if r in ref["estimate"]}


@pytest.mark.parametrize(("name", "conditions"), [("ordinal_within2", TWO), ("ordinal_between3", THREE)])
def test_crossed_ordinal_matches_clmm(name: str, conditions: list[str]):
    """clmm with ORDINAL_FORMULA on a simulated toolkit-like frame (participant SD 0.8, case SD 0.6,
    case × condition SD 0.4, 10 cases). clmm's default fit is at the maximum here (its tightened run only
    adds inner-loop warnings), so it is the reference."""
    frame = pd.read_csv(R_DATA / f"laplace_crossed_{name}.csv")
    ref = CROSSED[name]["default"]
    assert CROSSED[name]["formula"] == ORDINAL_FORMULA
    fit = fit_ordinal(frame, conditions=conditions)
    assert fit.converged and fit.formula == ORDINAL_FORMULA and fit.df_method.startswith("z")
    names = _r_terms(ref, conditions)
    assert set(fit.terms) == set(names)
    for ours, r in names.items():
        assert fit.terms[ours].estimate == pytest.approx(ref["estimate"][r], abs=1e-4)
        assert fit.terms[ours].se == pytest.approx(ref["se"][r], abs=1e-4)
        assert fit.terms[ours].df is None
    for component, sd in ref["sd"].items():
        assert fit.variance_components[component] == pytest.approx(sd, abs=1e-3)
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-5)
    _check_contrasts(fit, ref, conditions, "")


@pytest.mark.parametrize(
    ("name", "conditions", "ai_wrong"),
    [
        ("binary_within2", TWO, True),
        ("binary_within2", TWO, False),
        ("binary_between3", THREE, True),
        ("binary_between3", THREE, False),
    ],
)
def test_crossed_logistic_matches_glmer(name: str, conditions: list[str], ai_wrong: bool):
    """glmer with logistic_formula(ai_wrong) on simulated frames with the AI wrong on 3 of 10 cases."""
    frame = pd.read_csv(R_DATA / f"laplace_crossed_{name}.csv")
    key = name if ai_wrong else f"{name}_no_ai_wrong"
    tight, default = CROSSED[key]["tight"], CROSSED[key]["default"]
    assert CROSSED[key]["formula"] == logistic_formula(ai_wrong)
    fit = fit_logistic(frame, conditions=conditions, ai_wrong=ai_wrong)
    assert fit.converged and fit.family == "binomial"
    names = _r_terms(tight, conditions)
    assert set(fit.terms) == set(names)
    for ours, r in names.items():
        assert fit.terms[ours].estimate == pytest.approx(tight["estimate"][r], abs=1e-4)
        assert fit.terms[ours].se == pytest.approx(tight["se"][r], abs=1e-4)
        assert fit.terms[ours].estimate == pytest.approx(default["estimate"][r], abs=5e-3)
    for component, sd in tight["sd"].items():
        assert fit.variance_components[component] == pytest.approx(sd, abs=1e-3)
    assert fit.log_likelihood == pytest.approx(tight["logLik"], abs=1e-5)
    assert fit.log_likelihood >= default["logLik"] - 1e-8
    if ai_wrong:
        _check_contrasts(fit, tight, conditions, " | ai_wrong=0")
        _check_contrasts(fit, tight, conditions, " | ai_wrong=1", interaction=True)
    else:
        _check_contrasts(fit, tight, conditions, "")


def _check_contrasts(fit, ref: dict, conditions: list[str], label: str, interaction: bool = False) -> None:
    """Every pair "b - a" from R's estimates and vcov (R names ``condition<c>``; the baseline has none);
    the omnibus χ² (k > 2) likewise."""
    order = list(ref["estimate"])
    vcov = np.asarray(ref["vcov"], dtype=float).reshape(len(order), len(order))
    beta = np.array([ref["estimate"][n] for n in order])

    def vector(condition: str) -> np.ndarray:
        vec = np.zeros(len(order))
        if condition != conditions[0]:
            vec[order.index(f"condition{condition}")] = 1.0
            if interaction:
                vec[order.index(f"condition{condition}:ai_wrong")] = 1.0
        return vec

    keys = [k for k in fit.contrasts if k.endswith(label)]
    assert len(keys) == len(conditions) * (len(conditions) - 1) // 2
    for i, a in enumerate(conditions):
        for b in conditions[i + 1 :]:
            contrast = vector(b) - vector(a)
            term = fit.contrasts[f"{b} - {a}{label}"]
            assert term.estimate == pytest.approx(contrast @ beta, abs=1e-4)
            assert term.se == pytest.approx(np.sqrt(contrast @ vcov @ contrast), abs=1e-4)
    if len(conditions) > 2 and not interaction:
        idx = [i for i, n in enumerate(order) if n.startswith("condition")]
        chi2 = beta[idx] @ np.linalg.solve(vcov[np.ix_(idx, idx)], beta[idx])
        assert fit.omnibus["statistic"] == pytest.approx(chi2, rel=1e-3)
        assert fit.omnibus["df1"] == len(idx) and fit.omnibus["df2"] is None
    elif len(conditions) == 2:
        assert fit.omnibus is None


def test_analytic_gradient_matches_finite_differences():
    """The exact gradient of the Laplace log-likelihood (implicit û, leverages) against central differences,
    at an arbitrary point of the ordinal model with three crossed factors, one SD negative (even in σ)."""
    frame = pd.read_csv(R_DATA / "laplace_crossed_ordinal_between3.csv")
    cond = pd.Categorical(frame["condition"], categories=THREE).codes
    case = _codes(frame["case"])
    data = GlmmData(
        y=np.unique(frame["y"], return_inverse=True)[1],
        weights=np.ones(len(frame)),
        design=np.eye(3)[cond][:, 1:],
        factors=(
            ("participant", _codes(frame["participant"])),
            ("case", case),
            ("case:condition", _codes(pd.Series(case * 3 + cond))),
        ),
    )
    objective = LaplaceObjective(CumulativeLogit(7), data)
    x = np.array([-2.3, 0.1, -0.2, 0.3, 0.0, -0.1, 0.3, 0.7, 0.9, -0.7, 0.35])
    _, grad = objective.value_and_gradient(x)
    h = 1e-6
    numeric = [(objective(x + e) - objective(x - e)) / (2 * h) for e in np.eye(len(x)) * h]
    assert grad == pytest.approx(numeric, abs=1e-5)


def _frame(rng: np.random.Generator, n: int = 12, cases: int = 4) -> pd.DataFrame:
    rows = [(f"P{p}", f"C{c}", TWO[(p + c) % 2]) for p in range(n) for c in range(cases)]
    frame = pd.DataFrame(rows, columns=["participant", "case", "condition"])
    frame["y"] = rng.integers(1, 6, len(frame))
    frame["ai_wrong"] = (frame["case"] == "C0").astype(int)
    return frame


def test_data_that_cannot_support_the_model_are_named():
    rng = np.random.default_rng(0)
    frame = _frame(rng)
    with pytest.raises(MixedModelError, match="only one case"):
        fit_ordinal(frame[frame["case"] == "C1"], conditions=TWO)
    one_visual = frame[(frame["condition"] == "baseline") | (frame["participant"] == "P0")]
    with pytest.raises(MixedModelError, match="'visual' has a single participant"):
        fit_ordinal(one_visual, conditions=TWO)
    with pytest.raises(MixedModelError, match="'photos' has no answers"):
        fit_ordinal(frame, conditions=THREE)
    with pytest.raises(MixedModelError, match=r"not among"):
        fit_ordinal(frame, conditions=["baseline", "other"])
    with pytest.raises(MixedModelError, match="every answer is 3"):
        fit_ordinal(frame.assign(y=3), conditions=TWO)
    with pytest.raises(MixedModelError, match="'y' is not a number in row 0: 'agree'"):
        fit_ordinal(frame.assign(y=["agree", *frame["y"][1:]]), conditions=TWO)
    with pytest.raises(MixedModelError, match="lacks column"):
        fit_logistic(frame.drop(columns="ai_wrong").assign(y=1), conditions=TWO)


def test_separation_is_named_not_fitted_to_infinity():
    rng = np.random.default_rng(1)
    frame = _frame(rng)
    separated = frame.assign(
        y=np.where(frame["condition"] == "visual", frame["y"].clip(3, 5), frame["y"].clip(1, 3))
    )
    with pytest.raises(MixedModelError, match=r"\['baseline'\] never exceed 3 .* \['visual'\] never fall"):
        fit_ordinal(separated, conditions=TWO)
    binary = frame.assign(y=(frame["y"] > 2).astype(int))
    wrong_visual = (binary["condition"] == "visual") & (binary["ai_wrong"] == 1)
    binary.loc[wrong_visual, "y"] = 1
    with pytest.raises(MixedModelError, match=r"condition 'visual', ai_wrong=1 is 1 .*separation"):
        fit_logistic(binary, conditions=TWO)
    with pytest.raises(MixedModelError, match="ai_wrong is 0 for every case"):
        fit_logistic(binary.assign(ai_wrong=0), conditions=TWO)
    # without the AI-correctness split the same data are fine
    assert fit_logistic(binary, conditions=TWO, ai_wrong=False).converged
