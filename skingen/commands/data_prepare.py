"""``skingen data prepare SRC --format F --out DATA``: a public dataset's labels + the local images → DATA/
(metadata.csv, images/, data card).

The config is :class:`~skingen.data_prepare.pipeline.PrepareSettings`, whose ``check`` (every range, path and
cross-field rule, each naming its flag) :func:`~skingen.data_prepare.pipeline.prepare` runs before anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from skingen.commands.command import NEEDS_ML, register
from skingen.commands.flags import add_taxonomy_option
from skingen.data_prepare.formats import FORMATS

if TYPE_CHECKING:  # the pipeline needs the ml extra (perceptual hashes, the data card's figures)
    from skingen.data_prepare.pipeline import PrepareSettings


def add_parser(data_commands: argparse._SubParsersAction) -> None:
    parser = data_commands.add_parser(
        "prepare",
        help="label file(s) + local images → DATA/ (metadata.csv, images/, data card)",
        description="Map a dataset's labels onto the taxonomy (exactly; the rest is listed and left out), drop "
        "near-duplicate images, split train/validation by condition × skin-tone group, and write DATA/. "
        "Nothing is downloaded: the images are the ones you obtained under the dataset's licence.",
        epilog=NEEDS_ML,
    )
    parser.add_argument(
        "src",
        type=Path,
        metavar="SRC",
        help="fitzpatrick17k/ddi: the label CSV; scin: the folder with scin_cases.csv + scin_labels.csv; "
        "folder: the folder with one sub-folder per condition",
    )
    # Not argparse choices: an unknown format is a SkinGenError (exit 1) like every other bad input.
    parser.add_argument("--format", required=True, metavar="|".join(FORMATS), help="the label layout")
    parser.add_argument("--images", type=Path, metavar="DIR", help="the local image folder (folder: SRC)")
    parser.add_argument("--out", required=True, type=Path, metavar="DATA")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing DATA")
    parser.add_argument(
        "--validation-fraction", type=float, default=0.2, help="share of each stratum held out (default 0.2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument(
        "--phash-distance",
        type=int,
        default=4,
        metavar="N",
        help="near-duplicate threshold, Hamming distance of 64-bit pHashes (default 4; 0 = same hash)",
    )
    parser.add_argument("--licence", help="licence string for metadata.csv (default: the dataset's)")
    add_taxonomy_option(parser)
    parser.add_argument("--templates", type=Path, help="prompt templates YAML for the captions")
    register(parser, check, run)


def check(args: argparse.Namespace) -> PrepareSettings:
    from skingen.data_prepare.pipeline import PrepareSettings

    return PrepareSettings(
        src=args.src,
        format=args.format,
        out=args.out,
        images=args.images,
        overwrite=args.overwrite,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        phash_distance=args.phash_distance,
        licence=args.licence,
        taxonomy=args.taxonomy,
        templates=args.templates,
    )


def run(settings: PrepareSettings) -> int:
    from skingen.data_prepare.pipeline import prepare

    card = prepare(settings)
    if card.unmapped:
        listed = ", ".join(f"{label!r} ×{n}" for label, n in card.unmapped.items())
        print(f"skingen: unmapped labels, left out: {listed}", file=sys.stderr)
    summary = {
        "data": str(settings.out),
        "images": card.images,
        "duplicates_removed": len(card.duplicates),
        "unmapped_images": sum(card.unmapped.values()),
        "excluded": sum(card.excluded.values()),
    }
    print(json.dumps(summary))
    return 0
