"""`skingen lora train`'s practitioner options on the tiny SD model: kohya files, DoRA, EMA, cached latents,
caption dropout and DataLoader workers — each checked against what it promises, not against itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skingen.cli import main
from skingen.errors import SkinGenError
from tests.lora_data import SMALL
from tests.skingen_fixtures import TinyModels

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")


def train(tiny: TinyModels, lora_data: Path, out: Path, *flags: str) -> Path:
    args = ["lora", "train", "--data", str(lora_data), "--sd", str(tiny.sd), "--out", str(out), *SMALL]
    assert main([*args, "--lr", "1e-2", "--checkpoint-every", "100", *flags]) == 0
    return out


def tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_close_files(a: Path, b: Path, atol: float) -> None:
    first, second = tensors(a), tensors(b)
    assert first.keys() == second.keys() and first
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=atol, msg=key)


def pipeline(tiny: TinyModels):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.sd), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(pipe) -> np.ndarray:
    generator = torch.Generator().manual_seed(0)
    output = pipe(
        "sks psoriasis", num_inference_steps=2, width=64, height=64, generator=generator, output_type="np"
    )
    return output.images[0]


# --- kohya files -------------------------------------------------------------------------------------------


def test_kohya_file_reads_back_in_diffusers_as_the_diffusers_file(
    tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    """alpha 8 ≠ rank 4, UNet and text encoder: diffusers' kohya loader gives the same adapters and image."""
    from peft.utils import get_peft_model_state_dict

    run = train(tiny, lora_data, tmp_path / "run", "--steps", "2", "--rank", "4", "--alpha", "8",
                "--train-text-encoder", "--format", "both")  # fmt: skip
    kohya = tensors(run / "pytorch_lora_weights_kohya.safetensors")
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in kohya)
    downs = [k for k in kohya if k.endswith(".lora_down.weight")]
    assert downs and {k.removesuffix(".lora_down.weight") for k in downs} == {
        k.removesuffix(".alpha") for k in kohya if k.endswith(".alpha")
    }
    assert {float(kohya[k]) for k in kohya if k.endswith(".alpha")} == {8.0}  # the alpha, not the rank
    record = json.loads((run / "run.json").read_text())
    assert set(record["files"]) == {
        "pytorch_lora_weights.safetensors",
        "pytorch_lora_weights_kohya.safetensors",
    }

    pipes = {}
    for name in ("pytorch_lora_weights.safetensors", "pytorch_lora_weights_kohya.safetensors"):
        pipe = pipeline(tiny)
        pipe.load_lora_weights(str(run), weight_name=name, adapter_name="trained")
        pipes[name] = pipe
    diffusers_pipe, kohya_pipe = pipes.values()
    for part in ("unet", "text_encoder"):
        want = get_peft_model_state_dict(getattr(diffusers_pipe, part), adapter_name="trained")
        got = get_peft_model_state_dict(getattr(kohya_pipe, part), adapter_name="trained")
        assert want.keys() == got.keys() and want
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)
    scalings = [
        {n: m.scaling["trained"] for n, m in p.unet.named_modules() if hasattr(m, "scaling")}
        for p in (diffusers_pipe, kohya_pipe)
    ]
    assert scalings[0] == scalings[1] and set(scalings[0].values()) == {2.0}  # alpha / rank
    base = image(pipeline(tiny))
    np.testing.assert_allclose(image(kohya_pipe), image(diffusers_pipe), atol=1e-6)
    assert not np.allclose(image(kohya_pipe), base, atol=1e-3)


def test_kohya_with_dora_is_refused(tiny: TinyModels, lora_data: Path, tmp_path: Path, capsys) -> None:
    args = [
        "lora",
        "train",
        "--data",
        str(lora_data),
        "--sd",
        str(tiny.sd),
        "--out",
        str(tmp_path / "r"),
        *SMALL,
    ]
    assert main([*args, "--dora", "--format", "kohya"]) == 1
    assert "--format kohya with --dora" in capsys.readouterr().err


# --- DoRA ----------------------------------------------------------------------------------------------------


def test_dora_trains_magnitudes_that_plain_diffusers_loads(
    tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    run = train(tiny, lora_data, tmp_path / "dora", "--steps", "2", "--dora")
    magnitudes = {
        k: v for k, v in tensors(run / "pytorch_lora_weights.safetensors").items() if "magnitude" in k
    }
    assert magnitudes
    pipe = pipeline(tiny)
    base = image(pipe)
    pipe.load_lora_weights(str(run), adapter_name="trained")
    assert pipe.unet.peft_config["trained"].use_dora
    loaded = dict(pipe.unet.named_parameters())
    for key, value in magnitudes.items():  # the trained magnitude, not the norm peft initialises it to
        name = key.removeprefix("unet.").replace(
            "lora_magnitude_vector", "lora_magnitude_vector.trained.weight"
        )
        name = name.removesuffix(".weight.weight") + ".weight" if name.endswith(".weight.weight") else name
        torch.testing.assert_close(loaded[name], value, msg=key)
    assert not np.allclose(image(pipe), base, atol=1e-3)


# --- EMA -----------------------------------------------------------------------------------------------------


def test_ema_final_weights_follow_diffusers_decay_schedule(
    tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    """Checkpoints hold the live weights w_n; the saved file is e_n = d_n e_(n-1) + (1 - d_n) w_n with
    d_n = min(decay, n / (9 + n)) (EMAModel's schedule: 0 at n = 1, so e_1 = w_1)."""
    decay = 0.2
    run = train(tiny, lora_data, tmp_path / "ema", "--steps", "4", "--batch-size", "2", "--checkpoint-every", "1",
                "--ema-decay", str(decay))  # fmt: skip
    live = [tensors(run / f"checkpoint-{n}" / "pytorch_lora_weights.safetensors") for n in range(1, 5)]
    ema = dict(live[0])
    for n, weights in enumerate(live[1:], start=2):
        d = min(decay, n / (9 + n))
        ema = {k: d * ema[k] + (1 - d) * weights[k] for k in ema}
    final = tensors(run / "pytorch_lora_weights.safetensors")
    assert final.keys() == ema.keys()
    for key in final:
        torch.testing.assert_close(final[key], ema[key], rtol=1e-5, atol=1e-7, msg=key)
    assert any(not torch.equal(final[k], live[-1][k]) for k in final)


# --- cached latents, workers ------------------------------------------------------------------------------


def test_cached_latents_and_workers_train_what_the_plain_loader_trains(
    tiny: TinyModels, lora_data: Path, tmp_path: Path
) -> None:
    flags = ["--steps", "3", "--batch-size", "2", "--center-crop", "--random-flip", "--seed", "4"]
    plain = train(tiny, lora_data, tmp_path / "plain", *flags)
    workers = train(tiny, lora_data, tmp_path / "workers", *flags, "--dataloader-workers", "2")
    cached = train(tiny, lora_data, tmp_path / "cached", *flags, "--cache-latents")
    weights = "pytorch_lora_weights.safetensors"
    assert_close_files(plain / weights, workers / weights, atol=0)  # the same computation
    # VAE in batches of 1 instead of 2: float rounding, which Adam can turn into ≤ lr-sized steps in
    # near-zero gradients (1e-3 is a tenth of one step at --lr 1e-2)
    assert_close_files(plain / weights, cached / weights, atol=1e-3)


def test_cached_latents_need_a_centre_crop(tiny: TinyModels, lora_data: Path, tmp_path: Path) -> None:
    from skingen.training.config import TrainingConfig

    with pytest.raises(SkinGenError, match="--cache-latents needs --center-crop"):
        TrainingConfig(data=lora_data, sd=str(tiny.sd), out=tmp_path, cache_latents=True)


# --- caption dropout -------------------------------------------------------------------------------------


def test_caption_dropout_empties_that_share_of_captions_reproducibly(lora_data: Path) -> None:
    from formats.taxonomy import Taxonomy
    from skingen.dataset import load_dataset
    from skingen.prompts import PromptBuilder
    from skingen.training.config import TrainingConfig
    from skingen.training.data import Draw, TrainingImages, training_examples
    from tests.tiny_models import clip_tokenizer

    config = TrainingConfig(
        data=lora_data, sd="unused", out=Path("unused"), resolution=32, caption_dropout=0.3
    )
    dataset = load_dataset(lora_data)
    tokenizer = clip_tokenizer()
    images = TrainingImages(dataset, training_examples(dataset, PromptBuilder.load(Taxonomy.load()), config),
                            [tokenizer], config)  # fmt: skip
    empty = tokenizer("", padding="max_length", max_length=77, return_tensors="pt").input_ids[0]
    draws = [Draw(index, epoch, 1.0) for epoch in range(250) for index in range(len(images))]
    dropped = [bool(torch.equal(images[d]["input_ids"][0], empty)) for d in draws]
    # 1,000 Bernoulli(0.3) draws: 99.9 % of the time within 0.3 ± 3.3·sqrt(0.3·0.7/1000) = 0.3 ± 0.048
    assert abs(np.mean(dropped) - 0.3) < 0.048
    assert dropped[:40] == [bool(torch.equal(images[d]["input_ids"][0], empty)) for d in draws[:40]]
