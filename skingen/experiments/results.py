"""The grid's results: one row per run (settings, top-level metrics, per skin-tone group), the best run for the
chosen metric with a bootstrap interval of its difference to the second best, figures and ``report.html``.

The interval resamples the images (the real validation images and the evaluation set's cells, the same cells
for both runs, since every run generates the same prompts and seeds): for FID a full FID difference per
replicate, for CLIP score and closed-loop accuracy the mean paired per-image difference. Other metrics pick a
best run without an interval (the report says so).
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

from skingen.evaluation.report import METRICS_FILE, _plain, figure_divs
from skingen.experiments.runner import PER_IMAGE_FILE, RunPaths
from skingen.experiments.spec import METRIC_DIRECTIONS, GridSpec, RunSettings

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
REPORT_FILE = "report.html"
GROUP_METRICS = tuple(METRIC_DIRECTIONS)
DISTANCES = ("fd", "fd_inf", "kd")


def _grid_names(metrics: dict[str, object]) -> dict[str, str]:
    """The grid's metric name → its key in a run's metrics.json (``fd`` → ``fd_clip`` in a CLIP space)."""
    space = metrics["feature_spaces"][0]
    names = metrics["distances"][space]
    return {name: names.get(name, name) for name in GROUP_METRICS}


def collect(spec: GridSpec, out: Path) -> list[dict[str, object]]:
    """One record per run: ``id``, ``settings``, ``metrics`` (top level) and ``by_skin_tone``."""
    records = []
    for run in spec.runs():
        metrics = json.loads(
            (RunPaths(out / "runs" / run.id).eval / METRICS_FILE).read_text(encoding="utf-8")
        )
        names = _grid_names(metrics)
        records.append(
            {
                "id": run.id,
                "settings": run.settings(),
                "feature_space": metrics["feature_spaces"][0],
                "metrics": {k: metrics.get(key) for k, key in names.items()},
                "intervals": {
                    k: metrics[f"{key}_ci"] for k, key in names.items() if metrics.get(f"{key}_ci")
                },
                "by_skin_tone": {
                    group: {k: entry.get(key) for k, key in names.items()}
                    for group, entry in metrics.get("by_skin_tone", {}).items()
                },
            }
        )
    return records


def flat_row(record: dict[str, object]) -> dict[str, object]:
    row = {"id": record["id"], **record["settings"], **record["metrics"]}
    for group, entry in record["by_skin_tone"].items():
        row.update({f"{k}[{group}]": v for k, v in entry.items()})
    return row


def best_run(spec: GridSpec, records: list[dict[str, object]], out: Path) -> dict[str, object]:
    """The best and second-best run for ``spec.metric``, the interval of their difference and a sentence."""
    name, better = spec.metric.name, spec.metric.better
    scored = [r for r in records if r["metrics"].get(name) is not None]
    if not scored:
        return {"metric": name, "direction": better, "best": None, "text": f"No run has a value for {name}."}
    scored.sort(key=lambda r: r["metrics"][name], reverse=better == "maximize")
    best = scored[0]
    result: dict[str, object] = {
        "metric": name,
        "direction": better,
        "best": best["id"],
        "best_settings": best["settings"],
        "best_value": best["metrics"][name],
        "second": None,
        "difference": None,
        "difference_ci": None,
    }
    if len(scored) < 2:
        result["text"] = f"Best {name}: {best['id']} (the only run with a value; nothing to compare)."
        return result
    second = scored[1]
    ev = spec.base.evaluation
    difference = best["metrics"][name] - second["metrics"][name]
    interval = difference_interval(name, out, best["id"], second["id"], spec)
    result.update(second=second["id"], second_value=second["metrics"][name], difference=difference)
    result["difference_ci"] = interval
    level = f"{round(ev.confidence * 100)}%"
    head = f"Best {name} ({better}): {best['id']} = {best['metrics'][name]:.4g}; second {second['id']} = " + (
        f"{second['metrics'][name]:.4g}; difference {difference:.4g}"
    )
    if interval is None:
        result["distinguishable"] = None
        result["text"] = (
            f"{head}. No bootstrap interval for {name} (too few images with a value in both runs): whether "
            "the best is distinguishable is not established."
        )
    else:
        low, high = interval
        result["distinguishable"] = not low <= 0 <= high
        verdict = (
            "the best is distinguishable from the second best"
            if result["distinguishable"]
            else "the best is NOT distinguishable from the second best (the interval contains 0)"
        )
        result["text"] = f"{head}, {level} bootstrap interval over images [{low:.4g}, {high:.4g}]: {verdict}."
    return result


# bootstrap replicates of a distance difference (each recomputes both runs' distances)
DIFFERENCE_REPLICATES = 50
PER_REAL_IMAGE = (
    "recall",
    "coverage",
)  # per real image (the same real set in every run); the rest per generated


def difference_interval(
    name: str, out: Path, first: str, second: str, spec: GridSpec
) -> tuple[float, float] | None:
    """Bootstrap interval over images of ``first``'s ``name`` minus ``second``'s, on the same evaluation set.

    FD and KD are set statistics: both runs' generated images and the real images are resampled together
    and the difference recomputed (for ``fd_inf`` the plug-in FD's: both runs have the same n, so the same
    O(d/n) bias, which cancels in the difference). The others are means of per-image values (the k-NN radii
    held fixed, as in ``skingen evaluate``'s intervals): the paired per-image differences are resampled.
    """
    import numpy as np

    from skingen.evaluation import metrics

    a, b = (np.load(RunPaths(out / "runs" / i).eval / PER_IMAGE_FILE) for i in (first, second))
    order_a, order_b = np.argsort(a["names"]), np.argsort(b["names"])
    kept = ("real", "generated") if name in DISTANCES else (name,)
    if list(a["names"][order_a]) != list(b["names"][order_b]) or not set(kept) <= set(a.files) & set(b.files):
        return None  # not the same evaluation set, or a run evaluated before the value was kept
    ev = spec.base.evaluation
    rng = np.random.default_rng([spec.base.seed, 7])
    if name in DISTANCES:
        import torch

        from skingen.evaluation import distances

        real = torch.from_numpy(a["real"])
        fake_a, fake_b = torch.from_numpy(a["generated"][order_a]), torch.from_numpy(b["generated"][order_b])
        statistic = distances.kd if name == "kd" else distances.fd
        return metrics.bootstrap_statistic(
            lambda r, f: statistic(real[r], fake_a[f]) - statistic(real[r], fake_b[f]),
            len(real),
            len(fake_a),
            replicates=DIFFERENCE_REPLICATES,
            rng=rng,
            confidence=ev.confidence,
        )
    paired = a[name] - b[name] if name in PER_REAL_IMAGE else a[name][order_a] - b[name][order_b]
    return metrics.bootstrap_ci(paired, replicates=ev.bootstrap or 1000, rng=rng, confidence=ev.confidence)


# --- writing -------------------------------------------------------------------------------------------------


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then an atomic rename)."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_results(spec: GridSpec, out: Path) -> dict[str, object]:
    """``results.csv``, ``results.json`` and ``report.html`` in ``out``; returns what results.json holds."""
    records = collect(spec, out)
    best = best_run(spec, records, out)
    summary = _plain({"metric": spec.metric.model_dump(), "varied": list(spec.varied), "best": best,
                      "runs": records})  # fmt: skip
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


def figures(spec: GridSpec, records: list[dict[str, object]]) -> list:
    """One figure per metric: a panel per varied setting, the metric against its values, a line per group."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    varied = list(spec.varied) or ["rank"]
    groups = ["all", *dict.fromkeys(g for r in records for g in r["by_skin_tone"])]
    out = []
    for metric in GROUP_METRICS:
        if all(r["metrics"].get(metric) is None for r in records):
            continue
        fig = make_subplots(rows=1, cols=len(varied), subplot_titles=varied, shared_yaxes=True)
        for col, setting in enumerate(varied, start=1):
            for group in groups:
                values = [
                    (r["metrics"] if group == "all" else r["by_skin_tone"].get(group, {})).get(metric)
                    for r in records
                ]
                fig.add_trace(
                    go.Scatter(
                        x=[str(r["settings"][setting]) for r in records],
                        y=values,
                        mode="markers",
                        name=group,
                        legendgroup=group,
                        showlegend=col == 1,
                        text=[r["id"] for r in records],
                    ),
                    row=1,
                    col=col,
                )
        fig.update_layout(title=f"{metric} against each setting, per skin-tone group", height=380)
        out.append(fig)
    return out


def contact_sheet_png(spec: GridSpec, run: RunSettings, out: Path) -> str:
    """The run's evaluation set as one PNG (rows condition × skin tone, columns seeds), base64."""
    from PIL import Image

    from skingen.experiments.runner import evaluation_conditions, image_name
    from skingen.training.validation import contact_sheet

    folder, ev = RunPaths(out / "runs" / run.id).generated, spec.base.evaluation
    files = [
        folder / image_name(condition, tone, seed)
        for condition in evaluation_conditions(spec)
        for tone in ev.skin_tones
        for seed in range(ev.seed, ev.seed + ev.images_per_cell)
    ]
    images = [Image.open(p).convert("RGB") for p in files]
    sheet = contact_sheet(images, columns=spec.base.evaluation.images_per_cell)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def render_report(spec: GridSpec, out: Path, summary: dict[str, object]) -> str:
    records, best = summary["runs"], summary["best"]
    plots = figure_divs(figures(spec, records))
    varied = list(spec.varied)
    shown = [m for m in GROUP_METRICS if any(r["metrics"].get(m) is not None for r in records)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("run", *varied, *shown))
    body = "\n".join(
        f"<tr{' class=best' if r['id'] == best.get('best') else ''}><td>{html.escape(r['id'])}</td>"
        + "".join(f"<td>{html.escape(str(r['settings'][s]))}</td>" for s in varied)
        + "".join(f"<td>{_number(r['metrics'].get(m))}</td>" for m in shown)
        + "</tr>"
        for r in records
    )
    sheets = "\n".join(
        f"<figure><img alt='{html.escape(run.id)}' src='data:image/png;base64,{contact_sheet_png(spec, run, out)}'>"
        f"<figcaption>{html.escape(run.id)}</figcaption></figure>"
        for run in spec.runs()
    )
    conditions = ", ".join(spec.base.evaluation.conditions)
    tones = ", ".join(spec.base.evaluation.skin_tones)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>skingen lora grid</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
tr.best{{background:#e6f4e6}}figure{{display:inline-block;margin:8px}}img{{image-rendering:pixelated;
min-width:96px}}</style></head>
<body><h1>LoRA experiment grid</h1>
<p>{len(records)} runs; evaluation set: {html.escape(conditions)} × Fitzpatrick {html.escape(tones)} ×
{spec.base.evaluation.images_per_cell} seeds, against the real validation split.</p>
<h2>Best setting</h2><p>{html.escape(str(best["text"]))}</p>
<h2>Runs</h2><table><tr>{head}</tr>{body}</table>
{plots}
<h2>Contact sheets (rows: condition × skin tone; columns: seeds)</h2>{sheets}
</body></html>
"""


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))
