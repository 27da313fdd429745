"""Plotly figures of the results, written as interactive HTML and (with a Chrome/Chromium) static PNG/SVG.

Static export uses kaleido 1.x, which drives a separately installed Chrome/Chromium: ``BROWSER_PATH`` wins,
else ``chromium``/``google-chrome`` on ``PATH``. Without a browser the export is skipped with a warning.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from scipy import stats

from analysis.apa import ci_label
from analysis.document_standards import arm_name
from analysis.figure_consort import consort_figure
from analysis.labels import anchor_labels, condition_labels, item_label
from analysis.scores import scored_rows

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PALETTE = {"baseline": "#7f7f7f", "compared": "#1f77b4"}
ARM_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")  # D3 after grey
LIKERT_COLORS = ("#b2182b", "#d6604d", "#f4a582", "#e0e0e0", "#92c5de", "#4393c3", "#2166ac")
MAX_PAIRED_LINES = 200
MAX_BOX_POINTS = 300


def find_browser() -> str | None:
    """Path of the Chrome/Chromium kaleido will use, or None."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return next((path for name in BROWSER_NAMES if (path := shutil.which(name))), None)


def _mean_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Mean and half-width of its t-based CI."""
    n = len(values)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return float(values.mean()), float(half)


def _box(values: np.ndarray, name: str, color: str, hover: str = "") -> go.Box:
    """Box of raw values with jittered points (small n), else of precomputed quartiles and Tukey fences;
    ``hover`` (the condition id) is shown on hover only."""
    style = {"name": name, "marker_color": color, "opacity": 0.6, "showlegend": False, "hovertext": hover}
    if len(values) <= MAX_BOX_POINTS:
        return go.Box(y=values, boxpoints="all", jitter=0.3, pointpos=0, **style)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    lower, upper = values[values >= q1 - reach].min(), values[values <= q3 + reach].max()
    return go.Box(
        x=[name], q1=[q1], median=[median], q3=[q3], lowerfence=[lower], upperfence=[upper], **style
    )


def _arms(conditions: Sequence[str]) -> dict[str, str]:
    """Condition → colour, baseline first: grey for the baseline, then the D3 colours in the given order."""
    baseline, *others = conditions
    return {baseline: PALETTE["baseline"], **dict(zip(others, ARM_COLORS, strict=False))}


def construct_figure(
    scores: pd.DataFrame,
    construct: str,
    design: str,
    conditions: Sequence[str],
    confidence: float = 0.95,
    seed: int = 0,
    *,
    names: dict[str, str] | None = None,
) -> go.Figure:
    """Distribution of construct scores per condition (box), mean ± CI, and paired lines (within).

    ``names`` maps condition ids to the protocol's labels, which the axis shows (ids stay in the hover text).

    ``conditions``: every condition to draw, baseline first.
    Traces: one ``Box`` per condition, a ``Scatter`` named for the level (``mean ± 90 % CI`` at 0.9), and for
    within designs a ``Scatter`` named ``paired`` (at most 200 randomly chosen participants, one line each).
    Large samples get precomputed box statistics instead of raw points, which keeps the HTML small.
    """
    sub = scores[scores["construct"] == construct]
    colors = _arms(conditions)
    ids = list(colors)
    shown = [(names or {}).get(c, c) for c in ids]
    fig = go.Figure()
    means, halves = [], []
    for (condition, color), label in zip(colors.items(), shown, strict=True):
        values = sub.loc[sub["condition"] == condition, "score"].to_numpy()
        fig.add_trace(_box(values, label, color, hover=condition))
        mean, half = _mean_ci(values, confidence)
        means.append(mean)
        halves.append(half)
    if design == "within":
        wide = sub.pivot(index="participant_id", columns="condition", values="score")
        wide = wide.reindex(columns=ids).dropna()
        if len(wide) > MAX_PAIRED_LINES:
            wide = wide.sample(MAX_PAIRED_LINES, random_state=seed)
        xs = np.tile([*shown, None], len(wide))
        ys = np.column_stack([wide.to_numpy(), np.full(len(wide), np.nan)]).ravel()
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="paired",
                line={"color": "rgba(0,0,0,0.15)", "width": 1},
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=shown,
            y=means,
            hovertext=ids,
            mode="markers",
            name=f"mean ± {ci_label(confidence)}",
            marker={"color": "black", "size": 11, "symbol": "diamond"},
            error_y={"type": "data", "array": halves, "thickness": 2, "width": 8},
        )
    )
    fig.update_layout(
        title=f"{construct}: scores by condition",
        yaxis_title=f"{construct} score",
        xaxis_title="condition",
        template="plotly_white",
    )
    return fig


def likert_figure(
    responses: pd.DataFrame,
    construct: str,
    conditions: Sequence[str],
    *,
    labels: dict | None = None,
) -> go.Figure:
    """Diverging stacked bars of one construct's items: % of answers per scale point, item × condition
    (every condition of ``conditions``, baseline first).

    ``labels`` (results.json's ``labels``): rows show each item's text and the condition's label, the legend
    the scale's anchor labels; the ids are in the hover text.

    Answers are shown as given (a reverse-keyed item is not reversed here, so its wording and the anchors
    match; the row says "reverse-keyed"). Points below the midpoint extend left, above it right, and the
    midpoint is split across zero
    (Heiberger & Robbins 2014). One ``Bar`` trace per scale point (the midpoint has two halves, the second
    without legend entry).
    """
    rows = scored_rows(responses)
    rows = rows[(rows["construct"] == construct) & rows["condition"].isin(list(conditions))]
    lo, hi = int(rows["scale_min"].min()), int(rows["scale_max"].max())
    points = list(range(lo, hi + 1))
    # the answers as given: beside the item's own wording and anchors, a reverse-keyed item is not reversed
    reversed_items = set()
    if "reverse_coded" in rows.columns:
        flip = rows["reverse_coded"] == 1
        reversed_items = set(rows.loc[flip, "item"])
        rows = rows.assign(
            value=rows["value"].where(~flip, rows["scale_min"] + rows["scale_max"] - rows["value"])
        )
    keys = rows["item"] + " · " + rows["condition"]
    share = (
        pd.crosstab(keys, rows["value"].round().astype(int), normalize="index").reindex(
            columns=points, fill_value=0
        )
        * 100
    )
    share = share.sort_index(ascending=False)
    conditions_shown = (labels or {}).get("conditions") or {}
    row_text = [
        f"{_wrap(item_label(labels, item) + (' (reverse-keyed)' if item in reversed_items else ''))}"
        f"<br><i>{conditions_shown.get(condition, condition)}</i>"
        for item, condition in (key.split(" · ") for key in share.index)
    ]
    anchors = _anchors(rows, labels)
    mid = (lo + hi) / 2
    colors = dict(zip(points, _likert_colors(len(points)), strict=True))
    fig = go.Figure()

    def bar(point: int, x: np.ndarray, legend: bool = True) -> None:
        fig.add_trace(
            go.Bar(
                y=row_text,
                x=x,
                hovertext=list(share.index),
                orientation="h",
                name=f"{point} {anchors[point]}" if anchors.get(point) else str(point),
                marker_color=colors[point],
                showlegend=legend,
                legendgroup=str(point),
                legendrank=point,
            )
        )

    # relative stacking grows outwards in trace order: the midpoint first, then away from it on each side
    if mid in points:
        bar(int(mid), -share[int(mid)].to_numpy() / 2)
        bar(int(mid), share[int(mid)].to_numpy() / 2, legend=False)
    for point in sorted((p for p in points if p < mid), reverse=True):
        bar(point, -share[point].to_numpy())
    for point in (p for p in points if p > mid):
        bar(point, share[point].to_numpy())
    fig.update_layout(
        barmode="relative",
        title=f"{construct}: answers per item (% of answers)",
        xaxis_title="% of answers (left: below scale midpoint)",
        template="plotly_white",
        legend_title="scale point",
        height=max(450, 90 * len(share)),
    )
    return fig


def _wrap(text: str, width: int = 48) -> str:
    """Long item texts wrapped for an axis label (plotly does not wrap)."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def _anchors(rows: pd.DataFrame, labels: dict | None) -> dict[int, str]:
    """Anchor labels of the scale the construct's items share (points without a label: none)."""
    per_item = [anchor_labels(labels, item) for item in rows["item"].unique()]
    common = per_item[0] if per_item and all(a == per_item[0] for a in per_item) else {}
    return {p: text for p, text in common.items() if text != str(p)}


def _likert_colors(n: int) -> list[str]:
    """n diverging colours picked evenly from a 7-step red–grey–blue palette."""
    idx = np.round(np.linspace(0, len(LIKERT_COLORS) - 1, n)).astype(int)
    return [LIKERT_COLORS[i] for i in idx]


def flow_figure(flow: pd.DataFrame) -> go.Figure:
    """Participant flow (CONSORT order, top to bottom) as one horizontal ``Bar`` trace named ``participants``;
    exclusion rows are grey, so they do not read as a stage of the flow."""
    excluded = flow["stage"].str.startswith("excluded")
    fig = go.Figure(
        go.Bar(
            y=flow["stage"],
            x=flow["n"],
            orientation="h",
            name="participants",
            text=flow["n"],
            textposition="outside",
            marker_color=np.where(excluded, "#bdbdbd", PALETTE["compared"]),
        )
    )
    fig.update_layout(
        title="Participant flow",
        xaxis_title="participants",
        template="plotly_white",
        yaxis={"autorange": "reversed"},
    )
    return fig


def ratings_figure(
    ratings: dict[str, dict], confidence: float = 0.95, labels: dict | None = None
) -> go.Figure:
    """Proportion of positive expert ratings per item (its text from ``labels``; the id on hover) with Wilson
    CIs; one ``Bar`` per skin condition (or a single ``overall`` bar when the ratings carry no condition)."""
    fig = go.Figure()
    by_condition: dict[str, list[tuple[str, dict]]] = {}
    for item, rec in ratings.items():
        groups = rec.get("proportion_positive_by_skin_condition") or {
            "overall": {"proportion": rec["proportion_positive"], "ci": rec["proportion_positive_ci"]}
        }
        for condition, cell in groups.items():
            by_condition.setdefault(condition, []).append((item, cell))
    for condition, cells in by_condition.items():
        p = np.array([c["proportion"] for _, c in cells], dtype=float)
        lo = np.array([c["ci"][0] for _, c in cells], dtype=float)
        hi = np.array([c["ci"][1] for _, c in cells], dtype=float)
        fig.add_trace(
            go.Bar(
                x=[_wrap(item_label(labels, item, rating=True), 30) for item, _ in cells],
                hovertext=[item for item, _ in cells],
                y=p,
                name=condition,
                error_y={"type": "data", "array": hi - p, "arrayminus": p - lo},
            )
        )
    fig.update_layout(
        title=f"Expert ratings: proportion positive (Wilson {ci_label(confidence)})",
        yaxis_title="proportion",
        yaxis_range=[0, 1],
        barmode="group",
        template="plotly_white",
    )
    return fig


def closed_loop_figure(record: dict, labels: dict | None = None) -> go.Figure:
    """Share of expert ratings calling an image relevant, when the closed-loop check passed and when it failed,
    with the bootstrap CIs over images (``Bar`` ``experts``)."""
    keys = ("relevant_if_correct", "relevant_if_wrong")
    values = np.array([record[k] for k in keys], dtype=float)
    low, high = (np.array([record[f"{k}_ci"][i] for k in keys], dtype=float) for i in (0, 1))
    fig = go.Figure(
        go.Bar(
            x=["closed loop: correct", "closed loop: wrong"],
            y=values,
            name="experts",
            error_y={"type": "data", "array": high - values, "arrayminus": values - low},
        )
    )
    fig.update_layout(
        title=f"Experts vs the closed loop: '{item_label(labels, record['item'], rating=True)}' rated relevant "
        f"(bootstrap {ci_label(record['confidence'])})",
        yaxis_title="share of ratings",
        yaxis_range=[0, 1],
        template="plotly_white",
    )
    return fig


def power_figure(
    analytic: pd.DataFrame,
    simulated: pd.DataFrame | None = None,
    target_power: float = 0.8,
    design: str = "within",
    k: int = 2,
) -> go.Figure:
    """Power against n per effect: analytic t-test power (``Scatter`` ``analytic d_z = <effect>``, dashed)
    and, when simulated, the simulated power with Wilson CIs (``Scatter`` ``simulated d_z = <effect>``);
    target line. The effect is d_z (within) or d (between); n counts participants in total (between: n/k per
    arm), as the axis title says."""
    symbol = "d_z" if design == "within" else "d"
    fig = go.Figure()
    for effect, rows in analytic.groupby("effect"):
        fig.add_trace(
            go.Scatter(
                x=rows["n"],
                y=rows["power"],
                mode="lines",
                name=f"analytic {symbol} = {effect:g}",
                line={"dash": "dot"},
            )
        )
    for effect, rows in simulated.groupby("effect") if simulated is not None else []:
        fig.add_trace(
            go.Scatter(
                x=rows["n"],
                y=rows["power"],
                mode="markers",
                name=f"simulated {symbol} = {effect:g}",
                error_y={
                    "type": "data",
                    "array": rows["ci_high"] - rows["power"],
                    "arrayminus": rows["power"] - rows["ci_low"],
                },
            )
        )
    fig.add_hline(y=target_power, line_dash="dash", line_color="grey")
    fig.update_layout(
        title="Power of the confirmatory test by sample size and effect",
        xaxis_title=(
            "participants in total (each sees every condition)"
            if design == "within"
            else f"participants in total (n/{k} per arm)"
        ),
        yaxis_title="power",
        yaxis_range=[0, 1.02],
        template="plotly_white",
    )
    return fig


def lead_with_mixed(fig: go.Figure, mixed: dict | None, confidence: float, labels: dict[str, str]) -> None:
    """A construct with per-case items: the figure's title leads with the primary test, the crossed mixed
    model (two arms: its estimate, CI and p; k arms: its omnibus F), and says that cases were random."""
    if not mixed or "skipped" in mixed:
        return
    if "estimate" in mixed:
        low, high = mixed["ci"]
        test = (
            f"{labels.get(mixed['b'], mixed['b'])} − {labels.get(mixed['a'], mixed['a'])} = "
            f"{mixed['estimate']:.2f} [{low:.2f}, {high:.2f}] "
            f"({ci_label(confidence)}), p = {mixed['p']:.3g}"
        )
    else:
        test = f"F = {mixed['omnibus']['statistic']:.2f}, p = {mixed['omnibus']['p']:.3g}"
    fig.update_layout(
        title=f"{fig.layout.title.text}<br><sup>mixed model, participants and cases random: {test}</sup>"
    )


def cases_power_figure(cases: dict, target_power: float = 0.8) -> go.Figure:
    """How many cases? The mixed model's power against participants, one line (``Scatter`` ``<q> cases``) per
    number of cases (``power.cases``), with the target power."""
    grid = pd.DataFrame(cases["grid"])
    fig = go.Figure()
    for q, rows in grid.groupby("cases"):
        fig.add_trace(
            go.Scatter(x=rows["participants"], y=rows["power"], mode="lines+markers", name=f"{q} cases")
        )
    fig.add_hline(y=target_power, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=f"Power of the mixed model by participants and cases (d = {cases['effect_d']:g})",
        xaxis_title="participants",
        yaxis_title="power",
        yaxis_range=[0, 1.02],
        template="plotly_white",
    )
    return fig


def build_figures(analysis) -> dict[str, go.Figure]:
    """All figures of an :class:`analysis.pipeline.Analysis`, keyed by file stem; the design and the compared
    conditions (baseline first) come from its results."""
    figures: dict[str, go.Figure] = {}
    results = analysis.results
    design, conditions = results["design"], results["conditions"]
    names = (results.get("labels") or {}).get("conditions") or {}
    by_arm = results.get("participant_flow_by_arm")
    if by_arm:
        arm_names = {r["arm"]: arm_name(results, r["arm"]) for r in by_arm}
        figures["flow"] = consort_figure(by_arm, arm_names)
    elif analysis.flow is not None:
        figures["flow"] = flow_figure(analysis.flow)
    for construct, block in results["constructs"].items():
        if "skipped" in block or "described_only" in block:  # nothing compared, nothing to draw side by side
            continue
        figures[f"construct_{construct}"] = construct_figure(
            analysis.scores, construct, design, conditions, results["confidence"], names=names
        )
        lead_with_mixed(
            figures[f"construct_{construct}"],
            block.get("mixed"),
            results["confidence"],
            condition_labels(results),
        )
        figures[f"likert_{construct}"] = likert_figure(
            analysis.responses, construct, conditions, labels=results.get("labels")
        )
    if results["ratings"]:
        figures["ratings"] = ratings_figure(results["ratings"], results["confidence"], results.get("labels"))
    if results.get("closed_loop_agreement") and "skipped" not in results["closed_loop_agreement"]:
        figures["closed_loop"] = closed_loop_figure(results["closed_loop_agreement"], results.get("labels"))
    if (results.get("power") or {}).get("cases"):
        figures["power_cases"] = cases_power_figure(results["power"]["cases"], results["config"]["power"])
    if analysis.analytic_power is not None:
        figures["power"] = power_figure(
            analysis.analytic_power,
            analysis.power_curve,
            results["config"]["power"],
            design,
            max(len(conditions), 2),
        )
    return figures


def write_figures(figures: dict[str, go.Figure], out_dir: Path, static: bool = True) -> list[str]:
    """Write ``<name>.html`` (sharing one ``plotly.min.js``) and, when possible, ``<name>.png``/``.svg``.

    Returns warnings (e.g. static export skipped because no browser was found); never raises for export.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.write_html(out_dir / f"{name}.html", include_plotlyjs="directory")
    if not static or not figures:
        return []
    browser = find_browser()
    if browser is None:
        return [
            "static PNG/SVG export skipped: no Chrome/Chromium found (install chromium, or set BROWSER_PATH)"
        ]
    os.environ.setdefault("BROWSER_PATH", browser)
    figs = list(figures.values())
    try:
        for ext in ("png", "svg"):
            pio.write_images(
                figs,
                [out_dir / f"{name}.{ext}" for name in figures],
                format=ext,
                width=900,
                height=550,
                scale=2 if ext == "png" else 1,
            )
    except Exception as exc:  # kaleido/Chrome failures must not cost the researcher the whole report
        return [f"static PNG/SVG export failed ({type(exc).__name__}: {exc}); the HTML figures are complete"]
    return []
