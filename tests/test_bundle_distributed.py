"""Bundle building split over processes (skingen.distributed): shares, merging, and a real 2-process launch."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from formats.bundle import load_bundle
from formats.taxonomy import Taxonomy
from skingen.bundle.builder import read_cases
from skingen.bundle.evaluation import BundleEvaluator
from skingen.diagnosis.base import Diagnosis
from skingen.distributed import Outcome, ProcessShare, launched_processes, raise_failures, shard, unshard
from skingen.errors import SkinGenError
from skingen.evaluation.evaluator import EvaluationSettings
from skingen.evaluation.inputs import read_real
from tests.shares import (
    build_in_threads,
    bundle_files,
    manifest_without_time,
    run_once_and_launched,
    shared_builder,
)
from tests.skingen_fixtures import FakeGenerator, TinyModels, write_cases, write_retrieval_set

if TYPE_CHECKING:
    import torch

CASES = [
    {"case_id": "c1", "file": "c1.png", "ground_truth": "psoriasis", "ai_condition": "", "skin_tone": "II"},
    {"case_id": "c2", "file": "c2.png", "ground_truth": "psoriasis", "ai_condition": "eczema", "skin_tone": ""},
    {"case_id": "c3", "file": "c3.png", "ground_truth": "acne", "ai_condition": "unknown", "skin_tone": ""},
    {"case_id": "c4", "file": "c4.png", "ground_truth": "acne", "ai_condition": "acne", "skin_tone": "V"},
]  # fmt: skip


# --- shares ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("total", [0, 1, 2, 5, 10])
def test_every_item_in_exactly_one_share_and_merged_back_in_order(total: int, count: int) -> None:
    items = [f"case{i}" for i in range(total)]
    shares = [shard(items, index, count) for index in range(count)]
    assert sorted(item for share in shares for item in share) == sorted(items)
    assert shares == [shard(items, index, count) for index in range(count)]  # deterministic
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced
    assert unshard(shares) == items


def test_shard_and_unshard_refuse_impossible_shares() -> None:
    with pytest.raises(ValueError, match="shard 2 of 2"):
        shard([1, 2], 2, 2)
    with pytest.raises(ValueError, match="share 0 of 2 has 1 results for 2 items"):
        unshard([[1], [2, 3]])


def test_single_process_without_a_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launched_processes() == 1
    share = ProcessShare.current()
    assert share == ProcessShare() and share.is_main_process and not share.distributed
    assert share.shard([1, 2, 3]) == [1, 2, 3] and share.gather(5) == [5] and share.broadcast("x") == "x"
    share.wait_for_everyone()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launched_processes() == 1


def test_a_failure_is_an_outcome_and_raised_where_it_happened() -> None:
    def fail() -> list[int]:
        raise SkinGenError("c3: bad photo")

    share = ProcessShare(process_index=1, num_processes=2)
    ok = share.attempt(lambda: [1])
    failed = share.attempt(fail)
    assert ok.value == [1] and ok.error is None and failed.error == "c3: bad photo"
    with pytest.raises(SkinGenError) as raised:  # its own exception, unchanged
        raise_failures([Outcome(0, value=[0]), failed], process_index=1)
    assert raised.value is failed.exception
    with pytest.raises(SkinGenError, match="process 1 of 2 failed: c3: bad photo"):
        raise_failures([Outcome(0, value=[0]), failed], process_index=0)
    sent = pickle.loads(pickle.dumps(failed))  # what gather sends: the message, not the exception
    assert sent.error == "c3: bad photo" and sent.exception is None
    assert raise_failures([Outcome(0, value=[0]), ok], process_index=0) == [[0], [1]]


# --- the builder's protocol, two shares simulated by threads ------------------------------------------


def _fixed_cases(tmp_path: Path) -> list:
    rows = [{**row, "ai_condition": row["ai_condition"] or "psoriasis"} for row in CASES]
    return read_cases(write_cases(tmp_path / "cases", rows), Taxonomy.load())


def test_two_shares_build_the_single_process_bundle(tmp_path: Path) -> None:
    cases = _fixed_cases(tmp_path)
    shared_builder(FakeGenerator())(cases, tmp_path / "one", progress=False)
    generators = [FakeGenerator(), FakeGenerator()]
    assert build_in_threads(cases, tmp_path / "two", generators) == [None, None]
    assert bundle_files(tmp_path / "two") == bundle_files(tmp_path / "one")
    assert manifest_without_time(tmp_path / "two") == manifest_without_time(tmp_path / "one")
    assert [c.case_id for c in load_bundle(tmp_path / "two").manifest.cases] == ["c1", "c2", "c3", "c4"]
    # each process drew its own cases only (c1, c3 | c2, c4; c3 is unknown: no references)
    assert len(generators[0].calls) == 2 and len(generators[1].calls) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases", "one", "two"]  # no staging left


def test_a_failing_share_fails_every_process_and_leaves_the_old_bundle(tmp_path: Path) -> None:
    cases = _fixed_cases(tmp_path)
    shared_builder(FakeGenerator())(cases, tmp_path / "out", progress=False)
    before = bundle_files(tmp_path / "out")
    # process 1 builds c2 (eczema) and fails on it; process 0 finishes its share, then both fail
    errors = build_in_threads(
        cases, tmp_path / "out", [FakeGenerator(), FakeGenerator("eczema")], overwrite=True
    )
    assert str(errors[1]) == "cannot draw eczema"
    assert str(errors[0]) == "process 1 of 2 failed: cannot draw eczema"
    assert bundle_files(tmp_path / "out") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases", "out"]


def test_an_output_in_the_way_stops_every_process(tmp_path: Path) -> None:
    cases = _fixed_cases(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    errors = build_in_threads(cases, tmp_path / "out", [FakeGenerator(), FakeGenerator()])
    assert "--overwrite" in str(errors[0])
    assert isinstance(errors[1], SkinGenError) and "could not start" in str(errors[1])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


class _PixelFeatures:
    """A feature extractor for the evaluation protocol: an image's mean colour (no model)."""

    path = Path("pixel-means")
    model_type = "test"
    space = "test"
    batch_size = 2
    dim = 3
    has_text = False

    def __call__(self, paths: list[Path]) -> torch.Tensor:
        import torch

        means = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64).mean(axis=(0, 1)) for p in paths]
        return torch.tensor(np.array(means)).reshape(len(paths), 3)


class _RedDiagnoser:
    """Sees psoriasis in a reddish image, eczema otherwise: some references pass the closed loop, some fail."""

    model_id = "red"

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        condition = "psoriasis" if np.asarray(image)[..., 0].mean() > 127 else "eczema"
        return Diagnosis.from_ranking(Taxonomy.load(), [(condition, 1.0)], rationale="", raw_output="",
                                      model_id=self.model_id)  # fmt: skip


def test_two_shares_evaluate_as_one_process(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    cases = _fixed_cases(tmp_path)
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    for i in range(8):
        Image.new("RGB", (8, 8), (30 * i, 20, 0)).save(real_dir / f"{i}.png")
    evaluator = BundleEvaluator(
        read_real(real_dir),
        _PixelFeatures(),
        _RedDiagnoser(),
        EvaluationSettings(bootstrap=10, equal_n_draws=2),
    )

    shared_builder(FakeGenerator(), evaluator)(cases, tmp_path / "one", progress=False)
    generators = [FakeGenerator(), FakeGenerator()]
    errors = build_in_threads(
        cases, tmp_path / "two", generators, make_builder=lambda g: shared_builder(g, evaluator)
    )
    assert errors == [None, None]
    assert bundle_files(tmp_path / "two") == bundle_files(tmp_path / "one")  # evaluation/ included
    assert manifest_without_time(tmp_path / "two") == manifest_without_time(tmp_path / "one")
    references = [r for c in load_bundle(tmp_path / "one").manifest.cases for r in c.references]
    assert len(references) == 6 and all(r.closed_loop.diagnoser == "red" for r in references)
    assert {r.closed_loop.correct for r in references} == {True, False}


# --- a real launch: accelerate, 2 CPU processes (gloo) -----------------------------------------------


def _digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in bundle_files(root).items()}


def _without_timestamps(root: Path) -> dict[str, object]:
    """Provenance JSON files without their ``created_at`` (when the image was made, not what it is)."""
    records = {}
    for path in sorted(root.rglob("references/*/*.json")):
        record = json.loads(path.read_text())
        record.pop("created_at")
        records[str(path.relative_to(root))] = record
    return records


@pytest.mark.ml
@pytest.mark.slow
def test_accelerate_launch_two_processes_builds_the_single_process_bundle(
    tiny: TinyModels, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    cases = write_cases(tmp_path / "cases", CASES)
    data = write_retrieval_set(tmp_path / "DATA")
    common = [
        "bundle", "build", str(cases), "--clip", str(tiny.clip), "--sd", str(tiny.sd), "--lora", str(tiny.lora),
        "-k", "2", "--bundle-id", "b", "--no-cache", "--steps", "2", "--width", "64", "--height", "64",
        "--device", "cpu", "--retrieve", str(data), "--features", str(tiny.clip),
    ]  # fmt: skip
    multi = run_once_and_launched(common, tmp_path / "one", tmp_path / "two")
    assert multi.stdout.count('"bundle"') == 1  # one summary line, from the main process
    assert _digests(tmp_path / "two").keys() == _digests(tmp_path / "one").keys()
    images = {name: digest for name, digest in _digests(tmp_path / "one").items() if name.endswith(".png")}
    # 4 case photos, 2 references each for c1, c2, c4 (c3: unknown); c2 (eczema) retrieves the set's 2 eczema
    # images (process 1's share), c1 what its diagnosis finds (process 0's)
    assert sum("/ref_" in name for name in images) == 3 * 2 and sum("cases/" in name for name in images) == 4
    assert {"references/c2/retrieved_0.png", "references/c2/retrieved_1.png"} <= images.keys()
    assert {n: d for n, d in _digests(tmp_path / "two").items() if n.endswith(".png")} == images
    assert _without_timestamps(tmp_path / "two") == _without_timestamps(tmp_path / "one")
    assert manifest_without_time(tmp_path / "two") == manifest_without_time(tmp_path / "one")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DATA", "cases", "one", "two"]
