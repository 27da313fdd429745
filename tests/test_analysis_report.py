"""Figures (expected traces), report writers and the CLI end to end."""

from __future__ import annotations

import json
import re

import pytest

from analysis.apa import bounded, num, pval
from analysis.cli import main
from analysis.figures import build_figures, find_browser, write_figures
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_latex
from tests.analysis_data import BASELINE, VISUAL, make_study, write_study
from tests.conftest import require


@pytest.fixture(scope="module")
def analysis():
    responses, participants, ratings = make_study(n=30, seed=4)
    data = build_study_data(responses, participants, ratings, design="within", baseline=BASELINE)
    config = AnalysisConfig(n_boot=20, simulate=True, sim_sizes=(10, 20), sim_effects=(0.5,), sim_reps=5)
    return run_analysis(data, config)


@pytest.fixture(scope="module")
def figures(analysis):
    return build_figures(analysis, "within", BASELINE, VISUAL)


def _traces(fig) -> list[tuple[str, str]]:
    return [(t.type, t.name) for t in fig.data]


def test_figure_set_and_traces(figures):
    assert set(figures) == {
        "flow",
        "construct_trust",
        "construct_comprehension",
        "likert_trust",
        "likert_comprehension",
        "ratings",
        "power",
        "power_cases",
    }
    construct = _traces(figures["construct_trust"])
    assert construct == [
        ("box", BASELINE),
        ("box", VISUAL),
        ("scatter", "paired"),
        ("scatter", "mean ± 95 % CI"),
    ]
    mean_trace = figures["construct_trust"].data[-1]
    assert len(mean_trace.error_y.array) == 2
    likert = figures["likert_trust"]
    assert [t.type for t in likert.data] == ["bar"] * 8  # 7 scale points, the midpoint split in two halves
    assert sorted({t.name for t in likert.data}, key=int) == [str(p) for p in range(1, 8)]
    assert likert.layout.barmode == "relative"
    assert all(min(t.x) <= 0 for t in likert.data if t.name in {"1", "2", "3"})
    assert _traces(figures["flow"]) == [("bar", "participants")]
    assert list(figures["flow"].data[0].x)[-1] == 30
    ratings = figures["ratings"]
    assert _traces(ratings) == [("bar", "eczema"), ("bar", "psoriasis")]
    assert ratings.data[0].error_y.arrayminus is not None
    assert _traces(figures["power"]) == [("scatter", "analytic 0.5"), ("scatter", "simulated 0.5")]
    assert "mixed model, participants and cases random" in figures["construct_trust"].layout.title.text
    assert "mixed model" not in figures["construct_comprehension"].layout.title.text  # no per-case items
    cases = [name for kind, name in _traces(figures["power_cases"])]
    assert cases[0] == "4 cases" and cases[-1] == "40 cases"  # one line per number of cases


def test_between_construct_figure_has_no_paired_lines():
    responses, _, _ = make_study(n=20, design="between", n_excluded=0)
    res = run_analysis(
        build_study_data(responses, design="between", baseline=BASELINE), AnalysisConfig(n_boot=0)
    )
    figs = build_figures(res, "between", BASELINE, VISUAL)
    assert "paired" not in [t.name for t in figs["construct_trust"].data]


def test_apa_formatting():
    assert pval(0.0004) == "*p* < .001" and pval(0.0234) == "*p* = .023"
    assert bounded(0.734) == ".73" and bounded(-0.25) == "-.25" and num(-0.001) == "0.00"


def test_latex_tables_are_booktabs(analysis):
    tex = render_latex(analysis.results)
    assert tex.count(r"\toprule") == 5 and r"\bottomrule" in tex  # flow, mixed, constructs, ratings, cases
    assert "tab:mixed" in tex  # the per-case item (case_trust) makes trust a mixed-model construct
    assert r"attention\_check" in tex  # escaped


def test_static_export_degrades_without_browser(tmp_path, figures, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    warnings = write_figures({"flow": figures["flow"]}, tmp_path / "figs", static=True)
    assert "no Chrome/Chromium found" in warnings[0]
    assert (tmp_path / "figs" / "flow.html").exists() and not (tmp_path / "figs" / "flow.png").exists()


def test_static_export_png_svg(tmp_path, figures):
    require(
        find_browser() is not None, "static figure export needs Chrome/Chromium (apt-get install chromium)"
    )
    warnings = write_figures(
        {"construct_trust": figures["construct_trust"], "ratings": figures["ratings"]}, tmp_path, static=True
    )
    assert warnings == []
    for stem in ("construct_trust", "ratings"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (tmp_path / f"{stem}.svg").read_text()[:500]


def test_cli_report_end_to_end(tmp_path):
    paths = write_study(tmp_path / "export", n=24, seed=6)
    out = tmp_path / "report"
    code = main(
        [
            "report",
            "--responses",
            str(paths["responses"]),
            "--participants",
            str(paths["participants"]),
            "--ratings",
            str(paths["ratings"]),
            "--design",
            "within",
            "--baseline",
            BASELINE,
            "--bootstrap",
            "20",
            "--no-static",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "results.json",
        "report.md",
        "tables.tex",
        "report.html",
        "figures",
    }
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 4 and results["constructs"]["trust"]["parametric"]["df"] == 23
    md = (out / "report.md").read_text()
    assert re.search(r"\*t\*\(23\) = -?\d+\.\d\d, \*p\* [=<] \.\d{3}", md)
    assert "relative change of means" in md and "*d*<sub>z</sub> =" in md
    html = (out / "report.html").read_text()
    assert "<script src=" not in html and html.count('class="plotly-graph-div"') == 8  # with power_cases
    assert (out / "figures" / "construct_trust.html").exists() and (
        out / "figures" / "plotly.min.js"
    ).exists()
