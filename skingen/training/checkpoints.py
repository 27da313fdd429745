"""``RUN/checkpoint-<step>/`` folders: find them by step, cap their number, choose the one to resume from.

A checkpoint is what ``accelerate.Accelerator.save_state`` writes (optimizer, LR scheduler, RNG states, the
training-noise generator) plus ``pytorch_lora_weights.safetensors`` from our save hook. We name and cap
the folders ourselves: accelerate's automatic naming counts saves, not steps. Torch-free.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from skingen.errors import SkinGenError

PREFIX = "checkpoint-"
_NAME = re.compile(rf"^{PREFIX}(\d+)$")


def checkpoint_dir(run: Path, step: int) -> Path:
    return Path(run) / f"{PREFIX}{step}"


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint folder was written at (from its name)."""
    match = _NAME.match(Path(path).name)
    if not match:
        raise SkinGenError(f"--resume {path}: not a checkpoint folder (expected a name like {PREFIX}500)")
    return int(match.group(1))


def checkpoints(run: Path) -> list[Path]:
    """The run's checkpoint folders, oldest (lowest step) first."""
    run = Path(run)
    if not run.is_dir():
        return []
    found = [p for p in run.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=checkpoint_step)


def make_room(run: Path, limit: int | None) -> list[Path]:
    """Before saving one more: delete the oldest so that at most ``limit`` remain afterwards."""
    if limit is None:
        return []
    existing = checkpoints(run)
    doomed = existing[: max(0, len(existing) - limit + 1)]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def resolve_resume(run: Path, resume: str) -> Path:
    """``latest`` → the run's newest checkpoint; otherwise the named checkpoint folder, checked."""
    if resume == "latest":
        found = checkpoints(run)
        if not found:
            raise SkinGenError(f"--resume latest: {run} has no {PREFIX}<step> folder to resume from")
        return found[-1]
    path = Path(resume)
    if not path.is_dir():
        raise SkinGenError(f"--resume {resume}: no such checkpoint folder")
    checkpoint_step(path)
    return path
