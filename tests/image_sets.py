"""Image sets for the evaluation tests: a prepared DATA folder and a generated folder with provenance, 36
images each, 6 per Fitzpatrick type and 12 per condition."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from skingen.provenance import ImageLabels, ProvenanceRecord, save_image

TYPES = ("I", "II", "III", "IV", "V", "VI")
CONDITIONS = ("psoriasis", "eczema", "acne")


def tinted_image(seed: int, tint: int) -> Image.Image:
    """32 px of seeded noise shifted by ``tint``: images whose features differ with their tint."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 120, (32, 32, 3)) + np.array([tint, tint // 2, 255 - tint]) // 2
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def _record(prompt: str, seed: int) -> ProvenanceRecord:
    """The provenance a generated image carries (the evaluation reads its prompt and labels)."""
    return ProvenanceRecord(
        model="m", model_fingerprint="f", pipeline="StableDiffusionPipeline", prompt=prompt, negative_prompt="",
        seed=seed, steps=4, guidance=7.5, scheduler="DDIMScheduler", width=32, height=32, device="cpu",
        dtype="float32", versions={},
    )  # fmt: skip


def write_sets(root: Path) -> tuple[Path, Path]:
    """A prepared DATA folder (36 images, 6 per Fitzpatrick type) and a generated folder (36, with provenance)."""
    data, generated = root / "DATA", root / "generated"
    (data / "images").mkdir(parents=True)
    rows = []
    for i in range(36):
        tone, condition = TYPES[i % 6], CONDITIONS[i % 3]
        tinted_image(i, 40 * (i % 6)).save(data / "images" / f"{i}.png")
        rows.append(
            {"file": f"images/{i}.png", "condition": condition, "skin_tone": tone,
             "caption": f"a photo of {condition} on type {tone} skin", "source": "test", "licence": "CC0",
             "split": "train" if i % 4 else "validation"}
        )  # fmt: skip
    with (data / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for i in range(36):
        tone, condition = TYPES[i % 6], CONDITIONS[i % 3]
        prompt = f"{condition}, skin type {tone}"
        save_image(tinted_image(1000 + i, 45 * (i % 6)), _record(prompt, i), generated / f"{condition}_{i}.png",
                   ImageLabels(condition=condition, skin_tone=tone))  # fmt: skip
    return data, generated
