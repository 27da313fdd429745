"""The prepared image set as training examples, in an order that a resumed run reproduces exactly and that
several processes share.

Exact resume needs every random choice about the data to be a function of (seed, epoch, index) rather than
of the global RNG: the diffusers example shuffles with ``DataLoader(shuffle=True)``, whose permutation and
``_base_seed`` are drawn from the global torch RNG when an epoch's iterator is created, so a run resumed
mid-epoch sees other batches (measured: weights differ by 1.9e-3). Hence :class:`StepSampler`, a
``DataLoader(generator=...)``, and crops, flips, caption dropout and the seed of every noise draw from
``numpy.random.default_rng([seed, epoch, index])``.

The same construction makes several processes train one LoRA: each cuts the same permutation into the same
optimizer steps and takes its own slice, and an image's noise does not depend on which process draws it. So
``P`` processes × batch ``B`` × accumulation ``A`` train exactly what one process with ``P·B·A`` images per step
trains (up to float rounding). Each image carries its share of its step's loss (:class:`Draw.weight`), which
keeps that true for an epoch's last, incomplete step too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from formats.errors import FormatError
from skingen.dataset import Example, PreparedDataset
from skingen.errors import SkinGenError
from skingen.prompts import PromptBuilder
from skingen.skin_tone import SKIN_TONE_GROUPS
from skingen.sources import load_image
from skingen.training.config import TrainingConfig


def template_skin_tone(skin_tone: str) -> str | None:
    """A Fitzpatrick type for the prompt templates: a group (DDI's 'V-VI') reads as its first type."""
    if skin_tone in SKIN_TONE_GROUPS:
        return SKIN_TONE_GROUPS[skin_tone][0]
    return skin_tone or None


def caption(example: Example, prompts: PromptBuilder, config: TrainingConfig) -> str:
    """The training caption: the same templates as generation (``--captions templates`` or an empty caption
    in metadata.csv), else metadata's caption; the trigger token leads either way, as it does in generation."""
    if config.captions == "templates" or not example.caption:
        return prompts.build(
            example.condition, skin_tone=template_skin_tone(example.skin_tone), trigger=config.trigger
        ).prompt
    if config.trigger and not example.caption.startswith(f"{config.trigger} "):
        return f"{config.trigger} {example.caption}"
    return example.caption


@dataclass(frozen=True)
class TrainingExample:
    file: str
    caption: str


def training_examples(
    dataset: PreparedDataset, prompts: PromptBuilder, config: TrainingConfig
) -> list[TrainingExample]:
    train = dataset.split("train")
    if not train:
        raise SkinGenError(f"--data {dataset.root}: no images with split 'train' in metadata.csv")
    examples = []
    for example in train:
        try:
            examples.append(TrainingExample(example.file, caption(example, prompts, config)))
        except FormatError as exc:
            raise SkinGenError(f"--data {dataset.root}, image {example.file}: {exc}") from None
    return examples


class Draw(NamedTuple):
    """One image of a micro-batch: which, in which epoch, and its weight in the optimizer step's loss."""

    index: int
    epoch: int
    weight: float  # processes / (images in the whole optimizer step); 0 for a padding image


class StepSampler(torch.utils.data.Sampler[list[Draw]]):
    """This process's micro-batches of an epoch, optimizer step by optimizer step, from (seed, epoch) only.

    The epoch's permutation (the same on every process) is cut into optimizer steps of ``batch_size ×
    num_processes × grad_accum`` images; micro-batch ``k`` of a step is its next ``batch_size × num_processes``
    images, of which process ``p`` takes the ``p``-th ``batch_size``. An epoch's last step may be shorter: it
    has as many micro-batches as it needs, and a process left without an image in one gets a padding image
    of weight 0 (every process must run the same number of forward/backward passes under DDP).

    Weights: each real image of a step with ``n`` images weighs ``num_processes / n``. A process's loss is
    the weighted sum over its images; DDP averages gradients over processes and accumulation sums them over
    micro-batches, so the step's gradient is that of the mean loss over its ``n`` images, however they were
    split.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        *,
        batch_size: int,
        grad_accum: int = 1,
        process_index: int = 0,
        num_processes: int = 1,
    ) -> None:
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process {process_index} of {num_processes}")
        self.size, self.seed = size, seed
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.process_index, self.num_processes = process_index, num_processes
        self.epoch, self.first_step = 0, 0

    @property
    def images_per_step(self) -> int:
        return self.batch_size * self.num_processes * self.grad_accum

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.size // self.images_per_step)

    def set_epoch(self, epoch: int, first_step: int = 0) -> None:
        """Iterate ``epoch`` from its optimizer step ``first_step`` (> 0 when resuming mid-epoch)."""
        self.epoch, self.first_step = epoch, first_step

    def steps(self) -> list[list[list[Draw]]]:
        """This process's micro-batches, grouped by optimizer step, from ``first_step`` to the epoch's end."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        per_micro = self.batch_size * self.num_processes
        steps = []
        for start in range(self.first_step * self.images_per_step, self.size, self.images_per_step):
            chunk = order[start : start + self.images_per_step]
            weight = self.num_processes / len(chunk)
            micro_batches = []
            for offset in range(0, len(chunk), per_micro):
                mine = chunk[offset : offset + per_micro][
                    self.process_index * self.batch_size : (self.process_index + 1) * self.batch_size
                ]
                draws = [Draw(index, self.epoch, weight) for index in mine]
                micro_batches.append(draws or [Draw(chunk[0], self.epoch, 0.0)])
            steps.append(micro_batches)
        return steps

    def __iter__(self):
        return (micro_batch for step in self.steps() for micro_batch in step)

    def __len__(self) -> int:
        return sum(len(step) for step in self.steps())


@dataclass(frozen=True)
class Crop:
    """Where a training image came from, as SDXL's added time ids describe it."""

    original_size: tuple[int, int]  # (height, width) of the image as loaded
    top_left: tuple[int, int]  # (top, left) of the crop in the resized image (after a flip: mirrored)


@dataclass(frozen=True)
class CachedLatents:
    """An image's latent distribution (``--cache-latents``): sampled anew each time the image is drawn."""

    mean: torch.Tensor
    std: torch.Tensor
    crop: Crop


class TrainingImages(torch.utils.data.Dataset):
    """Per :class:`Draw`: pixels in [-1, 1] at ``resolution``² (or their cached latent distribution), token ids
    per tokenizer, SDXL's time ids, the image's loss weight and the seed of its noise draws.

    Everything random comes from ``default_rng([seed, epoch, index])`` (crop, flip, caption dropout, in that
    order) and ``[seed, epoch, index, 1]`` (the noise seed), so a worker process computes what the main
    process would, and no state needs passing on.
    """

    def __init__(
        self,
        dataset: PreparedDataset,
        examples: list[TrainingExample],
        tokenizers: list,
        config: TrainingConfig,
    ):
        self.root = dataset.root
        self.examples = examples
        self.config = config
        captions = [e.caption for e in examples] + [""]  # the last: caption dropout's empty caption
        self.input_ids = [
            tokenizer(
                captions,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            for tokenizer in tokenizers
        ]
        self.latents: dict[tuple[int, bool], CachedLatents] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def pixels(
        self, index: int, rng: np.random.Generator | None, *, flip: bool | None = None
    ) -> tuple[torch.Tensor, Crop, bool]:
        """The transformed image, its crop and whether it was flipped. Crop and flip are drawn from ``rng``;
        ``rng`` None: a centre crop, flipped as ``flip`` says."""
        image = load_image(self.root / self.examples[index].file, "training image")
        center = self.config.center_crop or rng is None
        pixels, top_left, resized = transform(image, self.config.resolution, center_crop=center, rng=rng)
        if flip is None:
            flip = bool(self.config.random_flip and rng.random() < 0.5)
        if flip:  # the crop's corner in the mirrored image
            pixels = pixels.flip(-1)
            top_left = (top_left[0], resized[0] - top_left[1] - self.config.resolution)
        return pixels, Crop((image.height, image.width), top_left), flip

    def cache_latents(self, encode) -> None:
        """Encode every image once (both flips with ``--random-flip``) with ``encode(pixels) → (mean, std)``;
        from then on :meth:`__getitem__` returns those instead of pixels. Needs ``--center-crop``."""
        flips = (False, True) if self.config.random_flip else (False,)
        cache = {}
        for index in range(len(self.examples)):
            for flip in flips:
                pixels, crop, _ = self.pixels(index, None, flip=flip)
                mean, std = encode(pixels.unsqueeze(0))
                cache[index, flip] = CachedLatents(mean[0].cpu(), std[0].cpu(), crop)
        self.latents = cache

    def __getitem__(self, draw: Draw) -> dict[str, object]:
        index, epoch, weight = draw
        rng = np.random.default_rng([self.config.seed, epoch, index])
        if self.latents is None:
            pixels, crop, _ = self.pixels(index, rng)
        else:  # --center-crop: no crop draws, so the flip is the same draw as with pixels
            cached = self.latents[index, bool(self.config.random_flip and rng.random() < 0.5)]
            crop = cached.crop
        caption = index
        if self.config.caption_dropout and rng.random() < self.config.caption_dropout:
            caption = len(self.examples)  # the empty caption
        item: dict[str, object] = {
            "input_ids": [ids[caption] for ids in self.input_ids],
            "time_ids": torch.tensor(
                [*crop.original_size, *crop.top_left, self.config.resolution, self.config.resolution],
                dtype=torch.float32,
            ),
            "weight": torch.tensor(weight, dtype=torch.float32),
            "noise_seed": int(np.random.default_rng([self.config.seed, epoch, index, 1]).integers(2**63)),
        }
        if self.latents is None:
            item["pixel_values"] = pixels
        else:
            item["latent_mean"], item["latent_std"] = cached.mean, cached.std
        return item


def transform(
    image: Image.Image, resolution: int, *, center_crop: bool, rng: np.random.Generator | None
) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """Shorter side to ``resolution`` (bilinear), then a centre or random square crop; CHW in [-1, 1], the
    crop's (top, left) and the resized (width, height).

    The same steps as the diffusers example's torchvision transforms (Resize, CenterCrop/RandomCrop,
    ToTensor, Normalize([0.5], [0.5])), written with PIL so torchvision is not needed.
    """
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    spare_x, spare_y = size[0] - resolution, size[1] - resolution
    if center_crop:
        left, top = spare_x // 2, spare_y // 2
    else:
        left, top = int(rng.integers(0, spare_x + 1)), int(rng.integers(0, spare_y + 1))
    image = image.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous(), (top, left), size


def collate(batch: list[dict[str, object]]) -> dict[str, object]:
    """Stacked tensors; ``input_ids`` a list (one tensor per tokenizer); ``noise_seed`` a list of ints."""
    out: dict[str, object] = {
        "input_ids": [torch.stack(ids) for ids in zip(*(b["input_ids"] for b in batch), strict=True)],
        "noise_seed": [b["noise_seed"] for b in batch],
    }
    for key in ("pixel_values", "latent_mean", "latent_std", "time_ids", "weight"):
        if key in batch[0]:
            out[key] = torch.stack([b[key] for b in batch]).contiguous(memory_format=torch.contiguous_format)
    return out


def data_loader(
    images: TrainingImages, sampler: StepSampler, config: TrainingConfig
) -> torch.utils.data.DataLoader:
    """Batches as ``sampler`` plans them; ``--dataloader-workers`` processes decode images ahead of training.

    Workers are persistent (an epoch does not restart them); they need no state from the main process,
    since every draw carries its epoch. ``generator=``: otherwise every ``DataLoader.__iter__`` draws a base
    seed from the global torch RNG.
    """
    workers = config.dataloader_workers
    return torch.utils.data.DataLoader(
        images,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(config.seed),
    )
