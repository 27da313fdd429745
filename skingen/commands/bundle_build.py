"""``skingen bundle build CASES_DIR --out BUNDLE --sd MODEL …``: diagnose each case, generate k references of
the diagnosis (optionally retrieve real ones and evaluate the references) into a stimulus bundle.

Everything checkable without models is checked first: the flags here, then the cases, templates and image sets
at the start of :func:`run`. Under ``accelerate launch`` each process builds its share of the cases.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from formats.atomic import check_output_dir
from formats.taxonomy import Taxonomy
from skingen.bundle.evaluation import BundleEvaluator
from skingen.commands.command import NEEDS_ML, register
from skingen.commands.evaluation_flags import (
    RealImages,
    add_evaluation_inputs,
    add_evaluation_settings,
    evaluation_settings,
    real_images,
)
from skingen.commands.flags import ModelSetup, add_device_options, model_setup
from skingen.commands.generator_flags import GeneratorOptions, add_generator_options, generator_options
from skingen.dataset import load_dataset
from skingen.diagnosis.options import (
    DiagnoserSettings,
    DiagnoserSpec,
    add_diagnoser_options,
    build_diagnoser,
    diagnoser_settings,
    diagnoser_spec,
    judge_spec,
)
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.evaluation.features import FeatureExtractor
from skingen.prompts import PromptBuilder

if TYPE_CHECKING:  # the builder and retrieval need the ml extra (perceptual hashes): imported where used
    from skingen.bundle.builder import BundleSettings
    from skingen.bundle.retrieval import RetrievalSettings


@dataclass(frozen=True)
class ReferenceEvaluation:
    """``--evaluate``: the real set, the closed loop's judge, and the metrics' settings."""

    real: RealImages
    judge: DiagnoserSpec  # --diagnoser, else the model that diagnosed the cases
    settings: EvaluationSettings


@dataclass(frozen=True)
class BundleBuildConfig:
    cases_dir: Path
    out: Path
    overwrite: bool
    settings: BundleSettings
    generator: GeneratorOptions
    diagnoser: DiagnoserSpec | None  # None: every row of cases.csv has ai_condition
    diagnosis: DiagnoserSettings
    features: Path | None
    retrieval: RetrievalSettings | None
    evaluation: ReferenceEvaluation | None
    setup: ModelSetup  # device None: the device accelerate gave this process, else the best available


def add_parser(bundle_commands: argparse._SubParsersAction) -> None:
    parser = bundle_commands.add_parser(
        "build",
        help="cases dir (photos + cases.csv) → bundle",
        description="Diagnose each case and generate k references of the diagnosis into a bundle. Several "
        "GPUs: `accelerate launch --multi_gpu --num_processes N -m skingen bundle build ...` splits the cases "
        "over the processes; the bundle is the one a single process builds.",
        epilog=NEEDS_ML,
    )
    parser.add_argument("cases_dir", type=Path, metavar="CASES_DIR")
    parser.add_argument("--out", required=True, type=Path, metavar="BUNDLE")
    parser.add_argument("-k", type=int, default=3, help="reference images per case (default 3)")
    parser.add_argument("--bundle-id", help="default: the output directory's name")
    parser.add_argument("--version", default="1", help="bundle version (default 1)")
    parser.add_argument("--description", default="")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    _add_retrieval_options(parser)
    add_diagnoser_options(
        parser,
        required=False,
        description="diagnoses the cases (not needed when every row of cases.csv has ai_condition)",
    )
    add_generator_options(parser)
    add_device_options(parser)
    evaluation = parser.add_argument_group(
        "evaluation (--evaluate)",
        "evaluate the references before the bundle is written: each image's closed-loop check in the manifest, "
        "the bundle's metrics in BUNDLE/evaluation/ (k-NN k and feature batch size: skingen evaluate's defaults)",
    )
    evaluation.add_argument(
        "--evaluate", action="store_true", help="evaluate the references (needs --real and --features)"
    )
    add_evaluation_inputs(evaluation, required=False)
    add_evaluation_settings(evaluation)
    register(parser, check, run)


def _add_retrieval_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "retrieved real references",
        "the real images of the diagnosed condition nearest to each case photo, from a prepared image set",
    )
    group.add_argument(
        "--retrieve",
        type=Path,
        metavar="DATA",
        help="prepared image set (`skingen data prepare`) to retrieve from",
    )
    group.add_argument("--retrieve-k", type=int, metavar="K", help="real images per case (default: -k)")
    group.add_argument(
        "--features",
        type=Path,
        metavar="PATH",
        help="local image-encoder directory (CLIP or any transformers image model): the distances of "
        "--retrieve and the metrics of --evaluate; required with either",
    )
    group.add_argument(
        "--retrieve-phash-distance",
        type=int,
        default=4,
        metavar="N",
        help="leave out images within N bits (64-bit pHash) of the case photo (default 4, as data prepare)",
    )


def check(args: argparse.Namespace) -> BundleBuildConfig:
    from skingen.bundle.builder import BundleSettings

    check_output_dir(args.out, overwrite=args.overwrite)
    retrieval = _retrieval_settings(args)
    cases, diagnosis = diagnoser_spec(args), diagnoser_settings(args)
    evaluation = _evaluation(args, cases, judge_spec(args))
    if args.features is not None and retrieval is None and evaluation is None:
        raise SkinGenError("--features: only used with --retrieve DATA or --evaluate")
    generator = generator_options(args)
    settings = BundleSettings(
        bundle_id=args.bundle_id or args.out.name,
        version=args.version,
        description=args.description,
        k=args.k,
        seed=args.seed,
        steps=generator.steps,
        guidance=generator.guidance,
        width=generator.width,
        height=generator.height,
        skin_tone=args.skin_tone,
        severity=args.severity,
        trigger=generator.trigger,
    )
    return BundleBuildConfig(
        cases_dir=args.cases_dir,
        out=args.out,
        overwrite=args.overwrite,
        settings=settings,
        generator=generator,
        diagnoser=cases,
        diagnosis=diagnosis,
        features=args.features,
        retrieval=retrieval,
        evaluation=evaluation,
        setup=model_setup(args),
    )


def _retrieval_settings(args: argparse.Namespace) -> RetrievalSettings | None:
    """The checked retrieval settings, or None without --retrieve (its other flags then refused)."""
    from skingen.bundle.retrieval import RetrievalSettings

    if args.retrieve is None:
        if args.retrieve_k is not None:
            raise SkinGenError("--retrieve-k: only used with --retrieve DATA")
        return None
    if args.features is None:
        raise SkinGenError("--retrieve needs --features PATH (the image encoder distances are computed in)")
    settings = RetrievalSettings(
        data=args.retrieve,
        features=args.features,
        k=args.k if args.retrieve_k is None else args.retrieve_k,
        phash_distance=args.retrieve_phash_distance,
    )
    settings.check()
    return settings


def _evaluation(
    args: argparse.Namespace, cases: DiagnoserSpec | None, judge: DiagnoserSpec | None
) -> ReferenceEvaluation | None:
    """``--evaluate``'s inputs, checked (None without --evaluate, whose other flags are then refused)."""
    given = [
        flag
        for flag, value in (
            ("--real", args.real), ("--diagnoser", args.diagnoser), ("--inception-weights", args.inception_weights)
        )
        if value
    ]  # fmt: skip
    if not args.evaluate:
        if given:
            raise SkinGenError(f"{', '.join(given)}: only used with --evaluate")
        return None
    missing = [flag for flag, value in (("--real", args.real), ("--features", args.features)) if not value]
    if missing:
        raise SkinGenError(f"--evaluate needs {' and '.join(missing)}")
    if judge is None and (cases is None or cases.kind == "fixed"):
        raise SkinGenError(
            "--evaluate: the closed loop needs a model that looks at images: --diagnoser KIND:SOURCE (or "
            "diagnose the cases with a model: --vlm, --clip, --classifier, --chat-endpoint)"
        )
    return ReferenceEvaluation(real_images(args), judge or cases, evaluation_settings(args, seed=args.seed))


def run(config: BundleBuildConfig) -> int:
    from skingen.bundle.builder import BundleBuilder, read_cases
    from skingen.bundle.retrieval import ReferenceRetriever

    # 1. Under `accelerate launch`: this process's share of the cases, on the device accelerate gave it
    share, setup = config.setup.for_process()
    device, diagnosis = setup.device, replace(config.diagnosis, device=setup.device)
    # 2. Read the inputs before loading any model: cases.csv and its photos, templates, the image sets
    taxonomy = Taxonomy.load(setup.taxonomy)
    cases = read_cases(config.cases_dir, taxonomy)
    prompts = PromptBuilder.load(taxonomy, config.generator.templates)
    dataset = load_dataset(config.retrieval.data) if config.retrieval else None
    real = config.evaluation.real.read() if config.evaluation else None
    # 3. Load the models; one feature extractor serves retrieval and evaluation
    undiagnosed = any(case.fixed_ai is None for case in cases)
    diagnoser = (
        build_diagnoser(config.diagnoser, taxonomy, diagnosis) if undiagnosed and config.diagnoser else None
    )
    generator = config.generator.load(setup, inpaint=False)
    extractor = FeatureExtractor(config.features, device=device) if config.features else None
    retriever = None
    if config.retrieval is not None:
        retriever = ReferenceRetriever(
            dataset, extractor, config.retrieval, feature_model_type=extractor.model_type
        )
    evaluator = None
    if config.evaluation is not None:  # the judge is the cases' model when the specs are the same
        judge = config.evaluation.judge
        same = str(judge) == str(config.diagnoser) and diagnoser is not None
        evaluator = BundleEvaluator(
            real,
            extractor,
            diagnoser if same else build_diagnoser(judge, taxonomy, diagnosis),
            config.evaluation.settings,
            config.evaluation.real.inception(device),
        )
    # 4. Generate (each process its share of the cases) and write the bundle
    builder = BundleBuilder(
        taxonomy, prompts, generator, diagnoser, config.settings, evaluator=evaluator, retriever=retriever
    )
    path = builder(cases, config.out, overwrite=config.overwrite, share=share)
    if share.is_main_process:
        print(json.dumps({"bundle": str(path), "cases": len(cases)}))
    return 0
