"""k > 2 conditions: omnibus and pairwise statistics against values computed here by other routes.

The implementation uses pingouin (welch_anova, pairwise_gameshowell, rm_anova) and scipy (kruskal,
friedmanchisquare); the references below are the textbook formulas written out with numpy, statsmodels'
``anova_oneway``/``AnovaRM``/``OLS``/``OrderedModel``/``multipletests`` and scipy's studentized range.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.stats.anova import AnovaRM, anova_lm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway
from statsmodels.stats.power import TTestIndPower, TTestPower

from analysis.compare import cumulative_logit
from analysis.constructs import primary_result
from analysis.load import build_study_data
from analysis.multiarm import friedman, games_howell, kruskal_wallis, pairwise, rm_anova, welch_anova
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.power import LikertGenerator, required_n, sensitivity, study_plan
from analysis.scores import ConditionScores

MEANS = {"base": 0.0, "gen": 0.9, "ret": 0.3}  # planted effects (between: unequal SDs and sizes)
SDS = {"base": 1.0, "gen": 0.6, "ret": 1.6}
SIZES = {"base": 30, "gen": 24, "ret": 36}


@pytest.fixture(scope="module")
def groups() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {c: rng.normal(MEANS[c], SDS[c], SIZES[c]) for c in MEANS}


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    """40 participants × 3 conditions, correlated within participant, non-spherical (unequal variances)."""
    rng = np.random.default_rng(5)
    person = rng.normal(0, 1, 40)
    data = {c: person * (0.5 if c == "ret" else 1.0) + MEANS[c] + rng.normal(0, SDS[c], 40) for c in MEANS}
    return pd.DataFrame(data, index=[f"P{i:02d}" for i in range(40)])


def test_welch_anova_and_omega_squared_match_hand_and_statsmodels(groups):
    res = welch_anova(groups)
    # Welch (1951) by hand
    n = np.array([len(g) for g in groups.values()])
    m = np.array([g.mean() for g in groups.values()])
    w = n / np.array([g.var(ddof=1) for g in groups.values()])
    k = len(groups)
    grand = (w * m).sum() / w.sum()
    lam = 3 * (((1 - w / w.sum()) ** 2) / (n - 1)).sum() / (k**2 - 1)
    f = ((w * (m - grand) ** 2).sum() / (k - 1)) / (1 + 2 * lam * (k - 2) / 3)
    assert res["statistic"] == pytest.approx(f, rel=1e-9)
    assert res["df2"] == pytest.approx(1 / lam, rel=1e-9)
    ref = anova_oneway(list(groups.values()), use_var="unequal")
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-6) and res["df1"] == 2
    # ω² from the classic ANOVA table of an OLS fit
    frame = pd.DataFrame({"g": np.repeat(list(groups), n), "y": np.concatenate(list(groups.values()))})
    table = anova_lm(smf.ols("y ~ C(g)", data=frame).fit())
    ss_b, ss_e = table.loc["C(g)", "sum_sq"], table.loc["Residual", "sum_sq"]
    ms_e = table.loc["Residual", "mean_sq"]
    assert res["effect_size"]["value"] == pytest.approx((ss_b - 2 * ms_e) / (ss_b + ss_e + ms_e), rel=1e-9)
    assert res["p"] < 0.001  # the planted differences are found


def test_kruskal_wallis_matches_the_rank_formula(groups):
    res = kruskal_wallis(groups)
    ranks = stats.rankdata(np.concatenate(list(groups.values())))  # continuous data: no ties
    n = len(ranks)
    sums, start = [], 0
    for g in groups.values():
        sums.append((ranks[start : start + len(g)].sum(), len(g)))
        start += len(g)
    h = 12 / (n * (n + 1)) * sum(r * r / size for r, size in sums) - 3 * (n + 1)
    assert res["statistic"] == pytest.approx(h, rel=1e-9)
    assert res["p"] == pytest.approx(stats.chi2.sf(h, 2), rel=1e-9)
    assert res["effect_size"]["value"] == pytest.approx(h / ((n * n - 1) / (n + 1)), rel=1e-9)


def test_games_howell_matches_the_studentized_range_by_hand(groups):
    res = games_howell(groups, confidence=0.9)
    for a, b in [("base", "gen"), ("base", "ret"), ("gen", "ret")]:
        x, y = groups[a], groups[b]
        va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
        diff = y.mean() - x.mean()
        p = stats.studentized_range.sf(abs(diff) / se * np.sqrt(2), 3, df)
        q = stats.studentized_range.ppf(0.9, 3, df) / np.sqrt(2)
        rec = res[(a, b)]
        assert rec["mean_diff"] == pytest.approx(diff, rel=1e-9)
        assert rec["df"] == pytest.approx(df, rel=1e-9) and rec["se"] == pytest.approx(se, rel=1e-9)
        assert rec["p"] == pytest.approx(p, rel=1e-4, abs=1e-6)
        assert rec["ci"] == pytest.approx([diff - q * se, diff + q * se], rel=1e-6)
        assert res[(b, a)]["mean_diff"] == pytest.approx(-diff)


def test_rm_anova_greenhouse_geisser_and_friedman_match_statsmodels_and_hand(wide):
    res = rm_anova(wide)
    long = wide.rename_axis("pid").reset_index().melt("pid", var_name="cond", value_name="y")
    ref = AnovaRM(long, "y", "pid", within=["cond"]).fit().anova_table.iloc[0]
    assert res["statistic"] == pytest.approx(ref["F Value"], rel=1e-9)
    assert res["p_uncorrected"] == pytest.approx(ref["Pr > F"], rel=1e-6)
    # Greenhouse–Geisser ε from the double-centred covariance matrix (Box 1954)
    s = np.cov(wide.to_numpy(), rowvar=False)
    k = s.shape[0]
    c = np.eye(k) - 1 / k
    sc = c @ s @ c
    eps = np.trace(sc) ** 2 / ((k - 1) * np.sum(sc * sc))
    assert res["epsilon"] == pytest.approx(eps, rel=1e-6)
    assert res["p"] == pytest.approx(stats.f.sf(ref["F Value"], eps * 2, eps * 2 * 39), rel=1e-6)
    assert res["df1"] == pytest.approx(2 * eps) and res["p"] < 0.05
    rank = friedman(wide)
    r = wide.rank(axis=1).sum().to_numpy()
    n = len(wide)
    chi = 12 / (n * k * (k + 1)) * (r**2).sum() - 3 * n * (k + 1)
    assert rank["statistic"] == pytest.approx(chi, rel=1e-9)
    assert rank["effect_size"]["value"] == pytest.approx(chi / (n * (k - 1)), rel=1e-9)


@pytest.mark.parametrize("design", ["between", "within"])
def test_pairwise_families_are_holm_adjusted_within_each(groups, wide, design):
    families = (
        pairwise(ConditionScores(("base", "gen", "ret"), groups=groups), "base")
        if design == "between"
        else pairwise(ConditionScores(("base", "gen", "ret"), complete=wide), "base")
    )
    assert [(r["a"], r["b"]) for r in families["vs_baseline"]] == [("base", "gen"), ("base", "ret")]
    assert [(r["a"], r["b"]) for r in families["all_pairs"]] == [
        ("base", "gen"),
        ("base", "ret"),
        ("gen", "ret"),
    ]
    for records in families.values():
        for kind in ("parametric", "nonparametric"):
            raw = [r[kind]["p"] for r in records]
            assert [r[kind]["p_holm"] for r in records] == pytest.approx(
                list(multipletests(raw, method="holm")[1])
            )
    gen = families["vs_baseline"][0]["parametric"]
    if design == "between":
        ref = stats.ttest_ind(groups["gen"], groups["base"], equal_var=False)
        assert gen["effect_size"]["name"] == "hedges_g" and "games_howell" in families["all_pairs"][2]
    else:
        ref = stats.ttest_rel(wide["gen"], wide["base"])
        d = wide["gen"] - wide["base"]
        assert gen["effect_size"]["value"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert gen["p"] == pytest.approx(ref.pvalue, rel=1e-9) and gen["mean_diff"] > 0.5
    lo, hi = gen["effect_size"]["ci"]
    assert lo < gen["effect_size"]["value"] < hi and lo > 0  # every pair's effect comes with its CI


def test_ordinal_model_with_condition_as_a_factor_matches_orderedmodel():
    rng = np.random.default_rng(2)
    n = 200
    pid = np.repeat(np.arange(n), 3)
    group = np.tile([0, 1, 2], n)
    latent = rng.normal(size=n)[pid] + np.array([0.0, 0.8, 0.3])[group] + rng.logistic(size=len(pid))
    value = np.digitize(latent, [-1.5, -0.5, 0.5, 1.5]) + 1
    res = cumulative_logit(value, group, pid)
    exog = pd.DataFrame({"gen": (group == 1).astype(float), "ret": (group == 2).astype(float)})
    ref = OrderedModel(value, exog, distr="logit").fit(
        method="bfgs", disp=0, cov_type="cluster", cov_kwds={"groups": pid}
    )
    for term, name in zip(res["terms"], ("gen", "ret"), strict=True):
        assert term["log_odds"] == pytest.approx(ref.params[name], abs=1e-4)
        assert term["se"] == pytest.approx(ref.bse[name], rel=0.02)
    assert res["wald"]["df"] == 2 and res["wald"]["p"] < 0.001
    assert res["terms"][0]["log_odds"] > res["terms"][1]["log_odds"] > 0


def test_power_for_k_arms_without_hypotheses_splits_alpha_over_the_comparisons_with_the_baseline():
    a = required_n(0.5, "between", study_plan(None, 3), k=3)
    exact = TTestIndPower().solve_power(effect_size=0.5, alpha=0.025, power=0.8)
    assert a["n_exact"] == pytest.approx(exact, rel=1e-4) and a["n_total"] == 3 * a["n_per_group"]
    assert (a["alpha_per_test"], a["family"], a["k"]) == (0.025, 2, 3)
    s = sensitivity(40, "within", study_plan(None, 4), k=4)
    assert s["min_effect"] == pytest.approx(
        TTestPower().solve_power(nobs=40, alpha=0.05 / 3, power=0.8), rel=1e-4
    )
    assert required_n(0.5, "between", study_plan(None, 2))["alpha_per_test"] == 0.05  # two arms: no split


@pytest.mark.parametrize("design", ["between", "within"])
def test_simulated_k_arm_study_recovers_the_planted_pair(design):
    gen = LikertGenerator(design=design, baseline="base", compared="gen", others=("ret",))
    responses = gen(90, 1.0, np.random.default_rng(4)).astype(str)
    if design == "within":
        orders = responses.drop_duplicates("participant_id")["sequence"].value_counts()
        assert len(orders) == 3 and orders.nunique() == 1  # each cyclic order equally often
    data = build_study_data(responses, design=design, baseline="base", conditions=("base", "gen", "ret"))
    assert data.compared == "" and data.conditions == ("base", "gen", "ret")
    result = run_analysis(data, AnalysisConfig(n_boot=0)).results
    block = result["constructs"]["trust"]
    assert result["conditions"] == ["base", "gen", "ret"]
    pairs = {(r["a"], r["b"]): r["parametric"] for r in block["pairwise"]["all_pairs"]}
    assert pairs[("base", "gen")]["effect_size"]["value"] == pytest.approx(1.0, abs=0.45)
    assert pairs[("base", "gen")]["p_holm"] < 0.01 and pairs[("base", "ret")]["p_holm"] > 0.01
    planted = primary_result(responses, design, ("base", "gen", "ret"), "gen", "trust")
    vs_base = block["pairwise"]["vs_baseline"][0]["parametric"]
    assert planted == {"p": vs_base["p_holm"], "effect": vs_base["effect_size"]["value"]}
    assert result["power"]["a_priori"]["k"] == 3


def test_cli_compares_the_conditions_it_is_given(tmp_path):
    from app.analysis_command import main

    gen = LikertGenerator(design="between", baseline="base", compared="gen", others=("ret",))
    path = tmp_path / "responses.csv"
    gen(30, 1.0, np.random.default_rng(1)).to_csv(path, index=False)
    out = tmp_path / "out"
    args = [
        "report",
        "--responses",
        str(path),
        "--baseline",
        "base",
        "--design",
        "between",
        "--no-figures",
        "--quiet",
    ]
    assert main([*args, "--conditions", "base,gen,ret", "--out", str(out), "--bootstrap", "0"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["conditions"] == ["base", "gen", "ret"] and "visual" not in results
    assert "omnibus" in results["constructs"]["trust"]
    assert "Games–Howell p" in (out / "report.md").read_text(encoding="utf-8")
    assert (
        main([*args, "--out", str(tmp_path / "two")]) == 2
    )  # three conditions, neither --visual nor --conditions
    assert main([*args, "--conditions", "base,gen", "--out", str(tmp_path / "three")]) == 2
    assert (
        main([*args, "--conditions", "base,gen,ret", "--visual", "gen", "--out", str(tmp_path / "four")]) == 2
    )
