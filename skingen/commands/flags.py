"""Flags several ``skingen`` commands take, defined once: where the models run, and the taxonomy and prompt
templates that name the conditions."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from skingen.distributed import ProcessShare

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class ModelSetup:
    """Where the models run (``--device``, ``--dtype``; None: the best available device, its default dtype) and
    the taxonomy their answers are read into (``--taxonomy``; None: the packaged one)."""

    device: str | None
    dtype: str | None
    taxonomy: Path | None

    def for_process(self) -> tuple[ProcessShare, ModelSetup]:
        """Under ``accelerate launch``: this process's share of the work, and this setup on the device
        accelerate gave the process (unless ``--device`` named one); as it is for a single process."""
        share = ProcessShare.current(cpu=(self.device or "").startswith("cpu"))
        return share, replace(self, device=self.device or share.device)


def add_device_options(parser: argparse.ArgumentParser, *, dtype: bool = True) -> None:
    """``--device``, ``--dtype`` (unless ``dtype`` is False: always the device's default) and ``--taxonomy``."""
    parser.add_argument("--device", help="cpu, cuda[:N] or mps (default: best available)")
    if dtype:
        parser.add_argument("--dtype", choices=DTYPES, help="default: float16 on CUDA, float32 elsewhere")
    else:
        parser.set_defaults(dtype=None)
    add_taxonomy_option(parser)


def model_setup(args: argparse.Namespace) -> ModelSetup:
    """The flags of :func:`add_device_options`."""
    return ModelSetup(args.device, args.dtype, args.taxonomy)


def add_taxonomy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")


def add_templates_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates", type=Path, help="prompt templates YAML (default: the packaged one)")
