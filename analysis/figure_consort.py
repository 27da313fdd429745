"""The CONSORT-style participant flow diagram: boxes per arm from enrolment to analysis (plotly shapes and
annotations, so it exports to PNG/SVG like every other figure)."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from analysis.labels import stage_label

BOX = {"bordercolor": "#444", "borderwidth": 1, "borderpad": 6, "bgcolor": "white", "font": {"size": 12}}
ROWS = ("allocated", "started", "lost", "completed", "excluded", "analysed")
"""Box rows under the enrolment box, top to bottom."""


def _box_text(title: str, n: int, details: list[str] = ()) -> str:
    lines = [f"<b>{html.escape(title)}</b> (n = {n})", *(f"• {html.escape(d)}" for d in details)]
    return "<br>".join(lines)


def _arm_boxes(rows: list[dict], arm: str, name: str) -> dict[str, str]:
    """The texts of one arm's boxes, from its flow records."""
    mine = {r["stage"]: r["n"] for r in rows if r["arm"] == arm}
    dropped = {s.partition(": ")[2]: n for s, n in mine.items() if s.startswith("dropped out:")}
    reasons = [
        f"{stage_label(s).partition(': ')[2]} ({n})" for s, n in mine.items() if s.startswith("excluded:")
    ]
    lost = [f"at {where} ({n})" for where, n in dropped.items()]
    if mine.get("in progress"):
        lost.append(f"still in progress at export ({mine['in progress']})")
    return {
        "allocated": _box_text(f"Allocated to {name}", mine.get("allocated", 0)),
        "started": _box_text("Started the cases", mine.get("started", 0)),
        "lost": _box_text("Dropped out", sum(dropped.values()) + mine.get("in progress", 0), lost),
        "completed": _box_text("Completed", mine.get("completed", 0)),
        "excluded": _box_text("Excluded", mine.get("excluded", 0), reasons),
        "analysed": _box_text("Analysed", mine.get("analysed", 0)),
    }


def consort_figure(rows: list[dict], arm_names: dict[str, str]) -> go.Figure:
    """Participant flow per arm (``participant_flow_by_arm`` of results.json): the enrolment box on top, the
    not-allocated box beside it, then one column per arm — allocated, started, dropped out (by step),
    completed, excluded (by reason), analysed. Arms by their labels (``arm_names``)."""
    totals = {r["stage"]: r["n"] for r in rows if r["arm"] == ""}
    arms = sorted({r["arm"] for r in rows if r["arm"]})
    fig = go.Figure()
    top, bottom = 0.97, 0.04
    step = (top - bottom) / len(ROWS)
    ys = {row: top - step * (i + 1) for i, row in enumerate(ROWS)}
    fig.add_annotation(x=0.5, y=top, text=_box_text("Consented", totals.get("consented", 0)), **BOX)
    if totals.get("not allocated"):
        fig.add_annotation(
            x=0.88, y=top - step / 2, text=_box_text("Not allocated", totals["not allocated"]), **BOX
        )
    for i, arm in enumerate(arms):
        x = (i + 0.5) / len(arms)
        fig.add_shape(
            type="line", x0=0.5, x1=x, y0=top - 0.03, y1=ys["allocated"] + 0.03, line={"color": "#888"}
        )
        previous = None
        for row, text in _arm_boxes(rows, arm, arm_names.get(arm, arm)).items():
            fig.add_annotation(x=x, y=ys[row], text=text, hovertext=arm, **BOX)
            if previous is not None:
                fig.add_shape(
                    type="line", x0=x, x1=x, y0=ys[previous] - 0.03, y1=ys[row] + 0.03, line={"color": "#888"}
                )
            previous = row
    for annotation in fig.layout.annotations:
        annotation.update(
            xref="paper", yref="paper", xanchor="center", yanchor="middle", showarrow=False, align="left"
        )
    for shape in fig.layout.shapes:
        shape.update(xref="paper", yref="paper", layer="below")
    fig.update_layout(
        title="Participant flow (CONSORT)",
        template="plotly_white",
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=760,
        width=max(700, 330 * len(arms)),
        margin={"l": 20, "r": 20},
    )
    return fig
