"""What a finished run leaves behind besides its weights: ``loss.csv``, the loss figure, ``run.json``; and
the way back from a LoRA's SHA-256 (as provenance records and bundles store it) to the run that trained it.

Torch-free (plotly is imported only to draw the figure).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from skingen.errors import SkinGenError

LOSS_FILE = "loss.csv"
LOSS_FIGURE = "loss.html"
RUN_FILE = "run.json"


class LossLog:
    """``loss.csv`` (step, loss, lr), flushed every step; on resume, rows after the resume step are dropped."""

    def __init__(self, run: Path, resume_step: int) -> None:
        self.path = Path(run) / LOSS_FILE
        kept = (
            [row for row in read_losses(self.path) if int(row["step"]) <= resume_step] if resume_step else []
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=("step", "loss", "lr"))
        self._writer.writeheader()
        self._writer.writerows(kept)

    def add(self, step: int, loss: float, lr: float) -> None:
        self._writer.writerow({"step": step, "loss": f"{loss:.6g}", "lr": f"{lr:.6g}"})
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_losses(path: Path) -> list[dict[str, str]]:
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def loss_figure(run: Path) -> Path:
    """``loss.html``: loss per step and its 20-step running mean, plotly with its JS inlined (works offline)."""
    import plotly.graph_objects as go

    rows = read_losses(Path(run) / LOSS_FILE)
    steps = [int(r["step"]) for r in rows]
    losses = [float(r["loss"]) for r in rows]
    window = 20
    running = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    figure = go.Figure(
        [
            go.Scatter(x=steps, y=losses, mode="lines", name="loss", opacity=0.4),
            go.Scatter(x=steps, y=running, mode="lines", name=f"mean of last {window}"),
        ]
    )
    figure.update_layout(title="Training loss", xaxis_title="optimizer step", yaxis_title="loss")
    path = Path(run) / LOSS_FIGURE
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def write_run(run: Path, record: dict[str, object]) -> Path:
    path = Path(run) / RUN_FILE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def find_runs(sha256: str, roots: Iterable[Path]) -> list[Path]:
    """The training runs (folders with ``run.json``) under ``roots`` whose final LoRA (any of its files) has
    this SHA-256.

    ``sha256`` is what a provenance record (and so a bundle) stores for a LoRA: ``skingen.sources.file_sha256``
    of the weights file. A prefix of at least 8 hex digits is enough.
    """
    sha256 = sha256.strip().lower()
    if len(sha256) < 8:
        raise SkinGenError(f"SHA-256 {sha256!r}: give at least 8 hex digits")
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise SkinGenError(f"--runs {root}: not a directory")
        for path in sorted(root.rglob(RUN_FILE)):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            digests = [str(record.get("lora_sha256", "")), *map(str, (record.get("files") or {}).values())]
            if any(digest.startswith(sha256) for digest in digests):  # --format both: either file
                found.append(path.parent)
    return found
