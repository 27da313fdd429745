"""``skingen lora grid`` on a tiny SD model end to end: cells trained per training seed, generation settings
without retraining, the base-model row, the choice on the selection half and its held-out comparisons (checked
against scipy's t intervals), resumption after an interruption, and a bad GRID.yaml (one message naming the
field)."""

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
from tests.lora_data import write_data
from tests.skingen_fixtures import TinyModels

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")
pytest.importorskip("scipy")


def grid_yaml(tiny: TinyModels, data: Path, **grid: object) -> dict:
    return {
        "base": {
            "data": str(data), "sd": str(tiny.sd), "features": str(tiny.clip), "diagnoser": f"clip:{tiny.clip}",
            "steps": 2, "seed": 0, "training_seeds": 2, "resolution": 32, "device": "cpu",
            "training": {"checkpoint_every": 1},
            "evaluation": {"conditions": ["psoriasis", "eczema"], "skin_tones": ["II", "V"], "images_per_cell": 4,
                           "inference_steps": 2, "k": 2, "jackknife_groups": 4, "equal_n_draws": 2,
                           "bootstrap": 50},
        },
        "grid": grid or {"rank": [2, 4]},
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


def test_a_grid_trains_each_cell_per_seed_and_resumes_after_an_interruption(
    tiny, data, tmp_path, monkeypatch
) -> None:
    from skingen.training import loop

    spec, out = grid_yaml(tiny, data, rank=[2, 4], lora_scale=[0.5, 1.0]), tmp_path / "grid"
    # the third training run is interrupted right after its first checkpoint (as a kill would leave it)
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
        calls.setdefault("seeds", []).append(config.seed)
        return real_train(config, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", interrupting)
    monkeypatch.setattr(loop, "train", counting)
    with pytest.raises(KeyboardInterrupt):
        run_cli(spec, tmp_path / "GRID.yaml", out)
    trainings = sorted(out.glob("runs/*/seed*/train"))
    assert len(trainings) == 3 and calls["train"] == 3 and calls["seeds"] == [0, 1, 0]
    finished = [t for t in trainings if (t / "run.json").is_file()]
    (interrupted,) = set(trainings) - set(finished)
    assert [p.name for p in interrupted.glob("checkpoint-*")] == ["checkpoint-1"]
    metrics = sorted(p for t in finished for p in t.parent.glob("eval/*/*/metrics.json"))
    assert len(metrics) == 2 * 2 * 2  # two finished runs × two LoRA scales × two halves
    mtimes = {p: p.stat().st_mtime_ns for p in metrics}

    # rerun: the finished runs are skipped, the interrupted one resumes, the fourth starts fresh; the LoRA
    # scales are generation settings, so no run is trained twice for them
    monkeypatch.setattr(loop, "save_checkpoint", saved)
    calls.update(train=0, resume=[], seeds=[])
    assert run_cli(spec, tmp_path / "GRID.yaml", out) == 0
    assert calls["train"] == 2 and calls["resume"] == ["latest", None]
    assert {p: p.stat().st_mtime_ns for p in metrics} == mtimes
    record = json.loads((interrupted / "run.json").read_text())
    assert record["resumed_from"].endswith("checkpoint-1")

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # 2 ranks × 2 LoRA scales, then the base model (no LoRA) at the one guidance value
    assert [(r["rank"], r["lora_scale"]) for r in rows] == [
        ("2", "0.5"), ("2", "1.0"), ("4", "0.5"), ("4", "1.0"), ("", "")
    ]  # fmt: skip
    for row in rows:
        assert float(row["fd"]) >= 0 and row["closed_loop_accuracy"] != "" and row["fd_inf"] != ""
        assert row["closed_loop_accuracy[I-II]"] != "" and row["fd[V-VI]"] != ""
    for row in rows[:4]:
        assert row["fd_sd"] != ""  # the spread across the two training seeds
    assert rows[4]["fd_sd"] == ""  # the base model has no training seed
    results = json.loads((out / "results.json").read_text())
    best = results["best"]
    assert best["best"] in {r["id"] for r in results["settings"]} and best["chosen_on"] == "selection"
    assert best["vs_base_model"]["against"].startswith("base-model@")
    assert best["vs_base_model"]["test"] == "one-sample t over training seeds"
    assert best["vs_runner_up"]["test"] in {"paired t over training seeds", "Welch t over training seeds"}
    assert "held-out" in best["text"].lower()
    page = (out / "report.html").read_text()
    assert best["best"] in page and page.count("<figcaption>") == 5 and "<script src=" not in page
    assert "Trade-off per skin-tone group" in page
    base_images = sorted((out / "base-model" / "generated").glob("*/*/*.json"))
    assert len(base_images) == 2 * 2 * 4 and not json.loads(base_images[0].read_text())["loras"]
    lora_images = sorted(out.glob("runs/*/seed0/generated/scale0.5_guidance*/heldout/*.json"))
    (lora,) = json.loads(lora_images[0].read_text())["loras"]  # provenance names the run's LoRA and scale
    assert lora["scale"] == 0.5


def test_an_fd_grid_over_subsets_and_guidance(tiny, data, tmp_path) -> None:
    spec = grid_yaml(
        tiny, data, subset=[{"name": "all-train"}, {"name": "light", "skin_tones": ["I-II"]}], guidance=[3, 6]
    )
    spec["metric"] = {"name": "fd"}
    spec["base"]["diagnoser"] = None
    out = tmp_path / "grid"
    assert run_cli(spec, tmp_path / "GRID.yaml", out) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(r["settings"]["subset"], r["settings"]["guidance"]) for r in results["settings"]] == [
        ("all-train", 3), ("all-train", 6), ("light", 3), ("light", 6), (None, 3), (None, 6)
    ]  # fmt: skip
    best = results["best"]
    # the best is compared with the base model at its own guidance
    assert best["vs_base_model"]["against"] == f"base-model@guidance{best['best_settings']['guidance']:g}"
    low, high = best["vs_runner_up"]["ci"]
    assert low <= best["vs_runner_up"]["difference"] <= high
    with (out / "subsets" / "light" / "metadata.csv").open() as handle:
        assert {row["skin_tone"] for row in csv.DictReader(handle)} == {"II"}


def test_seed_differences_match_scipy() -> None:
    """The intervals over training seeds are scipy's one-sample, paired and Welch t intervals."""
    from scipy import stats

    from skingen.experiments.results import seed_difference

    a, b = [0.31, 0.42, 0.37, 0.29], [0.22, 0.35, 0.30, 0.27]
    paired = seed_difference(a, b, paired=True, confidence=0.9)
    reference = stats.ttest_rel(a, b).confidence_interval(0.9)
    assert paired["ci"] == pytest.approx([reference.low, reference.high]) and paired["df"] == 3
    welch = seed_difference(a, b[:3], paired=False, confidence=0.95)
    reference = stats.ttest_ind(a, b[:3], equal_var=False)
    assert welch["ci"] == pytest.approx(list(reference.confidence_interval(0.95)))
    assert welch["df"] == pytest.approx(reference.df)
    one = seed_difference(a, [0.25], paired=False, confidence=0.95)
    reference = stats.ttest_1samp(a, 0.25).confidence_interval(0.95)
    assert one["ci"] == pytest.approx([reference.low - 0.25, reference.high - 0.25])
    assert seed_difference([0.3], [0.2], paired=False, confidence=0.95) is None  # one seed: no interval


def test_the_best_is_chosen_on_the_selection_half_and_compared_on_the_held_out_half(tiny, data) -> None:
    """A setting that wins the selection half by luck is still the choice, and its comparison uses only the
    held-out values — the selection half's lead does not carry over."""
    from skingen.experiments.results import choose

    spec = parse_grid(grid_yaml(tiny, data, rank=[2, 4]))

    def record(cell: str | None, selection: list[float], heldout: list[float]) -> dict:
        spread = {
            "closed_loop_accuracy": {"mean": float(np.mean(selection)), "sd": None, "values": selection}
        }
        held = {"closed_loop_accuracy": {"mean": float(np.mean(heldout)), "sd": None, "values": heldout}}
        settings = {"guidance": spec.base.evaluation.guidance}
        return {"id": f"{cell or 'base-model'}@x", "cell": cell, "base_model": cell is None,
                "settings": settings, "selection": spread, "heldout": held}  # fmt: skip

    records = [record("lucky", [0.9, 0.95], [0.5, 0.52]), record("steady", [0.7, 0.72], [0.7, 0.74]),
               record(None, [0.4], [0.5])]  # fmt: skip
    result = choose(spec, records)
    assert result["best"] == "lucky@x" and result["runner_up"] == "steady@x"
    assert result["best_heldout"] == pytest.approx(0.51)
    assert result["vs_runner_up"]["difference"] == pytest.approx(0.51 - 0.72)
    assert result["vs_runner_up"]["ci"][1] < 0 and result["vs_runner_up"]["distinguishable"]
    assert result["vs_base_model"]["difference"] == pytest.approx(0.01)


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
    spec["base"]["training_seeds"] = 1
    spec["base"]["steps"] = 10
    spec["base"]["training"] = {"checkpoint_every": 3}
    path, out = tmp_path / "GRID.yaml", tmp_path / "grid"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "skingen", "lora", "grid", str(path), "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not any(out.glob("runs/*/seed*/train/checkpoint-*/random_states_0.pkl")):
            assert process.poll() is None, "the grid ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    (killed,) = list(out.glob("runs/*/seed*/train"))
    assert not (killed / "run.json").exists()
    assert main(["lora", "grid", str(path), "--out", str(out), "--no-progress"]) == 0
    record = json.loads((killed / "run.json").read_text())
    assert record["resumed_from"] is not None and record["steps"] == 10
    with (killed / "loss.csv").open() as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == list(range(1, 11))
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3  # two ranks and the base model


def test_run_ids_are_stable_and_a_half_written_checkpoint_is_not_resumed(tiny, data, tmp_path) -> None:
    from skingen.experiments.runner import complete_checkpoints

    spec = parse_grid(grid_yaml(tiny, data, rank=[2, 4], train_text_encoder=[False, True]))
    ids = [cell.id for cell in spec.cells()]
    assert ids == [cell.id for cell in parse_grid(grid_yaml(tiny, data, rank=[2, 4],
                                                            train_text_encoder=[False, True])).cells()]  # fmt: skip
    assert len(set(ids)) == 4 and ids[0].startswith("rank2_teoff-") and ids[3].startswith("rank4_teon-")
    run = tmp_path / "train"
    for step, names in ((1, ("pytorch_lora_weights.safetensors", "random_states_0.pkl", "custom_checkpoint_0.pkl")),
                        (2, ("pytorch_lora_weights.safetensors", "optimizer.bin"))):  # fmt: skip
        (run / f"checkpoint-{step}").mkdir(parents=True)
        for name in names:
            (run / f"checkpoint-{step}" / name).write_bytes(b"")
    assert [p.name for p in complete_checkpoints(run)] == ["checkpoint-1"]
    assert not (run / "checkpoint-2").exists()
