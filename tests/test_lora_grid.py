"""``skingen lora grid``: a 2×2 grid (rank × lr) on a tiny SD model end to end, its resumption after a run is
interrupted after its first checkpoint, and a bad GRID.yaml (one message naming the field)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from skingen.cli import main
from skingen.errors import SkinGenError
from skingen.experiments.spec import parse_grid
from tests.skingen_fixtures import TinyModels, tiny_models
from tests.test_lora_training import write_data

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")
pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory)


def grid_yaml(tiny: TinyModels, data: Path, **grid: object) -> dict:
    return {
        "base": {
            "data": str(data), "sd": str(tiny.sd), "features": str(tiny.clip), "diagnoser": f"clip:{tiny.clip}",
            "steps": 2, "seed": 0, "resolution": 32, "device": "cpu",
            "training": {"checkpoint_every": 1},
            "evaluation": {"conditions": ["psoriasis", "eczema"], "skin_tones": ["II", "V"], "images_per_cell": 2,
                           "inference_steps": 2, "k": 2, "jackknife_groups": 4, "equal_n_draws": 2,
                           "bootstrap": 50},
        },
        "grid": grid or {"rank": [2, 4], "lr": [1e-4, 1e-3]},
        "metric": {"name": "closed_loop_accuracy"},
    }  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 training images and 5 validation ones (≥ 2 per skin-tone group: FID per group needs 2 a side)."""
    rows = [("psoriasis", "II", ""), ("eczema", "V", ""), ("psoriasis", "V", ""), ("eczema", "II", "")]
    root = write_data(tmp_path_factory.mktemp("grid-data") / "DATA", rows * 2)
    with (root / "metadata.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    for record in records[4:]:
        record["split"] = "validation"
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return root


def run_cli(spec: dict, path: Path, out: Path) -> int:
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return main(["lora", "grid", str(path), "--out", str(out), "--no-progress"])


def test_a_2x2_grid_runs_end_to_end_and_resumes_after_an_interruption(
    tiny, data, tmp_path, monkeypatch
) -> None:
    from skingen.training import loop

    spec, out = grid_yaml(tiny, data), tmp_path / "grid"
    # the third run is interrupted right after its first checkpoint (as a kill would leave it)
    saved = loop.save_checkpoint
    calls = {"train": 0}

    def interrupting(accelerator, config, step):
        saved(accelerator, config, step)
        if calls["train"] == 3:
            raise KeyboardInterrupt

    real_train = loop.train

    def counting(config, **kwargs):
        calls["train"] += 1
        calls.setdefault("resume", []).append(kwargs.get("resume"))
        return real_train(config, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", interrupting)
    monkeypatch.setattr(loop, "train", counting)
    with pytest.raises(KeyboardInterrupt):
        run_cli(spec, tmp_path / "GRID.yaml", out)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 3 and calls["train"] == 3
    finished = [r for r in runs if (out / "runs" / r / "train" / "run.json").is_file()]
    (interrupted,) = set(runs) - set(finished)
    assert [p.name for p in (out / "runs" / interrupted / "train").glob("checkpoint-*")] == ["checkpoint-1"]
    mtimes = {r: (out / "runs" / r / "eval" / "metrics.json").stat().st_mtime_ns for r in finished}

    # rerun: the two finished runs are skipped, the interrupted one resumes, the fourth starts fresh
    monkeypatch.setattr(loop, "save_checkpoint", saved)
    calls.update(train=0, resume=[])
    assert run_cli(spec, tmp_path / "GRID.yaml", out) == 0
    assert calls["train"] == 2 and calls["resume"] == ["latest", None]
    assert {r: (out / "runs" / r / "eval" / "metrics.json").stat().st_mtime_ns for r in finished} == mtimes
    record = json.loads((out / "runs" / interrupted / "train" / "run.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-1")

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {(r["rank"], r["lr"]) for r in rows} == {
        ("2", "0.0001"),
        ("2", "0.001"),
        ("4", "0.0001"),
        ("4", "0.001"),
    }
    for row in rows:
        assert float(row["fd"]) >= 0 and row["closed_loop_accuracy"] != "" and row["fd_inf"] != ""
        assert row["closed_loop_accuracy[I-II]"] != "" and row["fd[V-VI]"] != ""
    results = json.loads((out / "results.json").read_text())
    best = results["best"]
    assert best["best"] in {r["id"] for r in rows} and best["second"] in {r["id"] for r in rows}
    assert "distinguishable" in best["text"] and best["difference_ci"] is not None
    page = (out / "report.html").read_text()
    assert best["best"] in page and page.count("<figcaption>") == 4 and "<script src=" not in page
    generated = sorted((out / "runs" / rows[0]["id"] / "generated").glob("*.json"))
    assert len(generated) == 2 * 2 * 2
    assert json.loads(generated[0].read_text())["loras"]  # provenance names the run's LoRA


def test_fd_difference_interval_and_a_subset(tiny, data, tmp_path) -> None:
    spec = grid_yaml(
        tiny, data, subset=[{"name": "all-train"}, {"name": "light", "skin_tones": ["I-II"]}], steps=[1]
    )
    spec["metric"] = {"name": "fd"}
    spec["base"]["diagnoser"] = None
    out = tmp_path / "grid"
    assert run_cli(spec, tmp_path / "GRID.yaml", out) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["settings"]["subset"] for r in results["runs"]] == ["all-train", "light"]
    low, high = results["best"]["difference_ci"]
    assert low <= high
    with (out / "subsets" / "light" / "metadata.csv").open() as handle:
        assert {row["skin_tone"] for row in csv.DictReader(handle)} == {"II"}


def test_every_metric_gets_an_interval_from_the_per_image_values(tmp_path) -> None:
    from types import SimpleNamespace

    from skingen.evaluation import metrics
    from skingen.experiments.results import difference_interval
    from skingen.experiments.runner import PER_IMAGE_FILE, RunPaths

    rng = np.random.default_rng(0)
    names = np.array([f"{i:02d}.png" for i in range(30)])
    real = rng.normal(size=(20, 4))
    runs = {}
    for run, shift in (("a", 0.0), ("b", 1.5)):
        order = rng.permutation(30)  # each run lists its generated images in its own order
        values = {
            key: rng.normal(shift, 1, 30) for key in ("precision", "density", "diversity", "clip_score")
        }
        values["precision"][3] = np.nan  # outside the k-NN sample
        runs[run] = {"names": names[order], "real": real, "generated": rng.normal(shift, 1, (30, 4))[order],
                     "recall": rng.normal(shift, 1, 20), "coverage": rng.normal(shift, 1, 20),
                     **{key: value[order] for key, value in values.items()}}  # fmt: skip
        folder = RunPaths(tmp_path / "runs" / run).eval
        folder.mkdir(parents=True)
        np.savez(folder / PER_IMAGE_FILE, **runs[run])
    evaluation = SimpleNamespace(bootstrap=200, confidence=0.9)
    spec = SimpleNamespace(base=SimpleNamespace(evaluation=evaluation, seed=3))

    def expected(name: str) -> tuple[float, float]:
        a, b = runs["a"], runs["b"]
        if name in ("recall", "coverage"):  # per real image: the same real images in both runs
            paired = a[name] - b[name]
        else:  # per generated image: paired by file name
            paired = a[name][np.argsort(a["names"])] - b[name][np.argsort(b["names"])]
        return metrics.bootstrap_ci(paired, replicates=200, rng=np.random.default_rng([3, 7]), confidence=0.9)

    for name in ("precision", "density", "diversity", "clip_score", "recall", "coverage"):
        interval = difference_interval(name, tmp_path, "a", "b", spec)
        assert interval == pytest.approx(expected(name)), name
        assert interval[1] < 0  # b's values are higher: the difference a − b is negative
    for name in ("fd", "fd_inf", "kd"):
        low, high = difference_interval(name, tmp_path, "a", "b", spec)
        assert low <= high
    assert difference_interval("closed_loop_accuracy", tmp_path, "a", "b", spec) is None  # not kept


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.update(grid={"ranks": [2, 4]}), "grid: unknown key 'ranks'"),
        (lambda s: s["grid"].update(rank=[2, 0]), "grid.rank[1]: Input should be greater than or equal to 1"),
        (lambda s: s["base"]["training"].update(batchsize=2), "base.training: Value error"),
        (lambda s: s["base"].pop("sd"), "base: missing key 'sd'"),
        (lambda s: s.update(metric={"name": "beauty"}), "metric.name:"),
        (lambda s: s["base"].update(diagnoser="resnet:x"), "base.diagnoser 'resnet:x': expected vlm:"),
    ],
)
def test_a_bad_grid_gives_one_message_naming_the_field(tiny, data, change, expected) -> None:
    spec = grid_yaml(tiny, data)
    change(spec)
    with pytest.raises(SkinGenError) as caught:
        parse_grid(spec)
    message = str(caught.value)
    if "Value error" in expected:
        assert "base.training: unknown key 'batchsize'" in message
    else:
        assert expected in message
    assert "\n" not in message


def test_unknown_key_through_the_cli_is_one_line_exit_1(tiny, data, tmp_path, capsys) -> None:
    spec = grid_yaml(tiny, data, ranks=[2])
    assert run_cli(spec, tmp_path / "GRID.yaml", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'ranks'" in err[0] and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_killed_grid_process_resumes_from_its_checkpoint(tiny, data, tmp_path) -> None:
    """`skingen lora grid` in a subprocess, SIGKILLed once its first run has a checkpoint; rerun finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spec = grid_yaml(tiny, data, rank=[2, 4])
    spec["base"]["steps"] = 10
    spec["base"]["training"] = {"checkpoint_every": 3}
    path, out = tmp_path / "GRID.yaml", tmp_path / "grid"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "skingen", "lora", "grid", str(path), "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not any(out.glob("runs/*/train/checkpoint-*/random_states_0.pkl")):
            assert process.poll() is None, "the grid ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    (killed,) = list(out.glob("runs/*/train"))
    assert not (killed / "run.json").exists()
    assert main(["lora", "grid", str(path), "--out", str(out), "--no-progress"]) == 0
    record = json.loads((killed / "run.json").read_text())
    assert record["resumed_from"] is not None and record["steps"] == 10
    with (killed / "loss.csv").open() as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == list(range(1, 11))
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_run_ids_are_stable_and_a_half_written_checkpoint_is_not_resumed(tiny, data, tmp_path) -> None:
    from skingen.experiments.runner import complete_checkpoints

    spec = parse_grid(grid_yaml(tiny, data, rank=[2, 4], train_text_encoder=[False, True]))
    ids = [run.id for run in spec.runs()]
    assert ids == [run.id for run in parse_grid(grid_yaml(tiny, data, rank=[2, 4],
                                                          train_text_encoder=[False, True])).runs()]  # fmt: skip
    assert len(set(ids)) == 4 and ids[0].startswith("rank2_teoff-") and ids[3].startswith("rank4_teon-")
    run = tmp_path / "train"
    for step, names in ((1, ("pytorch_lora_weights.safetensors", "random_states_0.pkl", "custom_checkpoint_0.pkl")),
                        (2, ("pytorch_lora_weights.safetensors", "optimizer.bin"))):  # fmt: skip
        (run / f"checkpoint-{step}").mkdir(parents=True)
        for name in names:
            (run / f"checkpoint-{step}" / name).write_bytes(b"")
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-1"]
    assert not (run / "checkpoint-2").exists()
