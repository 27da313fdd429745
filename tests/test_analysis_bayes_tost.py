"""Bayes factors and equivalence tests against R (BayesFactor 0.9.12, t.test), stored in tests/data/r/."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.bayes import R_MEDIUM, bayes_factor, jzs_bf10
from analysis.equivalence import tost
from tests.conftest import require

R_DIR = Path(__file__).parent / "data" / "r"
REF = json.loads((R_DIR / "bayes_tost.json").read_text())
VISUAL, BASELINE = np.array(REF["data"]["visual"]), np.array(REF["data"]["baseline"])


def test_prior_scale_is_r_medium():
    assert REF["r"] == pytest.approx(R_MEDIUM, rel=1e-12)


@pytest.mark.parametrize("row", REF["grid"], ids=lambda r: f"t{r['t']}-n{r['n1']}-{r['n2']}")
def test_bf10_from_t_matches_bayesfactor(row):
    """ttest.tstat: one-sample (n2 = 0) and two-sample, t from -4.5 to 7.2, n up to 20,000."""
    assert jzs_bf10(row["t"], row["n1"], row["n2"] or None) == pytest.approx(row["bf10"], rel=1e-5)


def test_bf10_from_data_matches_ttestbf():
    paired = bayes_factor(VISUAL, BASELINE, paired=True)
    assert paired["value"] == pytest.approx(REF["paired"]["bf10"], rel=1e-6)
    two = bayes_factor(VISUAL, BASELINE, paired=False)
    assert two["value"] == pytest.approx(REF["two_sample"]["bf10"], rel=1e-6)
    assert two["test"] == "Student two-sample t" and "√2/2" in two["prior"]


def test_bf10_stays_finite_at_large_n():
    """The Savage–Dickey limit at t = 0: BF10 ≈ 1/(r·√(πn/2)) for large n (Rouder et al. 2009, eq. 2's limit)."""
    n = 2_000_000
    assert jzs_bf10(0.0, n) == pytest.approx(1 / (R_MEDIUM * math.sqrt(math.pi * n / 2)), rel=1e-3)
    assert jzs_bf10(100.0, n) == math.inf and math.isnan(jzs_bf10(1.0, 1))


CASES = {
    "paired_equivalent": (VISUAL, BASELINE, True, "equivalent"),
    "paired_wide": (VISUAL, BASELINE, True, "equivalent"),
    "welch_equivalent": (VISUAL, BASELINE, False, "equivalent"),
    "welch_wide": (VISUAL, BASELINE, False, "equivalent"),
    "paired_non_inferior": (VISUAL, BASELINE, True, "non_inferior"),
    "welch_non_inferior": (BASELINE, VISUAL, False, "non_inferior"),
}


@pytest.mark.parametrize("name", CASES)
def test_tost_matches_r_t_test(name):
    ref = REF["tost"][name]
    first, second, paired, direction = CASES[name]
    res = tost(first, second, paired, ref["delta"], ref["alpha"], direction)
    assert res["p"] == pytest.approx(ref["p"], rel=1e-9)
    assert res["lower"]["statistic"] == pytest.approx(ref["t_lower"], rel=1e-9)
    assert res["lower"]["p"] == pytest.approx(ref["p_lower"], rel=1e-9)
    if direction == "equivalent":
        assert res["upper"]["statistic"] == pytest.approx(ref["t_upper"], rel=1e-9)
        assert res["upper"]["p"] == pytest.approx(ref["p_upper"], rel=1e-9)
    else:
        assert res["upper"] is None
    assert res["df"] == pytest.approx(ref["df"], rel=1e-9)
    assert res["ci"] == pytest.approx(ref["ci"], rel=1e-9) and res["ci_level"] == pytest.approx(
        1 - 2 * ref["alpha"]
    )
    # the duality the report relies on: equivalent (p < α) exactly when the (1 − 2α) CI lies inside ±Δ
    inside = res["ci"][0] > -ref["delta"] and (direction == "non_inferior" or res["ci"][1] < ref["delta"])
    assert (res["p"] < ref["alpha"]) == inside


def test_r_reference_reproduces():
    """The stored values are what the R script prints (CI installs R with BayesFactor)."""
    require(shutil.which("Rscript") is not None, "R reference check needs Rscript with BayesFactor")
    out = subprocess.run(
        ["Rscript", str(R_DIR / "bayes_tost.R")], capture_output=True, text=True, check=True, timeout=120
    )
    fresh = json.loads(out.stdout)
    assert fresh["paired"]["bf10"] == pytest.approx(REF["paired"]["bf10"], rel=1e-9)
    assert fresh["tost"]["welch_equivalent"]["p"] == pytest.approx(
        REF["tost"]["welch_equivalent"]["p"], rel=1e-9
    )
