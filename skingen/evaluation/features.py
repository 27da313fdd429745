"""Image features from a local extractor directory: the space every distribution metric is computed in.

Any transformers image encoder works: a full CLIP model (``CLIPModel``: its projected image embedding, and its
text tower gives the CLIP score), a CLIP vision tower (``CLIPVisionModelWithProjection`` / ``CLIPVisionModel``),
or any ``AutoModel`` with an image processor (pooled output, else the mean of the last hidden state), so
dermatology-specific encoders plug in. Nothing is downloaded: the path must be a local model directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from skingen.devices import resolve_device
from skingen.errors import SkinGenError
from skingen.evaluation.names import feature_space
from skingen.sources import load_image

if TYPE_CHECKING:
    import torch


class FeatureExtractor:
    """Batched image embeddings (float32 on the CPU, shape ``(n, dim)``) from a local model directory."""

    def __init__(self, path: str | Path, *, device: str | None = None, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer, CLIPModel

        self.path = Path(path)
        config_file = self.path / "config.json"
        if not config_file.is_file():
            raise SkinGenError(f"--features: {self.path} is not a model directory (no config.json)")
        if batch_size < 1:
            raise SkinGenError(f"--batch-size must be ≥ 1, got {batch_size}")
        try:
            self.model_type = str(json.loads(config_file.read_text(encoding="utf-8")).get("model_type", ""))
        except (OSError, json.JSONDecodeError) as exc:
            raise SkinGenError(f"--features: {config_file} is not readable JSON ({exc})") from None
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._torch = torch
        self.tokenizer = None
        try:
            self.processor = AutoImageProcessor.from_pretrained(self.path)
            if self.model_type == "clip":
                model = CLIPModel.from_pretrained(self.path, dtype=torch.float32)
                self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            else:
                model = AutoModel.from_pretrained(self.path, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise SkinGenError(f"--features: cannot load an image model from {self.path} ({exc})") from None
        self.model = model.to(self.device).eval()

    @property
    def space(self) -> str:
        """The feature space's name in metric keys (``fd_clip``, ``fd_dinov2``…), from the model's type."""
        return feature_space(self.model_type)

    @property
    def has_text(self) -> bool:
        """Whether :meth:`text_embeddings` works (a full CLIP model: the CLIP score needs its text tower)."""
        return self.tokenizer is not None

    def __call__(self, paths: Sequence[Path], *, desc: str = "features") -> torch.Tensor:
        """Embeddings of the images at ``paths``; an unreadable image raises a SkinGenError naming it."""
        torch = self._torch
        batches = []
        starts = range(0, len(paths), self.batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=len(starts) < 2):
            images = [load_image(p, "image") for p in paths[start : start + self.batch_size]]
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                batches.append(self._embed(pixels).float().cpu())
        return torch.cat(batches) if batches else torch.empty(0, self.dim)

    def _embed(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.model_type == "clip":
            return _tensor(self.model.get_image_features(pixel_values=pixels))
        output = self.model(pixel_values=pixels)
        for name in ("image_embeds", "pooler_output"):
            value = getattr(output, name, None)
            if value is not None:
                return value.flatten(1)
        hidden = output.last_hidden_state
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.flatten(2).mean(dim=2)

    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings (prompts longer than the model's 77 tokens are truncated, as CLIP must)."""
        torch = self._torch
        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                out.append(_tensor(self.model.get_text_features(**tokens)).float().cpu())
        return torch.cat(out)

    @property
    def dim(self) -> int:
        config = self.model.config
        return int(getattr(config, "projection_dim", None) or getattr(config, "hidden_size", 0))


def _tensor(output: torch.Tensor | object) -> torch.Tensor:
    """transformers 5's ``get_*_features`` return an output object whose ``pooler_output`` is the projection."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output
