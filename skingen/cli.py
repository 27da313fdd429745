"""``skingen`` command line: the command tree and the dispatcher; each command lives in its own module of
:mod:`skingen.commands` (parser, checks, frozen config, ``run``).

Every module the parsers import is light (no torch, nor any other package of the ``ml`` extra), so
``skingen --help`` and every command's ``--help`` work in an install without the extra, and ``skingen bundle
validate`` stays fast; a command that needs the extra says which to install and exits 2 (tests check both).
"""

from __future__ import annotations

import argparse
import logging
import sys

from formats.atomic import OutputExistsError
from formats.errors import FormatError
from skingen.commands import (
    bundle_build,
    bundle_validate,
    data_prepare,
    diagnose,
    evaluate,
    generate,
    lora_grid,
    lora_train,
    lora_which,
    worker,
)
from skingen.commands.command import ML_EXTRA, MissingExtraError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skingen",
        description="SkinGEN: diagnose skin photos with a VLM, generate reference images of the diagnosis "
        "with Stable Diffusion (+LoRA), and build stimulus bundles for a study.",
        epilog=f"The commands that load models need the ml extra (torch, diffusers, transformers, peft): "
        f"{ML_EXTRA}; each command's --help says whether it does.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    diagnose.add_parser(commands)
    generate.add_parser(commands)
    bundle = _group(commands, "bundle", "build or validate stimulus bundles")
    bundle_build.add_parser(bundle)
    bundle_validate.add_parser(bundle)
    data = _group(commands, "data", "prepare training data from a public dataset's label files")
    data_prepare.add_parser(data)
    lora = _group(commands, "lora", "train a LoRA on a prepared image set; find a LoRA's run")
    lora_train.add_parser(lora)
    lora_which.add_parser(lora)
    lora_grid.add_parser(lora)
    worker.add_parser(commands)
    evaluate.add_parser(commands)
    return parser


def _group(commands: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """A command with sub-commands (``skingen bundle build``)."""
    return commands.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="skingen: %(message)s")
    try:
        return args.handler(args)
    except (FormatError, OutputExistsError) as exc:
        print(f"skingen: error: {exc}", file=sys.stderr)
        return 1
    except MissingExtraError as exc:
        print(f"skingen: error: {exc}", file=sys.stderr)
        return 2
