"""The closed loop: a diagnoser looks at every generated image; does it see the condition the image was made for?

SkinGEN did not publish this check. A reference image that a diagnoser does not recognise as its condition is
a weak illustration of the diagnosis, whatever its FID. Accuracy is against the intended condition (from the
image's provenance or the bundle's manifest); images without an intended condition are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from formats.taxonomy import UNKNOWN
from skingen.diagnosis.base import Diagnoser
from skingen.evaluation.inputs import EvalImage
from skingen.sources import load_image


@dataclass(frozen=True)
class ClosedLoop:
    """Intended vs diagnosed condition of each generated image (``None`` where none was intended)."""

    diagnoser: str
    intended: tuple[str | None, ...]
    diagnosed: tuple[str, ...]

    @property
    def correct(self) -> list[float | None]:
        """Per image: 1.0 right, 0.0 wrong, None without an intended condition (for bootstrap and groups)."""
        return [
            None if i is None else float(i == d) for i, d in zip(self.intended, self.diagnosed, strict=True)
        ]

    def summary(self) -> dict[str, object]:
        """``accuracy``, ``n``, ``by_condition`` {intended: {n, accuracy}} and the confusion matrix.

        ``confusion[i][j]`` counts images intended as ``labels[i]`` and diagnosed as ``labels[j]``; the labels
        are the intended conditions, then any other diagnosed ones (``unknown`` last).
        """
        pairs = [(i, d) for i, d in zip(self.intended, self.diagnosed, strict=True) if i is not None]
        intended = sorted({i for i, _ in pairs})
        others = sorted({d for _, d in pairs} - set(intended) - {UNKNOWN})
        labels = intended + others + ([UNKNOWN] if any(d == UNKNOWN for _, d in pairs) else [])
        position = {label: n for n, label in enumerate(labels)}
        confusion = [[0] * len(labels) for _ in labels]
        for i, d in pairs:
            confusion[position[i]][position[d]] += 1
        by_condition = {}
        for condition in intended:
            row = confusion[position[condition]]
            by_condition[condition] = {"n": sum(row), "accuracy": row[position[condition]] / sum(row)}
        right = sum(i == d for i, d in pairs)
        return {
            "diagnoser": self.diagnoser,
            "n": len(pairs),
            "accuracy": right / len(pairs) if pairs else None,
            "by_condition": by_condition,
            "labels": labels,
            "confusion": confusion,
        }


def run_closed_loop(
    diagnoser: Diagnoser, images: Sequence[EvalImage], *, progress: bool = True
) -> ClosedLoop:
    """Diagnose every image (those with an intended condition; the rest are recorded as not applicable)."""
    diagnosed = []
    for image in tqdm(images, desc="closed loop", unit="image", disable=not progress or len(images) < 2):
        if image.condition is None:
            diagnosed.append(UNKNOWN)
            continue
        diagnosed.append(
            diagnoser.diagnose(load_image(image.path, "generated image"), image.path.stem).condition
        )
    return ClosedLoop(diagnoser.model_id, tuple(i.condition for i in images), tuple(diagnosed))
