"""The reference images a trial can show beside the AI's diagnosis, by kind: generated or retrieved.

A bundle holds, per case, images generated of the AI's diagnosis (``Case.references``) and, when it was built
with ``skingen bundle build --retrieve``, real photos of that diagnosis retrieved from an image set
(``Case.retrieved``). This is the study's one reader of both: the app shows them through it, with the caption
each image carries (for a retrieved photo, the credit its licence requires). Pure Python, no Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from formats.bundle import Case

ReferenceKind = Literal["generated", "retrieved"]
REFERENCE_KINDS: tuple[ReferenceKind, ...] = ("generated", "retrieved")


@dataclass(frozen=True)
class ShownReference:
    """One reference image as a participant sees it."""

    image: str
    """Path relative to the bundle."""
    caption: str
    """Shown under the image; for a retrieved photo it names its source, licence and attribution."""
    kind: ReferenceKind


def case_references(case: Case, kind: ReferenceKind) -> tuple[ShownReference, ...]:
    """The case's reference images of ``kind``, in the bundle's order (retrieved: nearest first)."""
    images = case.references if kind == "generated" else case.retrieved
    return tuple(ShownReference(image.image, image.caption, kind) for image in images)


def shown_references(case: Case, kinds: tuple[ReferenceKind, ...]) -> tuple[ShownReference, ...]:
    """Everything a condition showing ``kinds`` (its ``references``) shows of the case, in the page's order."""
    return tuple(reference for kind in kinds for reference in case_references(case, kind))
