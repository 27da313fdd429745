"""One LoRA from several processes: the step plan, accumulation, and a real 2-process `accelerate launch`.

The reference is the single process with the whole optimizer step in one batch: 2 processes × batch 2, one
process × batch 2 × accumulation 2 and one process × batch 4 must train the same weights (float rounding
aside), on data whose epoch ends in an incomplete step.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from skingen.cli import main
from skingen.training.data import StepSampler
from tests.launching import accelerate_launch, launch_env
from tests.lora_data import ROWS, SMALL, write_data
from tests.skingen_fixtures import TinyModels

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")

FIVE_ROWS = [*ROWS, ("psoriasis", "VI", "")]  # 5 images: a global batch of 4 leaves a step of 1
COMMON = ["--steps", "3", "--lr", "1e-2", "--seed", "5", "--random-flip", "--train-text-encoder",
          "--checkpoint-every", "100"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("data") / "DATA", FIVE_ROWS)


def train(tiny: TinyModels, data: Path, out: Path, *flags: str) -> Path:
    args = ["lora", "train", "--data", str(data), "--sd", str(tiny.sd), "--out", str(out), *SMALL, *COMMON]
    assert main([*args, *flags]) == 0
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "pytorch_lora_weights.safetensors"))


def losses(run: Path) -> list[float]:
    with (run / "loss.csv").open() as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def assert_same_lora(a: Path, b: Path) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys() and first
    for key in first:
        # Adam turns float rounding in a near-zero gradient into up to lr-sized steps: 1e-3 is a tenth of one
        # step at --lr 1e-2 (measured: 1.1e-4 at most); a wrong split of the batch moves weights by ~lr.
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=1e-3, msg=key)
    assert losses(a) == pytest.approx(losses(b), rel=1e-5)


# --- the plan of an epoch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "batch", "accum", "processes"), [(5, 2, 1, 2), (7, 1, 2, 3), (4, 3, 2, 1)])
def test_every_image_once_per_epoch_in_steps_that_weigh_the_same(
    size: int, batch: int, accum: int, processes: int
) -> None:
    plans = []
    for rank in range(processes):
        sampler = StepSampler(
            size, 11, batch_size=batch, grad_accum=accum, process_index=rank, num_processes=processes
        )
        sampler.set_epoch(2)
        plans.append(sampler.steps())
    one = StepSampler(size, 11, batch_size=batch * processes * accum)
    one.set_epoch(2)
    assert all(len(plan) == one.steps_per_epoch for plan in plans)
    for step, reference in enumerate(one.steps()):
        [whole] = reference  # one process, one micro-batch: the step's images
        shares = [plan[step] for plan in plans]
        assert len({len(share) for share in shares}) == 1  # every process runs as many micro-batches
        real = [d for share in shares for micro in share for d in micro if d.weight > 0]
        assert sorted(d.index for d in real) == sorted(d.index for d in whole)
        assert sum(d.weight for d in real) == pytest.approx(processes)  # DDP's mean makes it 1
        assert all(micro for share in shares for micro in share)  # padding keeps no process idle
    resumed = StepSampler(
        size, 11, batch_size=batch, grad_accum=accum, process_index=0, num_processes=processes
    )
    resumed.set_epoch(2, first_step=1)
    assert resumed.steps() == plans[0][1:]


# --- one process: the optimizer step, however it is cut into micro-batches ----------------------------------


def test_accumulation_trains_what_one_batch_trains(tiny: TinyModels, data: Path, tmp_path: Path) -> None:
    whole = train(tiny, data, tmp_path / "1x4", "--batch-size", "4")
    accumulated = train(tiny, data, tmp_path / "1x2x2", "--batch-size", "2", "--grad-accum", "2")
    assert_same_lora(whole, accumulated)


# --- a real launch: accelerate, 2 CPU processes (gloo) -------------------------------------------------------


@pytest.mark.slow
def test_two_processes_train_one_lora(tiny: TinyModels, data: Path, tmp_path: Path) -> None:
    """2 processes × batch 2 = 1 process × batch 4: both ranks end with the same weights, one file is saved."""
    single = train(tiny, data, tmp_path / "1x4", "--batch-size", "4")
    two = tmp_path / "2x2"
    script = Path(__file__).with_name("lora_rank_weights.py")
    args = ["lora", "train", "--data", str(data), "--sd", str(tiny.sd), "--out", str(two), *SMALL, *COMMON,
            "--batch-size", "2"]  # fmt: skip
    launched = subprocess.run(
        [*accelerate_launch(2), str(script), *args],
        env=launch_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-4000:]
    ranks = [torch.load(two / f"rank-{rank}.pt") for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) > 0
    for zero, one in zip(*ranks, strict=True):
        assert torch.equal(zero, one)  # DDP averaged the gradients: identical updates on every rank
    assert_same_lora(single, two)
    record = json.loads((two / "run.json").read_text())
    assert record["processes"] == 2 and record["global_batch"] == 4
    assert sorted(p.name for p in two.glob("*.safetensors")) == ["pytorch_lora_weights.safetensors"]
