"""Shared fixtures for the skingen tests: tiny models built once per session, case folders, images.

A test module declares its own session fixture returning :func:`tiny_models`; models are built lazily on
first use into one directory per session, so every module shares the same files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skingen.architecture import SD
from skingen.dataset import Example, write_metadata
from skingen.errors import SkinGenError
from skingen.provenance import ImageLabels


class TinyModels:
    """Lazily built tiny checkpoints (see ``tests/tiny_models.py``), each saved like a real one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def sd(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_sd(self.root / "sd")

    @cached_property
    def sdxl(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_sdxl(self.root / "sdxl")

    @cached_property
    def inpaint(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_sd(self.root / "sd-inpaint", inpaint=True)

    @cached_property
    def lora(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_lora(self.root / "lora")

    @cached_property
    def lora_other_base(self) -> Path:
        """A LoRA trained for a base with cross_attention_dim 48 (ours is 32)."""
        from tests import tiny_models

        return tiny_models.build_lora(self.root / "lora-48", cross_attention_dim=48)

    @cached_property
    def ip_adapter(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_ip_adapter(self.root / "ip-adapter")

    @cached_property
    def clip(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_clip(self.root / "clip")

    @cached_property
    def classifier(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_image_classifier(self.root / "classifier")

    @cached_property
    def grounding_dino(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_grounding_dino(self.root / "grounding-dino")

    @cached_property
    def sam(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_sam(self.root / "sam")

    @cached_property
    def llava(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_llava(self.root / "llava")


_SESSION: dict[str, TinyModels] = {}


def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """The session's :class:`TinyModels` (one directory, whichever module asks first)."""
    if "models" not in _SESSION:
        _SESSION["models"] = TinyModels(tmp_path_factory.mktemp("tiny-models"))
    return _SESSION["models"]


def photo(seed: int = 0, size: int = 64) -> Image.Image:
    """A deterministic noise 'photo'."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def write_cases(root: Path, rows: list[dict[str, str]]) -> Path:
    """A cases folder: one noise photo per row (``file``) and ``cases.csv`` with the rows' columns."""
    root.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for index, row in enumerate(rows):
        photo(index).save(root / row["file"])
    with (root / "cases.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return root


@dataclass(frozen=True)
class FakeRecord:
    seed: int
    prompt: str

    def to_json(self, labels: ImageLabels | None = None) -> str:
        extra = {} if labels is None else {"condition": labels.condition, "skin_tone": labels.skin_tone}
        return json.dumps({"seed": self.seed, "prompt": self.prompt, **extra})


@dataclass(frozen=True)
class FakeGenerated:
    image: Image.Image
    record: FakeRecord


class FakeGenerator:
    """A generator whose image depends only on prompt and seed (as the real one's does)."""

    model = "fake"
    architecture = SD
    loras = ()
    ip_adapter = None
    inpaint = False

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.calls: list[tuple[str, int]] = []

    def __call__(self, prompt: str, negative: str, *, seeds: list[int], **_: object) -> list[FakeGenerated]:
        if self.fail_on and self.fail_on in prompt:
            raise SkinGenError(f"cannot draw {self.fail_on}")
        self.calls.append((prompt, seeds[0]))
        shade = int(hashlib.sha256(f"{prompt}|{seeds[0]}".encode()).hexdigest()[:2], 16)
        return [FakeGenerated(Image.new("RGB", (8, 8), (shade, 0, 0)), FakeRecord(seeds[0], prompt))]


# --- a retrieval set (skingen bundle build --retrieve) ------------------------------------------------

SCIN = ("SCIN", "SCIN Data Use License")
F17K = ("fitzpatrick17k", "CC BY-NC-SA 3.0")

# name: (condition, skin tone, patient, angle from the case photos (features of a fake embedder), (source,
# licence), attribution)
IMAGES = {
    "p_near": ("psoriasis", "II", "", 10, SCIN, ""),
    "p_other_tone": ("psoriasis", "IV", "", 30, F17K, "http://atlas/p_other_tone"),
    "p_mid": ("psoriasis", "I", "", 40, SCIN, ""),
    "p_dark": ("psoriasis", "V", "", 60, SCIN, ""),
    "p_patient": ("psoriasis", "II", "pt1", 5, SCIN, ""),  # the case's own patient
    "p_copy": ("psoriasis", "II", "", 0, SCIN, ""),  # the case photo itself
    "p_resized": ("psoriasis", "II", "", 1, SCIN, ""),  # the case photo, resized: a near-duplicate
    "e_one": ("eczema", "II", "", 20, SCIN, ""),
    "e_two": ("eczema", "", "", 50, SCIN, ""),
}


def unit(degrees: float) -> list[float]:
    """A 2-d unit feature vector at ``degrees``: its cosine distance to ``unit(0)`` grows with the angle."""
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def write_retrieval_set(root: Path) -> Path:
    """A prepared set (as `skingen data prepare` writes it) with IMAGES; p_copy and p_resized are the photo
    of the first row of a :func:`write_cases` folder (``photo(0)``), the rest noise of their own."""
    examples = []
    for seed, (name, (condition, tone, patient, _, (source, licence), attribution)) in enumerate(
        IMAGES.items()
    ):
        file = f"images/{condition}/{name}.png"
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        image = photo(100 + seed)
        if name == "p_copy":
            image = photo(0)
        elif name == "p_resized":
            image = photo(0).resize((48, 48))
        image.save(root / file)
        examples.append(
            Example(file, condition, tone, f"a photo of {condition}", source, licence, "train",
                    patient=patient, attribution=attribution)
        )  # fmt: skip
    write_metadata(root, examples)
    return root
