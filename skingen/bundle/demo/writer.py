"""Draw the demo bundle: every case photo and reference of ``material.yaml``, then the manifest.

The demo has to run on any laptop, so its bundle is drawn here (numpy + Pillow, no downloads, no torch) and
is byte-for-byte reproducible from a seed. Every image, case photo and reference alike, carries the same
SYNTHETIC stamp (so a rater cannot tell them apart by it), and three cases carry a
deliberately wrong AI diagnosis so the demo shows both kinds of trial. Real studies plug in a real bundle.
Build it with ``skingen-study demo-bundle OUT [--seed 2024] [--references 3] [--size 384] [--overwrite]``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from formats.bundle import Bundle, BundleManifest, Case
from skingen.bundle.demo.drawing import render_image
from skingen.bundle.demo.material import DemoCase, DemoMaterial, load_material
from skingen.bundle.writing import BundleWriter, condition_entries, write_bundle
from skingen.diagnosis.base import Diagnosis

BUNDLE_ID = "skingen-demo"
BUNDLE_VERSION = "1.0.0"
GENERATOR = "demo-procedural"
MODEL_ID = "demo-fixed-output"
# Image seeds are ``seed + case_number * SEED_STRIDE + reference_number`` (reference 0 is the case photo).
SEED_STRIDE = 100
# zlib level 3: files ~10% larger than the default (6) but written twice as fast; noisy skin packs slowly.
PNG_OPTIONS = {"compress_level": 3}


def _reference_tones(material: DemoMaterial, skin_tone: str, count: int) -> list[str]:
    """The patient's own tone first, then its neighbours, so references look like the patient's skin."""
    types = [tone.fitzpatrick for tone in material.skin_tones]
    start = types.index(skin_tone)
    order = [0, 1, -1, 2, -2, 3]
    return [types[(start + order[i % len(order)]) % len(types)] for i in range(count)]


def _check_inputs(seed: int, n_references: int, size: int) -> None:
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    if not 1 <= n_references < SEED_STRIDE:
        raise ValueError(f"n_references must be in [1, {SEED_STRIDE - 1}], got {n_references}")
    if not 128 <= size <= 2048:
        raise ValueError(f"size must be in [128, 2048] pixels, got {size}")


def _write_case(
    writer: BundleWriter,
    material: DemoMaterial,
    number: int,
    case: DemoCase,
    *,
    seed: int,
    n_references: int,
    size: int,
) -> Case:
    """Draw one case photo and its references; return its manifest entry."""
    drawn = material.condition(case.condition)
    diagnosed = material.condition(case.ai_condition)
    image_seed = seed + number * SEED_STRIDE
    photo = render_image(drawn.painter, material.tone(case.skin_tone), seed=image_seed, size=size)
    image_path = writer.case_photo(case.case_id, photo)

    references = []
    for index, tone in enumerate(_reference_tones(material, case.skin_tone, n_references), start=1):
        ref_seed = image_seed + index
        image = render_image(diagnosed.painter, material.tone(tone), seed=ref_seed, size=size)
        provenance = {"generator": GENERATOR, "seed": ref_seed, "condition": diagnosed.id, "skin_tone": tone}
        references.append(
            writer.reference(
                case.case_id,
                f"ref{index}",
                image,
                condition=diagnosed.id,
                display_name=diagnosed.display_name,
                provenance=json.dumps(provenance, indent=2) + "\n",
            )
        )

    diagnosis = Diagnosis(
        condition=diagnosed.id,
        display_name=diagnosed.display_name,
        differential=case.differential,
        rationale=case.rationale,
        raw_output="",
        model_id=MODEL_ID,
    )
    return Case(
        case_id=case.case_id,
        image=image_path,
        ground_truth=drawn.id,
        ai=diagnosis.ai_output(f"The AI's most likely diagnosis is {diagnosed.display_name.lower()}."),
        references=tuple(references),
        skin_tone=case.skin_tone,
        alt_text=f"Synthetic illustration, not a real patient: {drawn.appearance}, "
        f"on Fitzpatrick type {case.skin_tone} skin.",
    )


def build_demo_bundle(
    out: Path, *, seed: int = 2024, n_references: int = 3, size: int = 384, overwrite: bool = False
) -> Bundle:
    """Draw the demo bundle into ``out`` and return it loaded and validated.

    Everything is drawn into a staging folder that replaces ``out`` at the end
    (:func:`~skingen.bundle.writing.write_bundle`), so ``out`` is never half-written. The same ``seed`` gives
    a byte-identical manifest and identical images.
    Raises :class:`~formats.atomic.OutputExistsError` if ``out`` is non-empty and ``overwrite`` is false.
    """
    # 1. Check inputs and read what to draw
    _check_inputs(seed, n_references, size)
    material = load_material()

    def write(writer: BundleWriter) -> BundleManifest:
        # 2. Draw cases and references. numpy and Pillow release the GIL, so threads use every core; each
        # image has its own seed, so the result does not depend on the order they finish in.
        draw = partial(_write_case, writer, material, seed=seed, n_references=n_references, size=size)
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            cases = tuple(pool.map(draw, range(1, len(material.cases) + 1), material.cases))
        # 3. The manifest
        return BundleManifest(
            bundle_id=BUNDLE_ID,
            version=BUNDLE_VERSION,
            description="Synthetic demo material: procedurally drawn skin illustrations, not real patients, "
            "with fixed AI outputs (some deliberately wrong). For trying the study app, not for research.",
            synthetic=True,
            generator={"name": GENERATOR, "seed": seed, "n_references": n_references, "size": size},
            skin_conditions=condition_entries(material.conditions),
            cases=cases,
        )

    return write_bundle(Path(out), write, overwrite=overwrite, png=PNG_OPTIONS)
