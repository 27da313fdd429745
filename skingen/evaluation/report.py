"""``metrics.json`` and a self-contained ``report.html`` (plotly, its JavaScript inlined once) from the results.

The folder is written all at once (:func:`formats.atomic.atomic_directory`): a failure leaves no partial report.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from pathlib import Path

from formats.atomic import atomic_directory
from skingen.evaluation.names import MetricInfo, metric_infos

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"


def write_report(out: str | Path, results: dict[str, object], *, overwrite: bool = False) -> Path:
    """Write ``out/metrics.json`` and ``out/report.html``; returns ``out``."""
    text = json.dumps(_plain(results), indent=2, allow_nan=False) + "\n"
    page = render_html(results)
    with atomic_directory(out, overwrite=overwrite) as staging:
        (staging / METRICS_FILE).write_text(text, encoding="utf-8")
        (staging / REPORT_FILE).write_text(page, encoding="utf-8")
    return Path(out)


def _plain(value: object) -> object:
    """JSON-ready: tuples → lists, numpy scalars → Python, NaN → None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def group_figure(results: dict[str, object]):
    """One bar panel per metric: its value per Fitzpatrick group (and overall), with the interval as error bars."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    by_group = results["by_skin_tone"]
    shown = [
        m
        for m in metric_infos(results["feature_spaces"])
        if any(_value(r, m) is not None for r in by_group.values())
    ]
    columns = 3
    rows = max(1, math.ceil(len(shown) / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[m.label for m in shown])
    names = ["all", *by_group]
    for n, metric in enumerate(shown):
        entries = [results, *by_group.values()]
        values = [_value(e, metric) for e in entries]
        low, high = zip(*(_bounds(e, metric) for e in entries), strict=True)
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        None if h is None or v is None else h - v for h, v in zip(high, values, strict=True)
                    ],
                    "arrayminus": [
                        None if lo is None or v is None else v - lo for lo, v in zip(low, values, strict=True)
                    ],
                },
                marker_color=["#7f7f7f", "#f2c9a0", "#c68642", "#5c3a1e"][: len(names)],
                showlegend=False,
                hovertemplate="%{x}: %{y:.4g}<extra>" + metric.label + "</extra>",
            ),
            row=n // columns + 1,
            col=n % columns + 1,
        )
    fig.update_layout(height=300 * rows, title="Metrics per Fitzpatrick group (error bars: intervals)")
    return fig


def _value(entry: dict[str, object], metric: MetricInfo) -> float | None:
    value = entry.get(metric.key)
    return value["mean"] if metric.interval == "spread" and value is not None else value


def _bounds(entry: dict[str, object], metric: MetricInfo) -> tuple[float | None, float | None]:
    if metric.interval == "spread":
        value = entry.get(metric.key)
        return (value["low"], value["high"]) if value else (None, None)
    ci = entry.get(f"{metric.key}_ci")
    return (ci[0], ci[1]) if ci else (None, None)


def confusion_figure(closed_loop: dict[str, object]):
    """Heatmap: intended condition (rows) against the diagnoser's answer (columns), counts of images."""
    import plotly.graph_objects as go

    labels = closed_loop["labels"]
    intended = [label for label in labels if label in closed_loop["by_condition"]]
    fig = go.Figure(
        go.Heatmap(
            z=closed_loop["confusion"][: len(intended)],
            x=labels,
            y=intended,
            colorscale="Blues",
            text=closed_loop["confusion"][: len(intended)],
            texttemplate="%{text}",
            hovertemplate="intended %{y}, diagnosed %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Closed loop ({html.escape(str(closed_loop['diagnoser']))}): intended vs diagnosed condition",
        xaxis_title="diagnosed",
        yaxis_title="intended",
        yaxis_autorange="reversed",
        height=300 + 30 * len(intended),
    )
    return fig


def figure_divs(figures: Iterable[object]) -> str:
    """The figures as HTML, plotly's JavaScript inlined once (the page works offline); the divs get numbered
    ids instead of plotly's random ones, so the same results always give the same page."""
    return "\n".join(
        f'<div class="fig">{fig.to_html(full_html=False, include_plotlyjs=n == 0, div_id=f"figure-{n}")}</div>'
        for n, fig in enumerate(figures)
    )


def render_html(results: dict[str, object]) -> str:
    figures = [group_figure(results)]
    if results.get("closed_loop"):
        figures.append(confusion_figure(results["closed_loop"]))
    plots = figure_divs(figures)
    rows = "\n".join(
        f"<tr><td>{html.escape(m.label)}</td>"
        + "".join(f"<td>{_cell(e, m)}</td>" for e in (results, *results["by_skin_tone"].values()))
        + "</tr>"
        for m in metric_infos(results["feature_spaces"])
    )
    header = "".join(f"<th>{html.escape(g)}</th>" for g in results["by_skin_tone"])
    counts = "".join(
        f"<td>{e['n_real'] if e['n_real'] is not None else '–'} / {e['n_generated']}</td>"
        for e in (results, *results["by_skin_tone"].values())
    )
    summary = (
        "".join(f"<li>{html.escape(s)}</li>" for s in results["summary"])
        or "<li>No group comparison possible.</li>"
    )
    warnings = "".join(
        f"<li><code>{html.escape(w['code'])}</code> {html.escape(w['message'])}</li>"
        for w in results["warnings"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skingen evaluate</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>Generated images against real images</h1>
<p>{results["n_generated"]} generated, {results["n_real"]} real images; feature spaces
{html.escape(", ".join(f"{s} (d = {d['dim']})" for s, d in results["distances"].items()))}.
Intervals: {round(results["settings"]["confidence"] * 100)}%; FD∞ and KD by a delete-a-group jackknife, the
per-image metrics by a bootstrap over images. The plug-in FD has no interval and depends on n: compare groups
by FD∞, FD at equal n (the spread of its subsamples in brackets) or KD.</p>
<h2>Gaps between skin-tone groups</h2><ul>{summary}</ul>
<h2>Metrics</h2><table><tr><th>metric</th><th>all</th>{header}</tr>
<tr><td>n real / generated</td>{counts}</tr>{rows}</table>
{_fidelity_html(results.get("skin_tone_fidelity"))}
{plots}
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
</body></html>
"""


def _cell(entry: dict[str, object], metric: MetricInfo) -> str:
    value = _value(entry, metric)
    if value is None:
        return "–"
    low, high = _bounds(entry, metric)
    return f"{value:.4g}" + (f" [{low:.4g}, {high:.4g}]" if low is not None else "")


def _interval_text(ci: list[float] | tuple[float, float] | None) -> str:
    return "" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]"


def _fidelity_html(fidelity: dict[str, object] | None) -> str:
    """Requested vs measured skin-tone group: a row per requested group, the agreement and Cohen's κ."""
    if not fidelity or not fidelity["n"]:
        return ""
    groups = fidelity["groups"]
    header = "".join(f"<th>measured {html.escape(g)}</th>" for g in groups)
    rows = "".join(
        f"<tr><td>{html.escape(group)} (n = {entry['n']})</td>"
        + "".join(f"<td>{entry['measured'][g]}</td>" for g in groups)
        + f"<td>{entry['measured']['unmeasured']}</td><td>"
        + (
            "–"
            if entry["agreement"] is None
            else f"{entry['agreement']:.3g}{_interval_text(entry['agreement_ci'])}"
        )
        + "</td></tr>"
        for group, entry in fidelity["by_requested_group"].items()
        if entry["n"]
    )
    kappa = (
        "–" if fidelity["kappa"] is None else f"{fidelity['kappa']:.3g}{_interval_text(fidelity['kappa_ci'])}"
    )
    agreement = (
        "–"
        if fidelity["agreement"] is None
        else (f"{fidelity['agreement']:.3g}{_interval_text(fidelity['agreement_ci'])}")
    )
    return f"""<h2>Skin tone: requested vs measured</h2>
<p>Each generated image's Fitzpatrick group measured by ITA on its skin-coloured pixels around the lesion
(an approximation: lighting moves it). Agreement {agreement} over {fidelity["n_measured"]} measured images;
Cohen's κ {kappa}.</p>
<table><tr><th>requested</th>{header}<th>unmeasured</th><th>agreement</th></tr>{rows}</table>"""
