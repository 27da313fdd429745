"""The demo bundle: valid, varied, deterministic, labelled, never half-written, and free of torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from app.study_command import main
from formats.bundle import Bundle, load_bundle
from skingen.bundle.demo.drawing import render_image, stamp_box
from skingen.bundle.demo.material import MaterialError, load_material
from skingen.bundle.demo.writer import build_demo_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The default demo bundle, built once for the read-only tests."""
    return build_demo_bundle(tmp_path_factory.mktemp("demo") / "bundle")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_bundle_loads_and_is_marked_synthetic(bundle: Bundle) -> None:
    reloaded = load_bundle(bundle.root)
    assert reloaded.manifest == bundle.manifest
    manifest = bundle.manifest
    assert (manifest.bundle_id, manifest.version, manifest.synthetic) == ("skingen-demo", "1.0.0", True)
    assert "synthetic" in manifest.description.lower()
    assert manifest.created_at == ""


def test_bundle_is_varied_and_plants_wrong_ai_cases(bundle: Bundle) -> None:
    cases = bundle.manifest.cases
    assert len(cases) >= 8
    assert len({c.ground_truth for c in cases}) >= 4
    assert len({c.skin_tone for c in cases}) >= 4
    assert {c.skin_tone for c in cases} <= {"I", "II", "III", "IV", "V", "VI"}
    wrong = [c.case_id for c in cases if not c.ai_correct]
    assert len(wrong) >= 2
    assert len(wrong) < len(cases) / 2, "most AI answers should still be right"


def test_ai_outputs_are_complete(bundle: Bundle) -> None:
    manifest = bundle.manifest
    descriptions = {c.id: c.description for c in manifest.skin_conditions}
    assert all(descriptions.values())
    for case in manifest.cases:
        ai = case.ai
        assert ai.model_id == "demo-fixed-output"
        assert ai.display_name == manifest.skin_condition_name(ai.skin_condition)
        assert ai.display_name.lower() in ai.text
        assert ai.rationale
        assert len(ai.differential) == 3
        assert ai.differential[0].skin_condition == ai.skin_condition
        assert sum(entry.score for entry in ai.differential) <= 1.0
        assert all(entry.skin_condition in descriptions for entry in ai.differential)
        assert "synthetic" in case.alt_text.lower()


def test_references_show_the_diagnosed_condition_with_provenance(bundle: Bundle) -> None:
    for case in bundle.manifest.cases:
        assert len(case.references) == 3
        tones = set()
        for ref in case.references:
            assert ref.generated
            assert ref.skin_condition == case.ai.skin_condition
            assert "not the patient" in ref.caption
            assert ref.provenance is not None
            provenance = json.loads(bundle.path(ref.provenance).read_text(encoding="utf-8"))
            assert provenance["generator"] == "demo-procedural"
            assert provenance["condition"] == case.ai.skin_condition
            assert isinstance(provenance["seed"], int)
            tones.add(provenance["skin_tone"])
        assert case.skin_tone in tones
        assert len(tones) > 1, "references should vary the skin tone"


def test_images_have_the_requested_size(tmp_path: Path) -> None:
    small = build_demo_bundle(tmp_path / "small", size=160, n_references=2)
    cases = small.manifest.cases
    paths = [c.image for c in cases] + [r.image for c in cases for r in c.references]
    assert len(paths) == 3 * len(cases)
    for relative in paths:
        with Image.open(small.path(relative)) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (160, 160))


def test_the_stamp_is_burnt_into_the_bottom_left_corner() -> None:
    tone = load_material().tone("II")
    stamped = np.asarray(render_image("psoriasis", tone, seed=7, size=256))
    left, top, right, bottom = stamp_box(256)
    assert top > 256 * 0.8 and right < 256 * 0.75, "the stamp must stay in its corner"
    region = stamped[top:bottom, left:right]
    assert (region.max(axis=2) > 200).sum() > 100, "white text on the box"
    assert (region.max(axis=2) < 30).mean() > 0.5, "an opaque dark box"


def test_case_photos_and_references_carry_identical_stamps(bundle: Bundle) -> None:
    """The rating task is blind: a case photo and a generated reference must not differ in their stamps (the
    old bundle stamped "SYNTHETIC - not a real patient" on one and "SYNTHETIC reference" on the other)."""
    case = bundle.manifest.cases[0]
    photo = _pixels(bundle.path(case.image))
    left, top, right, bottom = stamp_box(photo.shape[1])
    stamp = photo[top:bottom, left:right]
    for other in bundle.manifest.cases:
        for path in (other.image, *(ref.image for ref in other.references)):
            assert np.array_equal(_pixels(bundle.path(path))[top:bottom, left:right], stamp), path
    outside = _pixels(bundle.path(case.references[0].image))
    assert not np.array_equal(outside[: top - 1], photo[: top - 1]), "only the stamps are alike"


def test_same_seed_gives_identical_files_and_other_seed_other_pixels(tmp_path: Path) -> None:
    first = build_demo_bundle(tmp_path / "a", seed=11, size=128, n_references=1)
    second = build_demo_bundle(tmp_path / "b", seed=11, size=128, n_references=1)
    other = build_demo_bundle(tmp_path / "c", seed=12, size=128, n_references=1)
    assert _files(first.root) == _files(second.root)
    assert first.content_hash == second.content_hash
    for case in first.manifest.cases:
        assert not np.array_equal(_pixels(first.path(case.image)), _pixels(other.path(case.image)))


def test_refuses_to_overwrite_a_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not empty"):
        build_demo_bundle(out, size=128, n_references=1)
    assert _files(out) == {"keep.txt": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"], "no temp directory may be left behind"

    build_demo_bundle(out, size=128, n_references=1, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_builds_into_an_empty_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert len(build_demo_bundle(out, size=128, n_references=1).manifest.cases) >= 8


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_references": 0}, "n_references"), ({"size": 32}, "size"), ({"seed": -1}, "seed")],
)
def test_rejects_bad_arguments_by_name(tmp_path: Path, kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        build_demo_bundle(tmp_path / "bundle", **kwargs)
    assert not (tmp_path / "bundle").exists()


def test_command_builds_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["demo-bundle", str(out), "--size", "128", "--references", "1", "--seed", "5"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_bundle(out).manifest.generator["seed"] == 5
    assert main(["demo-bundle", str(out), "--size", "128"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_building_does_not_import_torch(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from skingen.bundle.demo.writer import build_demo_bundle\n"
        f"build_demo_bundle(Path({str(tmp_path / 'bundle')!r}), size=128, n_references=1)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_material_is_package_data_with_three_wrong_ai_cases() -> None:
    material = load_material()
    assert [t.fitzpatrick for t in material.skin_tones] == ["I", "II", "III", "IV", "V", "VI"]
    wrong = [c.case_id for c in material.cases if c.ai_condition != c.condition]
    assert wrong == ["c02", "c06", "c07"]
    assert all(c.appearance and c.description for c in material.conditions)


def test_material_problems_are_all_reported_by_field(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO_ROOT / "skingen/bundle/demo/material.yaml").read_text(encoding="utf-8"))
    data["conditions"][0]["painter"] = "watercolour"
    data["cases"][0]["skin_tone"] = "VII"
    data["cases"][1]["differential"] = [["psoriasis", 0.5], ["ringworm", 0.2]]
    path = tmp_path / "material.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(MaterialError) as caught:
        load_material(path)
    message = str(caught.value)
    assert str(path) in message and "conditions[0].painter" in message and "watercolour" in message
    del data["conditions"][0]["painter"]
    path.write_text(yaml.safe_dump({**data, "conditions": data["conditions"][1:]}), encoding="utf-8")
    with pytest.raises(MaterialError) as caught:
        load_material(path)
    message = str(caught.value)
    assert "cases[0].condition: unknown condition 'psoriasis'" in message
    assert "cases[0].skin_tone: 'VII' is not in skin_tones" in message
    assert "cases[1].differential[1]: unknown condition 'ringworm'" in message
