"""``skingen lora train --data DATA --sd MODEL --out RUN``: train a LoRA on a prepared image set (under
``accelerate launch`` on several GPUs).

The config is :class:`~skingen.training.config.TrainingConfig` (checked as it is made; saved with the run),
plus whether to resume and show progress. Its field names are the flags' names, so every training flag reaches
it without a second list here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields
from pathlib import Path

from skingen.commands.command import NEEDS_ML, register
from skingen.commands.flags import add_taxonomy_option, add_templates_option
from skingen.training.config import FORMATS, TrainingConfig


@dataclass(frozen=True)
class LoraTrainConfig:
    training: TrainingConfig
    resume: str | None  # "latest" or a checkpoint folder
    progress: bool


def add_parser(lora_commands: argparse._SubParsersAction) -> None:
    parser = lora_commands.add_parser(
        "train",
        help="train a LoRA (UNet attention, optionally the text encoder) under accelerate",
        description="Train a LoRA on DATA (from `skingen data prepare`) for an SD 1.x/2.x or SDXL base. "
        "Several GPUs: `accelerate launch -m skingen lora train ...` (one LoRA, gradients averaged).",
        epilog=NEEDS_ML,
    )
    parser.add_argument("--data", required=True, type=Path, metavar="DATA", help="prepared image set")
    parser.add_argument(
        "--sd",
        required=True,
        metavar="PATH|ID",
        help="base model: Stable Diffusion 1.x/2.x or SDXL (diffusers folder)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="RUN", help="run folder")
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4)")
    parser.add_argument("--alpha", type=float, help="LoRA alpha (default: the rank)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate (default 1e-4)")
    parser.add_argument(
        "--lr-scheduler",
        default="constant",
        help="constant, constant_with_warmup, linear, "
        "cosine, cosine_with_restarts, polynomial (default constant)",
    )
    parser.add_argument("--lr-warmup-steps", type=int, default=0, help="warmup steps (default 0)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images per process per micro-batch (default 1); one optimizer step sees "
        "processes × batch size × --grad-accum images",
    )
    parser.add_argument(
        "--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)"
    )
    parser.add_argument("--resolution", type=int, default=512, help="training image size (default 512)")
    parser.add_argument("--center-crop", action="store_true", help="centre crop (default: random crop)")
    parser.add_argument("--random-flip", action="store_true", help="flip half the images horizontally")
    parser.add_argument("--snr-gamma", type=float, help="Min-SNR loss weighting gamma (5.0 recommended)")
    parser.add_argument("--noise-offset", type=float, default=0.0, help="noise offset (default 0)")
    parser.add_argument("--mixed-precision", default="no", help="no, fp16 or bf16 (default no)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="save memory, cost time")
    parser.add_argument(
        "--train-text-encoder", action="store_true", help="LoRA on the text encoder(s) too (SDXL: both)"
    )
    parser.add_argument("--dora", action="store_true", help="DoRA (peft use_dora): weight-decomposed LoRA")
    parser.add_argument(
        "--ema-decay",
        type=float,
        metavar="D",
        help="keep an EMA of the LoRA weights (e.g. 0.999) and save it as the final weights",
    )
    parser.add_argument(
        "--caption-dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that an image is trained with an empty caption (default 0)",
    )
    parser.add_argument(
        "--cache-latents",
        action="store_true",
        help="encode every image with the VAE once (both flips with --random-flip); needs --center-crop",
    )
    parser.add_argument(
        "--dataloader-workers",
        type=int,
        default=0,
        metavar="N",
        help="processes decoding images ahead of training (default 0: in the training process)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="diffusers",
        help="final weights file: diffusers' (pytorch_lora_weights.safetensors), kohya's for ComfyUI / "
        "AUTOMATIC1111 (pytorch_lora_weights_kohya.safetensors), or both (default diffusers)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    parser.add_argument("--trigger", help="trigger token put in front of every caption")
    parser.add_argument(
        "--captions",
        default="metadata",
        help="metadata (the caption column; empty ones from "
        "the templates) or templates (always from the templates) (default metadata)",
    )
    add_taxonomy_option(parser)
    add_templates_option(parser)
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="K", help="default 500")
    parser.add_argument(
        "--checkpoints-total-limit", type=int, metavar="N", help="keep the newest N checkpoints"
    )
    parser.add_argument("--validate-every", type=int, metavar="K", help="contact sheet every K steps")
    parser.add_argument(
        "--validation-prompts",
        nargs="+",
        default=[],
        metavar="CONDITION",
        help="conditions shown (templated prompts per skin tone; default: the data's first 3)",
    )
    parser.add_argument(
        "--validation-seeds", nargs="+", type=int, default=[0], metavar="SEED", help="default 0"
    )
    parser.add_argument(
        "--validation-skin-tones",
        nargs="+",
        default=["I", "III", "V"],
        metavar="TYPE",
        help="Fitzpatrick types shown (default I III V: one per group)",
    )
    parser.add_argument("--validation-inference-steps", type=int, default=20, help="default 20")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="latest|CHECKPOINT",
        help="continue from RUN's newest checkpoint (latest) or the named checkpoint folder",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    register(parser, check, run)


def check(args: argparse.Namespace) -> LoraTrainConfig:
    flags = vars(args)  # read only; TrainingConfig checks every value (max_grad_norm has no flag)
    training = TrainingConfig(**{f.name: flags[f.name] for f in fields(TrainingConfig) if f.name in flags})
    return LoraTrainConfig(training, resume=args.resume, progress=not args.no_progress)


def run(config: LoraTrainConfig) -> int:
    from skingen.training.loop import train  # torch from here on

    result = train(config.training, resume=config.resume, progress=config.progress)
    print(json.dumps({"run": str(result.run), "lora": str(result.lora), "sha256": result.lora_sha256}))
    return 0
