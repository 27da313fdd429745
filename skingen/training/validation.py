"""Validation images during training: fixed conditions × skin tones × seeds, one contact sheet per step.

Rows are (condition, skin tone) prompts from the same templates generation uses; columns are seeds. Each
image has its own seeded CPU generator and the whole call runs under ``torch.random.fork_rng``, so
validating never changes what training draws next (a test compares runs with and without it).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from skingen.prompts import PromptBuilder
from skingen.training.config import TrainingConfig

VALIDATION_DIR = "validation"


def validation_prompts(prompts: PromptBuilder, conditions: list[str], config: TrainingConfig) -> list[str]:
    return [
        prompts.build(condition, skin_tone=tone, trigger=config.trigger).prompt
        for condition in conditions
        for tone in config.validation_skin_tones
    ]


def contact_sheet(images: list[Image.Image], columns: int) -> Image.Image:
    width, height = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    return sheet


def validate(pipe, prompts: list[str], config: TrainingConfig, step: int) -> Path:
    """Generate every prompt × seed with ``pipe`` (sharing the training modules) → ``validation/step-N.png``."""
    images = []
    devices = [pipe.device] if pipe.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        for prompt in prompts:
            output = pipe(
                prompt=[prompt] * len(config.validation_seeds),
                num_inference_steps=config.validation_inference_steps,
                width=config.resolution,
                height=config.resolution,
                generator=[torch.Generator("cpu").manual_seed(s) for s in config.validation_seeds],
            )
            images.extend(output.images)
    folder = config.out / VALIDATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step}.png"
    contact_sheet(images, columns=len(config.validation_seeds)).save(path)
    (folder / "prompts.json").write_text(
        json.dumps({"rows": prompts, "columns (seeds)": list(config.validation_seeds)}, indent=2) + "\n",
        encoding="utf-8",
    )
    return path
