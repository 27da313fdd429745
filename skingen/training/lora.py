"""LoRA adapters on the UNet's attention (and optionally the text encoder), saved in diffusers' format.

As diffusers' LoRA example does: peft ``LoraConfig(init_lora_weights="gaussian")`` on ``to_q/to_k/to_v/
to_out.0``; ``StableDiffusionPipeline.save_lora_weights`` writes ``pytorch_lora_weights.safetensors``, which
``pipe.load_lora_weights`` reads. Two things differ, each for a failure we hit:

- the text encoder gets its adapter from ``peft.inject_adapter_in_model``, not ``text_encoder.add_adapter``:
  transformers 5.24 refuses the latter with peft < 0.22, and no such peft is released;
- the adapter metadata (rank, alpha, targets) is saved in the file: without it ``load_lora_weights`` assumes
  alpha = rank and a LoRA trained with another alpha generates different images.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from skingen.errors import SkinGenError

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def add_adapters(unet, text_encoder, *, rank: int, alpha: float, train_text_encoder: bool) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    def config(targets: tuple[str, ...]) -> LoraConfig:
        return LoraConfig(
            r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets)
        )

    unet.add_adapter(config(UNET_TARGETS))
    if train_text_encoder:
        inject_adapter_in_model(config(TEXT_ENCODER_TARGETS), text_encoder)


def trainable_parameters(*models) -> list[torch.nn.Parameter]:
    return [p for model in models for p in model.parameters() if p.requires_grad]


def save_lora(directory: Path, unet, text_encoder=None) -> Path:
    """``directory/pytorch_lora_weights.safetensors`` with the adapters' metadata; ``text_encoder`` if trained."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    def layers(model):
        return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))

    StableDiffusionPipeline.save_lora_weights(
        directory,
        unet_lora_layers=layers(unet),
        text_encoder_lora_layers=layers(text_encoder) if text_encoder is not None else None,
        safe_serialization=True,
        unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
        text_encoder_lora_adapter_metadata=(
            text_encoder.peft_config["default"].to_dict() if text_encoder is not None else None
        ),
    )
    return Path(directory) / WEIGHTS_NAME


def load_lora_into(directory: Path, unet, text_encoder=None) -> None:
    """Put the weights saved by :func:`save_lora` back into the adapters (a checkpoint's, on resume)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.training_utils import _set_state_dict_into_text_encoder
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state, _ = StableDiffusionPipeline.lora_state_dict(str(directory))
    unet_state = convert_unet_state_dict_to_peft(
        {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
    )
    incompatible = set_peft_model_state_dict(unet, unet_state, adapter_name="default")
    unexpected = getattr(incompatible, "unexpected_keys", None)
    if unexpected:
        raise SkinGenError(f"--resume {directory}: LoRA weights that fit no adapter, e.g. {unexpected[0]}")
    if text_encoder is not None:
        # diffusers' helper goes through peft directly (no transformers version check).
        _set_state_dict_into_text_encoder(state, prefix="text_encoder.", text_encoder=text_encoder)


def lora_metadata(file: Path) -> dict[str, object]:
    """The adapter metadata in a LoRA file's header (flattened keys such as ``unet.r``), or {}."""
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as handle:
        header = handle.metadata() or {}
    raw = header.get("lora_adapter_metadata")
    return json.loads(raw) if raw else {}


def lora_rank(file: Path) -> int:
    """A LoRA file's UNet rank: from its metadata, else from the shape of a ``lora_A``/``down`` weight."""
    from safetensors import safe_open

    metadata = lora_metadata(file)
    if "unet.r" in metadata:
        return int(metadata["unet.r"])
    with safe_open(str(file), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if key.startswith("unet.") and ("lora_A" in key or "lora.down" in key):
                return int(handle.get_slice(key).get_shape()[0])
    raise SkinGenError(f"{file}: no UNet LoRA weights in it")


def check_rank(file: Path, rank: int, what: str) -> None:
    found = lora_rank(file)
    if found != rank:
        raise SkinGenError(f"{what} {file}: LoRA of rank {found}, but this run trains rank {rank} (--rank)")
