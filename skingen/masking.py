"""The affected area of a skin photo, as SkinGEN finds it: open-vocabulary detection, then segmentation.

GroundingDINO (any ``AutoModelForZeroShotObjectDetection`` checkpoint) finds boxes for a text query naming the
condition; SAM (``SamModel``) segments the best box. Both load from local paths. The mask (white = affected)
is what a worker inpaints the condition into, on the user's own photo.
"""

from __future__ import annotations

from PIL import Image

from skingen.devices import resolve_device
from skingen.errors import SkinGenError
from skingen.sources import resolve_model


class AffectedAreaMasker:
    """Detect the lesion by text (GroundingDINO), segment it (SAM); ``model_id`` names both in provenance."""

    def __init__(
        self,
        detector: str,
        segmenter: str,
        *,
        box_threshold: float = 0.25,
        text_threshold: float = 0.25,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor, SamModel, SamProcessor

        self.device = resolve_device(device)
        try:
            self.detector_processor = AutoProcessor.from_pretrained(resolve_model(detector, "detector"))
            self.detector = (
                AutoModelForZeroShotObjectDetection.from_pretrained(resolve_model(detector, "detector"))
                .to(self.device)
                .eval()
            )
            self.segmenter_processor = SamProcessor.from_pretrained(resolve_model(segmenter, "segmenter"))
            self.segmenter = (
                SamModel.from_pretrained(resolve_model(segmenter, "segmenter")).to(self.device).eval()
            )
        except (OSError, ValueError, KeyError) as exc:
            raise SkinGenError(f"masker {detector} + {segmenter}: cannot load ({exc})") from exc
        self.box_threshold, self.text_threshold = box_threshold, text_threshold
        self.model_id = f"{detector}+{segmenter}"
        self._torch = torch

    def box(self, photo: Image.Image, condition_name: str) -> list[float]:
        """The highest-scoring box (x0, y0, x1, y1 in pixels) for the condition; an error when none is found."""
        query = f"{condition_name.lower()}. skin lesion."
        inputs = self.detector_processor(images=photo, text=query, return_tensors="pt").to(self.device)
        with self._torch.inference_mode():
            outputs = self.detector(**inputs)
        [found] = self.detector_processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            target_sizes=[photo.size[::-1]],
        )
        if not len(found["scores"]):
            raise SkinGenError(
                f"no affected area found for {condition_name!r} (box threshold {self.box_threshold})"
            )
        return found["boxes"][int(found["scores"].argmax())].tolist()

    def __call__(self, photo: Image.Image, condition_name: str) -> Image.Image:
        box = self.box(photo, condition_name)
        inputs = self.segmenter_processor(photo, input_boxes=[[box]], return_tensors="pt").to(self.device)
        with self._torch.inference_mode():
            outputs = self.segmenter(**inputs, multimask_output=False)
        masks = self.segmenter_processor.image_processor.post_process_masks(
            outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu()
        )
        mask = masks[0][0, 0].numpy()  # the one box, the one mask: H × W booleans
        return Image.fromarray((mask * 255).astype("uint8"), mode="L")
