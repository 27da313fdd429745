"""Shared fixtures for the skingen tests: tiny models built once per session, case folders, images.

A test module declares its own session fixture returning :func:`tiny_models`; models are built lazily on
first use into one directory per session, so every module shares the same files.
"""

from __future__ import annotations

import csv
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


class TinyModels:
    """Lazily built tiny checkpoints (see ``tests/tiny_models.py``), each saved like a real one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def sd(self) -> Path:
        from tests import tiny_models

        return tiny_models.build_sd(self.root / "sd")

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
