"""``skingen lora grid GRID.yaml --out DIR``: an experiment grid over LoRA training and generation settings.

:mod:`.spec` (the YAML, validated; cells with stable ids, training seeds, generation variants, the base
model), :mod:`.runner` (per training run and for the base model: train → generate both halves of the fixed
evaluation set → evaluate, each step skipped when done, training resumed from its checkpoint) and
:mod:`.results` (results.csv/json, figures, report.html, the best setting chosen on one half and compared with
the base model and the runner-up on the other). It reuses :mod:`skingen.training`, :mod:`skingen.generation`
and :mod:`skingen.evaluation`.
"""

from __future__ import annotations

from pathlib import Path


def run_grid(spec, out: str | Path, *, progress: bool = True) -> dict[str, object]:
    """Every run of ``spec`` into ``out``, then the results; returns what ``results.json`` holds."""
    from skingen.experiments.results import write_results
    from skingen.experiments.runner import GridRunner

    GridRunner(spec, out, progress=progress)()
    return write_results(spec, Path(out))
