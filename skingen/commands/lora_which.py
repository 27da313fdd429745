"""``skingen lora which SHA256 [--runs DIR…]``: the training run(s) whose final LoRA has this SHA-256 (as a
provenance record or bundle names it)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from skingen.commands.command import register
from skingen.errors import SkinGenError
from skingen.training.runs import find_runs


@dataclass(frozen=True)
class LoraWhichConfig:
    sha256: str
    runs: tuple[Path, ...]


def add_parser(lora_commands: argparse._SubParsersAction) -> None:
    parser = lora_commands.add_parser("which", help="the training run(s) whose final LoRA has this SHA-256")
    parser.add_argument(
        "sha256", metavar="SHA256", help="as in a provenance record or bundle (≥ 8 hex digits)"
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=[Path()],
        metavar="DIR",
        help="folders searched for run.json (default: the current folder)",
    )
    register(parser, check, run)


def check(args: argparse.Namespace) -> LoraWhichConfig:
    return LoraWhichConfig(args.sha256, tuple(args.runs))


def run(config: LoraWhichConfig) -> int:
    runs = find_runs(config.sha256, config.runs)
    if not runs:
        raise SkinGenError(
            f"no run.json under {', '.join(map(str, config.runs))} has a LoRA with SHA-256 {config.sha256}"
        )
    for found in runs:
        print(json.dumps({"run": str(found), "run_json": str(found / "run.json")}))
    return 0
