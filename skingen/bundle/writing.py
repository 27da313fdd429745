"""Writing a bundle: the files and manifest entries every bundle writer makes the same way.

The pipeline (:class:`~skingen.bundle.builder.BundleBuilder`) and the demo
(:func:`~skingen.bundle.demo.writer.build_demo_bundle`) make their images differently and share the rest
through :func:`write_bundle`: a staging folder (:func:`skingen.atomic.atomic_directory`), the layout of case
photos and references (each reference with its provenance JSON beside it), the reference caption, the
manifest's condition list, and validating the finished bundle as the study app loads it before it replaces
the output. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from PIL import Image

from skingen.atomic import atomic_directory
from skingen.bundle.manifest import (
    Bundle,
    BundleManifest,
    ReferenceImage,
    SkinConditionEntry,
    load_bundle,
    write_manifest,
)


class NamedCondition(Protocol):
    """What a condition list needs (a taxonomy's conditions and the demo's both have it)."""

    @property
    def id(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def description(self) -> str: ...


def condition_entries(conditions: Iterable[NamedCondition]) -> tuple[SkinConditionEntry, ...]:
    """The manifest's ``conditions``: each condition's id, display name and description."""
    return tuple(
        SkinConditionEntry(id=c.id, display_name=c.display_name, description=c.description)
        for c in conditions
    )


class BundleWriter:
    """Writes the files of one bundle into ``root`` (a staging folder) and returns their manifest entries.

    ``png`` holds Pillow's PNG save options (e.g. ``compress_level``). Safe to call from several threads.
    """

    def __init__(self, root: Path, *, png: Mapping[str, object] | None = None) -> None:
        self.root = root
        self.png = dict(png or {})

    def case_photo(self, case_id: str, image: Image.Image) -> str:
        """Save the photo shown on ``case_id``'s trial; returns its manifest path."""
        relative = f"cases/{case_id}.png"
        (self.root / "cases").mkdir(exist_ok=True)
        image.save(self.root / relative, format="PNG", **self.png)
        return relative

    def reference(
        self,
        case_id: str,
        name: str,
        image: Image.Image,
        *,
        condition: str,
        display_name: str,
        provenance: str,
    ) -> ReferenceImage:
        """Save reference ``name`` of ``case_id`` (an image of ``condition``) with its provenance JSON text."""
        stem = f"references/{case_id}/{name}"
        (self.root / "references" / case_id).mkdir(parents=True, exist_ok=True)
        image.save(self.root / f"{stem}.png", format="PNG", **self.png)
        (self.root / f"{stem}.json").write_text(provenance, encoding="utf-8")
        return ReferenceImage(
            image=f"{stem}.png",
            caption=f"Generated example of {display_name.lower()} — not the patient",
            condition=condition,
            provenance=f"{stem}.json",
        )


def write_bundle(
    out: str | Path,
    write: Callable[[BundleWriter], BundleManifest],
    *,
    overwrite: bool = False,
    png: Mapping[str, object] | None = None,
) -> Bundle:
    """Write a bundle at ``out`` completely or not at all, and return it loaded.

    ``write`` gets a :class:`BundleWriter` on a staging folder, writes the images through it and returns the
    manifest. The manifest is written and the whole bundle validated (:func:`load_bundle`) inside the staging
    folder, which replaces ``out`` only then. ``out`` is refused as :func:`skingen.atomic.check_output_dir`
    says (before ``write`` runs).
    """
    with atomic_directory(out, overwrite=overwrite) as staging:
        write_manifest(staging, write(BundleWriter(staging, png=png)))
        load_bundle(staging)
    return load_bundle(out)
