"""``skingen diagnose IMAGE… --vlm|--clip|--classifier|--diagnoses|--chat-endpoint …``: one JSON object per
image on stdout."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from formats.taxonomy import Taxonomy
from skingen.commands.command import ML_EXTRA, register
from skingen.commands.flags import add_device_options
from skingen.diagnosis.options import (
    DiagnoserSettings,
    DiagnoserSpec,
    add_diagnoser_options,
    build_diagnoser,
    diagnoser_settings,
    diagnoser_spec,
)
from skingen.sources import load_image


@dataclass(frozen=True)
class DiagnoseConfig:
    images: tuple[Path, ...]
    diagnoser: DiagnoserSpec
    settings: DiagnoserSettings
    taxonomy: Path | None


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "diagnose",
        help="diagnose images; prints one JSON object per image",
        epilog=f"The model backends (all but --diagnoses) need the ml extra: {ML_EXTRA}",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    add_diagnoser_options(parser, required=True, description="the model (or CSV) that diagnoses the images")
    add_device_options(parser)
    register(parser, check, run)


def check(args: argparse.Namespace) -> DiagnoseConfig:
    return DiagnoseConfig(
        images=tuple(args.images),
        diagnoser=diagnoser_spec(args),  # the backend group is required: never None here
        settings=diagnoser_settings(args),
        taxonomy=args.taxonomy,
    )


def run(config: DiagnoseConfig) -> int:
    # 1. Read every image before loading a model
    taxonomy = Taxonomy.load(config.taxonomy)
    images = [(path, load_image(path)) for path in config.images]
    # 2. Load the model, 3. one JSON line per image as it is diagnosed
    diagnoser = build_diagnoser(config.diagnoser, taxonomy, config.settings)
    for path, image in tqdm(images, desc="diagnosing", unit="image", disable=len(images) < 2):
        print(json.dumps({"image": str(path), **diagnoser.diagnose(image, path.stem).to_dict()}), flush=True)
    return 0
