"""A folder with one sub-folder per condition (``SRC/psoriasis/*.jpg``); no skin tone, no body site."""

from __future__ import annotations

from pathlib import Path

from skingen.data_prepare.records import RawDataset, RawRecord
from skingen.errors import SkinGenError

NAME = "folder"
LICENCE = "unspecified (pass --licence)"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


def read(src: Path, images: Path) -> RawDataset:
    """Sub-folders of ``src`` are the labels; their image files (by suffix) are looked up in ``images``."""
    if not src.is_dir():
        raise SkinGenError(f"{src}: not a folder (the folder format needs one sub-folder per condition)")
    dataset = RawDataset([])
    for sub in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            relative = path.relative_to(src)
            dataset.records.append(RawRecord(label=sub.name, image=images / relative, where=str(path)))
    if not dataset.records:
        raise SkinGenError(f"{src}: no images in sub-folders (expected SRC/<condition>/<image>)")
    return dataset
