"""``skingen lora grid GRID.yaml --out DIR``: an experiment grid over LoRA training settings.

:mod:`.spec` (the YAML, validated; runs with stable ids), :mod:`.runner` (per run: train → generate the fixed
evaluation set → evaluate, each step skipped when done, training resumed from its checkpoint) and
:mod:`.results` (results.csv/json, figures, report.html, the best run and whether it is distinguishable from
the second best). It reuses :mod:`skingen.training`, :mod:`skingen.generation` and :mod:`skingen.evaluation`.
"""

from __future__ import annotations

from pathlib import Path


def run_grid(spec, out: str | Path, *, progress: bool = True) -> dict[str, object]:
    """Every run of ``spec`` into ``out``, then the results; returns what ``results.json`` holds."""
    from skingen.experiments.results import write_results
    from skingen.experiments.runner import GridRunner

    GridRunner(spec, out, progress=progress)()
    return write_results(spec, Path(out))
