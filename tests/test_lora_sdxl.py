"""SDXL: `skingen lora train` and `skingen generate` on a tiny SDXL built from configs (two text encoders,
pooled embedding, added time ids), read back by plain diffusers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skingen.architecture import architecture_of
from skingen.cli import main
from tests.lora_data import SMALL, write_data
from tests.skingen_fixtures import TinyModels, photo

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")

FLAGS = ["--steps", "2", "--batch-size", "2", "--lr", "1e-2", "--train-text-encoder", "--random-flip",
         "--alpha", "8", "--format", "both", "--checkpoint-every", "1", "--seed", "2"]  # fmt: skip


def train(tiny: TinyModels, lora_data: Path, out: Path, *flags: str) -> int:
    return main(
        ["lora", "train", "--data", str(lora_data), "--sd", str(tiny.sdxl), "--out", str(out), *SMALL, *flags]
    )


@pytest.fixture(scope="module")
def run(tiny: TinyModels, lora_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "xl"
    assert train(tiny, lora_data, out, *FLAGS, "--validate-every", "2") == 0
    return out


def test_the_family_is_read_from_model_index(tiny: TinyModels) -> None:
    assert architecture_of(str(tiny.sdxl), "--sd").name == "sdxl"
    assert architecture_of(str(tiny.sd), "--sd").name == "sd"


def test_run_records_sdxl_and_both_text_encoders_are_trained(run: Path) -> None:
    from safetensors.torch import load_file

    record = json.loads((run / "run.json").read_text())
    assert record["architecture"] == "sdxl"
    keys = load_file(str(run / "pytorch_lora_weights.safetensors")).keys()
    assert {key.split(".")[0] for key in keys} == {"unet", "text_encoder", "text_encoder_2"}
    kohya = load_file(str(run / "pytorch_lora_weights_kohya.safetensors")).keys()
    assert {key.split("_")[1] for key in kohya} == {"unet", "te1", "te2"}
    assert (run / "validation" / "step-2.png").is_file()


def test_plain_diffusers_loads_both_files_to_the_same_image(run: Path, tiny: TinyModels) -> None:
    from diffusers import StableDiffusionXLPipeline

    def image(weight_name: str | None) -> np.ndarray:
        pipe = StableDiffusionXLPipeline.from_pretrained(str(tiny.sdxl))
        pipe.set_progress_bar_config(disable=True)
        if weight_name:
            pipe.load_lora_weights(str(run), weight_name=weight_name)
        generator = torch.Generator().manual_seed(0)
        return pipe("psoriasis", num_inference_steps=2, generator=generator, output_type="np").images[0]

    trained = image("pytorch_lora_weights.safetensors")
    np.testing.assert_allclose(image("pytorch_lora_weights_kohya.safetensors"), trained, atol=1e-6)
    assert not np.allclose(image(None), trained, atol=1e-3)


def test_skingen_generate_with_an_sdxl_base_and_its_lora(run: Path, tiny: TinyModels, tmp_path: Path) -> None:
    rc = main(
        ["generate", "--sd", str(tiny.sdxl), "--lora", str(run), "--prompt", "eczema", "--out", str(tmp_path),
         "--steps", "2", "--width", "64", "--height", "64", "--device", "cpu", "--no-cache", "-n", "2"]
    )  # fmt: skip
    assert rc == 0
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(records) == 2 and {r["pipeline"] for r in records} == {"StableDiffusionXLPipeline"}
    assert records[0]["loras"][0]["sha256"] == json.loads((run / "run.json").read_text())["lora_sha256"]


def test_resumed_sdxl_run_ends_where_the_uninterrupted_one_does(
    run: Path, tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    for late in ("checkpoint-2", "pytorch_lora_weights.safetensors", "run.json"):
        path = resumed / late
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert train(tiny, lora_data, resumed, *FLAGS, "--resume", "latest") == 0
    first = load_file(str(run / "pytorch_lora_weights.safetensors"))
    second = load_file(str(resumed / "pytorch_lora_weights.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=1e-6, msg=key)
    assert [r["step"] for r in csv.DictReader((resumed / "loss.csv").open())] == ["1", "2"]


def test_time_ids_name_the_crop_that_was_taken(tmp_path: Path) -> None:
    """A 96×64 image at resolution 32 is resized to 48×32 and cropped at a random left edge; after a flip the
    corner is the crop's left edge in the mirrored image. Checked against the pixels themselves."""
    from formats.taxonomy import Taxonomy
    from skingen.dataset import load_dataset
    from skingen.prompts import PromptBuilder
    from skingen.training.config import TrainingConfig
    from skingen.training.data import Draw, TrainingImages, training_examples
    from tests.tiny_models import clip_tokenizer

    data = write_data(tmp_path / "DATA", [("psoriasis", "II", "plaque")])
    photo(7, 96).resize((96, 64)).save(data / "images" / "0.png")
    config = TrainingConfig(data=data, sd="unused", out=tmp_path / "run", resolution=32, random_flip=True)
    dataset = load_dataset(data)
    examples = training_examples(dataset, PromptBuilder.load(Taxonomy.load()), config)
    images = TrainingImages(dataset, examples, [clip_tokenizer()], config)
    with Image.open(data / "images" / "0.png") as original:
        resized = np.asarray(original.convert("RGB").resize((48, 32), Image.Resampling.BILINEAR))
    corners = set()
    for epoch in range(12):
        item = images[Draw(0, epoch, 1.0)]
        height, width, top, left, target_h, target_w = item["time_ids"].tolist()
        assert (height, width, top, target_h, target_w) == (64, 96, 0, 32, 32)
        pixels = np.round((item["pixel_values"].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        plain_crop = resized[:, int(left) : int(left) + 32]
        mirrored_crop = resized[:, ::-1][:, int(left) : int(left) + 32]
        flipped = np.array_equal(pixels, mirrored_crop)
        assert flipped or np.array_equal(pixels, plain_crop)
        corners.add((left, flipped))
    assert {flipped for _, flipped in corners} == {False, True} and len({left for left, _ in corners}) > 2
