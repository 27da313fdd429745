"""LoRA adapters on the UNet's attention (and optionally the text encoders), saved in diffusers' format and,
on request, in the kohya format that ComfyUI and AUTOMATIC1111 load.

As diffusers' LoRA examples do (``train_text_to_image_lora.py``, ``…_lora_sdxl.py``): peft
``LoraConfig(init_lora_weights="gaussian")`` on ``to_q/to_k/to_v/to_out.0``; the pipeline class's
``save_lora_weights`` writes ``pytorch_lora_weights.safetensors``, which ``pipe.load_lora_weights`` reads.
Three things differ, each for a failure we hit:

- the text encoders get their adapter from ``peft.inject_adapter_in_model``, not ``text_encoder.add_adapter``:
  transformers 5.24 refuses the latter with peft < 0.22, and no such peft is released;
- the adapter metadata (rank, alpha, targets, DoRA) is saved in the file: without it ``load_lora_weights``
  assumes alpha = rank and a LoRA trained with another alpha generates different images;
- the kohya file's ``.alpha`` tensors are each module's real alpha: diffusers' ``convert_state_dict_to_kohya``
  writes the rank there, which scales a LoRA trained with alpha ≠ rank wrongly in every kohya loader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from skingen.architecture import Architecture
from skingen.errors import SkinGenError

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
KOHYA_WEIGHTS_NAME = "pytorch_lora_weights_kohya.safetensors"
UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
# The part names diffusers' LoRA files use, in the order the models are passed around: unet, text encoder(s).
TEXT_ENCODER_PREFIXES = ("text_encoder", "text_encoder_2")


def add_adapters(
    unet, text_encoders: Sequence, *, rank: int, alpha: float, dora: bool, train_text_encoder: bool
) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    def config(targets: tuple[str, ...]) -> LoraConfig:
        return LoraConfig(
            r=rank,
            lora_alpha=alpha,
            init_lora_weights="gaussian",
            target_modules=list(targets),
            use_dora=dora,
        )

    unet.add_adapter(config(UNET_TARGETS))
    if train_text_encoder:
        for text_encoder in text_encoders:
            inject_adapter_in_model(config(TEXT_ENCODER_TARGETS), text_encoder)


def trainable_parameters(*models) -> list[torch.nn.Parameter]:
    return [p for model in models for p in model.parameters() if p.requires_grad]


def _pipeline_class(architecture: Architecture):
    import diffusers

    return getattr(diffusers, architecture.text_to_image)


def save_lora(directory: Path, architecture: Architecture, unet, text_encoders: Sequence = ()) -> Path:
    """``directory/pytorch_lora_weights.safetensors`` with the adapters' metadata; ``text_encoders`` if trained."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    parts = {"unet": unet, **dict(zip(TEXT_ENCODER_PREFIXES, text_encoders, strict=False))}
    arguments = {}
    for name, model in parts.items():
        arguments[f"{name}_lora_layers"] = convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
        arguments[f"{name}_lora_adapter_metadata"] = model.peft_config["default"].to_dict()
    _pipeline_class(architecture).save_lora_weights(directory, safe_serialization=True, **arguments)
    return Path(directory) / WEIGHTS_NAME


def save_kohya(directory: Path, architecture: Architecture, unet, text_encoders: Sequence = ()) -> Path:
    """``directory/pytorch_lora_weights_kohya.safetensors``: kohya's key names (``lora_unet_…``, ``lora_te_…``
    for SD 1.x, ``lora_te1_…``/``lora_te2_…`` for SDXL; UNet modules by their diffusers names, which
    ComfyUI, AUTOMATIC1111 and diffusers map) with ``lora_down``/``lora_up`` and each module's ``.alpha``."""
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    te_names = ("lora_te",) if not architecture.xl else ("lora_te1", "lora_te2")
    parts = [("unet", "lora_unet", unet)]
    parts += [
        (prefix, kohya, te)
        for prefix, kohya, te in zip(TEXT_ENCODER_PREFIXES, te_names, text_encoders, strict=False)
    ]
    state: dict[str, torch.Tensor] = {}
    for prefix, kohya, model in parts:
        peft_state = {f"{prefix}.{k}": v for k, v in get_peft_model_state_dict(model).items()}
        for key, value in convert_state_dict_to_kohya(peft_state).items():
            if key.endswith(".alpha"):
                continue  # the rank, not the alpha: written below from the modules
            # diffusers names the first text encoder lora_te1 for SD 1.x too; kohya's SD 1.x name is lora_te
            if kohya == "lora_te":
                key = key.replace("lora_te1_", "lora_te_", 1)
            state[key] = value.contiguous()
        for name, module in model.named_modules():
            if isinstance(module, LoraLayer) and "default" in module.lora_alpha:
                base = f"{kohya}_{name.replace('.', '_')}"
                if f"{base}.lora_down.weight" not in state:
                    raise SkinGenError(
                        f"kohya export: no {base}.lora_down.weight for LoRA module {prefix}.{name}"
                    )
                state[f"{base}.alpha"] = torch.tensor(float(module.lora_alpha["default"]))
    config = unet.peft_config["default"]
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(config.r),
        "ss_network_alpha": str(config.lora_alpha),
        "ss_base_model_version": "sdxl_base_v1-0" if architecture.xl else "sd_v1",
    }
    path = Path(directory) / KOHYA_WEIGHTS_NAME
    save_file(state, str(path), metadata=metadata)
    return path


def load_lora_into(directory: Path, architecture: Architecture, unet, text_encoders: Sequence = ()) -> None:
    """Put the weights saved by :func:`save_lora` back into the adapters (a checkpoint's, on resume)."""
    from diffusers.training_utils import _set_state_dict_into_text_encoder
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    state, _ = _pipeline_class(architecture).lora_state_dict(str(directory))
    unet_state = convert_unet_state_dict_to_peft(
        {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
    )
    incompatible = set_peft_model_state_dict(unet, unet_state, adapter_name="default")
    unexpected = getattr(incompatible, "unexpected_keys", None)
    if unexpected:
        raise SkinGenError(f"--resume {directory}: LoRA weights that fit no adapter, e.g. {unexpected[0]}")
    for prefix, text_encoder in zip(TEXT_ENCODER_PREFIXES, text_encoders, strict=False):
        # diffusers' helper goes through peft directly (no transformers version check).
        _set_state_dict_into_text_encoder(state, prefix=f"{prefix}.", text_encoder=text_encoder)


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
