"""``skingen generate --diagnosis TEXT|--prompt TEXT --sd MODEL --out DIR``: reference images, each PNG with
its provenance JSON beside it."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.commands.command import NEEDS_ML, register
from skingen.commands.flags import ModelSetup, add_device_options, model_setup
from skingen.commands.generator_flags import GeneratorOptions, add_generator_options, generator_options
from skingen.errors import SkinGenError
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageLabels, save_image
from skingen.sources import load_image


@dataclass(frozen=True)
class GenerateConfig:
    """``prompt`` (used as is) or ``diagnosis`` (a condition the templates make a prompt of): exactly one."""

    prompt: str | None
    diagnosis: str | None
    negative_prompt: str | None  # None: the templates' (with --diagnosis), else empty
    body_site: str | None
    skin_tone: str | None
    severity: str | None
    image: Path | None
    mask: Path | None
    strength: float
    seeds: range
    batch_size: int
    out: Path
    generator: GeneratorOptions
    setup: ModelSetup


@dataclass(frozen=True)
class ImagePrompt:
    """What the pipeline is given, the file names' stem, and the labels saved with each image."""

    text: str
    negative: str
    stem: str
    labels: ImageLabels


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate", help="generate reference images (PNG + provenance JSON)", epilog=NEEDS_ML
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--diagnosis", metavar="TEXT", help="a condition (id, name or synonym); prompt from templates"
    )
    what.add_argument("--prompt", metavar="TEXT", help="a prompt, used as is")
    parser.add_argument(
        "--negative-prompt", metavar="TEXT", help="default: the templates' (with --diagnosis)"
    )
    parser.add_argument("--body-site", help="body site in the prompt (with --diagnosis)")
    parser.add_argument("--image", type=Path, metavar="IMG", help="patient photo for --ip-adapter / --mask")
    parser.add_argument("--mask", type=Path, metavar="MASK", help="inpaint the white area of MASK in --image")
    parser.add_argument("--strength", type=float, default=1.0, help="inpainting strength (default 1.0)")
    parser.add_argument("-n", "--count", type=int, default=1, help="images, seeds SEED… SEED+N-1 (default 1)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per diffusers call (default 1)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    add_generator_options(parser)
    add_device_options(parser)
    register(parser, check, run)


def check(args: argparse.Namespace) -> GenerateConfig:
    if (args.ip_adapter or args.mask) and args.image is None:
        raise SkinGenError("--image is required with --ip-adapter or --mask")
    if args.image is not None and not (args.ip_adapter or args.mask):
        raise SkinGenError("--image is only used with --ip-adapter or --mask")
    if args.count < 1:
        raise SkinGenError(f"-n/--count must be ≥ 1, got {args.count}")
    if args.out.exists() and not args.out.is_dir():
        raise SkinGenError(f"--out exists and is not a directory: {args.out}")
    return GenerateConfig(
        prompt=args.prompt,
        diagnosis=args.diagnosis,
        negative_prompt=args.negative_prompt,
        body_site=args.body_site,
        skin_tone=args.skin_tone,
        severity=args.severity,
        image=args.image,
        mask=args.mask,
        strength=args.strength,
        seeds=range(args.seed, args.seed + args.count),
        batch_size=args.batch_size,
        out=args.out,
        generator=generator_options(args),
        setup=model_setup(args),
    )


def run(config: GenerateConfig) -> int:
    # 1. Read the inputs before loading any model
    image = load_image(config.image, "--image") if config.image else None
    mask = load_image(config.mask, "--mask").convert("L") if config.mask else None
    # 2. The prompt: as given, or from the templates for the named condition
    prompt = _prompt(config)
    # 3. Load the model and generate (in memory), then write every image with its provenance
    generator = config.generator.load(config.setup, inpaint=mask is not None)
    results = generator(
        prompt.text,
        prompt.negative,
        seeds=config.seeds,
        steps=config.generator.steps,
        guidance=config.generator.guidance,
        width=config.generator.width,
        height=config.generator.height,
        batch_size=config.batch_size,
        ip_adapter_image=image if config.generator.ip_adapter else None,
        image=image if mask is not None else None,
        mask_image=mask,
        strength=config.strength,
        progress=True,
    )
    for result in results:
        png = config.out / f"{prompt.stem}_seed{result.record.seed}_{result.record.key()[:10]}.png"
        save_image(result.image, result.record, png, prompt.labels)
        print(
            json.dumps(
                {"image": str(png), "provenance": str(png.with_suffix(".json")), "cached": result.cached}
            )
        )
    return 0


def _prompt(config: GenerateConfig) -> ImagePrompt:
    if config.prompt is not None:
        return ImagePrompt(
            config.prompt, config.negative_prompt or "", "prompt", ImageLabels(skin_tone=config.skin_tone)
        )
    taxonomy = Taxonomy.load(config.setup.taxonomy)
    condition = taxonomy.resolve(config.diagnosis, "--diagnosis")
    if condition == UNKNOWN:
        raise SkinGenError("--diagnosis: 'unknown' has no prompt; name a condition of the taxonomy")
    built = PromptBuilder.load(taxonomy, config.generator.templates).build(
        condition,
        skin_tone=config.skin_tone,
        body_site=config.body_site,
        severity=config.severity,
        trigger=config.generator.trigger,
    )
    negative = built.negative_prompt if config.negative_prompt is None else config.negative_prompt
    return ImagePrompt(
        built.prompt, negative, condition, ImageLabels(condition=condition, skin_tone=built.skin_tone)
    )
