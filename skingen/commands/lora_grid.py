"""``skingen lora grid GRID.yaml --out DIR``: an experiment grid, each setting trained per seed, generated,
and evaluated against the base model; rerun to resume."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from skingen.commands.command import NEEDS_ML, register
from skingen.experiments import run_grid
from skingen.experiments.spec import GridSpec, load_grid


@dataclass(frozen=True)
class LoraGridConfig:
    grid: GridSpec
    out: Path
    progress: bool


def add_parser(lora_commands: argparse._SubParsersAction) -> None:
    parser = lora_commands.add_parser(
        "grid",
        help="an experiment grid: each setting trained per seed, generated, evaluated against the base model",
        description="Run every combination of GRID.yaml's grid into DIR: each training setting (rank, alpha, "
        "lr, steps, text encoder, dataset subset) trained once per training seed, each LoRA generated at every "
        "generation setting (LoRA scale, guidance), the base model too; evaluated on two halves of the "
        "evaluation set; then results.csv/json and report.html: the best setting chosen on one half and "
        "compared with the base model and the runner-up on the other. Rerun the same command to resume: "
        "finished runs are skipped, an interrupted one resumes from its checkpoint.",
        epilog=NEEDS_ML,
    )
    parser.add_argument("grid", type=Path, metavar="GRID.yaml")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    register(parser, check, run)


def check(args: argparse.Namespace) -> LoraGridConfig:
    return LoraGridConfig(load_grid(args.grid), args.out, progress=not args.no_progress)


def run(config: LoraGridConfig) -> int:
    summary = run_grid(config.grid, config.out, progress=config.progress)
    best = summary["best"]
    print(json.dumps({"out": str(config.out), "settings": len(summary["settings"]), "best": best["best"],
                      "text": best["text"]}))  # fmt: skip
    return 0
