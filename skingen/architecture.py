"""Which Stable Diffusion family a model folder holds (SD 1.x/2.x or SDXL), read from its ``model_index.json``.

Training and generation differ by family: SDXL has two text encoders, conditions its UNet on the pooled
text embedding and on "added time ids" (original size, crop corner, target size), and has its own pipeline
classes. The family is the ``_class_name`` diffusers wrote into ``model_index.json`` when the pipeline was
saved, so a folder is classified by what built it, not by guessing from layer shapes. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from formats.errors import FormatError
from skingen.errors import SkinGenError

MODEL_INDEX = "model_index.json"


@dataclass(frozen=True)
class Architecture:
    """A family of Stable Diffusion pipelines and the diffusers classes that load it."""

    name: str  # what provenance and bundles record: "sd" or "sdxl"
    label: str  # for people: "Stable Diffusion 1.x/2.x", "Stable Diffusion XL"
    text_to_image: str  # diffusers pipeline class names
    inpaint: str
    text_encoders: int

    @property
    def xl(self) -> bool:
        return self.name == "sdxl"


SD = Architecture(
    "sd", "Stable Diffusion 1.x/2.x", "StableDiffusionPipeline", "StableDiffusionInpaintPipeline", 1
)
SDXL = Architecture(
    "sdxl", "Stable Diffusion XL", "StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline", 2
)
_BY_PIPELINE = {
    "StableDiffusionPipeline": SD,
    "StableDiffusionInpaintPipeline": SD,
    "StableDiffusionImg2ImgPipeline": SD,
    "StableDiffusionXLPipeline": SDXL,
    "StableDiffusionXLInpaintPipeline": SDXL,
    "StableDiffusionXLImg2ImgPipeline": SDXL,
}


def pipeline_architecture(class_name: str) -> Architecture:
    """The family of a loaded pipeline, by its class name (``type(pipe).__name__``)."""
    if class_name not in _BY_PIPELINE:
        raise SkinGenError(
            f"pipeline {class_name!r} is not supported (expected one of {', '.join(sorted(_BY_PIPELINE))})"
        )
    return _BY_PIPELINE[class_name]


def architecture_of(source: str, what: str) -> Architecture:
    """The family of the model at ``source`` (a folder, or a hub id as :func:`~skingen.sources.resolve_model`
    returns it); ``what`` names the option in errors."""
    path = Path(source)
    if path.is_dir():
        index = path / MODEL_INDEX
    else:
        from huggingface_hub import hf_hub_download

        try:
            index = Path(hf_hub_download(source, MODEL_INDEX))
        except Exception as exc:  # the hub client raises many types (offline, missing file, network)
            raise SkinGenError(f"{what} {source}: cannot read its {MODEL_INDEX} ({exc})") from exc
    try:
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except OSError as exc:
        raise SkinGenError(
            f"{what} {source}: no readable {MODEL_INDEX} ({exc.strerror}); is it a diffusers pipeline folder?"
        ) from exc
    except (json.JSONDecodeError, AttributeError) as exc:
        raise SkinGenError(f"{what} {index}: not a diffusers model index ({exc})") from exc
    try:
        return pipeline_architecture(str(class_name))
    except FormatError as exc:
        raise SkinGenError(f"{what} {source}: {exc} ({MODEL_INDEX})") from None
