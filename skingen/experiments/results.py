"""The grid's results: one row per setting (its settings, each metric's mean and spread across training seeds,
per skin-tone group), the chosen setting compared with the base model and the runner-up, figures, report.html.

Why the comparison looks like this:

- **Training seeds.** A LoRA trained twice with different seeds gives different images; a difference between
  two settings means something only against that spread. Each cell is trained ``base.training_seeds`` times
  and every number is a mean over seeds with its standard deviation.
- **Selection.** Picking the best of many settings and then testing it on the same images overstates its lead
  (the winner's curse). The evaluation set's seeds are split in halves of the same prompts: the best setting
  and the runner-up are chosen on the ``selection`` half, and every comparison is made on the ``heldout``
  half, whose images played no part in the choice.
- **Intervals.** A comparison's unit is the training seed: the held-out value of each seed's run varies with
  both the training and the generated images, so a t interval over seeds (paired when both settings share the
  trained LoRAs, Welch otherwise; one-sample against the base model, which has no training seed) covers both.
  The base model's own sampling error on the held-out images is not in the interval; the report says so.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from pathlib import Path

import numpy as np
from scipy import stats

from skingen.evaluation.report import _plain, figure_divs
from skingen.experiments.runner import HALVES, RunPaths, generation_seeds
from skingen.experiments.spec import METRIC_DIRECTIONS, GridSpec, Setting

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
REPORT_FILE = "report.html"
GROUP_METRICS = tuple(METRIC_DIRECTIONS)
# the trade-off figure: fidelity (generated images inside the real manifold) against diversity (real images
# covered by the generated ones), coloured by whether the closed loop recognises the condition
TRADE_OFF = ("precision", "recall", "closed_loop_accuracy")


def _spread(values: list[float | None]) -> dict[str, object]:
    """Mean, SD (ddof 1; None below two values) and the values themselves, over training seeds."""
    known = [v for v in values if v is not None]
    return {
        "mean": float(np.mean(known)) if known else None,
        "sd": float(np.std(known, ddof=1)) if len(known) > 1 else None,
        "values": values,
    }


def _metrics(path: Path) -> dict[str, object]:
    """One evaluation's metrics.json under the grid's space-free names (``fd`` for ``fd_clip`` …), top level
    and per skin-tone group."""
    found = json.loads(path.read_text(encoding="utf-8"))
    space = found["feature_spaces"][0]
    keys = {name: found["distances"][space].get(name, name) for name in GROUP_METRICS}
    renamed = {name: found.get(key) for name, key in keys.items()}
    renamed["feature_space"] = space
    renamed["by_skin_tone"] = {
        group: {name: entry.get(key) for name, key in keys.items()}
        for group, entry in found.get("by_skin_tone", {}).items()
    }
    return renamed


def collect(spec: GridSpec, out: Path) -> list[dict[str, object]]:
    """One record per setting: ``id``, ``settings``, ``base_model`` (no LoRA), ``seeds``, and per half
    (``selection``, ``heldout``) each metric's spread over seeds; ``by_skin_tone`` on the held-out half."""
    records = []
    for setting in spec.settings():
        seeds = list(spec.training_seeds) if setting.cell else [None]
        models = [RunPaths.of(out, setting.cell, seed) for seed in seeds]
        halves = {half: [_metrics(m.metrics(setting.variant, half)) for m in models] for half in HALVES}
        groups = dict.fromkeys(g for found in halves["heldout"] for g in found.get("by_skin_tone", {}))
        records.append(
            {
                "id": setting.id,
                "settings": setting.settings(),
                "base_model": setting.cell is None,
                "cell": setting.cell and setting.cell.id,
                "seeds": seeds if setting.cell else [],
                "feature_space": halves["heldout"][0]["feature_space"],
                **{
                    half: {k: _spread([found.get(k) for found in runs]) for k in GROUP_METRICS}
                    for half, runs in halves.items()
                },
                "by_skin_tone": {
                    group: {
                        k: _spread(
                            [
                                found.get("by_skin_tone", {}).get(group, {}).get(k)
                                for found in halves["heldout"]
                            ]
                        )
                        for k in GROUP_METRICS
                    }
                    for group in groups
                },
            }
        )
    return records


def flat_row(record: dict[str, object]) -> dict[str, object]:
    """A results.csv row: held-out means (``metric``), their SD across seeds (``metric_sd``), the selection
    half's means (``metric_selection``) and the held-out means per skin-tone group (``metric[V-VI]``)."""
    row = {"id": record["id"], **record["settings"]}
    for key in GROUP_METRICS:
        row[key] = record["heldout"][key]["mean"]
        row[f"{key}_sd"] = record["heldout"][key]["sd"]
        row[f"{key}_selection"] = record["selection"][key]["mean"]
    for group, entry in record["by_skin_tone"].items():
        row.update({f"{k}[{group}]": v["mean"] for k, v in entry.items()})
    return row


def seed_difference(
    first: list[float], second: list[float], *, paired: bool, confidence: float
) -> dict[str, object] | None:
    """``mean(first) − mean(second)`` with a t interval over training seeds; None below two seeds.

    ``second`` with one value (the base model) is a constant: one-sample t. ``paired``: both settings share
    the trained LoRAs (the same cell at another generation setting), so seed i of one goes with seed i of the
    other. Otherwise Welch's t (independent trainings)."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(a) < 2 or (not paired and len(b) == 0):
        return None
    if paired or len(b) == 1:
        diffs = a - b
        test, n = ("paired t over training seeds" if paired else "one-sample t over training seeds"), len(a)
        estimate, se, df = float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(n)), n - 1
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        estimate, se = float(a.mean() - b.mean()), float(math.sqrt(va + vb))
        df = (
            (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
            if va + vb > 0
            else len(a) + len(b) - 2
        )
        test = "Welch t over training seeds"
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return {"test": test, "difference": estimate, "ci": [estimate - half, estimate + half], "df": float(df)}


def _values(record: dict[str, object], metric: str) -> list[float] | None:
    values = record["heldout"][metric]["values"]
    return None if any(v is None for v in values) else values


def choose(spec: GridSpec, records: list[dict[str, object]]) -> dict[str, object]:
    """The best and runner-up LoRA setting for ``spec.metric`` on the selection half, then their held-out
    comparisons with the base model (at the best's guidance) and with each other, and a sentence."""
    name, better = spec.metric.name, spec.metric.better
    level = f"{round(spec.base.evaluation.confidence * 100)}%"
    scored = [r for r in records if not r["base_model"] and r["selection"][name]["mean"] is not None]
    result: dict[str, object] = {"metric": name, "direction": better, "chosen_on": "selection", "best": None}
    if not scored:
        return {**result, "text": f"No LoRA setting has a value for {name}."}
    scored.sort(key=lambda r: r["selection"][name]["mean"], reverse=better == "maximize")
    best = scored[0]
    base = next(
        r for r in records if r["base_model"] and r["settings"]["guidance"] == best["settings"]["guidance"]
    )
    runner = scored[1] if len(scored) > 1 else None
    result.update(best=best["id"], best_settings=best["settings"], runner_up=runner and runner["id"])
    result["best_heldout"] = best["heldout"][name]["mean"]
    sentences = [
        f"Chosen on the selection half by {name} ({better}): {best['id']} "
        f"({best['selection'][name]['mean']:.4g} there; {_mean_sd(best['heldout'][name])} on the held-out half)."
    ]
    for key, other, label in (
        ("vs_base_model", base, "the base model"),
        ("vs_runner_up", runner, "the runner-up"),
    ):
        comparison = None
        ours, theirs = _values(best, name), other and _values(other, name)
        if ours is not None and theirs is not None:
            paired = other["cell"] == best["cell"]  # the same LoRAs at another generation setting
            comparison = seed_difference(
                ours, theirs, paired=paired, confidence=spec.base.evaluation.confidence
            )
        if comparison is not None:
            low, high = comparison["ci"]
            comparison = {"against": other["id"], **comparison, "distinguishable": not low <= 0 <= high}
        result[key] = comparison
        if other is None:
            continue
        if comparison is None:
            sentences.append(
                f"Against {label} ({other['id']}): no interval (fewer than two training seeds with a value)."
            )
            continue
        verdict = (
            "distinguishable"
            if comparison["distinguishable"]
            else "NOT distinguishable (the interval contains 0)"
        )
        sentences.append(
            f"Held out, against {label} ({other['id']}): difference {comparison['difference']:.4g}, {level} "
            f"interval [{low:.4g}, {high:.4g}] ({comparison['test']}): {verdict}."
        )
    if len(spec.training_seeds) < 3:
        sentences.append(
            f"Only {len(spec.training_seeds)} training seed(s): the spread across seeds is barely estimated; "
            "use at least 3."
        )
    sentences.append(
        "The intervals cover the training seeds and the LoRA runs' generated images; the base model's own "
        "sampling error on the held-out images is not included."
    )
    result["text"] = " ".join(sentences)
    return result


def _mean_sd(spread: dict[str, object]) -> str:
    if spread["mean"] is None:
        return "–"
    return f"{spread['mean']:.4g}" + ("" if spread["sd"] is None else f" ± {spread['sd']:.2g} SD over seeds")


# --- writing -------------------------------------------------------------------------------------------------


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then an atomic rename)."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_results(spec: GridSpec, out: Path) -> dict[str, object]:
    """``results.csv``, ``results.json`` and ``report.html`` in ``out``; returns what results.json holds."""
    records = collect(spec, out)
    summary = _plain(
        {
            "metric": spec.metric.model_dump(),
            "varied": list(spec.varied),
            "training_seeds": list(spec.training_seeds),
            "generation_seeds": generation_seeds(spec),
            "best": choose(spec, records),
            "settings": records,
        }
    )
    rows = [flat_row(r) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    _replace(out / RESULTS_CSV, buffer.getvalue())
    _replace(out / RESULTS_JSON, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    _replace(out / REPORT_FILE, render_report(spec, out, summary))
    return summary


def _label(record: dict[str, object]) -> str:
    return "base model" if record["base_model"] else record["id"]


def figures(spec: GridSpec, records: list[dict[str, object]]) -> list:
    """One figure per metric (held-out mean ± SD over seeds against each varied setting, a series per skin-tone
    group and overall; the base model as a dashed line), then the trade-off per skin-tone group."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    varied = list(spec.varied) or ["rank"]
    trained = [r for r in records if not r["base_model"]]
    base = [r for r in records if r["base_model"]]
    groups = ["all", *dict.fromkeys(g for r in records for g in r["by_skin_tone"])]
    out = []
    for metric in GROUP_METRICS:
        if all(r["heldout"][metric]["mean"] is None for r in records):
            continue
        fig = make_subplots(rows=1, cols=len(varied), subplot_titles=varied, shared_yaxes=True)
        for col, setting in enumerate(varied, start=1):
            for group in groups:
                entries = [
                    r["heldout"] if group == "all" else r["by_skin_tone"].get(group, {}) for r in trained
                ]
                fig.add_trace(
                    go.Scatter(
                        x=[str(r["settings"][setting]) for r in trained],
                        y=[e.get(metric, {}).get("mean") for e in entries],
                        error_y={"array": [e.get(metric, {}).get("sd") or 0 for e in entries]},
                        mode="markers",
                        name=group,
                        legendgroup=group,
                        showlegend=col == 1,
                        text=[r["id"] for r in trained],
                    ),
                    row=1,
                    col=col,
                )
            for record in base:
                if record["heldout"][metric]["mean"] is not None:
                    fig.add_hline(
                        y=record["heldout"][metric]["mean"], line_dash="dash", row=1, col=col,
                        annotation_text=f"base model, guidance {record['settings']['guidance']:g}",
                    )  # fmt: skip
        fig.update_layout(
            title=f"{metric} (held-out half; mean ± SD over training seeds) against each setting, per skin-tone "
            "group",
            height=380,
        )
        out.append(fig)
    out.extend(trade_off_figure(records))
    return out


def trade_off_figure(records: list[dict[str, object]]) -> list:
    """Fidelity (precision) against diversity (recall) per skin-tone group, coloured by closed-loop accuracy:
    a setting that looks best overall may buy it on one group at another's cost."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x_key, y_key, colour_key = TRADE_OFF
    groups = ["all", *dict.fromkeys(g for r in records for g in r["by_skin_tone"])]
    panels = [
        (g, [r["heldout"] if g == "all" else r["by_skin_tone"].get(g, {}) for r in records]) for g in groups
    ]
    if all(e.get(x_key, {}).get("mean") is None for _, entries in panels for e in entries):
        return []
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=[f"Fitzpatrick {g}" for g in groups])
    for col, (group, entries) in enumerate(panels, start=1):
        colour = [e.get(colour_key, {}).get("mean") for e in entries]
        fig.add_trace(
            go.Scatter(
                x=[e.get(x_key, {}).get("mean") for e in entries],
                y=[e.get(y_key, {}).get("mean") for e in entries],
                mode="markers",
                marker={
                    "symbol": ["x" if r["base_model"] else "circle" for r in records],
                    "size": 11,
                    **(
                        {
                            "color": colour,
                            "colorscale": "Viridis",
                            "cmin": 0,
                            "cmax": 1,
                            "showscale": col == 1,
                            "colorbar": {"title": colour_key},
                        }
                        if any(c is not None for c in colour)
                        else {}
                    ),
                },
                text=[_label(r) for r in records],
                name=group,
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=f"{x_key} (fidelity)", row=1, col=col)
    fig.update_yaxes(title_text=f"{y_key} (diversity)", row=1, col=1)
    fig.update_layout(
        title="Trade-off per skin-tone group (held-out half; × = base model; colour: closed-loop accuracy)",
        height=420,
    )
    return [fig]


CONTACT_SHEET_SEEDS = 4  # columns of a contact sheet: enough to see the variety, small enough for the page


def contact_sheet_png(spec: GridSpec, setting: Setting, out: Path) -> str:
    """The setting's held-out images from its first training seed as one PNG (rows condition × skin tone,
    columns the first :data:`CONTACT_SHEET_SEEDS` seeds), base64."""
    from PIL import Image

    from skingen.experiments.runner import evaluation_conditions, image_name
    from skingen.training.validation import contact_sheet

    seed = spec.training_seeds[0] if setting.cell else None
    folder = RunPaths.of(out, setting.cell, seed).generated(setting.variant) / "heldout"
    shown = generation_seeds(spec)["heldout"][:CONTACT_SHEET_SEEDS]
    files = [
        folder / image_name(condition, tone, image_seed)
        for condition in evaluation_conditions(spec)
        for tone in spec.base.evaluation.skin_tones
        for image_seed in shown
    ]
    images = [Image.open(p).convert("RGB") for p in files]
    buffer = io.BytesIO()
    contact_sheet(images, columns=len(shown)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def render_report(spec: GridSpec, out: Path, summary: dict[str, object]) -> str:
    records, best = summary["settings"], summary["best"]
    plots = figure_divs(figures(spec, records))
    varied = list(spec.varied)
    shown = [m for m in GROUP_METRICS if any(r["heldout"][m]["mean"] is not None for r in records)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("setting", *varied, *shown))
    body = "\n".join(
        f"<tr{' class=best' if r['id'] == best.get('best') else ''}><td>{html.escape(_label(r))}</td>"
        + "".join(f"<td>{html.escape(_shown(r['settings'][s]))}</td>" for s in varied)
        + "".join(f"<td>{html.escape(_mean_sd_cell(r['heldout'][m]))}</td>" for m in shown)
        + "</tr>"
        for r in records
    )
    sheets = "\n".join(
        f"<figure><img alt='{html.escape(setting.id)}' src='data:image/png;base64,"
        f"{contact_sheet_png(spec, setting, out)}'><figcaption>{html.escape(setting.id)}</figcaption></figure>"
        for setting in spec.settings()
    )
    ev = spec.base.evaluation
    halves = generation_seeds(spec)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skingen lora grid</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
tr.best{{background:#e6f4e6}}figure{{display:inline-block;margin:8px}}img{{image-rendering:pixelated;
min-width:96px}}</style></head>
<body><h1>LoRA experiment grid</h1>
<p>{len(spec.cells())} training settings × {len(spec.training_seeds)} training seeds, each generated at
{len(spec.variants())} generation setting(s), and the base model without a LoRA. Evaluation set:
{html.escape(", ".join(ev.conditions))} × Fitzpatrick {html.escape(", ".join(ev.skin_tones))} ×
{ev.images_per_cell} image seeds ({len(halves["selection"])} to choose the best setting, {len(halves["heldout"])}
held out to compare it), against the real validation split.</p>
<h2>Chosen setting</h2><p>{html.escape(str(best["text"]))}</p>
<h2>Settings (held-out half; mean ± SD over training seeds)</h2><table><tr>{head}</tr>{body}</table>
{plots}
<h2>Contact sheets (held-out images of the first training seed; rows: condition × skin tone)</h2>{sheets}
</body></html>
"""


def _shown(value: object) -> str:
    return "–" if value is None else str(value)


def _mean_sd_cell(spread: dict[str, object]) -> str:
    if spread["mean"] is None or not math.isfinite(spread["mean"]):
        return "–"
    return f"{spread['mean']:.4g}" + ("" if spread["sd"] is None else f" ± {spread['sd']:.2g}")
