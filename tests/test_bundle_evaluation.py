"""``skingen bundle build --evaluate``: each reference's closed-loop check and the bundle's metrics in the
bundle, checked against the diagnoser run on the images here; bad flag combinations fail before any model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formats.bundle import load_bundle
from formats.taxonomy import Taxonomy
from skingen.cli import main
from skingen.evaluation.evaluator import headline_of
from skingen.sources import load_image
from tests.image_sets import write_sets
from tests.skingen_fixtures import TinyModels, write_cases

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")

CLI_SIZE = ["--steps", "2", "--width", "64", "--height", "64", "--device", "cpu"]
FAST = ["--bootstrap", "20", "--equal-n-draws", "2", "--jackknife-groups", "5"]
CASES = [
    {"case_id": "c1", "file": "c1.png", "ground_truth": "psoriasis", "ai_condition": "", "skin_tone": "II"},
    {"case_id": "c2", "file": "c2.png", "ground_truth": "psoriasis", "ai_condition": "eczema", "skin_tone": "V"},
    {"case_id": "c3", "file": "c3.png", "ground_truth": "acne", "ai_condition": "acne", "skin_tone": "III"},
]  # fmt: skip
FIXED = [{**row, "ai_condition": row["ai_condition"] or "psoriasis"} for row in CASES]


def _build(tiny: TinyModels, tmp_path: Path, *extra: str, rows: list[dict] = CASES) -> tuple[int, Path]:
    cases = write_cases(tmp_path / "cases", rows)
    out = tmp_path / "bundle"
    args = ["bundle", "build", str(cases), "--out", str(out), "--sd", str(tiny.sd), "-k", "3", "--no-cache",
            *CLI_SIZE, *extra]  # fmt: skip
    return main(args), out


def test_evaluated_bundle_carries_each_verdict_and_its_metrics(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skingen.diagnosis.clip import ClipDiagnoser

    data, _ = write_sets(tmp_path / "sets")
    code, out = _build(tiny, tmp_path, "--clip", str(tiny.clip), "--evaluate", "--real", str(data),
                       "--features", str(tiny.clip), *FAST)  # fmt: skip
    assert code == 0, capsys.readouterr().err
    bundle = load_bundle(out)  # validates, evaluation files included
    manifest = bundle.manifest
    # each reference: the verdict of the cases' CLIP model (no --diagnoser), as that model sees the image here
    clip = ClipDiagnoser(str(tiny.clip), Taxonomy.load(), device="cpu")
    verdicts = []
    for case in manifest.cases:
        assert len(case.references) == 3
        for reference in case.references:
            seen = clip.diagnose(load_image(bundle.path(reference.image), "reference"), "x").condition
            check = reference.closed_loop
            assert check is not None and check.diagnoser == str(tiny.clip) and check.diagnosed == seen
            assert check.correct == (seen == reference.skin_condition)
            verdicts.append(check.correct)
    # the bundle's metrics: the full metrics.json beside the manifest, its headline numbers in the manifest
    record = manifest.evaluation
    assert record is not None and record.diagnoser == str(tiny.clip) and record.real == str(data)
    metrics = json.loads(bundle.path(record.metrics).read_text())
    assert bundle.path(record.report).read_text().lower().startswith("<!doctype html>")
    assert set(record.headline) == set(headline_of(metrics))
    assert {"fd_clip", "fd_clip_inf", "kd_clip"} <= set(record.headline)  # named by the feature space
    assert record.headline == {key: metrics[key] for key in headline_of(metrics)}
    assert record.headline["closed_loop_accuracy"] == pytest.approx(sum(verdicts) / len(verdicts))
    assert metrics["inputs"]["generated"] == {"path": ".", "kind": "bundle"}  # not the staging folder
    assert set(record.by_skin_tone) == {"I-II", "III-IV", "V-VI"}
    v_vi = record.by_skin_tone["V-VI"]["closed_loop_accuracy"]
    assert v_vi == pytest.approx(sum(verdicts[3:6]) / 3)  # c2 (type V) holds references 3–5
    assert main(["bundle", "validate", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "cases", "sets"]


def test_an_explicit_diagnoser_checks_fixed_diagnoses(tiny: TinyModels, tmp_path: Path) -> None:
    data, _ = write_sets(tmp_path / "sets")
    code, out = _build(tiny, tmp_path, "--evaluate", "--real", str(data / "images"), "--features",
                       str(tiny.clip), "--diagnoser", f"clip:{tiny.clip}", *FAST, rows=FIXED)  # fmt: skip
    assert code == 0
    manifest = load_bundle(out).manifest
    assert manifest.cases[0].ai.model_id == "fixed"  # every case's AI output came from cases.csv...
    assert all(r.closed_loop.diagnoser == str(tiny.clip) for c in manifest.cases for r in c.references)
    groups = manifest.evaluation.by_skin_tone  # a plain folder has no skin-tone labels: no per-group FID
    assert groups["I-II"]["fd_clip"] is None and groups["I-II"]["closed_loop_accuracy"] is not None


def test_cases_diagnosed_through_a_chat_endpoint_judged_by_a_classifier(
    tiny: TinyModels, tmp_path: Path
) -> None:
    from tests.chat_server import ChatServer

    data, _ = write_sets(tmp_path / "sets")
    with ChatServer(default="Psoriasis is unlikely; most likely eczema.") as server:
        code, out = _build(tiny, tmp_path, "--chat-endpoint", server.url, "--chat-model", "llava", "--evaluate",
                           "--real", str(data / "images"), "--features", str(tiny.clip), "--diagnoser",
                           f"classifier:{tiny.classifier}", *FAST)  # fmt: skip
    assert code == 0
    case = load_bundle(out).manifest.cases[0]  # c1 has no fixed AI output: the endpoint diagnosed it
    assert (case.ai.skin_condition, case.ai.model_id) == ("eczema", f"llava@{server.url}")
    assert [r.closed_loop.diagnoser for r in case.references] == [str(tiny.classifier)] * 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--real", "x"], "--real: only used with --evaluate"),
        (["--evaluate", "--features", "f"], "--evaluate needs --real"),
        (["--evaluate", "--real", "r", "--features", "f"], "the closed loop needs a model that looks at images"),
        (["--evaluate", "--real", "missing", "--features", "f", "--diagnoser", "clip:f"], "--real: missing"),
        (["--evaluate", "--real", "r", "--features", "f", "--diagnoser", "clip:f", "--confidence", "2"],
         "--confidence must be between 0 and 1"),
    ],
)  # fmt: skip
def test_bad_evaluation_flags_fail_before_any_model(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    (tmp_path / "r").mkdir()
    code, out = _build(tiny, tmp_path, *extra)
    assert code == 1 and message in capsys.readouterr().err
    assert not out.exists()
