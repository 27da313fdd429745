"""``skingen lora train`` on a tiny SD model and a fabricated prepared image set (CPU, offline, few steps)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from skingen.cli import main
from skingen.errors import SkinGenError
from skingen.sources import file_sha256
from tests.lora_data import ROWS, SMALL, write_data
from tests.skingen_fixtures import TinyModels

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")


def train_cli(tiny: TinyModels, lora_data: Path, out: Path, *flags: str) -> int:
    return main(
        ["lora", "train", "--data", str(lora_data), "--sd", str(tiny.sd), "--out", str(out), *SMALL, *flags]
    )


# The uninterrupted reference run: UNet + text encoder, alpha ≠ rank, every augmentation and loss option.
RUN_A = [
    "--steps", "6", "--batch-size", "2", "--rank", "4", "--alpha", "8", "--lr", "1e-3", "--train-text-encoder",
    "--random-flip", "--snr-gamma", "5", "--noise-offset", "0.05", "--lr-scheduler", "cosine",
    "--lr-warmup-steps", "1", "--trigger", "sks", "--seed", "3", "--ema-decay", "0.9", "--caption-dropout", "0.25",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_a(tiny: TinyModels, lora_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "A"
    flags = ["--checkpoint-every", "2", "--checkpoints-total-limit", "2", "--validate-every", "3"]
    assert train_cli(tiny, lora_data, out, *RUN_A, *flags) == 0
    return out


def lora_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "pytorch_lora_weights.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = lora_tensors(a), lora_tensors(b)
    assert first.keys() == second.keys() and first
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=1e-6, msg=key)


# --- outputs of a run -----------------------------------------------------------------------------------


def test_run_folder_holds_capped_step_checkpoints_config_losses_and_sheets(
    run_a: Path, lora_data: Path
) -> None:
    assert sorted(p.name for p in run_a.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    for checkpoint in run_a.glob("checkpoint-*"):
        names = {p.name for p in checkpoint.iterdir()}
        assert {
            "pytorch_lora_weights.safetensors",
            "optimizer.bin",
            "custom_checkpoint_0.pkl",
        } <= names  # EMA
        assert not any("model" in name for name in names)  # the save hook kept the full UNet out
    saved = json.loads((run_a / "config.json").read_text())
    from skingen.dataset import load_dataset

    assert saved["data_sha256"] == load_dataset(lora_data).content_hash
    assert (
        saved["config"]["rank"] == 4 and saved["config"]["alpha"] == 8 and saved["config"]["trigger"] == "sks"
    )
    with (run_a / "loss.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    html = (run_a / "loss.html").read_text()
    assert "plotly" in html and "<script src=" not in html  # self-contained
    assert {p.name for p in (run_a / "validation").glob("*.png")} == {"step-3.png", "step-6.png"}
    from PIL import Image

    with Image.open(run_a / "validation" / "step-6.png") as sheet:  # 2 conditions × 3 skin tones × 1 seed
        assert sheet.size == (32, 6 * 32)
    record = json.loads((run_a / "run.json").read_text())
    assert record["lora_sha256"] == file_sha256(run_a / "pytorch_lora_weights.safetensors")
    assert record["data_sha256"] == saved["data_sha256"] and record["steps"] == 6
    assert {"torch", "diffusers", "peft", "accelerate"} <= record["versions"].keys()


def test_lora_which_finds_the_run_of_a_sha(run_a: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = json.loads((run_a / "run.json").read_text())["lora_sha256"]
    assert main(["lora", "which", sha, "--runs", str(run_a.parent)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["run"] == str(run_a)
    assert main(["lora", "which", "0" * 64, "--runs", str(run_a.parent)]) == 1
    assert "no run.json" in capsys.readouterr().err


# --- resume ---------------------------------------------------------------------------------------------


def test_resumed_run_ends_where_the_uninterrupted_one_does(
    run_a: Path, tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "B"
    # No validation in B: validating in A must not have changed what A trained.
    assert train_cli(tiny, lora_data, out, *RUN_A, "--resume", str(run_a / "checkpoint-4")) == 0
    assert_same_weights(run_a, out)
    losses = [r["loss"] for r in csv.DictReader((run_a / "loss.csv").open())]
    assert [r["loss"] for r in csv.DictReader((out / "loss.csv").open())] == losses[4:]


def test_resume_latest_with_grad_accum_mid_epoch(tiny: TinyModels, lora_data: Path, tmp_path: Path) -> None:
    flags = [
        "--steps",
        "3",
        "--batch-size",
        "1",
        "--grad-accum",
        "2",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "1",
    ]
    assert train_cli(tiny, lora_data, tmp_path / "full", *flags) == 0
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "full", resumed)
    for late in ("checkpoint-2", "checkpoint-3", "pytorch_lora_weights.safetensors", "run.json"):
        path = resumed / late
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    # checkpoint-1: half-way through the first epoch (4 images, 2 micro-batches per step)
    assert train_cli(tiny, lora_data, resumed, *flags, "--resume", "latest") == 0
    assert_same_weights(tmp_path / "full", resumed)
    assert [r["step"] for r in csv.DictReader((resumed / "loss.csv").open())] == ["1", "2", "3"]


# --- the weights in plain diffusers and in skingen generate ----------------------------------------------


def test_weights_load_in_plain_diffusers_with_their_alpha_and_change_the_output(
    run_a: Path, tiny: TinyModels
) -> None:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.sd), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)

    def image() -> np.ndarray:
        generator = torch.Generator().manual_seed(0)
        return np.asarray(
            pipe("sks psoriasis", num_inference_steps=2, width=64, height=64, generator=generator).images[0]
        )

    base = image()
    pipe.load_lora_weights(str(run_a), adapter_name="trained")
    assert pipe.unet.peft_config["trained"].lora_alpha == 8 and pipe.unet.peft_config["trained"].r == 4
    assert "trained" in pipe.get_list_adapters()["text_encoder"]
    assert not np.array_equal(image(), base)


def test_skingen_generate_loads_the_trained_lora(run_a: Path, tiny: TinyModels, tmp_path: Path) -> None:
    weights = run_a / "pytorch_lora_weights.safetensors"
    rc = main(
        ["generate", "--sd", str(tiny.sd), "--lora", str(weights), "--prompt", "sks eczema", "--out", str(tmp_path),
         "--steps", "2", "--width", "64", "--height", "64", "--device", "cpu", "--no-cache"]
    )  # fmt: skip
    assert rc == 0
    [record] = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert record["loras"][0]["sha256"] == json.loads((run_a / "run.json").read_text())["lora_sha256"]


# --- training learns ------------------------------------------------------------------------------------


def test_training_lowers_the_objective_on_fixed_noise(
    tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    """The denoising loss on the training images, with the same noise and timesteps, before and after."""
    from diffusers import StableDiffusionPipeline

    from formats.taxonomy import Taxonomy
    from skingen.dataset import load_dataset
    from skingen.prompts import PromptBuilder
    from skingen.training.config import TrainingConfig
    from skingen.training.data import Draw, TrainingImages, collate, training_examples
    from skingen.training.loop import Models, diffusion_loss, train

    config = TrainingConfig(
        data=lora_data, sd=str(tiny.sd), out=tmp_path / "run", steps=16, batch_size=4, lr=1e-2, resolution=32,
        center_crop=True, seed=1, checkpoint_every=100,
    )  # fmt: skip
    train(config, progress=False)

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.sd), safety_checker=None)
    dataset = load_dataset(lora_data)
    examples = training_examples(dataset, PromptBuilder.load(Taxonomy.load()), config)
    images = TrainingImages(dataset, examples, [pipe.tokenizer], config)
    # 8 "epochs" of the 4 images: each image's noise and timestep is drawn from (seed, epoch, image)
    batches = [
        collate([images[Draw(i, epoch, 1 / len(images))] for i in range(len(images))]) for epoch in range(8)
    ]

    def objective() -> float:
        models = Models((pipe.tokenizer,), (pipe.text_encoder,), pipe.vae, pipe.unet, pipe.scheduler)
        with torch.no_grad():
            return float(np.mean([diffusion_loss(models, batch).item() for batch in batches]))

    from diffusers import DDPMScheduler

    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    before = objective()
    pipe.load_lora_weights(str(config.out))
    after = objective()
    assert after < 0.95 * before, (before, after)


# --- errors a user can act on ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr-warmup-steps", "5"], "--lr-warmup-steps needs a scheduler with warmup"),
        (["--steps", "0"], "--steps: must be ≥ 1"),
        (["--resolution", "60"], "--resolution: must be a positive multiple of 8"),
        (["--validation-prompts", "psoriasis"], "--validation-prompts is only used with --validate-every"),
        (["--mixed-precision", "fp8"], "--mixed-precision 'fp8'"),
        (["--validate-every", "2", "--validation-prompts", "dragon pox"], "--validation-prompts: condition"),
    ],
)
def test_bad_flags_give_one_message(
    flags: list[str], message: str, tiny: TinyModels, lora_data: Path, tmp_path: Path, capsys
) -> None:
    assert train_cli(tiny, lora_data, tmp_path / "run", *flags) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not (tmp_path / "run").exists()


def test_missing_data_and_used_out_give_one_message(
    run_a: Path, tiny: TinyModels, lora_data: Path, tmp_path: Path, capsys
) -> None:
    assert train_cli(tiny, tmp_path / "nowhere", tmp_path / "run") == 1
    assert "prepared data not readable" in capsys.readouterr().err
    assert train_cli(tiny, lora_data, run_a, *RUN_A) == 1
    assert "pass --resume latest" in capsys.readouterr().err


def test_resume_with_other_settings_data_or_rank_is_refused(
    run_a: Path, tiny: TinyModels, lora_data: Path, tmp_path: Path, capsys
) -> None:
    def resume(*flags: str, data_dir: Path = lora_data) -> str:
        # the overriding flags come after RUN_A's, so argparse takes them
        assert (
            train_cli(
                tiny, data_dir, tmp_path / "new", *RUN_A, *flags, "--resume", str(run_a / "checkpoint-4")
            )
            == 1
        )
        return capsys.readouterr().err

    assert "--lr: 0.001 → 0.01" in resume("--lr", "1e-2")
    assert "LoRA of rank 4, but this run trains rank 8 (--rank)" in resume("--rank", "8")
    other = write_data(tmp_path / "other", [(*ROWS[0][:2], "another caption"), *ROWS[1:]])
    assert "is not the data that run was trained on" in resume(data_dir=other)
    assert train_cli(tiny, lora_data, tmp_path / "empty", "--resume", "latest") == 1
    assert "no checkpoint-<step> folder" in capsys.readouterr().err


def test_a_wrong_rank_lora_in_a_checkpoint_is_refused(run_a: Path, tiny: TinyModels, tmp_path: Path) -> None:
    from skingen.training.lora import check_rank

    check_rank(run_a / "checkpoint-4" / "pytorch_lora_weights.safetensors", 4, "--resume")
    with pytest.raises(SkinGenError, match="LoRA of rank 4, but this run trains rank 2"):
        check_rank(tiny.lora / "pytorch_lora_weights.safetensors", 2, "--resume")
