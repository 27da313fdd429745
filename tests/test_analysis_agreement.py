"""Agreement, reliability and proportions against published worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.agreement import (
    agreement_coefficients,
    category_counts,
    fleiss_kappa,
    gwet_ac1,
    icc_table,
    item_agreement,
    krippendorff_alpha,
    wilson_interval,
)
from analysis.reliability import cronbach_alpha, mcdonald_omega

# Fleiss (1971) Table 1: 30 patients, 6 psychiatrists, 5 diagnoses (1 depression … 5 other).
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4],
        [2, 2, 2, 5, 5, 5],
        [2, 3, 3, 3, 3, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3],
        [3, 3, 3, 3, 5, 5],
        [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4],
        [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4],
        [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3],
        [1, 4, 4, 4, 4, 4],
        [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5],
        [1, 1, 1, 1, 1, 2],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 4, 4, 4, 4, 4],
        [2, 2, 4, 5, 5, 5],
        [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4],
        [1, 1, 1, 1, 5, 5],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3],
        [5, 5, 5, 5, 5, 5],
    ]
)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", reliability data with missing values:
# 4 observers (rows) × 12 units; NaN = not coded.
N = np.nan
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
)

# Shrout & Fleiss (1979) Table 2: 6 targets × 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def _long(matrix: np.ndarray) -> pd.DataFrame:
    """units × raters matrix → long ratings frame (NaN cells dropped)."""
    rows = [
        (f"R{j}", f"I{i:02d}", float(v))
        for i, row in enumerate(matrix)
        for j, v in enumerate(row)
        if np.isfinite(v)
    ]
    return pd.DataFrame(rows, columns=["rater_id", "image_id", "value"])


def test_fleiss_kappa_fleiss_1971():
    """Fleiss (1971) p. 381: κ = .430 for the psychiatric diagnoses (R irr::kappam.fleiss: 0.4302445)."""
    counts, _ = category_counts(_long(FLEISS_1971))
    assert fleiss_kappa(counts) == pytest.approx(0.4302445, abs=1e-6)


def test_krippendorff_2011_nominal_and_ordinal():
    """Krippendorff (2011) worked example: nominal α = 0.743, ordinal α = 0.815, interval α = 0.849."""
    counts, cats = category_counts(_long(KRIPPENDORFF_2011.T))
    assert krippendorff_alpha(counts, cats, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(counts, cats, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(counts, cats, "interval") == pytest.approx(0.849, abs=5e-4)


def test_gwet_ac1_irrcac_vignette():
    """Gwet's irrCAC vignette ("Calculating Chance-corrected Agreement Coefficients"), cont3x3abstractors
    (2 abstractors, 100 pregnancies): AC1 = 0.8493305, Scott's π (= Fleiss' κ for 2 raters) = 0.7962397,
    Krippendorff's α = 0.7972585, percent agreement = 0.89."""
    table = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
    pairs = [(a, b) for a in range(3) for b in range(3) for _ in range(table[a, b])]
    counts, cats = category_counts(_long(np.array(pairs, dtype=float)))
    coef = agreement_coefficients(counts, cats)
    assert coef["gwet_ac1"] == pytest.approx(0.8493305, abs=1e-6)
    assert coef["fleiss_kappa"] == pytest.approx(0.7962397, abs=1e-6)
    assert coef["krippendorff_alpha_nominal"] == pytest.approx(0.7972585, abs=1e-6)
    assert coef["percent_agreement"] == pytest.approx(0.89)


def test_gwet_ac1_stays_high_under_high_prevalence():
    """The kappa paradox (Feinstein & Cicchetti 1990): 92 % positive, high raw agreement → κ low, AC1 high."""
    rows = [[1, 1]] * 88 + [[1, 0]] * 4 + [[0, 1]] * 4 + [[0, 0]] * 4
    counts, _ = category_counts(_long(np.array(rows, dtype=float)))
    assert gwet_ac1(counts) > 0.9 > 0.5 > fleiss_kappa(counts)


def test_icc_shrout_fleiss_1979():
    """Shrout & Fleiss (1979) Table 4: ICC(1,1)=.17, ICC(2,1)=.29, ICC(3,1)=.71, ICC(1,4)=.44,
    ICC(2,4)=.62, ICC(3,4)=.91 (pingouin 0.7 labels: 1 → ICC(1,·), 2 → ICC(A,·), 3 → ICC(C,·))."""
    icc = icc_table(_long(SHROUT_FLEISS))["ICC"]
    expected = {
        "ICC(1,1)": 0.17,
        "ICC(A,1)": 0.29,
        "ICC(C,1)": 0.71,
        "ICC(1,k)": 0.44,
        "ICC(A,k)": 0.62,
        "ICC(C,k)": 0.91,
    }
    for label, value in expected.items():
        assert icc[label] == pytest.approx(value, abs=0.005), label


def test_cronbach_alpha_equals_published_icc_ck():
    """Cronbach's α equals ICC(3,k) (McGraw & Wong 1996): .91 for Shrout & Fleiss' judges as items."""
    alpha = cronbach_alpha(pd.DataFrame(SHROUT_FLEISS))
    assert alpha["value"] == pytest.approx(0.909, abs=1e-3)
    assert alpha["ci"][0] < alpha["value"] < alpha["ci"][1]
    assert cronbach_alpha(pd.DataFrame(SHROUT_FLEISS[:, :1])) is None


OMEGA_R = json.loads(
    (Path(__file__).parent / "data" / "r" / "omega_factanal.json").read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", sorted(OMEGA_R))
def test_omega_matches_r_factanal(name):
    """ω from R's factanal loadings and uniquenesses (tests/data/r/omega_factanal.R), a Heywood case → None."""
    case = OMEGA_R[name]
    omega = mcdonald_omega(pd.DataFrame(case["items"]))
    if case["omega"] is None:
        assert omega is None
    else:
        assert omega["value"] == pytest.approx(case["omega"], abs=1e-5)


def test_omega_is_the_same_on_every_call():
    """A near-Heywood construct from a 12-bot demo study: statsmodels' default random start gave ω = .51, .58 or
    None on the same data from one call to the next."""
    rows = "3.7 2 6, 3.8 4 7, 4.0 3 4, 4.8 7 3, 3.9 5 4, 3.2 1 7, 2.6 4 2, 4.7 7 7, 4.1 1 4, 3.7 1 6, 3.1 2 6, 4.1 1 4"
    items = pd.DataFrame([[float(v) for v in row.split()] for row in rows.split(", ")])
    assert len({repr(mcdonald_omega(items)) for _ in range(10)}) == 1


def test_omega_close_to_alpha_for_tau_equivalent_items():
    rng = np.random.default_rng(0)
    f = rng.normal(size=800)
    items = pd.DataFrame({f"i{j}": f + rng.normal(size=800) for j in range(5)})
    omega, alpha = mcdonald_omega(items), cronbach_alpha(items)
    assert omega["value"] == pytest.approx(alpha["value"], abs=0.01)
    assert mcdonald_omega(items.iloc[:, :2]) is None


def test_wilson_interval_newcombe_1998():
    """Newcombe (1998) Table I, example (c) 81/263: Wilson score interval 0.2553 to 0.3662."""
    assert wilson_interval(81, 263) == pytest.approx([0.2553, 0.3662], abs=1e-4)


def test_item_agreement_record_binary_and_ordinal():
    ratings = _long(SHROUT_FLEISS)
    rec = item_agreement(ratings, n_boot=50, rng=np.random.default_rng(1))
    assert rec["type"] == "ordinal" and rec["positive_rule"] == "value ≥ 9"
    assert rec["proportion_positive"] == pytest.approx(3 / 24)
    assert set(rec["icc"]) == {"ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"}
    binary = _long(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=float))
    binary["skin_condition"] = ["a"] * 6 + ["b"] * 6
    rec = item_agreement(binary, n_boot=50)
    assert rec["type"] == "binary" and rec["icc"] is None
    assert rec["proportion_positive_by_skin_condition"]["a"]["k"] == 5
    assert set(rec["ci"]) >= {"fleiss_kappa", "gwet_ac1"}
    binary["image_kind"] = ["generated"] * 6 + ["retrieved"] * 3 + ["case_photo"] * 3  # blind, one pool
    kinds = item_agreement(binary, n_boot=0)["proportion_positive_by_image_kind"]
    assert {k: (v["k"], v["n"]) for k, v in kinds.items()} == {
        "case_photo": (2, 3),
        "generated": (5, 6),
        "retrieved": (0, 3),
    }
    assert kinds["retrieved"]["ci"] == pytest.approx(list(proportion_confint(0, 3, method="wilson")))
