"""Writers: ``results.json``, ``report.md``, ``report.html`` (the document's blocks, with every figure) and
``tables.tex`` (booktabs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from analysis.document import Block, document, latex_tables


def _md_table(frame: pd.DataFrame) -> str:
    # a "|" inside a cell (lme4 formulas) would end it: GitHub-flavoured Markdown reads "\|" as the character
    cells = frame.astype(object).where(frame.notna(), "–").astype(str).map(lambda c: c.replace("|", "\\|"))
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return "\n".join([header, rule, *("| " + " | ".join(row) + " |" for row in cells.to_numpy())])


def render_markdown(blocks: list[Block]) -> str:
    out = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + str(content))
        elif kind == "p":
            out.append(str(content))
        elif kind == "ul":
            out.append("\n".join(f"- {line}" for line in content))
        else:
            out.append(_md_table(content))
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Markdown emphasis and code to HTML (the text is already HTML-escaped where it holds data)."""
    text = re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


FIGURE_LOADER = """
window.addEventListener('load', function () {
  var figures = document.querySelectorAll('div[data-figure]');
  function draw(div) {
    if (div.dataset.drawn) return;
    div.dataset.drawn = '1';
    var spec = JSON.parse(document.getElementById(div.id + '-spec').textContent);
    Plotly.newPlot(div, spec.data, spec.layout, {responsive: true});
  }
  function observe() {
    window.addEventListener('beforeprint', function () { figures.forEach(draw); });
    if (!('IntersectionObserver' in window)) { figures.forEach(draw); return; }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { seen.unobserve(e.target); draw(e.target); } });
    }, {rootMargin: '800px 0px'});
    figures.forEach(function (f) { seen.observe(f); });
  }
  var code = document.getElementById('plotly-source').textContent;
  var script = document.createElement('script');
  script.src = URL.createObjectURL(new Blob([code], {type: 'text/javascript'}));
  script.onload = observe;
  document.body.appendChild(script);
});
"""
"""Runs plotly.js only after the page has loaded, then draws each figure when it comes near the viewport (and
all of them before printing). Evaluating plotly.js (≈ 4.6 MB) alone takes seconds on a slow machine; run
inline, it held back the load event and the figures drawn at load added more (docs/performance.md)."""


CARTESIAN_BUNDLE = Path(__file__).parent / "vendor" / "plotly-cartesian.min.js"
CARTESIAN_TRACES = frozenset(
    {"bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour", "image", "pie",
     "scatter", "scatterternary", "violin"}
)  # fmt: skip
"""The trace types of plotly.js's cartesian partial bundle (its README)."""


def plotly_source(figures: dict[str, go.Figure]) -> str:
    """The smallest plotly.js that draws ``figures``: the vendored cartesian bundle (1.5 MB; analysis/vendor)
    when it is the plotly.js version of the installed plotly.py and every trace is one of its types, else the
    full bundle plotly.py ships (4.8 MB)."""
    types = {trace.type for fig in figures.values() for trace in fig.data}
    if types <= CARTESIAN_TRACES and CARTESIAN_BUNDLE.is_file():
        text = CARTESIAN_BUNDLE.read_text(encoding="utf-8")
        if f" v{plotly.offline.get_plotlyjs_version()}\n" in text[:300]:
            return text
    return plotly.offline.get_plotlyjs()


def _figure_html(index: int, fig: go.Figure) -> str:
    """A placeholder of the figure's height and its spec as inert JSON (``</`` escaped for the HTML parser)."""
    spec = fig.to_json().replace("</", "<\\/")
    height = fig.layout.height or 450
    return (
        f'<div class="fig"><div class="plotly-graph-div" id="figure-{index}" data-figure="{index}" '
        f'style="min-height:{height}px"></div><script type="application/json" id="figure-{index}-spec">'
        f"{spec}</script></div>"
    )


def render_html(blocks: list[Block], figures: dict[str, go.Figure]) -> str:
    """One self-contained HTML page: the report plus every interactive figure, plotly.js inlined once.

    The text comes first and paints at once; plotly.js (:func:`plotly_source`, as inert text) and a loader follow at
    the end of the body: plotly.js runs after the load event and each figure is drawn when scrolled near
    (:data:`FIGURE_LOADER`)."""
    body = []
    for kind, content in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{content}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(str(content))}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(line)}</li>" for line in content) + "</ul>")
        else:
            body.append(content.to_html(index=False, border=0, classes="tbl", na_rep="–"))
    scripts = ""
    if figures:
        body.append("<h2>Figures</h2>")
        body += [_figure_html(i, fig) for i, fig in enumerate(figures.values())]
        scripts = (
            f'<script type="text/plain" id="plotly-source">{plotly_source(figures)}</script>'
            f"<script>{FIGURE_LOADER}</script>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.5}"
        ".tbl{border-collapse:collapse;font-size:.9em;margin:1em 0}.tbl td,.tbl th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left}.fig{margin:2em 0}"
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Study analysis report</title>"
        f"<style>{style}</style></head><body>" + "\n".join(body) + scripts + "</body></html>\n"
    )


# ---------------------------------------------------------------- LaTeX
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "−": "$-$",
    "α": r"$\alpha$",
    "κ": r"$\kappa$",
    "ω": r"$\omega$",
}


def tex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``)."""
    cols = "l" + "r" * (len(frame.columns) - 1)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(tex_escape(x) for x in row) + r" \\" for row in frame.astype(str).to_numpy()]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(results: dict) -> str:
    """``tables.tex``: every table of :func:`analysis.document.latex_tables` as a booktabs table."""
    parts = [f"% Generated by {results['tool']}; requires \\usepackage{{booktabs}}"]
    parts += [latex_table(frame, caption, label) for frame, caption, label in latex_tables(results)]
    return "\n\n".join(parts) + "\n"


def results_json(results: dict) -> str:
    """``results.json``'s text (the command writes it, the dashboard's zip carries it: the same bytes)."""
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False)


def write_reports(results: dict, figures: dict[str, go.Figure], out_dir: Path) -> None:
    """Write results.json, report.md, tables.tex and report.html into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(results_json(results), encoding="utf-8")
    blocks = document(results)
    (out_dir / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    (out_dir / "tables.tex").write_text(render_latex(results), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(blocks, figures), encoding="utf-8")
