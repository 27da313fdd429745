"""Device and dtype choice: CUDA in fp16, then Apple MPS, then CPU in fp32; both overridable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skingen.errors import SkinGenError

if TYPE_CHECKING:
    import torch


def resolve_device(requested: str | None = None) -> str:
    """``requested`` if given (checked to exist), else the best available device."""
    import torch

    if requested is None:
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = requested.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if kind not in available:
        raise SkinGenError(f"--device {requested!r}: expected cpu, cuda[:N] or mps")
    if not available[kind]:
        raise SkinGenError(f"--device {requested!r}: not available on this machine")
    return requested


def resolve_dtype(device: str, requested: str | None = None) -> torch.dtype:
    """fp16 on CUDA (fast, what SD checkpoints ship in); fp32 elsewhere (CPU fp16 is slow)."""
    import torch

    if requested is None:
        requested = "float16" if device.startswith("cuda") else "float32"
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if requested not in dtypes:
        raise SkinGenError(f"--dtype {requested!r}: expected one of {', '.join(dtypes)}")
    return dtypes[requested]
