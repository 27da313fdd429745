"""The R backend (analysis.mixed.r_backend): the same models as the Python fitters, run by lmerTest, clmm, glmer.

With R present (CI installs it: scripts/system-deps.sh) the R twins are checked against the published and
stored R references and against the Python fits; without R, only the errors a researcher sees are checked.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from analysis.mixed import laplace, r_backend
from analysis.mixed.linear import fit_linear
from analysis.mixed.result import MixedModelError
from tests.conftest import require

DATA = Path(__file__).parent / "data" / "r"
TWO = ["baseline", "skingen_visual"]
THREE = ["baseline", "skingen_visual", "retrieved_photos"]
R = json.loads((DATA / "mixed_exports.json").read_text())
LAPLACE = json.loads((DATA / "laplace_crossed.json").read_text())


def export(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{name}.csv")


@pytest.fixture
def rscript():
    require(shutil.which("Rscript") is not None, "Rscript (r-base-core with r-cran-lmertest, r-cran-ordinal)")


def assert_same_fit(r_fit, py_fit):
    """Both backends fit the same model to ~3 decimals (df within 1 %)."""
    assert r_fit.formula == py_fit.formula and r_fit.simplified == py_fit.simplified
    for name, term in {**py_fit.terms, **py_fit.contrasts}.items():
        other = {**r_fit.terms, **r_fit.contrasts}[name]
        assert other.estimate == pytest.approx(term.estimate, abs=1e-3), name
        assert other.se == pytest.approx(term.se, abs=1e-3), name
        assert other.df == pytest.approx(term.df, rel=0.01), name
        assert other.p == pytest.approx(term.p, abs=1e-3), name
    assert r_fit.variance_components.keys() == py_fit.variance_components.keys()
    for name, sd in py_fit.variance_components.items():
        assert r_fit.variance_components[name] == pytest.approx(sd, abs=2e-3), name


def test_linear_r_backend_matches_lmertest_reference_and_python(rscript):
    fit = fit_linear(export("mixed_within3"), design="within", conditions=THREE, backend="r")
    assert fit.backend.startswith("R 4") and "lmerTest" in fit.backend
    assert fit.df_method.startswith("Satterthwaite")
    ref = R["within3"]
    assert fit.terms["condition[skingen_visual]"].df == pytest.approx(
        ref["coefficients"]["conditionskingen_visual"]["df"], rel=1e-6
    )
    # anova() and contest(joint = TRUE) give the same F; their df differ in the 4th digit (the same hypothesis
    # in another basis: the Fai–Cornelius combination of the per-row df is not basis-invariant)
    assert fit.omnibus["statistic"] == pytest.approx(ref["omnibus"]["F"], rel=1e-6)
    assert fit.omnibus["df2"] == pytest.approx(ref["omnibus"]["df2"], rel=1e-3)
    assert fit.contrasts["retrieved_photos - skingen_visual"].df == pytest.approx(
        ref["contrast_c_b"]["df"], rel=1e-6
    )
    assert_same_fit(fit, fit_linear(export("mixed_within3"), design="within", conditions=THREE))


def test_linear_auto_backend_uses_r_when_present_between_design_with_position(rscript):
    frame = export("mixed_between")
    r_fit = fit_linear(frame, design="between", conditions=TWO, backend="auto", position=True)
    assert r_fit.backend.startswith("R ")
    assert_same_fit(r_fit, fit_linear(frame, design="between", conditions=TWO, position=True))


@pytest.mark.slow
def test_r_backend_simplifies_the_singular_model_to_the_same_model(rscript):
    """R runs every step of the rule (five lmer fits) and ends at the model Python ends at."""
    frame = export("mixed_singular")
    r_fit = fit_linear(frame, design="within", conditions=TWO, backend="r")
    assert r_fit.formula == R["singular_intercepts"]["formula"]
    assert len(r_fit.simplified) == 4
    assert_same_fit(r_fit, fit_linear(frame, design="within", conditions=TWO))


def test_clmm_twin_reproduces_published_wine_fit(rscript):
    """clmm(rating ~ temp + contact + (1 | judge), wine): tempwarm 3.063, contactyes 1.835, judge var 1.279."""
    published = json.loads((DATA / "laplace_published.json").read_text())["wine"]
    wine = pd.read_csv(DATA / "laplace_wine.csv", dtype={"judge": str})
    result = r_backend.run_r(
        {"family": "cumulative_logit", "formula": "rating ~ temp + contact + (1 | judge)", "levels": []}, wine
    )
    assert result["coefficients"]["names"] == ["tempwarm", "contactyes"]
    assert result["coefficients"]["estimate"] == pytest.approx(list(published["estimate"].values()), abs=5e-4)
    assert result["coefficients"]["se"] == pytest.approx(list(published["se"].values()), abs=5e-4)
    assert result["varcorr"][0]["sdcor"] ** 2 == pytest.approx(published["judge_variance"], abs=5e-4)


@pytest.mark.slow
def test_ordinal_twin_matches_stored_clmm_fit(rscript):  # clmm takes ~1 min on this frame
    frame = export("laplace_crossed_ordinal_between3")
    fit = r_backend.fit_ordinal_r(frame, conditions=["baseline", "photos", "visual"])
    ref = LAPLACE["ordinal_between3"]["default"]
    assert fit.formula == laplace.ORDINAL_FORMULA and fit.df_method.startswith("z")
    for level in ("photos", "visual"):
        term = fit.terms[f"condition[{level}]"]
        assert term.estimate == pytest.approx(ref["estimate"][f"condition{level}"], abs=1e-4)
        assert term.se == pytest.approx(ref["se"][f"condition{level}"], abs=1e-4)
        assert term.df is None
    for name in laplace.RANDOM_TERMS:
        assert fit.variance_components[name] == pytest.approx(ref["sd"][name], abs=1e-4)
    assert fit.omnibus["df1"] == 2 and fit.omnibus["df2"] is None
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-6)
    visual_photos = fit.contrasts["visual - photos"]
    assert visual_photos.estimate == pytest.approx(
        ref["estimate"]["conditionvisual"] - ref["estimate"]["conditionphotos"], abs=1e-4
    )


def test_logistic_twin_matches_stored_glmer_fit_with_ai_wrong(rscript):
    frame = export("laplace_crossed_binary_within2")
    fit = r_backend.fit_logistic_r(frame, conditions=["baseline", "visual"])
    ref = LAPLACE["binary_within2"]["default"]
    assert fit.formula == laplace.logistic_formula(True) and fit.simplified == ()
    assert fit.log_likelihood == pytest.approx(ref["logLik"], abs=1e-6)
    for name, r_name in [
        ("condition[visual]", "conditionvisual"),
        ("ai_wrong", "ai_wrong"),
        ("condition[visual]:ai_wrong", "conditionvisual:ai_wrong"),
    ]:
        assert fit.terms[name].estimate == pytest.approx(ref["estimate"][r_name], abs=1e-4), name
        assert fit.terms[name].se == pytest.approx(ref["se"][r_name], abs=1e-4), name
    wrong = fit.contrasts["visual - baseline | ai_wrong=1"]
    expected = ref["estimate"]["conditionvisual"] + ref["estimate"]["conditionvisual:ai_wrong"]
    assert wrong.estimate == pytest.approx(expected, abs=1e-4)
    assert fit.contrasts["visual - baseline | ai_wrong=0"].estimate == fit.terms["condition[visual]"].estimate


def test_logistic_twin_and_python_fit_agree_without_ai_wrong_on_nested_cases(rscript):
    """Each case kept under one condition only: both twins drop (1 | case:condition) and say so."""
    frame = export("laplace_crossed_binary_between3")
    conditions = ["baseline", "photos", "visual"]
    home = {case: conditions[i % 3] for i, case in enumerate(sorted(frame["case"].unique()))}
    frame = frame[frame["condition"] == frame["case"].map(home)]
    r_fit = r_backend.fit_logistic_r(frame, conditions=conditions, ai_wrong=False)
    py_fit = laplace.fit_logistic(frame, conditions=conditions, ai_wrong=False)
    assert r_fit.formula == py_fit.formula and "case:condition" not in r_fit.formula
    assert r_fit.simplified == py_fit.simplified == (laplace.NESTED_STEP,)
    assert r_fit.terms.keys() == py_fit.terms.keys() and r_fit.omnibus["test"] == py_fit.omnibus["test"]
    for name, term in py_fit.terms.items():
        assert r_fit.terms[name].estimate == pytest.approx(term.estimate, abs=2e-3), name
    assert r_fit.log_likelihood == pytest.approx(py_fit.log_likelihood, abs=1e-3)


# --- what a researcher without R (or without a package) sees ------------------------------------------------


def test_missing_rscript_says_what_to_install(monkeypatch):
    monkeypatch.setattr(r_backend.shutil, "which", lambda name: None)
    with pytest.raises(MixedModelError, match=r"r-cran-lmertest.*backend='python'"):
        fit_linear(export("mixed_between"), design="between", conditions=TWO, backend="r")
    assert fit_linear(
        export("mixed_between"), design="between", conditions=TWO, backend="auto"
    ).backend.startswith("python")


def test_missing_r_package_names_it(monkeypatch, tmp_path):
    """An Rscript whose library lacks lmerTest fails as R does; the error names the Debian package."""
    fake = tmp_path / "Rscript"
    fake.write_text(
        "#!/bin/sh\necho \"Error in library(lmerTest) : there is no package called 'lmerTest'\" >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(MixedModelError, match=r"R package lmerTest: apt-get install r-cran-lmertest"):
        fit_linear(export("mixed_between"), design="between", conditions=TWO, backend="r")


@pytest.mark.parametrize(
    ("fit_python", "fit_r", "change"),
    [
        (laplace.fit_ordinal, r_backend.fit_ordinal_r, lambda d: d.assign(case="C01")),
        (laplace.fit_ordinal, r_backend.fit_ordinal_r, lambda d: d.assign(y=3)),
        (
            laplace.fit_logistic,
            r_backend.fit_logistic_r,
            lambda d: d.assign(y=(d["y"] > 3).astype(int), ai_wrong=0),
        ),
        (laplace.fit_logistic, r_backend.fit_logistic_r, lambda d: d.assign(y=2, ai_wrong=0)),
    ],
)
def test_twins_reject_the_same_frames(fit_python, fit_r, change):
    """The R twins run the Python twins' checks (a guard on the copied check sequence)."""
    frame = change(export("laplace_crossed_ordinal_within2"))
    with pytest.raises(MixedModelError) as python_error:
        fit_python(frame, conditions=["baseline", "visual"])
    with pytest.raises(MixedModelError) as r_error:
        fit_r(frame, conditions=["baseline", "visual"])
    assert str(r_error.value) == str(python_error.value)
