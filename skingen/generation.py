"""Reference images with diffusers Stable Diffusion 1.x/2.x or SDXL (+ LoRA, IP-Adapter, inpainting), cached by
provenance.

:class:`ReferenceGenerator` wraps one loaded diffusers pipeline. Its ``__call__`` describes every requested
image by a :class:`~skingen.provenance.ProvenanceRecord`, takes what the cache already holds, and generates
the rest with one seeded CPU ``torch.Generator`` per image, so a seed gives the same latents on any device and
exactly the pixels plain diffusers code gives with the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm.auto import tqdm

from skingen.architecture import architecture_of, pipeline_architecture
from skingen.devices import resolve_device, resolve_dtype
from skingen.errors import SkinGenError
from skingen.provenance import (
    AdapterRecord,
    ImageCache,
    ProvenanceRecord,
    library_versions,
    model_fingerprint,
)
from skingen.sources import file_sha256, image_sha256, resolve_model

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

SCHEDULERS = ("ddim", "ddpm", "pndm", "lms", "euler", "euler_a", "dpm++", "unipc")
# The defaults of every diffusers call, wherever it is made from (the CLI, a bundle, a worker): SD 1.5's
# native size, and the steps and guidance of the paper's reference images.
DEFAULT_STEPS = 25
DEFAULT_GUIDANCE = 7.5
DEFAULT_SIZE = 512
# A hub tokenizer that failed to download can load as a 2-token stub instead of raising.
_MIN_TOKENIZER_SIZE = 100


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA weights file (or a directory holding one) and the scale to apply it at."""

    path: Path
    scale: float = 1.0


@dataclass(frozen=True)
class Request:
    """Everything besides the seed that determines a generated image's pixels."""

    prompt: str
    negative_prompt: str
    steps: int
    guidance: float
    width: int
    height: int
    ip_adapter_image: Image.Image | None
    image: Image.Image | None
    mask_image: Image.Image | None
    strength: float


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    record: ProvenanceRecord
    cached: bool


def weights_file(path: Path, what: str, preferred: tuple[str, ...]) -> Path:
    """The weights file at ``path``: the file itself, or in a directory the preferred or the only one."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise SkinGenError(f"{what} not found: {path}")
    for name in preferred:
        if (path / name).is_file():
            return path / name
    candidates = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    if len(candidates) != 1:
        raise SkinGenError(
            f"{what} {path}: expected one .safetensors/.bin weights file, found {len(candidates)}; name one"
        )
    return candidates[0]


def _first_line(exc: BaseException) -> str:
    """The gist of a library error: its first line, plus the first detail line (e.g. one size mismatch)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    gist = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return gist[:400]


def _scheduler(name: str, config: dict) -> object:
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        LMSDiscreteScheduler,
        PNDMScheduler,
        UniPCMultistepScheduler,
    )

    classes = {
        "ddim": DDIMScheduler,
        "ddpm": DDPMScheduler,
        "pndm": PNDMScheduler,
        "lms": LMSDiscreteScheduler,
        "euler": EulerDiscreteScheduler,
        "euler_a": EulerAncestralDiscreteScheduler,
        "dpm++": DPMSolverMultistepScheduler,
        "unipc": UniPCMultistepScheduler,
    }
    if name not in classes:
        raise SkinGenError(f"scheduler {name!r}: expected one of {', '.join(SCHEDULERS)}")
    return classes[name].from_config(config)


class ReferenceGenerator:
    """A loaded Stable Diffusion (XL) pipeline turning prompts and seeds into cached, provenance-stamped images.

    SD 1.x/2.x and SDXL are called alike (prompt, negative prompt, steps, guidance, size, a generator per
    image); SDXL's pipeline adds its pooled embedding and time ids (original = target size, no crop) itself.
    """

    def __init__(
        self,
        pipe: DiffusionPipeline,
        *,
        model: str,
        loras: Sequence[AdapterRecord] = (),
        ip_adapter: AdapterRecord | None = None,
        cache: ImageCache | None = None,
    ) -> None:
        self.pipe = pipe
        self.model = model
        self.loras = tuple(loras)
        self.ip_adapter = ip_adapter
        self.cache = cache
        self.architecture = pipeline_architecture(type(pipe).__name__)
        self.inpaint = type(pipe).__name__ == self.architecture.inpaint
        self._fingerprint = model_fingerprint(model)
        self._versions = library_versions()

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        *,
        loras: Sequence[LoraSpec] = (),
        ip_adapter: Path | None = None,
        ip_adapter_scale: float = 0.6,
        inpaint: bool = False,
        scheduler: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        cache: ImageCache | None = None,
    ) -> ReferenceGenerator:
        """Load ``model`` (local path or hub id) and apply LoRAs / IP-Adapter; failures name their file."""
        source = resolve_model(model, "Stable Diffusion model")
        lora_files = [
            weights_file(Path(spec.path), "LoRA", ("pytorch_lora_weights.safetensors",)) for spec in loras
        ]
        ip_file = weights_file(Path(ip_adapter), "IP-Adapter", ()) if ip_adapter is not None else None
        device = resolve_device(device)
        torch_dtype = resolve_dtype(device, dtype)
        pipe = cls._load_pipeline(source, model, inpaint=inpaint, dtype=torch_dtype)
        if scheduler is not None:
            pipe.scheduler = _scheduler(scheduler, pipe.scheduler.config)
        lora_records = [
            cls._load_lora(pipe, file, spec.scale, index, model)
            for index, (file, spec) in enumerate(zip(lora_files, loras, strict=True))
        ]
        if lora_records:
            pipe.set_adapters(
                [f"lora_{i}" for i in range(len(lora_records))], [r.scale for r in lora_records]
            )
        ip_record = cls._load_ip_adapter(pipe, ip_file, ip_adapter_scale, model) if ip_file else None
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, model=model, loras=lora_records, ip_adapter=ip_record, cache=cache)

    @staticmethod
    def _load_pipeline(source: str, model: str, *, inpaint: bool, dtype: torch.dtype) -> DiffusionPipeline:
        import diffusers

        architecture = architecture_of(source, "Stable Diffusion model")
        pipeline_class = getattr(diffusers, architecture.inpaint if inpaint else architecture.text_to_image)
        # The safety checker blacks out clinical skin photos; stimuli are reviewed by researchers instead.
        # (SDXL pipelines have none.)
        extra = {} if architecture.xl else {"safety_checker": None, "requires_safety_checker": False}
        try:
            pipe = pipeline_class.from_pretrained(source, dtype=dtype, **extra)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SkinGenError(f"Stable Diffusion model {model}: cannot load ({_first_line(exc)})") from exc
        if len(pipe.tokenizer) < _MIN_TOKENIZER_SIZE:
            raise SkinGenError(
                f"Stable Diffusion model {model}: its tokenizer has only {len(pipe.tokenizer)} tokens "
                "(an incomplete download?)"
            )
        return pipe

    @staticmethod
    def _load_lora(
        pipe: DiffusionPipeline, file: Path, scale: float, index: int, model: str
    ) -> AdapterRecord:
        name = f"lora_{index}"
        try:
            pipe.load_lora_weights(str(file.parent), weight_name=file.name, adapter_name=name)
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise SkinGenError(
                f"LoRA {file} does not fit the base model {model}: {_first_line(exc)}"
            ) from exc
        loaded = {adapter for adapters in pipe.get_list_adapters().values() for adapter in adapters}
        if name not in loaded:
            raise SkinGenError(f"LoRA {file} has no weights that fit the base model {model}")
        return AdapterRecord(path=str(file), sha256=file_sha256(file), scale=scale)

    @staticmethod
    def _load_ip_adapter(pipe: DiffusionPipeline, file: Path, scale: float, model: str) -> AdapterRecord:
        if not (file.parent / "image_encoder").is_dir():
            raise SkinGenError(f"IP-Adapter {file}: no image_encoder/ directory beside it")
        try:
            pipe.load_ip_adapter(
                str(file.parent), subfolder="", weight_name=file.name, image_encoder_folder="image_encoder"
            )
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise SkinGenError(
                f"IP-Adapter {file} does not fit the base model {model}: {_first_line(exc)}"
            ) from exc
        pipe.set_ip_adapter_scale(scale)
        return AdapterRecord(path=str(file), sha256=file_sha256(file), scale=scale)

    def check_inputs(self, request: Request, batch_size: int) -> None:
        if not request.prompt.strip():
            raise SkinGenError("prompt: must not be empty")
        if request.steps < 1:
            raise SkinGenError(f"steps: must be ≥ 1, got {request.steps}")
        if request.guidance < 0:
            raise SkinGenError(f"guidance: must be ≥ 0, got {request.guidance}")
        for name, value in (("width", request.width), ("height", request.height)):
            if value < 8 or value % 8:
                raise SkinGenError(f"{name}: must be a positive multiple of 8, got {value}")
        if batch_size < 1:
            raise SkinGenError(f"batch_size: must be ≥ 1, got {batch_size}")
        if (request.ip_adapter_image is not None) != (self.ip_adapter is not None):
            raise SkinGenError("ip_adapter_image: give it exactly when an IP-Adapter is loaded")
        has_inpaint_inputs = request.image is not None or request.mask_image is not None
        if self.inpaint and (request.image is None or request.mask_image is None):
            raise SkinGenError("image, mask_image: both are required by an inpainting pipeline")
        if not self.inpaint and has_inpaint_inputs:
            raise SkinGenError("image, mask_image: load the generator with inpaint=True to use a mask")
        if not 0 < request.strength <= 1:
            raise SkinGenError(f"strength: must be in (0, 1], got {request.strength}")

    def __call__(
        self,
        prompt: str,
        negative_prompt: str = "",
        *,
        seeds: Sequence[int] = (0,),
        steps: int = DEFAULT_STEPS,
        guidance: float = DEFAULT_GUIDANCE,
        width: int = DEFAULT_SIZE,
        height: int = DEFAULT_SIZE,
        batch_size: int = 1,
        ip_adapter_image: Image.Image | None = None,
        image: Image.Image | None = None,
        mask_image: Image.Image | None = None,
        strength: float = 1.0,
        progress: bool = False,
    ) -> list[GeneratedImage]:
        """One image per seed, in order; cached images are reused, new ones cached."""
        request = Request(
            prompt,
            negative_prompt,
            steps,
            guidance,
            width,
            height,
            ip_adapter_image,
            image,
            mask_image,
            strength,
        )
        return self.run([request] * len(seeds), seeds, batch_size=batch_size, progress=progress)

    def run(
        self,
        requests: Sequence[Request],
        seeds: Sequence[int],
        *,
        batch_size: int = 1,
        progress: bool = False,
    ) -> list[GeneratedImage]:
        """One image per ``(requests[i], seeds[i])``, in order: what a worker calls for several users' jobs.

        Requests that differ only in their prompts share diffusers calls (up to ``batch_size`` images each);
        cached images are reused and new ones cached.
        """
        # 1. Check inputs
        if not seeds:
            raise SkinGenError("seeds: at least one seed is needed")
        if len(requests) != len(seeds):
            raise SkinGenError(f"requests, seeds: one seed per request, got {len(requests)} and {len(seeds)}")
        for request in requests:
            self.check_inputs(request, batch_size)
        # 2. Describe each image by what determines its pixels
        records = [self.provenance(request, seed) for request, seed in zip(requests, seeds, strict=True)]
        # 3. Reuse cached images
        found = [self.cache.get(record) if self.cache else None for record in records]
        missing = [i for i, cached in enumerate(found) if cached is None]
        # 4. Generate the rest, batch by batch among requests with the same settings
        groups: dict[tuple, list[int]] = {}
        for i in missing:
            groups.setdefault(_batch_settings(records[i]), []).append(i)
        batches = [
            members[start : start + batch_size]
            for members in groups.values()
            for start in range(0, len(members), batch_size)
        ]
        fresh: dict[int, Image.Image] = {}
        for batch in tqdm(batches, desc="generating", unit="batch", disable=not progress):
            images = self.generate([requests[i] for i in batch], [seeds[i] for i in batch])
            fresh.update(zip(batch, images, strict=True))
        # 5. Cache the new images
        if self.cache is not None:
            for index, new_image in fresh.items():
                self.cache.put(new_image, records[index])
        return [
            GeneratedImage(
                image=found[i] if found[i] is not None else fresh[i],
                record=record,
                cached=found[i] is not None,
            )
            for i, record in enumerate(records)
        ]

    def provenance(self, request: Request, seed: int) -> ProvenanceRecord:
        def digest(image: Image.Image | None) -> str | None:
            return image_sha256(image) if image is not None else None

        return ProvenanceRecord(
            model=self.model,
            model_fingerprint=self._fingerprint,
            pipeline=type(self.pipe).__name__,
            loras=self.loras,
            ip_adapter=self.ip_adapter,
            ip_adapter_image_sha256=digest(request.ip_adapter_image),
            init_image_sha256=digest(request.image),
            mask_sha256=digest(request.mask_image),
            strength=request.strength if self.inpaint else None,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=seed,
            steps=request.steps,
            guidance=request.guidance,
            scheduler=type(self.pipe.scheduler).__name__,
            width=request.width,
            height=request.height,
            device=self.pipe.device.type,
            dtype=str(self.pipe.unet.dtype).removeprefix("torch."),
            versions=self._versions,
        )

    def generate(self, requests: Sequence[Request], seeds: Sequence[int]) -> list[Image.Image]:
        """One diffusers call for ``requests`` (same settings, own prompts), a CPU generator per seed: each
        image depends on its own request and seed only."""
        import torch

        first = requests[0]
        extra: dict[str, object] = {}
        if first.ip_adapter_image is not None:
            extra["ip_adapter_image"] = first.ip_adapter_image
        if self.inpaint:
            extra.update(image=first.image, mask_image=first.mask_image, strength=first.strength)
        with torch.inference_mode():
            output = self.pipe(
                prompt=[request.prompt for request in requests],
                negative_prompt=[request.negative_prompt for request in requests],
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                width=first.width,
                height=first.height,
                generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds],
                **extra,
            )
        return list(output.images)


def _batch_settings(record: ProvenanceRecord) -> tuple:
    """What images must share to come from one diffusers call: everything but prompt and seed."""
    return (
        record.steps,
        record.guidance,
        record.width,
        record.height,
        record.strength,
        record.ip_adapter_image_sha256,
        record.init_image_sha256,
        record.mask_sha256,
    )
