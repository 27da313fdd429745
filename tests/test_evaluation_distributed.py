"""``skingen evaluate`` split over processes: two shares simulated by threads, and a real 2-process launch.

Either way the features are bit-identical and ``metrics.json`` equals a single process's (it holds no
timestamp, so equal means equal).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skingen.distributed import ProcessShare
from skingen.errors import SkinGenError
from tests.shares import in_threads, run_once_and_launched
from tests.skingen_fixtures import TinyModels

torch = pytest.importorskip("torch")
pytest.importorskip("scipy.linalg")
pytest.importorskip("scipy")

from formats.taxonomy import Taxonomy  # noqa: E402
from skingen.diagnosis.clip import ClipDiagnoser  # noqa: E402
from skingen.evaluation.evaluator import EvaluationSettings, embed, evaluate  # noqa: E402
from skingen.evaluation.features import FeatureExtractor  # noqa: E402
from skingen.evaluation.inputs import read_generated, read_real  # noqa: E402
from skingen.evaluation.report import METRICS_FILE, write_report  # noqa: E402
from tests.image_sets import write_sets  # noqa: E402

SETTINGS = EvaluationSettings(jackknife_groups=10, equal_n_draws=5, bootstrap=200)
BATCH = 5  # 36 images: 8 batches, the last of 1, split 4 + 4


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_sets(tmp_path_factory.mktemp("evaluation"))


class _FailingDiagnoser:
    model_id = "broken"

    def diagnose(self, image: object, image_id: str) -> object:
        raise SkinGenError(f"cannot diagnose {image_id}")


def _inputs(sets: tuple[Path, Path]):
    data, generated = sets
    return read_real(data), read_generated(generated)


def _extractor(tiny: TinyModels) -> FeatureExtractor:
    return FeatureExtractor(tiny.clip, device="cpu", batch_size=BATCH)


def test_two_shares_embed_bit_identical_features(tiny: TinyModels, sets: tuple[Path, Path]) -> None:
    real, generated = _inputs(sets)
    one = embed(real, generated, _extractor(tiny))
    shares, errors = in_threads(lambda share: embed(real, generated, _extractor(tiny), share=share))
    assert errors == [None, None]
    for merged in shares:  # every process has every feature
        assert torch.equal(merged.real, one.real) and torch.equal(merged.generated, one.generated)
        assert merged.clip_real.tobytes() == one.clip_real.tobytes()
        assert merged.clip_generated.tobytes() == one.clip_generated.tobytes()


def test_two_shares_write_the_single_process_metrics(
    tiny: TinyModels, sets: tuple[Path, Path], tmp_path: Path
) -> None:
    real, generated = _inputs(sets)
    diagnoser = ClipDiagnoser(str(tiny.clip), Taxonomy.load(), device="cpu")
    single = evaluate(real, generated, _extractor(tiny), SETTINGS, diagnoser=diagnoser, progress=False)

    def share_of_the_work(share: ProcessShare) -> dict | None:
        clip = ClipDiagnoser(str(tiny.clip), Taxonomy.load(), device="cpu")
        return evaluate(
            real, generated, _extractor(tiny), SETTINGS, diagnoser=clip, progress=False, share=share
        )

    (main, other), errors = in_threads(share_of_the_work)
    assert errors == [None, None] and other is None  # only the main process has the metrics
    assert main["closed_loop"]["n"] == 36
    write_report(tmp_path / "one", single)
    write_report(tmp_path / "two", main)
    assert (tmp_path / "two" / METRICS_FILE).read_text() == (tmp_path / "one" / METRICS_FILE).read_text()


def test_a_failing_share_fails_every_process(tiny: TinyModels, sets: tuple[Path, Path]) -> None:
    real, generated = _inputs(sets)

    def share_of_the_work(share: ProcessShare) -> dict | None:
        diagnoser = (
            _FailingDiagnoser()
            if share.process_index == 1
            else ClipDiagnoser(str(tiny.clip), Taxonomy.load())
        )
        return evaluate(real, generated, _extractor(tiny), SETTINGS, diagnoser=diagnoser, share=share)

    _, errors = in_threads(share_of_the_work)
    assert str(errors[1]).startswith("cannot diagnose ")  # its own error, unchanged
    assert str(errors[0]).startswith("process 1 of 2 failed: cannot diagnose ")


# --- a real launch: accelerate, 2 CPU processes (gloo) -----------------------------------------------


@pytest.mark.ml
@pytest.mark.slow
def test_accelerate_launch_two_processes_writes_the_single_process_metrics(
    tiny: TinyModels, sets: tuple[Path, Path], tmp_path: Path
) -> None:
    pytest.importorskip("accelerate")
    data, generated = sets
    common = [
        "evaluate", "--real", str(data), "--generated", str(generated), "--features", str(tiny.clip),
        "--diagnoser", f"clip:{tiny.clip}", "--jackknife-groups", "10", "--equal-n-draws", "5",
        "--bootstrap", "200", "--batch-size", str(BATCH), "--device", "cpu",
    ]  # fmt: skip
    multi = run_once_and_launched(common, tmp_path / "one", tmp_path / "two")
    assert multi.stdout.count('"out"') == 1  # one summary line, from the main process
    one = json.loads((tmp_path / "one" / METRICS_FILE).read_text())
    two = json.loads((tmp_path / "two" / METRICS_FILE).read_text())
    assert two == one and two["closed_loop"]["n"] == 36
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["metrics.json", "report.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no staging left
