"""``skingen evaluate --real DIR|DATA --generated DIR --features PATH --out DIR``: generated vs real images,
per skin-tone group → metrics.json + report.html (under ``accelerate launch``: each process its share)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

from formats.atomic import check_output_dir
from formats.taxonomy import Taxonomy
from skingen.commands.command import NEEDS_ML, register
from skingen.commands.evaluation_flags import (
    RealImages,
    add_evaluation_inputs,
    add_evaluation_settings,
    evaluation_settings,
    real_images,
)
from skingen.commands.flags import ModelSetup, add_device_options, model_setup
from skingen.diagnosis.options import (
    DiagnoserSettings,
    DiagnoserSpec,
    add_diagnoser_settings,
    build_diagnoser,
    diagnoser_settings,
    judge_spec,
)
from skingen.evaluation.evaluator import EvaluationSettings, check_inputs, evaluate, headline_of
from skingen.evaluation.features import FeatureExtractor
from skingen.evaluation.inputs import read_generated
from skingen.evaluation.report import write_report


@dataclass(frozen=True)
class EvaluateConfig:
    real: RealImages
    generated: Path
    features: Path
    judge: DiagnoserSpec | None  # None: no closed loop
    judging: DiagnoserSettings
    settings: EvaluationSettings
    out: Path
    overwrite: bool
    batch_size: int
    setup: ModelSetup  # device None: the device accelerate gave this process, else the best available


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="generated vs real images: FID, KID, precision/recall/density/coverage, CLIP score, diversity, "
        "closed-loop accuracy, per skin-tone group → metrics.json + report.html",
        epilog=NEEDS_ML,
    )
    add_evaluation_inputs(parser, required=True)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    add_diagnoser_settings(parser)
    defaults = EvaluationSettings()
    parser.add_argument(
        "--k", type=int, default=defaults.k, help="k of the k-NN manifolds (default %(default)s)"
    )
    add_evaluation_settings(parser)
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="KID subsets and bootstrap (default %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="images per feature batch (default 32)")
    add_device_options(parser, dtype=False)
    register(parser, check, run)


def check(args: argparse.Namespace) -> EvaluateConfig:
    check_output_dir(args.out, overwrite=args.overwrite)
    return EvaluateConfig(
        real=real_images(args),
        generated=args.generated,
        features=args.features,
        judge=judge_spec(args),
        judging=diagnoser_settings(args),
        settings=evaluation_settings(args, k=args.k, seed=args.seed),
        out=args.out,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        setup=model_setup(args),
    )


def run(config: EvaluateConfig) -> int:
    # 1. Both image sets, before any model loads
    real = config.real.read()
    generated = read_generated(config.generated)
    check_inputs(real, generated, config.settings)
    # Under `accelerate launch`: this process's share of the images, on the device accelerate gave it
    share, setup = config.setup.for_process()
    device = setup.device
    # 2. Load the models, 3. evaluate (each process its share of the images), 4. the main process writes
    # metrics.json + report.html at once
    extractor = FeatureExtractor(config.features, device=device, batch_size=config.batch_size)
    diagnoser = None
    if config.judge is not None:
        diagnoser = build_diagnoser(
            config.judge, Taxonomy.load(setup.taxonomy), replace(config.judging, device=device)
        )
    inception = config.real.inception(device, config.batch_size)
    results = evaluate(
        real, generated, extractor, config.settings, diagnoser=diagnoser, inception=inception, share=share
    )
    if results is not None:
        write_report(config.out, results, overwrite=config.overwrite)
        print(json.dumps({"out": str(config.out), **{k: results[k] for k in headline_of(results)}}))
    return 0
