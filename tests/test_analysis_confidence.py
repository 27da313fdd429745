"""``--confidence`` reaches every interval and every label: checked at 90 % against reference values computed
here from SciPy and statsmodels, and no output says "95 %"."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis.agreement import bootstrap_coefficients, category_counts, icc_intervals, wilson_interval
from analysis.compare import cumulative_logit, paired_ttest, period_effect, welch_ttest
from analysis.figures import build_figures
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.reliability import cronbach_alpha
from app.analysis_command import main
from tests.analysis_data import BASELINE, VISUAL, make_study, write_study

LEVEL = 0.9
Z = stats.norm.ppf(0.5 + LEVEL / 2)
NINETY_FIVE = re.compile(r"95\s?%|ci_?95", re.IGNORECASE)


def t_interval(x: np.ndarray) -> list[float]:
    half = stats.t.ppf(0.5 + LEVEL / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return [x.mean() - half, x.mean() + half]


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(11)
    return rng.normal(4.6, 1, 25), rng.normal(4.0, 1.2, 25)


def test_t_tests_and_effect_sizes_at_the_level(samples):
    visual, baseline = samples
    paired = paired_ttest(visual, baseline, LEVEL)
    assert paired["ci"] == pytest.approx(t_interval(visual - baseline), rel=1e-9)
    n, t = len(visual), paired["statistic"]
    lo, hi = paired["effect_size"]["ci"]  # noncentral t: the observed t sits at the level's tails
    assert stats.nct.cdf(t, n - 1, lo * math.sqrt(n)) == pytest.approx(0.5 + LEVEL / 2, abs=1e-6)
    assert stats.nct.cdf(t, n - 1, hi * math.sqrt(n)) == pytest.approx(0.5 - LEVEL / 2, abs=1e-6)
    welch = welch_ttest(visual, baseline, LEVEL)
    v1, v2 = visual.var(ddof=1) / n, baseline.var(ddof=1) / n
    df = (v1 + v2) ** 2 / (v1**2 / (n - 1) + v2**2 / (n - 1))
    half = stats.t.ppf(0.5 + LEVEL / 2, df) * math.sqrt(v1 + v2)
    diff = visual.mean() - baseline.mean()
    assert welch["ci"] == pytest.approx([diff - half, diff + half], rel=1e-9)
    assert "ci95" not in paired and "ci95" not in welch["effect_size"]


def test_ordinal_period_and_alpha_at_the_level():
    rng = np.random.default_rng(3)
    values = rng.integers(1, 6, 200).astype(float)
    group = np.repeat([0, 1], 100)
    (res,) = cumulative_logit(values, group, np.tile(np.arange(50), 4), LEVEL)["terms"]
    expected = [res["log_odds"] - Z * res["se"], res["log_odds"] + Z * res["se"]]
    assert res["ci"] == pytest.approx(expected, rel=1e-9)
    assert res["odds_ratio_ci"] == pytest.approx(np.exp(expected).tolist(), rel=1e-9)

    scores = pd.DataFrame(
        [
            {"participant_id": f"p{i}", "condition": c, "score": rng.normal(4 + (c == VISUAL)), "period": per}
            for i in range(20)
            for c, per in ((VISUAL, 1 + i % 2), (BASELINE, 2 - i % 2))
        ]
    )
    period = period_effect(scores, BASELINE, VISUAL, LEVEL)
    wide = scores.pivot(index="participant_id", columns="condition", values=["score", "period"])
    diff = wide[("score", VISUAL)] - wide[("score", BASELINE)]
    visual_first = wide[("period", VISUAL)] < wide[("period", BASELINE)]
    welch = stats.ttest_ind(diff[~visual_first], diff[visual_first], equal_var=False)
    ci = welch.confidence_interval(LEVEL)
    assert period["period_diff_ci"] == pytest.approx([ci.low / 2, ci.high / 2], rel=1e-9)

    items = pd.DataFrame(rng.normal(0, 1, (40, 1)) + rng.normal(0, 0.7, (40, 4)))
    alpha = cronbach_alpha(items, LEVEL)
    n, k = items.shape
    f_lo, f_hi = stats.f.ppf([0.5 + LEVEL / 2, 0.5 - LEVEL / 2], n - 1, (n - 1) * (k - 1))
    feldt = [1 - (1 - alpha["value"]) * f_lo, 1 - (1 - alpha["value"]) * f_hi]  # Feldt (1965)
    assert alpha["ci"] == pytest.approx(feldt, abs=1e-3)  # pingouin rounds to 3 decimals


def test_wilson_bootstrap_and_icc_at_the_level():
    lo, hi = proportion_confint(81, 263, alpha=1 - LEVEL, method="wilson")
    assert wilson_interval(81, 263, LEVEL) == pytest.approx([lo, hi], rel=1e-12)

    ratings = pd.concat(
        [
            pd.DataFrame({"rater_id": f"r{r}", "image_id": [f"i{i}" for i in range(20)], "value": v})
            for r, v in enumerate(
                np.clip(
                    np.round(np.linspace(1, 5, 20)[None] + np.random.default_rng(2).normal(0, 0.8, (3, 20))),
                    1,
                    5,
                )
            )
        ]
    )
    counts, categories = category_counts(ratings)
    wide_ci = bootstrap_coefficients(counts, categories, 300, np.random.default_rng(0), 0.95)
    narrow = bootstrap_coefficients(counts, categories, 300, np.random.default_rng(0), LEVEL)
    assert wide_ci["fleiss_kappa"][0] <= narrow["fleiss_kappa"][0] <= narrow["fleiss_kappa"][1]
    assert narrow["fleiss_kappa"][1] <= wide_ci["fleiss_kappa"][1]

    table = pg.intraclass_corr(
        data=ratings, targets="image_id", raters="rater_id", ratings="value"
    ).set_index("Type")
    at95 = icc_intervals(ratings, 0.95)
    for kind, row in table.iterrows():  # the same formulas as pingouin's (rounded) CI95 column
        assert at95[kind] == pytest.approx(list(row["CI95"]), abs=0.006)
    at90 = icc_intervals(ratings, LEVEL)
    n, k = 20, 3
    f3 = table.at["ICC(C,1)", "F"]  # Shrout & Fleiss (1979) case 3, from the F distribution at 90 %
    f_lo = f3 / stats.f.ppf(0.5 + LEVEL / 2, n - 1, (n - 1) * (k - 1))
    f_hi = f3 * stats.f.ppf(0.5 + LEVEL / 2, (n - 1) * (k - 1), n - 1)
    assert at90["ICC(C,1)"] == pytest.approx([(f_lo - 1) / (f_lo + k - 1), (f_hi - 1) / (f_hi + k - 1)])
    assert at90["ICC(C,k)"] == pytest.approx([1 - 1 / f_lo, 1 - 1 / f_hi])
    f1 = table.at["ICC(1,1)", "F"]
    f_lo = f1 / stats.f.ppf(0.5 + LEVEL / 2, n - 1, n * (k - 1))
    assert at90["ICC(1,1)"][0] == pytest.approx((f_lo - 1) / (f_lo + k - 1))
    for kind in table.index:
        assert at95[kind][0] <= at90[kind][0] <= at90[kind][1] <= at95[kind][1]


def test_trust_calibration_and_ratings_follow_the_level():
    responses, participants, ratings = make_study(n=30, seed=4)
    data = build_study_data(responses, participants, ratings, design="within", baseline=BASELINE)
    analysis = run_analysis(data, AnalysisConfig(n_boot=0, confidence=LEVEL))
    results = analysis.results
    rows = analysis.responses
    wrong = rows[(rows["construct"] == "agreement_with_ai") & (rows["ai_correct"] == 0)]
    rate = wrong.groupby(["participant_id", "condition"])["value"].mean().unstack().dropna()
    over = results["trust_calibration"]["over_reliance"][VISUAL]
    assert over["ci"] == pytest.approx(t_interval((rate[VISUAL] - rate[BASELINE]).to_numpy()), rel=1e-9)
    cell = results["trust_calibration"]["agreement_with_ai"][0]
    answers = rows[
        (rows["construct"] == "agreement_with_ai")
        & (rows["condition"] == cell["condition"])
        & (rows["ai_correct"] == cell["ai_correct"])
    ]["value"]
    expected = proportion_confint(int(answers.sum()), len(answers), alpha=1 - LEVEL, method="wilson")
    assert cell["ci"] == pytest.approx(list(expected))
    relevant = results["ratings"]["relevant"]
    positive = (ratings["value"].astype(float)[ratings["item"] == "relevant"] == 1).sum()
    expected = proportion_confint(
        positive, (ratings["item"] == "relevant").sum(), alpha=1 - LEVEL, method="wilson"
    )
    assert relevant["proportion_positive_ci"] == pytest.approx(list(expected))
    quality = results["ratings"]["quality"]
    assert set(quality["icc_ci"]) == set(quality["icc"])

    figures = build_figures(analysis)
    labels = [fig.layout.title.text or "" for fig in figures.values()]
    labels += [trace.name or "" for fig in figures.values() for trace in fig.data]
    assert any("90 % CI" in label for label in labels)
    assert not [label for label in labels if NINETY_FIVE.search(label)]


def _keys(value) -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in [key, *_keys(v)]]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def test_report_at_90_percent_never_says_95(tmp_path):
    paths = write_study(tmp_path / "export", n=20, seed=8)
    out = tmp_path / "report"
    argv = ["report", "--responses", str(paths["responses"]), "--participants", str(paths["participants"])]
    argv += ["--ratings", str(paths["ratings"]), "--design", "within", "--baseline", BASELINE]
    argv += ["--confidence", str(LEVEL), "--bootstrap", "50", "--no-static", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["schema_version"] == 5 and results["confidence"] == LEVEL
    assert not [k for k in _keys(results) if "95" in k]
    for name in (
        "report.md",
        "tables.tex",
        "report.html",
        *(f"figures/{p.name}" for p in (out / "figures").glob("*.html")),
    ):
        text = (out / name).read_text(encoding="utf-8")
        # plotly.js itself (report.html keeps it as inert text until the page has loaded); figure specs stay
        text = re.sub(
            r'<script(?: type="text/plain" id="plotly-source")?>.*?</script>', "", text, flags=re.DOTALL
        )
        assert not NINETY_FIVE.search(text), (name, NINETY_FIVE.search(text))
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "90 % CI" in md and "Wilson 90 % CIs" in md
    assert "90 \\% CI" in (out / "tables.tex").read_text(encoding="utf-8")
