"""Small on-disk fixtures: a minimal stimulus bundle and protocol files built from the shipped examples."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from PIL import Image

from skingen.bundle.manifest import (
    AIOutput,
    BundleManifest,
    Case,
    ReferenceImage,
    SkinConditionEntry,
    write_manifest,
)
from study.crossover import williams_orders

EXAMPLES = Path(__file__).resolve().parents[1] / "study" / "demo"
CONDITIONS = ("psoriasis", "eczema", "acne", "vitiligo")


def make_bundle(root: Path, n_cases: int = 6, wrong: tuple[int, ...] = (1, 4), retrieved: int = 0) -> Path:
    """A bundle of ``n_cases`` 8×8 images; cases whose index is in ``wrong`` get a wrong AI diagnosis.

    Each case has 2 generated references and ``retrieved`` real (``generated=False``) ones.
    """
    (root / "cases").mkdir(parents=True)
    cases = []
    for index in range(n_cases):
        truth = CONDITIONS[index % len(CONDITIONS)]
        said = CONDITIONS[(index + 1) % len(CONDITIONS)] if index in wrong else truth
        case_id = f"c{index + 1:02d}"
        Image.new("RGB", (8, 8), (200, 150 - index, 120)).save(root / "cases" / f"{case_id}.png")
        refs = []
        for r in range(2 + retrieved):
            path = root / "references" / case_id / f"{r}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (180, 120, 100 + r)).save(path)
            refs.append(
                ReferenceImage(
                    image=f"references/{case_id}/{r}.png",
                    caption=f"Example of {said}" if r < 2 else f"Photo of {said}, CC BY 4.0",
                    condition=said,
                    generated=r < 2,
                )
            )
        cases.append(
            Case(
                case_id=case_id,
                image=f"cases/{case_id}.png",
                ground_truth=truth,
                ai=AIOutput(condition=said, display_name=said.title(), text=f"It is {said}."),
                references=tuple(refs),
            )
        )
    manifest = BundleManifest(
        bundle_id="test",
        version="1",
        conditions=tuple(SkinConditionEntry(id=c, display_name=c.title()) for c in CONDITIONS),
        cases=tuple(cases),
    )
    write_manifest(root, manifest)
    return root


def example_protocol(design: str = "between") -> dict:
    return yaml.safe_load((EXAMPLES / f"{design}.yaml").read_text(encoding="utf-8"))


EXTRA_ARMS = (
    {"id": "retrieved_photos", "label": "Text and real example photos", "references": "retrieved"},
    {"id": "both_images", "label": "Generated and real examples", "references": ["generated", "retrieved"]},
)


def multi_arm_protocol(design: str, k: int) -> dict:
    """The example protocol with ``k`` (2..4) conditions: the demo's two plus retrieved / both-kinds arms.

    Block sizes are the smallest valid ones (one or two full rounds of the arms); the bundle needs retrieved
    references (``make_bundle(..., retrieved=1)``) once k > 2.
    """
    data = example_protocol(design)
    data["conditions"] = [*data["conditions"], *copy.deepcopy(EXTRA_ARMS[: k - 2])]
    rounds = len(williams_orders(k)) * k if design == "within" else k  # sequences or arms
    data["randomization"]["block_sizes"] = [rounds] if design == "within" else [rounds, 2 * rounds]
    return data


def write_protocol(
    directory: Path, data: dict, bundle: Path | None = None, name: str = "protocol.yaml"
) -> Path:
    """Write ``data`` as a protocol file in ``directory`` (its bundle path set to ``bundle`` if given)."""
    if bundle is not None:
        data = {**data, "cases": {**data["cases"], "bundle": str(bundle)}}
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
