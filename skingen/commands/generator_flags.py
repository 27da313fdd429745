"""The Stable Diffusion flags of ``generate``, ``bundle build`` and ``worker``, checked into one frozen
:class:`GeneratorOptions` that loads the generator they describe."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from skingen.commands.flags import ModelSetup, add_templates_option
from skingen.errors import SkinGenError
from skingen.generation import (
    DEFAULT_GUIDANCE,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    SCHEDULERS,
    LoraSpec,
    ReferenceGenerator,
)
from skingen.provenance import ImageCache, default_cache_dir
from skingen.skin_tone import FITZPATRICK_TYPES


@dataclass(frozen=True)
class GeneratorOptions:
    """The model (``--sd``; None: a worker without one), its add-ons, and how every image is sampled."""

    model: str | None
    loras: tuple[LoraSpec, ...]
    ip_adapter: Path | None
    ip_adapter_scale: float
    scheduler: str | None
    cache: Path | None  # None: --no-cache
    steps: int
    guidance: float
    width: int
    height: int
    trigger: str | None
    templates: Path | None

    def load(self, setup: ModelSetup, *, inpaint: bool, model: str | None = None) -> ReferenceGenerator:
        """The generator; ``model`` replaces ``--sd`` (the worker's inpainting model)."""
        return ReferenceGenerator.from_pretrained(
            model or self.model,
            loras=self.loras,
            ip_adapter=self.ip_adapter,
            ip_adapter_scale=self.ip_adapter_scale,
            inpaint=inpaint,
            scheduler=self.scheduler,
            device=setup.device,
            dtype=setup.dtype,
            cache=None if self.cache is None else ImageCache(self.cache),
        )


def add_generator_options(parser: argparse.ArgumentParser, *, per_run: bool = True) -> None:
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
    add_templates_option(parser)
    parser.add_argument(
        "--cache", type=Path, help="image cache directory (default: $SKINGEN_CACHE or ~/.cache)"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the image cache")


def generator_options(args: argparse.Namespace) -> GeneratorOptions:
    """The checked options: at most one ``--lora-scale`` per ``--lora`` (the rest 1.0)."""
    if len(args.lora_scale) > len(args.lora):
        raise SkinGenError(f"--lora-scale given {len(args.lora_scale)} times for {len(args.lora)} --lora")
    scales = args.lora_scale + [1.0] * (len(args.lora) - len(args.lora_scale))
    return GeneratorOptions(
        model=args.sd,
        loras=tuple(LoraSpec(path, scale) for path, scale in zip(args.lora, scales, strict=True)),
        ip_adapter=args.ip_adapter,
        ip_adapter_scale=args.ip_adapter_scale,
        scheduler=args.scheduler,
        cache=None if args.no_cache else args.cache or default_cache_dir(),
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        trigger=args.trigger,
        templates=args.templates,
    )
