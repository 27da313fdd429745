"""``skingen worker --db URL [models]``: serve the app's model jobs (diagnosis, chat, references) from the study
database until stopped (SIGTERM/SIGINT) or ``--max-jobs``."""

from __future__ import annotations

import argparse
import signal
import threading
from dataclasses import dataclass

from formats.taxonomy import Taxonomy
from skingen.commands.command import NEEDS_ML, register
from skingen.commands.flags import ModelSetup, add_device_options, model_setup
from skingen.commands.generator_flags import GeneratorOptions, add_generator_options, generator_options
from skingen.diagnosis.options import (
    DiagnoserSettings,
    DiagnoserSpec,
    add_diagnoser_options,
    build_diagnoser,
    diagnoser_settings,
    diagnoser_spec,
)
from skingen.errors import SkinGenError
from skingen.prompts import PromptBuilder


@dataclass(frozen=True)
class WorkerConfig:
    db: str
    diagnoser: DiagnoserSpec | None  # None: no diagnose or chat jobs
    diagnosis: DiagnoserSettings
    generator: GeneratorOptions  # model None: no reference jobs from --sd
    inpaint_sd: str | None
    detector: str | None
    segmenter: str | None
    box_threshold: float
    max_batch: int
    max_images_per_call: int
    lease: float
    name: str | None
    max_jobs: int | None
    setup: ModelSetup


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "worker",
        help="serve the app's model jobs (diagnosis, chat, references) from the study database",
        description="Take diagnosis, chat and reference-image jobs from the study database, run them on this "
        "machine's models and write the results back. Run one per GPU, on any machine that reaches the "
        "database; a worker serves the job kinds its models allow (a VLM: diagnose and chat; --sd: references).",
        epilog=NEEDS_ML,
    )
    parser.add_argument("--db", required=True, metavar="URL", help="the study database (SQLAlchemy URL)")
    add_diagnoser_options(
        parser,
        required=False,
        description="serves diagnose jobs, and chat jobs when it is a VLM (--vlm, --chat-endpoint)",
    )
    add_generator_options(parser, per_run=False)
    parser.add_argument(
        "--inpaint-sd",
        metavar="PATH|ID",
        help="an inpainting SD model: paint references into the user's photo (needs --detector, --segmenter)",
    )
    parser.add_argument(
        "--detector", metavar="PATH", help="open-vocabulary detector (GroundingDINO) for the affected area"
    )
    parser.add_argument("--segmenter", metavar="PATH", help="segmentation model (SAM) for the detected box")
    parser.add_argument(
        "--box-threshold", type=float, default=0.25, help="detector score a box needs (default 0.25)"
    )
    parser.add_argument(
        "--max-batch", type=int, default=8, help="waiting jobs of one kind taken together (default 8)"
    )
    parser.add_argument(
        "--max-images-per-call", type=int, default=8, help="images per diffusers call (default 8)"
    )
    parser.add_argument(
        "--lease", type=float, default=60.0, help="seconds a job is held without renewal (default 60)"
    )
    parser.add_argument("--name", help="this worker's name in the database (default host:pid)")
    parser.add_argument("--max-jobs", type=int, help="exit after this many jobs (default: run until stopped)")
    add_device_options(parser)
    register(parser, check, run)


def check(args: argparse.Namespace) -> WorkerConfig:
    spec, settings = diagnoser_spec(args), diagnoser_settings(args)
    if spec is None and not (args.sd or args.inpaint_sd):
        raise SkinGenError(
            "worker: give a diagnoser (--vlm, --chat-endpoint, --clip, --classifier) and/or a Stable Diffusion "
            "model (--sd, --inpaint-sd)"
        )
    if spec is not None and spec.kind == "fixed":
        raise SkinGenError("--diagnoses: a worker diagnoses users' photos, which are in no CSV; give a model")
    if args.inpaint_sd and not (args.detector and args.segmenter):
        raise SkinGenError("--inpaint-sd needs --detector and --segmenter (they find the area to paint)")
    return WorkerConfig(
        db=args.db,
        diagnoser=spec,
        diagnosis=settings,
        generator=generator_options(args),
        inpaint_sd=args.inpaint_sd,
        detector=args.detector,
        segmenter=args.segmenter,
        box_threshold=args.box_threshold,
        max_batch=args.max_batch,
        max_images_per_call=args.max_images_per_call,
        lease=args.lease,
        name=args.name,
        max_jobs=args.max_jobs,
        setup=model_setup(args),
    )


def run(config: WorkerConfig) -> int:
    from skingen.masking import AffectedAreaMasker
    from skingen.serving import GenerationSettings, ModelServer
    from skingen.worker import JobQueue, Worker

    # 1. The queue first: a wrong --db is refused in a second, with the path or host it tried, before minutes
    # of model loading (which could fail first with an error that says nothing about --db)
    queue = JobQueue.open(config.db, lease_seconds=config.lease)
    # 2. Load the models
    taxonomy = Taxonomy.load(config.setup.taxonomy)
    diagnoser = (
        None if config.diagnoser is None else build_diagnoser(config.diagnoser, taxonomy, config.diagnosis)
    )
    options, setup = config.generator, config.setup
    masker = None
    if config.inpaint_sd:
        masker = AffectedAreaMasker(
            config.detector, config.segmenter, box_threshold=config.box_threshold, device=setup.device
        )
    server = ModelServer(
        taxonomy,
        diagnoser=diagnoser,
        generator=options.load(setup, inpaint=False) if options.model else None,
        inpainter=(options.load(setup, inpaint=True, model=config.inpaint_sd) if config.inpaint_sd else None),
        masker=masker,
        prompts=PromptBuilder.load(taxonomy, options.templates),
        settings=GenerationSettings(
            steps=options.steps,
            guidance=options.guidance,
            width=options.width,
            height=options.height,
            max_images_per_call=config.max_images_per_call,
            trigger=options.trigger,
        ),
    )
    # 3. Serve the database's jobs until stopped
    worker = Worker(
        queue,
        server.handlers(),
        name=config.name,
        max_batch=config.max_batch,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"skingen worker {worker.name}: serving {', '.join(worker.handlers)} from {config.db}", flush=True)
    done = worker.run(stop=stop, max_jobs=config.max_jobs)
    print(f"skingen worker {worker.name}: stopped after {done} job(s)", flush=True)
    return 0
