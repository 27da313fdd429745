"""Figures (expected traces), report writers and the CLI end to end."""

from __future__ import annotations

import json
import re

import pytest

from analysis.apa import bounded, num, pval
from analysis.figures import build_figures, find_browser, write_figures
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_latex
from app.analysis_command import main
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
    return build_figures(analysis)


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
    flow = figures["flow"]  # the CONSORT diagram: boxes (annotations), no traces
    texts = [a.text for a in flow.layout.annotations]
    assert flow.data == () and texts[0] == "<b>Consented</b> (n = 34)"
    assert sum("<b>Analysed</b>" in t for t in texts) == 2 and any(
        "failed attention check" in t for t in texts
    )
    assert sum(int(t.split("n = ")[1].split(")")[0]) for t in texts if t.startswith("<b>Analysed")) == 30
    ratings = figures["ratings"]
    assert _traces(ratings) == [("bar", "eczema"), ("bar", "psoriasis")]
    assert ratings.data[0].error_y.arrayminus is not None
    assert _traces(figures["power"]) == [
        ("scatter", "analytic d_z = 0.5"),
        ("scatter", "simulated d_z = 0.5"),
    ]
    assert figures["power"].layout.xaxis.title.text.startswith("participants in total")
    assert "mixed model, participants and cases random" in figures["construct_trust"].layout.title.text
    assert "mixed model" not in figures["construct_comprehension"].layout.title.text  # no per-case items
    cases = [name for kind, name in _traces(figures["power_cases"])]
    assert cases[0] == "4 cases" and cases[-1] == "40 cases"  # one line per number of cases


def test_between_construct_figure_has_no_paired_lines():
    responses, _, _ = make_study(n=20, design="between", n_excluded=0)
    res = run_analysis(
        build_study_data(responses, design="between", baseline=BASELINE), AnalysisConfig(n_boot=0)
    )
    figs = build_figures(res)
    assert "paired" not in [t.name for t in figs["construct_trust"].data]


def test_apa_formatting():
    assert pval(0.0004) == "*p* < .001" and pval(0.0234) == "*p* = .023"
    assert bounded(0.734) == ".73" and bounded(-0.25) == "-.25" and num(-0.001) == "0.00"


def test_latex_tables_are_booktabs(analysis):
    tex = render_latex(analysis.results)
    assert tex.count(r"\toprule") == 5 and r"\bottomrule" in tex  # flow, mixed, constructs, ratings, cases
    assert "tab:mixed" in tex  # the per-case item (case_trust) makes trust a mixed-model construct
    assert r"d\_z [95 \% CI]" in tex  # escaped; the effect column names its measure
    assert "excluded: failed attention check" in tex  # reasons in words, not codes


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
    assert (
        results["schema_version"] == 5 and results["constructs"]["trust"]["omnibus"]["parametric"]["df"] == 23
    )
    md = (out / "report.md").read_text()
    assert re.search(r"\*t\*\(23\) = -?\d+\.\d\d, \*p\* [=<] \.\d{3}", md)
    assert "relative change of means" in md and "*d*<sub>z</sub> =" in md
    assert re.search(r"BF<sub>10</sub> = \d", md) and "| BF10 |" in md  # beside every construct t-test
    assert results["constructs"]["trust"]["omnibus"]["parametric"]["bayes_factor"]["r"] == pytest.approx(
        2**0.5 / 2
    )
    html = (out / "report.html").read_text()
    assert "<script src=" not in html and html.count('class="plotly-graph-div"') == 8  # with power_cases
    assert (out / "figures" / "construct_trust.html").exists() and (
        out / "figures" / "plotly.min.js"
    ).exists()


def test_report_html_draws_every_figure_in_chromium(tmp_path, analysis, figures):
    """The page carries plotly.js once and draws each figure as it is scrolled to (no script errors)."""
    import shutil

    from analysis.document import document
    from analysis.render import render_html
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    require(shutil.which(CHROMIUM) is not None, "the browser check needs Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    page_path = tmp_path / "report.html"
    text = render_html(document(analysis.results), figures)
    page_path.write_text(text, encoding="utf-8")
    banners = [m.start() for m in re.finditer(r"\* plotly\.js .*?v\d", text)]
    assert len(banners) == 1 and text.index("<h1>") < banners[0]  # one copy, after the text
    assert "(cartesian - minified)" in text[banners[0] : banners[0] + 60]  # the partial bundle suffices
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri(), wait_until="load")
        drawn = "() => [...document.querySelectorAll('div[data-figure]')].map(d => !!d.querySelector('.main-svg'))"
        assert not any(page.evaluate(drawn)), "figures far below the first screen wait until scrolled to"
        for y in range(0, page.evaluate("document.body.scrollHeight") + 800, 500):
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(30)
        page.wait_for_function(f"() => ({drawn})().every(Boolean)", timeout=120_000)  # a busy CI machine
        titles = page.evaluate("[...document.querySelectorAll('.gtitle')].map(t => t.textContent)")
        browser.close()
    assert errors == [] and len(titles) == len(figures) and "Participant flow (CONSORT)" in titles


def test_report_html_falls_back_to_the_full_plotly_bundle(figures, monkeypatch):
    """The vendored cartesian bundle only when it is the installed plotly.py's plotly.js and draws every trace."""
    import plotly.graph_objects as go
    import plotly.offline

    from analysis.render import plotly_source

    assert "(cartesian - minified)" in plotly_source(figures)[:200]
    full = plotly.offline.get_plotlyjs()
    assert plotly_source({**figures, "map": go.Figure(go.Scattergeo())}) == full
    monkeypatch.setattr(plotly.offline, "get_plotlyjs_version", lambda: "99.0.0")
    assert plotly_source(figures) == full


def test_no_heading_says_preregistered_above_deviations():
    from analysis.document import hypotheses_heading

    plan = {"status": "as preregistered", "deviations": []}
    assert hypotheses_heading(plan) == "Confirmatory tests of the preregistered hypotheses"
    for changed in (
        {**plan, "deviations": ["20 participants analysed, fewer than the 30 planned"]},
        {"status": "changed after preregistration", "deviations": ["the protocol changed"]},
        {"status": "not preregistered", "deviations": []},
        {"status": "unknown", "deviations": []},
    ):
        assert "preregistered hypotheses" not in hypotheses_heading(changed)


def test_labels_come_from_study_csv_and_a_malformed_cell_names_the_column():
    import pandas as pd

    from analysis.load import AnalysisInputError, from_export

    responses, _, _ = make_study(n=6, seed=1)
    labels = json.dumps({"conditions": {BASELINE: "Text only"}, "items": {"trust_1": "I trust it."}})
    study = pd.DataFrame([{"design": "within", "baseline": BASELINE, "visual": VISUAL, "labels": labels}])
    data = from_export({"responses": responses, "study": study})
    assert data.labels.conditions[BASELINE] == "Text only" and data.labels.items["trust_1"] == "I trust it."
    with pytest.raises(AnalysisInputError, match="study: column 'labels'"):
        from_export({"responses": responses, "study": study.assign(labels="{not json")})
    with pytest.raises(AnalysisInputError, match="study: column 'labels'"):
        from_export({"responses": responses, "study": study.assign(labels="[1, 2]")})


def test_likert_chart_shows_answers_as_given_with_item_text_and_anchors():
    """A reverse-keyed item's bars are the answers participants gave to its wording (not the reversed score),
    rows show item text and condition label, the legend the anchors."""
    import pandas as pd

    from analysis.figures import likert_figure
    from analysis.scores import reverse_code

    rows = [
        {"participant_id": f"P{i}", "condition": c, "item": item, "construct": "trust", "value": 7.0,
         "reverse_coded": int(item == "trust_3"), "scale_min": 1.0, "scale_max": 7.0}
        for i in range(4) for c in (BASELINE, VISUAL) for item in ("trust_1", "trust_3")
    ]  # fmt: skip
    scored = reverse_code(pd.DataFrame(rows))
    assert set(scored.loc[scored["item"] == "trust_3", "value"]) == {1.0}  # the score is reversed …
    labels = {
        "conditions": {BASELINE: "Text only", VISUAL: "With images"},
        "items": {"trust_1": "I trust it.", "trust_3": "I am suspicious of it."},
        "anchors": {i: {"1": "Strongly disagree", "7": "Strongly agree"} for i in ("trust_1", "trust_3")},
    }
    fig = likert_figure(scored, "trust", (BASELINE, VISUAL), labels=labels)
    top = next(t for t in fig.data if t.name == "7 Strongly agree")
    assert list(top.x) == [100.0] * 4  # … the chart shows the 7s that were given
    assert "I am suspicious of it. (reverse-keyed)<br><i>With images</i>" in top.y
    assert "trust_3 · " + VISUAL in top.hovertext  # ids on hover only
