"""Tests and effect sizes against published R output (sleep data) and textbook values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.multitest import multipletests

from analysis.compare import (
    cumulative_logit,
    holm,
    mann_whitney_test,
    paired_ttest,
    period_effect,
    pomp,
    relative_change_pct,
    welch_ttest,
    wilcoxon_test,
)

# R `datasets::sleep` (Cushny & Peebles 1905, as in Student 1908): extra hours of sleep, drug 1 vs drug 2.
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def test_paired_ttest_matches_r_sleep():
    """R: t.test(extra ~ group, data = sleep, paired = TRUE) → t = -4.0621, df = 9, p-value = 0.002833,
    mean difference -1.58, 95 % CI [-2.4598858, -0.7001142]."""
    res = paired_ttest(SLEEP_1, SLEEP_2)
    assert res["statistic"] == pytest.approx(-4.0621, abs=1e-4)
    assert res["df"] == 9
    assert res["p"] == pytest.approx(0.002833, abs=1e-6)
    assert res["mean_diff"] == pytest.approx(-1.58)
    assert res["ci"] == pytest.approx([-2.4598858, -0.7001142], abs=1e-7)
    # d_z = mean diff / SD of differences = -1.58 / 1.229995; its CI comes from the noncentral t
    assert res["effect_size"]["value"] == pytest.approx(-1.58 / 1.229995, abs=1e-5)
    lo, hi = res["effect_size"]["ci"]
    assert lo < res["effect_size"]["value"] < hi < 0


def test_welch_ttest_matches_r_sleep():
    """R: t.test(extra ~ group, data = sleep) → t = -1.8608, df = 17.776, p-value = 0.07939,
    95 % CI [-3.3654832, 0.2054832]."""
    res = welch_ttest(SLEEP_1, SLEEP_2)
    assert res["statistic"] == pytest.approx(-1.8608, abs=1e-4)
    assert res["df"] == pytest.approx(17.776, abs=1e-3)
    assert res["p"] == pytest.approx(0.07939, abs=1e-5)
    assert res["ci"] == pytest.approx([-3.3654832, 0.2054832], abs=1e-6)
    # Hedges' g: d = -1.58 / pooled SD 1.898861 = -0.8321, J(18) = 0.9576
    assert res["effect_size"]["value"] == pytest.approx(-1.58 / 1.8988595 * 0.957592, abs=1e-3)


def test_wilcoxon_matches_r_sleep():
    """R: wilcox.test(extra ~ group, data = sleep, paired = TRUE) → V = 0, p-value = 0.009091
    (normal approximation with continuity correction: ties and a zero difference)."""
    res = wilcoxon_test(SLEEP_1, SLEEP_2)
    assert res["statistic"] == 0
    assert res["p"] == pytest.approx(0.009091, abs=1e-6)
    assert res["effect_size"]["value"] == -1.0  # every non-zero difference is negative
    assert res["n"] == 9


def test_mann_whitney_matches_r_sleep():
    """R: wilcox.test(extra ~ group, data = sleep) → W = 25.5, p-value = 0.06933."""
    res = mann_whitney_test(SLEEP_1, SLEEP_2)
    assert res["statistic"] == 25.5
    assert res["p"] == pytest.approx(0.06933, abs=1e-5)
    assert res["effect_size"]["value"] == pytest.approx(2 * 25.5 / 100 - 1)


def test_wilcoxon_exact_textbook():
    """Hollander & Wolfe (1999) Table 3.1 (Hamilton depression scale, 9 patients): R wilcox.test(x, y,
    paired = TRUE, alternative = "greater") gives V = 40, p = 0.01953; two-sided p = 0.03906."""
    x = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
    y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])
    res = wilcoxon_test(x, y)
    assert res["statistic"] == 40
    assert res["p"] == pytest.approx(0.03906, abs=1e-5)


def test_holm_and_relative_change():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    p = np.random.default_rng(0).uniform(0, 0.2, 12)
    assert holm(p.tolist()) == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert np.isnan(holm([np.nan, 0.01])[0])
    assert relative_change_pct(5.52, 4.0) == pytest.approx(38.0)
    assert relative_change_pct(1.0, 0.0) is None
    assert pomp(4.0, 1, 7) == pytest.approx(50.0)


def _ordinal_data(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n), 6)
    visual = np.tile([0, 0, 0, 1, 1, 1], n)
    latent = rng.normal(size=n)[pid] + 0.6 * visual + rng.logistic(size=len(pid))
    value = np.digitize(latent, [-1.5, -0.5, 0.5, 1.5]) + 1
    return pd.DataFrame({"pid": pid, "visual": visual, "value": value})


def test_cumulative_logit_matches_statsmodels_orderedmodel():
    """Point estimate and cluster-robust SE agree with statsmodels' OrderedModel (numerical reference)."""
    data = _ordinal_data(150)
    res = cumulative_logit(data["value"], data["visual"], data["pid"])
    model = OrderedModel(data["value"], data[["visual"]], distr="logit")
    ref = model.fit(method="bfgs", disp=0, cov_type="cluster", cov_kwds={"groups": data["pid"]})
    (term,) = res["terms"]
    assert term["log_odds"] == pytest.approx(ref.params["visual"], abs=1e-4)
    assert term["se"] == pytest.approx(ref.bse["visual"], rel=0.02)  # statsmodels adds (N − 1)/(N − P)
    assert term["log_odds"] > 0 and term["p"] < 0.05
    assert res["n_clusters"] == 150


R_DATA = Path(__file__).parent / "data" / "r"


def test_cumulative_logit_reaches_rs_clm_maximum_and_hand_computed_cluster_sandwich():
    """tests/data/r/cumulative_logit_clm.R: R's ``clm`` (converged to |gradient| < 1e-7) gives the point
    estimates; the participant-clustered sandwich is summed by hand in R from the per-answer scores between two
    clm ``vcov()``s, times G/(G − 1). The earlier quasi-Newton fit stopped early (z 5.40386 vs 5.40388, 3-arm
    Wald χ² 9.5716 vs 9.5729); Newton on the count table agrees to 4 decimals and beyond."""
    ref = json.loads((R_DATA / "cumulative_logit_clm.json").read_text())
    two = pd.read_csv(R_DATA / "cumulative_logit_two.csv")
    res = cumulative_logit(two["value"], two["group"], two["pid"])
    assert res["converged"]
    (term,) = res["terms"]  # two groups: one term, and the Wald test of all terms is its z²
    assert term["log_odds"] == pytest.approx(ref["two"]["estimate"], abs=1e-6)
    assert term["se"] == pytest.approx(ref["two"]["se_clustered"], abs=1e-6)
    assert round(term["z"], 4) == round(ref["two"]["z"], 4)
    assert res["wald"]["df"] == 1 and round(res["wald"]["statistic"], 3) == round(ref["two"]["z"] ** 2, 3)
    three = pd.read_csv(R_DATA / "cumulative_logit_three.csv")
    res = cumulative_logit(three["value"], three["group"], three["pid"])
    for term, estimate, se in zip(
        res["terms"], ref["three"]["estimate"], ref["three"]["se_clustered"], strict=True
    ):
        assert term["log_odds"] == pytest.approx(estimate, abs=1e-6)
        assert term["se"] == pytest.approx(se, abs=1e-6)
    assert round(res["wald"]["statistic"], 4) == round(ref["three"]["wald"], 4)


def test_period_effect_recovers_planted_period_shift():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):
        visual_first = i % 2 == 0
        for condition, period in (("v", 1 if visual_first else 2), ("b", 2 if visual_first else 1)):
            score = 4 + (0.5 if condition == "v" else 0) + (0.3 if period == 2 else 0) + rng.normal(0, 0.5)
            rows.append((f"P{i}", condition, "trust", score, period))
    scores = pd.DataFrame(rows, columns=["participant_id", "condition", "construct", "score", "period"])
    res = period_effect(scores, "b", "v")
    assert res["period_diff"] == pytest.approx(0.3, abs=0.06)
    assert res["adjusted_mean_diff"] == pytest.approx(0.5, abs=0.06)
    assert res["p"] < 0.001
    assert period_effect(scores.drop(columns="period"), "b", "v") is None


def test_mann_whitney_exact_small_samples_like_r():
    """Without ties and with both samples < 50 R is exact: wilcox.test(1:5, 6:10) → W = 0,
    p-value = 0.007937 (= 2 / choose(10, 5))."""
    res = mann_whitney_test(np.arange(1.0, 6.0), np.arange(6.0, 11.0))
    assert res["statistic"] == 0
    assert res["p"] == pytest.approx(2 / 252, abs=1e-6)
    assert res["effect_size"]["value"] == -1.0
