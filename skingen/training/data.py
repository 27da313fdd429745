"""The prepared image set as training examples, in an order that a resumed run reproduces exactly.

Exact resume needs every random choice about the data to be a function of (seed, epoch, index) rather than
of the global RNG: the diffusers example shuffles with ``DataLoader(shuffle=True)``, whose permutation and
``_base_seed`` are drawn from the global torch RNG when an epoch's iterator is created, so a run resumed
mid-epoch sees other batches (measured: weights differ by 1.9e-3). Hence :class:`EpochSampler`, a
``DataLoader(generator=...)`` and flips/crops drawn from ``numpy.random.default_rng([seed, epoch, index])``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

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
        except SkinGenError as exc:
            raise SkinGenError(f"--data {dataset.root}, image {example.file}: {exc}") from None
    return examples


class EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation that is a function of (seed, epoch): restartable mid-epoch, the same on every process."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())


class TrainingImages(torch.utils.data.Dataset):
    """Pixels in [-1, 1] at ``resolution``² and token ids per example; augmentation from (seed, epoch, index)."""

    def __init__(
        self, dataset: PreparedDataset, examples: list[TrainingExample], tokenizer, config: TrainingConfig
    ):
        self.root = dataset.root
        self.examples = examples
        self.config = config
        self.epoch = 0
        self.input_ids = tokenizer(
            [e.caption for e in examples],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        image = load_image(self.root / self.examples[index].file, "training image")
        pixels = transform(image, self.config.resolution, center_crop=self.config.center_crop, rng=rng)
        if self.config.random_flip and rng.random() < 0.5:
            pixels = pixels.flip(-1)
        return {"pixel_values": pixels, "input_ids": self.input_ids[index]}


def transform(
    image: Image.Image, resolution: int, *, center_crop: bool, rng: np.random.Generator
) -> torch.Tensor:
    """Shorter side to ``resolution`` (bilinear), then a centre or random square crop; CHW in [-1, 1].

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
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {
        "pixel_values": torch.stack([b["pixel_values"] for b in batch]).contiguous(
            memory_format=torch.contiguous_format
        ),
        "input_ids": torch.stack([b["input_ids"] for b in batch]),
    }


def data_loader(images: TrainingImages, config: TrainingConfig) -> torch.utils.data.DataLoader:
    # generator=: otherwise every DataLoader.__iter__ draws a base seed from the global torch RNG.
    return torch.utils.data.DataLoader(
        images,
        batch_size=config.batch_size,
        sampler=EpochSampler(len(images), config.seed),
        collate_fn=collate,
        generator=torch.Generator().manual_seed(config.seed),
    )
