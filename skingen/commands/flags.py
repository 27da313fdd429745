"""Flags several ``skingen`` commands take, defined once: where the models run, and the taxonomy and prompt
templates that name the conditions."""

from __future__ import annotations

import argparse
from pathlib import Path

DTYPES = ("float32", "float16", "bfloat16")


def add_device_options(parser: argparse.ArgumentParser, *, dtype: bool = True) -> None:
    """``--device``, ``--dtype`` (unless ``dtype`` is False: the device's default) and ``--taxonomy``."""
    parser.add_argument("--device", help="cpu, cuda[:N] or mps (default: best available)")
    if dtype:
        parser.add_argument("--dtype", choices=DTYPES, help="default: float16 on CUDA, float32 elsewhere")
    add_taxonomy_option(parser)


def add_taxonomy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")


def add_templates_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--templates", type=Path, help="prompt templates YAML (default: the packaged one)")
