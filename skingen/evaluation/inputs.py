"""The two image sets ``skingen evaluate`` compares, read and checked before any model is loaded.

Real images come from a prepared set (``DATA/metadata.csv``: condition, skin tone and caption per image) or a
plain folder of images (no labels, so only the global metrics). Generated images come from a folder written
by ``skingen generate`` (each PNG with its provenance JSON beside it: prompt, condition, skin tone) or from a
bundle (its reference images, labelled by the manifest). Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from formats.bundle import MANIFEST_NAME, BundleError, Case, load_bundle
from skingen.dataset import METADATA_FILE, load_dataset
from skingen.errors import SkinGenError
from skingen.skin_tone import skin_tone_group

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class EvalImage:
    """One image and what it is labelled as (``None``: not known)."""

    path: Path
    condition: str | None = None
    skin_tone: str | None = None
    prompt: str | None = None

    @property
    def skin_tone_group(self) -> str | None:
        return skin_tone_group(self.skin_tone)


@dataclass(frozen=True)
class ImageSet:
    """A side of the comparison; ``kind`` says where it was read from (``data``, ``folder``, ``bundle``)."""

    root: Path
    kind: str
    images: tuple[EvalImage, ...]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return any(image.condition or image.skin_tone for image in self.images)


def read_real(path: str | Path, *, split: str | None = None) -> ImageSet:
    """A prepared DATA folder (labels from ``metadata.csv``, optionally one ``split``) or a folder of images."""
    root = _existing_dir(path, "--real")
    if (root / METADATA_FILE).is_file():
        dataset = load_dataset(root)
        examples = dataset.split(split) if split else dataset.examples
        images = tuple(
            EvalImage(dataset.path(e), e.condition or None, e.skin_tone or None, e.caption or None)
            for e in examples
        )
        return _checked(ImageSet(root, "data", images), "--real", split and f"split {split!r}")
    if split:
        raise SkinGenError(f"--real-split {split!r}: {root} is a plain image folder, not a prepared set")
    return _checked(ImageSet(root, "folder", tuple(EvalImage(p) for p in _image_files(root))), "--real")


def read_generated(path: str | Path) -> ImageSet:
    """A bundle (its references) or a folder of generated images with provenance JSON beside them."""
    root = _existing_dir(path, "--generated")
    if (root / MANIFEST_NAME).is_file():
        return _checked(_bundle_references(root), "--generated", "its references")
    images = tuple(_generated_image(p) for p in _image_files(root))
    return _checked(ImageSet(root, "folder", images), "--generated")


def _bundle_references(root: Path) -> ImageSet:
    try:
        bundle = load_bundle(root)
    except BundleError as exc:
        raise SkinGenError(f"--generated: invalid bundle: {exc}") from exc
    manifest = bundle.manifest
    return ImageSet(
        root, "bundle", reference_images(root, manifest.cases, manifest.generator.get("skin_tone"))
    )


def reference_images(
    root: Path, cases: Sequence[Case], default_skin_tone: object = None
) -> tuple[EvalImage, ...]:
    """A bundle's reference images in manifest order, labelled by their case (skin tone: the case's, else the
    bundle's setting, else the provenance's) and with their prompt from the provenance JSON."""
    images = []
    for case in cases:
        for reference in case.references:
            provenance = _provenance(root / reference.provenance) if reference.provenance else {}
            tone = case.skin_tone or default_skin_tone or provenance.get("skin_tone")
            images.append(
                EvalImage(
                    root / reference.image,
                    reference.skin_condition,
                    str(tone) if tone else None,
                    provenance.get("prompt"),
                )
            )
    return tuple(images)


def _generated_image(path: Path) -> EvalImage:
    json_path = path.with_suffix(".json")
    provenance = _provenance(json_path) if json_path.is_file() else {}
    tone = provenance.get("skin_tone")
    if tone is not None:
        try:
            skin_tone_group(tone)
        except ValueError as exc:
            raise SkinGenError(f"{json_path}: {exc}") from None
    return EvalImage(path, provenance.get("condition"), tone, provenance.get("prompt"))


def _provenance(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SkinGenError(f"provenance JSON not readable: {path} ({exc})") from None
    if not isinstance(data, dict):
        raise SkinGenError(f"provenance JSON {path}: expected an object")
    return {k: data[k] for k in ("prompt", "condition", "skin_tone") if isinstance(data.get(k), str)}


def _existing_dir(path: str | Path, flag: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise SkinGenError(
            f"{flag}: {root} is not a folder" if root.exists() else f"{flag}: {root} not found"
        )
    return root


def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _checked(images: ImageSet, flag: str, what: str | None = None) -> ImageSet:
    if not images.images:
        where = f"{images.root} ({what})" if what else str(images.root)
        raise SkinGenError(f"{flag}: no images in {where}")
    return images
