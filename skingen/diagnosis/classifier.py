"""Diagnosis by an image classifier (``AutoModelForImageClassification``) whose labels name conditions.

A dermatology classifier fine-tuned on a public dataset makes a closed-loop judge independent of the VLM that
diagnosed the cases. Each of its labels (``config.id2label``) is read onto the taxonomy with the same reader as
a VLM's answer (:func:`skingen.diagnosis.reading.read_diagnosis`), so "Atopic dermatitis" counts as eczema and
"Seborrheic dermatitis" stays outside the taxonomy. The softmax probabilities of labels that name the same
condition are added; labels outside the taxonomy add up under ``unknown``, which is the answer when it is the
most probable.
"""

from __future__ import annotations

import json

from PIL import Image

from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.devices import resolve_device, resolve_dtype
from skingen.diagnosis.base import Diagnosis
from skingen.diagnosis.reading import read_diagnosis
from skingen.errors import SkinGenError
from skingen.sources import resolve_model


def label_conditions(labels: dict[int, str], taxonomy: Taxonomy, model: str) -> dict[int, str]:
    """Each class index → the taxonomy id its label names (``unknown`` for none); at least one must name one."""
    conditions = {index: read_diagnosis(label, taxonomy).condition for index, label in labels.items()}
    if all(condition == UNKNOWN for condition in conditions.values()):
        shown = ", ".join(repr(label) for label in list(labels.values())[:8])
        raise SkinGenError(
            f"classifier {model}: none of its labels ({shown}…) names a taxonomy condition; its config.json's "
            "id2label must name conditions (ids, names or synonyms of the taxonomy)"
        )
    return conditions


class ClassifierDiagnoser:
    """Scores an image with a classifier; the differential is the conditions by summed label probability."""

    def __init__(
        self,
        model: str,
        taxonomy: Taxonomy,
        *,
        top_k: int = 5,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        source = resolve_model(model, "image classifier")
        self.device = resolve_device(device)
        try:
            self.processor = AutoImageProcessor.from_pretrained(source)
            self.model = (
                AutoModelForImageClassification.from_pretrained(
                    source, dtype=resolve_dtype(self.device, dtype)
                )
                .to(self.device)
                .eval()
            )
        except (OSError, ValueError, KeyError) as exc:
            raise SkinGenError(f"image classifier {model}: cannot load ({exc})") from exc
        self.labels = {int(index): label for index, label in self.model.config.id2label.items()}
        self.conditions = label_conditions(self.labels, taxonomy, model)
        self.model_id = model
        self.taxonomy = taxonomy
        self.top_k = top_k
        self._torch = torch

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        torch = self._torch
        with torch.inference_mode():
            inputs = self.processor(images=image.convert("RGB"), return_tensors="pt").to(self.device)
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.model.dtype)).logits
            probabilities = logits.float().softmax(dim=-1)[0].tolist()
        by_condition: dict[str, float] = {}
        for index, probability in enumerate(probabilities):
            condition = self.conditions[index]
            by_condition[condition] = by_condition.get(condition, 0.0) + probability
        ordered = sorted(by_condition.items(), key=lambda item: -item[1])
        # unknown is an answer when it is the most probable; further down it is no alternative to show
        ranked = [(c, p) for n, (c, p) in enumerate(ordered) if c != UNKNOWN or n == 0][: self.top_k]
        rationale = "Classifier probabilities by condition: " + ", ".join(
            f"{self.taxonomy.display_name(c)} ({p:.2f})" for c, p in ranked
        )
        raw = json.dumps({self.labels[i]: round(p, 6) for i, p in enumerate(probabilities)})
        return Diagnosis.from_ranking(
            self.taxonomy, ranked, rationale=rationale, raw_output=raw, model_id=self.model_id
        )
