"""Inception-v3 pool3 features exactly as clean-fid computes them, for the FID papers report.

The weights are the user's file ``inception-2015-12-05.pt``: the TorchScript export of the 2015 TensorFlow
Inception that StyleGAN2-ADA, StyleGAN3 and clean-fid load (clean-fid's ``InceptionV3W``); nothing is
downloaded. It loads with ``torch.jit.load`` alone — the state-dict files of pytorch-fid / torch-fidelity
(``pt_inception-2015-12-05-6726825d.pth``) need their packages' architecture code, which needs torchvision,
so they are refused with a message naming the file to use.

Each image is resized as clean-fid's default "clean" mode does (Parmar et al., CVPR 2022): per channel in
float32 with PIL's bicubic filter to 299×299, clipped to [0, 255], no quantisation; then ``(x − 128) / 128``
into the network's ``layers``. So ``fid`` equals clean-fid's ``compute_fid(mode="clean")`` on the same
images (tests/test_inception.py checks it with a stand-in network of the same interface).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from skingen.devices import resolve_device
from skingen.errors import SkinGenError
from skingen.evaluation.names import INCEPTION
from skingen.sources import load_image

if TYPE_CHECKING:
    import torch

SIZE = 299
DIM = 2048
FLAG = "--inception-weights"


class InceptionFeatures:
    """clean-fid's Inception features (float32 on the CPU, ``(n, 2048)``) of image files."""

    space = INCEPTION
    dim = DIM

    def __init__(self, path: str | Path, *, device: str | None = None, batch_size: int = 32) -> None:
        import torch

        self.path = Path(path)
        if not self.path.is_file():
            raise SkinGenError(f"{FLAG}: {self.path} not found")
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._torch = torch
        try:
            with warnings.catch_warnings():
                # torch 2.13 deprecates TorchScript, but the file is one (clean-fid's): nothing else loads it
                warnings.filterwarnings(
                    "ignore", message=r".*torch\.jit\.load.*", category=DeprecationWarning
                )
                model = torch.jit.load(str(self.path), map_location=self.device).eval()
        except (RuntimeError, ValueError) as exc:
            raise SkinGenError(
                f"{FLAG}: {self.path} is not a TorchScript archive ({str(exc).splitlines()[0]}); give the "
                "inception-2015-12-05.pt that clean-fid and StyleGAN2-ADA use (a pytorch-fid / torch-fidelity "
                ".pth state dict cannot be loaded without their architecture code)"
            ) from None
        if not hasattr(model, "layers"):
            raise SkinGenError(
                f"{FLAG}: {self.path} has no `layers` module: not clean-fid's TorchScript Inception"
            )
        self.layers = model.layers

    def __call__(self, paths: Sequence[Path]) -> torch.Tensor:
        torch = self._torch
        batches = []
        for start in range(0, len(paths), self.batch_size):
            pixels = np.stack(
                [clean_resize(load_image(p, "image")) for p in paths[start : start + self.batch_size]]
            )
            x = torch.from_numpy(pixels.transpose(0, 3, 1, 2)).to(self.device)
            with torch.inference_mode():
                features = self.layers((x - 128) / 128)
            batches.append(features.reshape(len(x), DIM).float().cpu())
        return torch.cat(batches) if batches else torch.empty(0, DIM)


def clean_resize(image: Image.Image) -> np.ndarray:
    """``(299, 299, 3)`` float32: each channel resized in float with PIL bicubic, clipped (clean-fid "clean")."""
    rgb = np.asarray(image.convert("RGB"))
    channels = [
        np.asarray(Image.fromarray(rgb[:, :, c].astype(np.float32)).resize((SIZE, SIZE), Image.BICUBIC))
        for c in range(3)
    ]
    return np.stack(channels, axis=2).clip(0, 255).astype(np.float32)
