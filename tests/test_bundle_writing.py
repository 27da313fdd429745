"""The bundle-writing code shared by the pipeline's BundleBuilder and the demo bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from formats.bundle import AIOutput, BundleError, BundleManifest, Case, load_bundle
from formats.taxonomy import Taxonomy
from skingen.bundle.writing import BundleWriter, condition_entries, write_bundle


def _manifest(writer: BundleWriter, *, missing_reference: bool = False) -> BundleManifest:
    photo = writer.case_photo("c1", Image.new("RGB", (8, 8), (200, 150, 120)))
    reference = writer.reference(
        "c1",
        "ref_0",
        Image.new("RGB", (8, 8)),
        condition="acne",
        display_name="Acne",
        provenance='{"seed": 1}\n',
    )
    if missing_reference:
        reference = reference.model_copy(update={"image": "references/c1/gone.png"})
    ai = AIOutput(skin_condition="acne", display_name="Acne", text="Acne.")
    case = Case(case_id="c1", image=photo, ground_truth="acne", ai=ai, references=(reference,))
    conditions = condition_entries(Taxonomy.load())
    return BundleManifest(bundle_id="b", version="1", skin_conditions=conditions, cases=(case,))


def test_writes_the_layout_captions_provenance_and_conditions(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", _manifest)
    [case] = bundle.manifest.cases
    [reference] = case.references
    assert (case.image, reference.image, reference.provenance) == (
        "cases/c1.png",
        "references/c1/ref_0.png",
        "references/c1/ref_0.json",
    )
    assert reference.caption == "Generated example of acne — not the patient"
    assert json.loads(bundle.path(reference.provenance).read_text(encoding="utf-8")) == {"seed": 1}
    assert [c.id for c in bundle.manifest.skin_conditions] == [c.id for c in Taxonomy.load()]


def test_an_invalid_bundle_never_replaces_the_output(tmp_path: Path) -> None:
    out = tmp_path / "b"
    first = write_bundle(out, _manifest)
    with pytest.raises(BundleError, match=r"gone\.png"):
        write_bundle(out, lambda writer: _manifest(writer, missing_reference=True), overwrite=True)
    assert load_bundle(out).content_hash == first.content_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"], "no staging folder may be left behind"
