"""CLIP-style zero-shot diagnosis: image–text similarity against each condition's description.

Any ``AutoModelForZeroShotImageClassification`` checkpoint works (dermatology CLIP models plug in here).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from PIL import Image

from formats.taxonomy import Taxonomy
from skingen.devices import resolve_device, resolve_dtype
from skingen.diagnosis.base import Diagnosis
from skingen.errors import SkinGenError
from skingen.sources import resolve_model

if TYPE_CHECKING:
    import torch

DEFAULT_TEMPLATE = "a clinical photograph of {name}: {description}"


class ClipDiagnoser:
    """Scores every taxonomy condition by CLIP similarity; softmax over conditions gives the differential."""

    def __init__(
        self,
        model: str,
        taxonomy: Taxonomy,
        *,
        template: str = DEFAULT_TEMPLATE,
        top_k: int = 5,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForZeroShotImageClassification, AutoProcessor

        source = resolve_model(model, "CLIP model")
        self.device = resolve_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(source)
            self.model = (
                AutoModelForZeroShotImageClassification.from_pretrained(
                    source, dtype=resolve_dtype(self.device, dtype)
                )
                .to(self.device)
                .eval()
            )
        except (OSError, ValueError, KeyError) as exc:
            raise SkinGenError(f"CLIP model {model}: cannot load ({exc})") from exc
        self.model_id = model
        self.taxonomy = taxonomy
        self.top_k = top_k
        self._torch = torch
        texts = [template.format(name=c.display_name.lower(), description=c.description) for c in taxonomy]
        with torch.inference_mode():
            inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True)
            features = self.model.get_text_features(**inputs.to(self.device))
        self._text_features = _normalised(features)

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        torch = self._torch
        with torch.inference_mode():
            inputs = self.processor(images=image, return_tensors="pt").to(self.device)
            features = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.model.dtype))
            image_features = _normalised(features)
            logits = self.model.logit_scale.exp() * image_features @ self._text_features.T
            scores = logits.float().softmax(dim=-1)[0].tolist()
        ranked = sorted(zip(self.taxonomy.ids, scores, strict=True), key=lambda item: -item[1])[: self.top_k]
        rationale = "Closest condition descriptions by image–text similarity: " + ", ".join(
            f"{self.taxonomy.display_name(c)} ({s:.2f})" for c, s in ranked
        )
        raw = json.dumps(dict(zip(self.taxonomy.ids, (round(s, 6) for s in scores), strict=True)))
        return Diagnosis.from_ranking(
            self.taxonomy, ranked, rationale=rationale, raw_output=raw, model_id=self.model_id
        )


def _normalised(features: torch.Tensor | object) -> torch.Tensor:
    """Unit-length embeddings; transformers 5 returns an output whose ``pooler_output`` is the projection."""
    import torch

    tensor = features if isinstance(features, torch.Tensor) else features.pooler_output
    return tensor / tensor.norm(dim=-1, keepdim=True)
