"""``skingen`` command line: diagnose, generate, bundle build/validate, data prepare, lora train/which/grid,
evaluate.

Every skingen module is torch-free at import; torch, diffusers and transformers are imported only when a
model is loaded, so ``skingen --help`` and ``skingen bundle validate`` stay fast (a test checks this).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

from formats.atomic import OutputExistsError, check_output_dir
from formats.bundle import BundleError, load_bundle
from formats.errors import FormatError
from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.bundle.builder import BundleBuilder, BundleSettings, read_cases
from skingen.bundle.evaluation import BundleEvaluator
from skingen.bundle.retrieval import ReferenceRetriever, RetrievalSettings
from skingen.data_prepare.formats import FORMATS
from skingen.data_prepare.pipeline import PrepareSettings, prepare
from skingen.dataset import SPLITS, load_dataset
from skingen.diagnosis.options import (
    DiagnoserSpec,
    add_diagnoser_options,
    add_diagnoser_settings,
    add_judge_option,
    build_diagnoser,
    diagnoser_settings,
    diagnoser_spec,
    judge_spec,
)
from skingen.distributed import ProcessShare
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings, check_inputs, evaluate, headline_of
from skingen.evaluation.features import FeatureExtractor
from skingen.evaluation.inception import InceptionFeatures
from skingen.evaluation.inputs import ImageSet, read_generated, read_real
from skingen.evaluation.report import write_report
from skingen.generation import (
    DEFAULT_GUIDANCE,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    SCHEDULERS,
    LoraSpec,
    ReferenceGenerator,
)
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageCache, ImageLabels, default_cache_dir, save_image
from skingen.skin_tone import FITZPATRICK_TYPES
from skingen.sources import load_image


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda[:N] or mps (default: best available)")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        help="default: float16 on CUDA, float32 elsewhere",
    )
    parser.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")


def _add_evaluation_inputs(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The two image sets' sources and the closed loop's diagnoser (``evaluate``, ``bundle build --evaluate``)."""
    parser.add_argument(
        "--real",
        required=required,
        type=Path,
        metavar="DIR|DATA",
        help="prepared set (metadata.csv) or image folder",
    )
    parser.add_argument(
        "--real-split", choices=SPLITS, help="only this split of a prepared --real set (default: all)"
    )
    parser.add_argument(
        "--inception-weights",
        type=Path,
        metavar="PATH",
        help="clean-fid's TorchScript inception-2015-12-05.pt: also the standard Inception FID/KID "
        "(`fid`, `kid`), as clean-fid computes them (nothing is downloaded)",
    )
    if required:  # `skingen evaluate`; `bundle build` evaluates its own references with its --features
        parser.add_argument(
            "--generated",
            required=True,
            type=Path,
            metavar="DIR",
            help="generated images with provenance JSON beside them, or a bundle (its references)",
        )
        parser.add_argument(
            "--features",
            required=True,
            type=Path,
            metavar="PATH",
            help="local image-encoder directory: CLIP (also gives the CLIP score) or any transformers image "
            "model",
        )
    add_judge_option(
        parser,
        default="default: no closed loop" if required else "default: the model that diagnosed the cases",
    )


def _add_evaluation_settings(parser: argparse.ArgumentParser) -> None:
    defaults = EvaluationSettings()
    parser.add_argument(
        "--jackknife-groups",
        type=int,
        default=defaults.jackknife_groups,
        help="blocks per side of the FD∞ and KD jackknife intervals (default %(default)s)",
    )
    parser.add_argument(
        "--kd-max-samples",
        type=int,
        default=defaults.kd_max_samples,
        metavar="N",
        help="KD (quadratic in the images) on a seeded subsample of at most N per side (default %(default)s; "
        "0: all)",
    )
    parser.add_argument(
        "--equal-n-draws",
        type=int,
        default=defaults.equal_n_draws,
        help="subsamples per skin-tone group for FD at the smallest group's n (default %(default)s; 0: none)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=defaults.bootstrap,
        help="bootstrap replicates of the per-image metrics (default %(default)s; 0: no intervals)",
    )
    parser.add_argument(
        "--confidence", type=float, default=defaults.confidence, help="interval level (default %(default)s)"
    )
    parser.add_argument(
        "--knn-max-samples",
        type=int,
        default=defaults.knn_max_samples,
        metavar="N",
        help="precision/recall/density/coverage and diversity on a seeded subsample of at most N images per "
        "side and group (they are quadratic in the images; default %(default)s, as Naeem et al. 2020; 0: all)",
    )


def _evaluation_settings(
    args: argparse.Namespace, *, seed: int, k: int = EvaluationSettings.k
) -> EvaluationSettings:
    return EvaluationSettings(
        k=k,
        jackknife_groups=args.jackknife_groups,
        kd_max_samples=args.kd_max_samples,
        equal_n_draws=args.equal_n_draws,
        bootstrap=args.bootstrap,
        confidence=args.confidence,
        seed=seed,
        knn_max_samples=args.knn_max_samples,
    )


def _add_generator_options(parser: argparse.ArgumentParser, *, per_run: bool = True) -> None:
    """Model and sampling options; ``per_run`` adds the ones a single run fixes (seed, skin type, severity)."""
    parser.add_argument(
        "--sd",
        required=per_run,
        metavar="PATH|ID",
        help="Stable Diffusion 1.x/2.x or SDXL model (diffusers folder or hub id)",
    )
    parser.add_argument(
        "--lora",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="LoRA weights file or directory (repeatable)",
    )
    parser.add_argument(
        "--lora-scale",
        action="append",
        default=[],
        type=float,
        metavar="S",
        help="scale of the matching --lora (repeatable, default 1.0)",
    )
    parser.add_argument(
        "--ip-adapter",
        type=Path,
        metavar="PATH",
        help="IP-Adapter weights file (with image_encoder/ beside it), conditioned on --image",
    )
    parser.add_argument(
        "--ip-adapter-scale", type=float, default=0.6, help="IP-Adapter strength (default 0.6)"
    )
    parser.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        help="replace the model's scheduler",
    )
    if per_run:
        parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help="denoising steps (default %(default)s)"
    )
    parser.add_argument(
        "--guidance",
        type=float,
        default=DEFAULT_GUIDANCE,
        help="classifier-free guidance scale (default %(default)s)",
    )
    for side in ("width", "height"):
        parser.add_argument(
            f"--{side}",
            type=int,
            default=DEFAULT_SIZE,
            help=f"image {side}, multiple of 8 (default %(default)s)",
        )
    if per_run:
        parser.add_argument("--skin-tone", choices=FITZPATRICK_TYPES, help="Fitzpatrick skin type in prompts")
        parser.add_argument("--severity", help="severity in prompts: mild, moderate, severe (see templates)")
    parser.add_argument("--trigger", help="LoRA trigger token put in front of prompts")
    parser.add_argument("--templates", type=Path, help="prompt templates YAML (default: the packaged one)")
    parser.add_argument(
        "--cache", type=Path, help="image cache directory (default: $SKINGEN_CACHE or ~/.cache)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the image cache")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skingen",
        description="SkinGEN: diagnose skin photos with a VLM, generate reference images of the diagnosis "
        "with Stable Diffusion (+LoRA), and build stimulus bundles for a study.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    diagnose = commands.add_parser("diagnose", help="diagnose images; prints one JSON object per image")
    diagnose.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    add_diagnoser_options(diagnose, required=True, description="the model (or CSV) that diagnoses the images")
    _add_device_options(diagnose)
    diagnose.set_defaults(handler=run_diagnose)

    generate = commands.add_parser("generate", help="generate reference images (PNG + provenance JSON)")
    what = generate.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--diagnosis", metavar="TEXT", help="a condition (id, name or synonym); prompt from templates"
    )
    what.add_argument("--prompt", metavar="TEXT", help="a prompt, used as is")
    generate.add_argument(
        "--negative-prompt", metavar="TEXT", help="default: the templates' (with --diagnosis)"
    )
    generate.add_argument("--body-site", help="body site in the prompt (with --diagnosis)")
    generate.add_argument("--image", type=Path, metavar="IMG", help="patient photo for --ip-adapter / --mask")
    generate.add_argument(
        "--mask", type=Path, metavar="MASK", help="inpaint the white area of MASK in --image"
    )
    generate.add_argument("--strength", type=float, default=1.0, help="inpainting strength (default 1.0)")
    generate.add_argument(
        "-n", "--count", type=int, default=1, help="images, seeds SEED… SEED+N-1 (default 1)"
    )
    generate.add_argument("--batch-size", type=int, default=1, help="images per diffusers call (default 1)")
    generate.add_argument("--out", required=True, type=Path, metavar="DIR")
    _add_generator_options(generate)
    _add_device_options(generate)
    generate.set_defaults(handler=run_generate)

    bundle = commands.add_parser("bundle", help="build or validate stimulus bundles")
    bundle_commands = bundle.add_subparsers(dest="bundle_command", required=True)
    build = bundle_commands.add_parser(
        "build",
        help="cases dir (photos + cases.csv) → bundle",
        description="Diagnose each case and generate k references of the diagnosis into a bundle. Several "
        "GPUs: `accelerate launch --multi_gpu --num_processes N -m skingen bundle build ...` splits the cases "
        "over the processes; the bundle is the one a single process builds.",
    )
    build.add_argument("cases_dir", type=Path, metavar="CASES_DIR")
    build.add_argument("--out", required=True, type=Path, metavar="BUNDLE")
    build.add_argument("-k", type=int, default=3, help="reference images per case (default 3)")
    build.add_argument("--bundle-id", help="default: the output directory's name")
    build.add_argument("--version", default="1", help="bundle version (default 1)")
    build.add_argument("--description", default="")
    build.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    _add_retrieval_options(build)
    add_diagnoser_options(
        build,
        required=False,
        description="diagnoses the cases (not needed when every row of cases.csv has ai_condition)",
    )
    _add_generator_options(build)
    _add_device_options(build)
    evaluation = build.add_argument_group(
        "evaluation (--evaluate)",
        "evaluate the references before the bundle is written: each image's closed-loop check in the manifest, "
        "the bundle's metrics in BUNDLE/evaluation/ (k-NN k and feature batch size: skingen evaluate's defaults)",
    )
    evaluation.add_argument(
        "--evaluate", action="store_true", help="evaluate the references (needs --real and --features)"
    )
    _add_evaluation_inputs(evaluation, required=False)
    _add_evaluation_settings(evaluation)
    build.set_defaults(handler=run_bundle_build)
    validate = bundle_commands.add_parser("validate", help="check a bundle's manifest and files")
    validate.add_argument("bundle", type=Path, metavar="BUNDLE")
    validate.set_defaults(handler=run_bundle_validate)

    data = commands.add_parser("data", help="prepare training data from a public dataset's label files")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_prepare = data_commands.add_parser(
        "prepare",
        help="label file(s) + local images → DATA/ (metadata.csv, images/, data card)",
        description="Map a dataset's labels onto the taxonomy (exactly; the rest is listed and left out), drop "
        "near-duplicate images, split train/validation by condition × skin-tone group, and write DATA/. "
        "Nothing is downloaded: the images are the ones you obtained under the dataset's licence.",
    )
    data_prepare.add_argument(
        "src",
        type=Path,
        metavar="SRC",
        help="fitzpatrick17k/ddi: the label CSV; scin: the folder with scin_cases.csv + scin_labels.csv; "
        "folder: the folder with one sub-folder per condition",
    )
    # Not argparse choices: an unknown format is a SkinGenError (exit 1) like every other bad input.
    data_prepare.add_argument("--format", required=True, metavar="|".join(FORMATS), help="the label layout")
    data_prepare.add_argument(
        "--images", type=Path, metavar="DIR", help="the local image folder (folder: SRC)"
    )
    data_prepare.add_argument("--out", required=True, type=Path, metavar="DATA")
    data_prepare.add_argument("--overwrite", action="store_true", help="replace an existing DATA")
    data_prepare.add_argument(
        "--validation-fraction", type=float, default=0.2, help="share of each stratum held out (default 0.2)"
    )
    data_prepare.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    data_prepare.add_argument(
        "--phash-distance",
        type=int,
        default=4,
        metavar="N",
        help="near-duplicate threshold, Hamming distance of 64-bit pHashes (default 4; 0 = same hash)",
    )
    data_prepare.add_argument("--licence", help="licence string for metadata.csv (default: the dataset's)")
    data_prepare.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")
    data_prepare.add_argument("--templates", type=Path, help="prompt templates YAML for the captions")
    data_prepare.set_defaults(handler=run_data_prepare)
    _add_lora_commands(commands)
    evaluate = commands.add_parser(
        "evaluate",
        help="generated vs real images: FID, KID, precision/recall/density/coverage, CLIP score, diversity, "
        "closed-loop accuracy, per skin-tone group → metrics.json + report.html",
    )
    _add_evaluation_inputs(evaluate, required=True)
    evaluate.add_argument("--out", required=True, type=Path, metavar="DIR")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    add_diagnoser_settings(evaluate)
    defaults = EvaluationSettings()
    evaluate.add_argument(
        "--k", type=int, default=defaults.k, help="k of the k-NN manifolds (default %(default)s)"
    )
    _add_evaluation_settings(evaluate)
    evaluate.add_argument(
        "--seed", type=int, default=defaults.seed, help="KID subsets and bootstrap (default %(default)s)"
    )
    evaluate.add_argument("--batch-size", type=int, default=32, help="images per feature batch (default 32)")
    evaluate.add_argument("--device", help="cpu, cuda[:N] or mps (default: best available)")
    evaluate.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")
    evaluate.set_defaults(handler=run_evaluate)
    return parser


def _add_lora_commands(commands: argparse._SubParsersAction) -> None:
    lora = commands.add_parser("lora", help="train a LoRA on a prepared image set; find a LoRA's run")
    lora_commands = lora.add_subparsers(dest="lora_command", required=True)
    train = lora_commands.add_parser(
        "train",
        help="train a LoRA (UNet attention, optionally the text encoder) under accelerate",
        description="Train a LoRA on DATA (from `skingen data prepare`) for an SD 1.x/2.x or SDXL base. "
        "Several GPUs: `accelerate launch -m skingen lora train ...` (one LoRA, gradients averaged).",
    )
    train.add_argument("--data", required=True, type=Path, metavar="DATA", help="prepared image set")
    train.add_argument(
        "--sd",
        required=True,
        metavar="PATH|ID",
        help="base model: Stable Diffusion 1.x/2.x or SDXL (diffusers folder)",
    )
    train.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder")
    train.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4)")
    train.add_argument("--alpha", type=float, help="LoRA alpha (default: the rank)")
    train.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    train.add_argument(
        "--lr-scheduler",
        default="constant",
        help="constant, constant_with_warmup, linear, "
        "cosine, cosine_with_restarts, polynomial (default constant)",
    )
    train.add_argument("--lr-warmup-steps", type=int, default=0, help="warmup steps (default 0)")
    train.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    train.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images per process per micro-batch (default 1); one optimizer step sees "
        "processes × batch size × --grad-accum images",
    )
    train.add_argument(
        "--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)"
    )
    train.add_argument("--resolution", type=int, default=512, help="training image size (default 512)")
    train.add_argument("--center-crop", action="store_true", help="centre crop (default: random crop)")
    train.add_argument("--random-flip", action="store_true", help="flip half the images horizontally")
    train.add_argument("--snr-gamma", type=float, help="Min-SNR loss weighting gamma (5.0 recommended)")
    train.add_argument("--noise-offset", type=float, default=0.0, help="noise offset (default 0)")
    train.add_argument("--mixed-precision", default="no", help="no, fp16 or bf16 (default no)")
    train.add_argument("--gradient-checkpointing", action="store_true", help="save memory, cost time")
    train.add_argument(
        "--train-text-encoder", action="store_true", help="LoRA on the text encoder(s) too (SDXL: both)"
    )
    train.add_argument("--dora", action="store_true", help="DoRA (peft use_dora): weight-decomposed LoRA")
    train.add_argument(
        "--ema-decay",
        type=float,
        metavar="D",
        help="keep an EMA of the LoRA weights (e.g. 0.999) and save it as the final weights",
    )
    train.add_argument(
        "--caption-dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that an image is trained with an empty caption (default 0)",
    )
    train.add_argument(
        "--cache-latents",
        action="store_true",
        help="encode every image with the VAE once (both flips with --random-flip); needs --center-crop",
    )
    train.add_argument(
        "--dataloader-workers",
        type=int,
        default=0,
        metavar="N",
        help="processes decoding images ahead of training (default 0: in the training process)",
    )
    train.add_argument(
        "--format",
        choices=("diffusers", "kohya", "both"),
        default="diffusers",
        help="final weights file: diffusers' (pytorch_lora_weights.safetensors), kohya's for ComfyUI / "
        "AUTOMATIC1111 (pytorch_lora_weights_kohya.safetensors), or both (default diffusers)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    train.add_argument("--trigger", help="trigger token put in front of every caption")
    train.add_argument(
        "--captions",
        default="metadata",
        help="metadata (the caption column; empty ones from "
        "the templates) or templates (always from the templates) (default metadata)",
    )
    train.add_argument("--taxonomy", type=Path, help="taxonomy YAML (default: the packaged one)")
    train.add_argument("--templates", type=Path, help="prompt templates YAML (default: the packaged one)")
    train.add_argument("--checkpoint-every", type=int, default=500, metavar="K", help="default 500")
    train.add_argument(
        "--checkpoints-total-limit", type=int, metavar="N", help="keep the newest N checkpoints"
    )
    train.add_argument("--validate-every", type=int, metavar="K", help="contact sheet every K steps")
    train.add_argument(
        "--validation-prompts",
        nargs="+",
        default=[],
        metavar="CONDITION",
        help="conditions shown (templated prompts per skin tone; default: the data's first 3)",
    )
    train.add_argument(
        "--validation-seeds", nargs="+", type=int, default=[0], metavar="SEED", help="default 0"
    )
    train.add_argument(
        "--validation-skin-tones",
        nargs="+",
        default=["I", "III", "V"],
        metavar="TYPE",
        help="Fitzpatrick types shown (default I III V: one per group)",
    )
    train.add_argument("--validation-inference-steps", type=int, default=20, help="default 20")
    train.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="latest|CHECKPOINT",
        help="continue from RUN's newest checkpoint (latest) or the named checkpoint folder",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_lora_train)
    which = lora_commands.add_parser("which", help="the training run(s) whose final LoRA has this SHA-256")
    which.add_argument(
        "sha256", metavar="SHA256", help="as in a provenance record or bundle (≥ 8 hex digits)"
    )
    which.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        default=[Path()],
        metavar="DIR",
        help="folders searched for run.json (default: the current folder)",
    )
    which.set_defaults(handler=run_lora_which)
    grid = lora_commands.add_parser(
        "grid",
        help="an experiment grid: each setting trained per seed, generated, evaluated against the base model",
        description="Run every combination of GRID.yaml's grid into DIR: each training setting (rank, alpha, "
        "lr, steps, text encoder, dataset subset) trained once per training seed, each LoRA generated at every "
        "generation setting (LoRA scale, guidance), the base model too; evaluated on two halves of the "
        "evaluation set; then results.csv/json and report.html: the best setting chosen on one half and "
        "compared with the base model and the runner-up on the other. Rerun the same command to resume: "
        "finished runs are skipped, an interrupted one resumes from its checkpoint.",
    )
    grid.add_argument("grid", type=Path, metavar="GRID.yaml")
    grid.add_argument("--out", required=True, type=Path, metavar="DIR")
    grid.add_argument("--no-progress", action="store_true", help="no progress bars")
    grid.set_defaults(handler=run_lora_grid)

    worker = commands.add_parser(
        "worker",
        help="serve the app's model jobs (diagnosis, chat, references) from the study database",
        description="Take diagnosis, chat and reference-image jobs from the study database, run them on this "
        "machine's models and write the results back. Run one per GPU, on any machine that reaches the "
        "database; a worker serves the job kinds its models allow (a VLM: diagnose and chat; --sd: references).",
    )
    worker.add_argument("--db", required=True, metavar="URL", help="the study database (SQLAlchemy URL)")
    add_diagnoser_options(
        worker,
        required=False,
        description="serves diagnose jobs, and chat jobs when it is a VLM (--vlm, --chat-endpoint)",
    )
    _add_generator_options(worker, per_run=False)
    worker.add_argument(
        "--inpaint-sd",
        metavar="PATH|ID",
        help="an inpainting SD model: paint references into the user's photo (needs --detector, --segmenter)",
    )
    worker.add_argument(
        "--detector", metavar="PATH", help="open-vocabulary detector (GroundingDINO) for the affected area"
    )
    worker.add_argument("--segmenter", metavar="PATH", help="segmentation model (SAM) for the detected box")
    worker.add_argument(
        "--box-threshold", type=float, default=0.25, help="detector score a box needs (default 0.25)"
    )
    worker.add_argument(
        "--max-batch", type=int, default=8, help="waiting jobs of one kind taken together (default 8)"
    )
    worker.add_argument(
        "--max-images-per-call", type=int, default=8, help="images per diffusers call (default 8)"
    )
    worker.add_argument(
        "--lease", type=float, default=60.0, help="seconds a job is held without renewal (default 60)"
    )
    worker.add_argument("--name", help="this worker's name in the database (default host:pid)")
    worker.add_argument("--max-jobs", type=int, help="exit after this many jobs (default: run until stopped)")
    _add_device_options(worker)
    worker.set_defaults(handler=run_worker)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="skingen: %(message)s")
    try:
        return args.handler(args)
    except (FormatError, OutputExistsError) as exc:
        print(f"skingen: error: {exc}", file=sys.stderr)
        return 1


def _taxonomy(args: argparse.Namespace) -> Taxonomy:
    return Taxonomy.load(args.taxonomy)


def _generator(args: argparse.Namespace, *, inpaint: bool, model: str | None = None) -> ReferenceGenerator:
    """The generator the options describe; ``model`` replaces ``--sd`` (the worker's inpainting model)."""
    if len(args.lora_scale) > len(args.lora):
        raise SkinGenError(f"--lora-scale given {len(args.lora_scale)} times for {len(args.lora)} --lora")
    scales = args.lora_scale + [1.0] * (len(args.lora) - len(args.lora_scale))
    return ReferenceGenerator.from_pretrained(
        model or args.sd,
        loras=[LoraSpec(path, scale) for path, scale in zip(args.lora, scales, strict=True)],
        ip_adapter=args.ip_adapter,
        ip_adapter_scale=args.ip_adapter_scale,
        inpaint=inpaint,
        scheduler=args.scheduler,
        device=args.device,
        dtype=args.dtype,
        cache=None if args.no_cache else ImageCache(args.cache or default_cache_dir()),
    )


def run_diagnose(args: argparse.Namespace) -> int:
    taxonomy = _taxonomy(args)
    images = [(path, load_image(path)) for path in args.images]  # every image readable before loading a model
    diagnoser = build_diagnoser(diagnoser_spec(args), taxonomy, diagnoser_settings(args))
    for path, image in tqdm(images, desc="diagnosing", unit="image", disable=len(images) < 2):
        print(json.dumps({"image": str(path), **diagnoser.diagnose(image, path.stem).to_dict()}), flush=True)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    # 1. Check arguments and read inputs before loading any model
    if (args.ip_adapter or args.mask) and args.image is None:
        raise SkinGenError("--image is required with --ip-adapter or --mask")
    if args.image is not None and not (args.ip_adapter or args.mask):
        raise SkinGenError("--image is only used with --ip-adapter or --mask")
    if args.count < 1:
        raise SkinGenError(f"-n/--count must be ≥ 1, got {args.count}")
    if args.out.exists() and not args.out.is_dir():
        raise SkinGenError(f"--out exists and is not a directory: {args.out}")
    image = load_image(args.image, "--image") if args.image else None
    mask = load_image(args.mask, "--mask").convert("L") if args.mask else None
    # 2. The prompt: as given, or from the templates for the named condition
    if args.prompt is not None:
        prompt, negative, stem = args.prompt, args.negative_prompt or "", "prompt"
        labels = ImageLabels(skin_tone=args.skin_tone)
    else:
        taxonomy = _taxonomy(args)
        condition = taxonomy.resolve(args.diagnosis, "--diagnosis")
        if condition == UNKNOWN:
            raise SkinGenError("--diagnosis: 'unknown' has no prompt; name a condition of the taxonomy")
        built = PromptBuilder.load(taxonomy, args.templates).build(
            condition,
            skin_tone=args.skin_tone,
            body_site=args.body_site,
            severity=args.severity,
            trigger=args.trigger,
        )
        prompt, stem = built.prompt, condition
        labels = ImageLabels(condition=condition, skin_tone=built.skin_tone)
        negative = built.negative_prompt if args.negative_prompt is None else args.negative_prompt
    # 3. Load the model and generate (in memory), then write every image with its provenance
    generator = _generator(args, inpaint=mask is not None)
    results = generator(
        prompt,
        negative,
        seeds=range(args.seed, args.seed + args.count),
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        batch_size=args.batch_size,
        ip_adapter_image=image if args.ip_adapter else None,
        image=image if mask is not None else None,
        mask_image=mask,
        strength=args.strength,
        progress=True,
    )
    for result in results:
        png = args.out / f"{stem}_seed{result.record.seed}_{result.record.key()[:10]}.png"
        save_image(result.image, result.record, png, labels)
        print(
            json.dumps(
                {"image": str(png), "provenance": str(png.with_suffix(".json")), "cached": result.cached}
            )
        )
    return 0


def run_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from skingen.serving import GenerationSettings, ModelServer
    from skingen.worker import JobQueue, Worker

    # 1. Check the options before loading any model
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
    # 2. Load the models and serve
    taxonomy = _taxonomy(args)
    diagnoser = None if spec is None else build_diagnoser(spec, taxonomy, settings)
    masker = None
    if args.inpaint_sd:
        from skingen.masking import AffectedAreaMasker

        masker = AffectedAreaMasker(
            args.detector, args.segmenter, box_threshold=args.box_threshold, device=args.device
        )
    server = ModelServer(
        taxonomy,
        diagnoser=diagnoser,
        generator=_generator(args, inpaint=False) if args.sd else None,
        inpainter=_generator(args, inpaint=True, model=args.inpaint_sd) if args.inpaint_sd else None,
        masker=masker,
        prompts=PromptBuilder.load(taxonomy, args.templates),
        settings=GenerationSettings(
            steps=args.steps,
            guidance=args.guidance,
            width=args.width,
            height=args.height,
            max_images_per_call=args.max_images_per_call,
            trigger=args.trigger,
        ),
    )
    worker = Worker(
        JobQueue.open(args.db, lease_seconds=args.lease),
        server.handlers(),
        name=args.name,
        max_batch=args.max_batch,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"skingen worker {worker.name}: serving {', '.join(worker.handlers)} from {args.db}", flush=True)
    done = worker.run(stop=stop, max_jobs=args.max_jobs)
    print(f"skingen worker {worker.name}: stopped after {done} job(s)", flush=True)
    return 0


def run_bundle_build(args: argparse.Namespace) -> int:
    # Everything checkable without models first: output location, cases.csv, photos, templates.
    check_output_dir(args.out, overwrite=args.overwrite)
    # Under `accelerate launch`: this process's place, and the device accelerate gave it (unless --device)
    share = ProcessShare.current(cpu=(args.device or "").startswith("cpu"))
    args.device = args.device or share.device
    out = args.out
    taxonomy = _taxonomy(args)
    cases = read_cases(args.cases_dir, taxonomy)
    prompts = PromptBuilder.load(taxonomy, args.templates)
    settings = BundleSettings(
        bundle_id=args.bundle_id or out.name,
        version=args.version,
        description=args.description,
        k=args.k,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        skin_tone=args.skin_tone,
        severity=args.severity,
        trigger=args.trigger,
    )
    retrieval = _retrieval_settings(args)
    dataset = load_dataset(retrieval.data) if retrieval else None
    cases_spec, judge, diagnosis = diagnoser_spec(args), judge_spec(args), diagnoser_settings(args)
    real = _bundle_evaluation_inputs(args, cases_spec, judge)
    if args.features is not None and retrieval is None and real is None:
        raise SkinGenError("--features: only used with --retrieve DATA or --evaluate")
    # Models from here on; one feature extractor serves retrieval and evaluation
    undiagnosed = any(case.fixed_ai is None for case in cases)
    diagnoser = build_diagnoser(cases_spec, taxonomy, diagnosis) if undiagnosed and cases_spec else None
    generator = _generator(args, inpaint=False)
    extractor = FeatureExtractor(args.features, device=args.device) if args.features else None
    retriever = None
    if retrieval is not None:
        retriever = ReferenceRetriever(dataset, extractor, retrieval, feature_model_type=extractor.model_type)
    if real is None:
        evaluator = None
    else:  # the closed loop's judge: --diagnoser, else the model that diagnosed the cases
        judge = judge or cases_spec
        same = str(judge) == str(cases_spec) and diagnoser is not None
        judge_model = diagnoser if same else build_diagnoser(judge, taxonomy, diagnosis)
        evaluator = BundleEvaluator(
            real, extractor, judge_model, _evaluation_settings(args, seed=args.seed), _inception(args)
        )
    builder = BundleBuilder(
        taxonomy, prompts, generator, diagnoser, settings, evaluator=evaluator, retriever=retriever
    )
    path = builder(cases, out, overwrite=args.overwrite, share=share)
    if share.is_main_process:
        print(json.dumps({"bundle": str(path), "cases": len(cases)}))
    return 0


def _bundle_evaluation_inputs(
    args: argparse.Namespace, cases: DiagnoserSpec | None, judge: DiagnoserSpec | None
) -> ImageSet | None:
    """``bundle build --evaluate``'s real set, checked before any model loads (None without --evaluate)."""
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
    _evaluation_settings(args, seed=args.seed).check()
    return read_real(args.real, split=args.real_split)


def _inception(args: argparse.Namespace, batch_size: int = 32) -> InceptionFeatures | None:
    """clean-fid's Inception network from ``--inception-weights`` (None without the flag)."""
    if args.inception_weights is None:
        return None
    return InceptionFeatures(args.inception_weights, device=args.device, batch_size=batch_size)


def _retrieval_settings(args: argparse.Namespace) -> RetrievalSettings | None:
    """The checked retrieval settings, or None without --retrieve (its other flags then refused)."""
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


def run_lora_train(args: argparse.Namespace) -> int:
    from skingen.training.config import TrainingConfig

    flags = vars(args)
    names = TrainingConfig.__dataclass_fields__
    config = TrainingConfig(**{name: flags[name] for name in names if name in flags})
    from skingen.training.loop import train  # torch from here on

    result = train(config, resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"run": str(result.run), "lora": str(result.lora), "sha256": result.lora_sha256}))
    return 0


def run_lora_which(args: argparse.Namespace) -> int:
    from skingen.training.runs import find_runs

    runs = find_runs(args.sha256, args.runs)
    if not runs:
        raise SkinGenError(
            f"no run.json under {', '.join(map(str, args.runs))} has a LoRA with SHA-256 {args.sha256}"
        )
    for run in runs:
        print(json.dumps({"run": str(run), "run_json": str(run / "run.json")}))
    return 0


def run_lora_grid(args: argparse.Namespace) -> int:
    from skingen.experiments import run_grid
    from skingen.experiments.spec import load_grid

    summary = run_grid(load_grid(args.grid), args.out, progress=not args.no_progress)
    best = summary["best"]
    print(json.dumps({"out": str(args.out), "settings": len(summary["settings"]), "best": best["best"],
                      "text": best["text"]}))  # fmt: skip
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    # 1. Everything checkable without models: output location, settings, both image sets
    check_output_dir(args.out, overwrite=args.overwrite)
    settings = _evaluation_settings(args, k=args.k, seed=args.seed)
    real = read_real(args.real, split=args.real_split)
    generated = read_generated(args.generated)
    check_inputs(real, generated, settings)
    judge, judging = judge_spec(args), diagnoser_settings(args)
    # Under `accelerate launch`: this process's place, and the device accelerate gave it (unless --device)
    share = ProcessShare.current(cpu=(args.device or "").startswith("cpu"))
    args.device = args.device or share.device
    # 2. Load the models, 3. evaluate (each process its share of the images), 4. the main process writes
    # metrics.json + report.html at once
    extractor = FeatureExtractor(args.features, device=args.device, batch_size=args.batch_size)
    diagnoser = None if judge is None else build_diagnoser(judge, _taxonomy(args), judging)
    inception = _inception(args, args.batch_size)
    results = evaluate(
        real, generated, extractor, settings, diagnoser=diagnoser, inception=inception, share=share
    )
    if results is not None:
        write_report(args.out, results, overwrite=args.overwrite)
        print(json.dumps({"out": str(args.out), **{k: results[k] for k in headline_of(results)}}))
    return 0


def run_bundle_validate(args: argparse.Namespace) -> int:
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as exc:
        raise SkinGenError(f"invalid bundle: {exc}") from exc
    manifest = bundle.manifest
    references = sum(len(case.references) for case in manifest.cases)
    retrieved = sum(len(case.retrieved) for case in manifest.cases)
    print(
        json.dumps(
            {
                "bundle": str(args.bundle),
                "bundle_id": manifest.bundle_id,
                "version": manifest.version,
                "cases": len(manifest.cases),
                "references": references,
                "retrieved": retrieved,
                "sha256": bundle.content_hash,
            }
        )
    )
    return 0


def run_data_prepare(args: argparse.Namespace) -> int:
    settings = PrepareSettings(
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
    card = prepare(settings)
    if card.unmapped:
        listed = ", ".join(f"{label!r} ×{n}" for label, n in card.unmapped.items())
        print(f"skingen: unmapped labels, left out: {listed}", file=sys.stderr)
    summary = {
        "data": str(args.out),
        "images": card.images,
        "duplicates_removed": len(card.duplicates),
        "unmapped_images": sum(card.unmapped.values()),
        "excluded": sum(card.excluded.values()),
    }
    print(json.dumps(summary))
    return 0
