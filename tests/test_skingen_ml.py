"""skingen with real diffusers/transformers code paths on tiny models built from configs (CPU, offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from formats.bundle import load_bundle
from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.cli import main
from skingen.diagnosis.reading import read_diagnosis
from skingen.errors import SkinGenError
from skingen.generation import LoraSpec, ReferenceGenerator
from skingen.provenance import ImageCache
from skingen.sources import file_sha256
from tests.skingen_fixtures import TinyModels, photo, write_cases

pytestmark = pytest.mark.ml
torch = pytest.importorskip("torch")

SIZE = {"steps": 3, "width": 64, "height": 64}
CLI_SIZE = ["--steps", "2", "--width", "64", "--height", "64", "--device", "cpu"]


def pixels(image: object) -> np.ndarray:
    return np.asarray(image)


def _generator(models: TinyModels, **kwargs: object) -> ReferenceGenerator:
    return ReferenceGenerator.from_pretrained(str(models.sd), device="cpu", **kwargs)


# --- generation -----------------------------------------------------------------------------------------


def test_same_seed_same_pixels_other_seed_other_pixels(tiny: TinyModels) -> None:
    generator = _generator(tiny)
    first, second = generator("a red scaly plaque", seeds=[1, 2], **SIZE)
    [again] = generator("a red scaly plaque", seeds=[1], **SIZE)
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(second.image))
    assert first.image.size == (64, 64) and first.record.seed == 1


def test_requests_with_different_prompts_share_one_call_and_match_alone(tiny: TinyModels) -> None:
    from skingen.generation import Request

    generator = _generator(tiny)
    calls = []
    generate = generator.generate
    generator.generate = lambda requests, seeds: calls.append(len(seeds)) or generate(requests, seeds)
    requests = [
        Request(prompt, "", 3, 7.5, 64, 64, None, None, None, 1.0) for prompt in ("acne", "psoriasis")
    ]
    together = generator.run(requests, [5, 6], batch_size=4)
    alone = [
        generator(request.prompt, seeds=[seed], **SIZE)[0]
        for request, seed in zip(requests, [5, 6], strict=True)
    ]
    assert calls == [2, 1, 1]  # one call for both, then one each
    for batched, single in zip(together, alone, strict=True):
        assert batched.record == single.record
        # batched matrix products may round differently in the last bit: at most 2/255 per pixel
        assert np.abs(pixels(batched.image).astype(int) - pixels(single.image).astype(int)).max() <= 2


def test_lora_changes_output_and_scale_zero_restores_base(tiny: TinyModels) -> None:
    def image(**kwargs: object) -> np.ndarray:
        return pixels(_generator(tiny, **kwargs)("acne on the face", seeds=[3], **SIZE)[0].image)

    base = image()
    assert not np.array_equal(image(loras=[LoraSpec(tiny.lora, 1.0)]), base)
    assert np.array_equal(image(loras=[LoraSpec(tiny.lora, 0.0)]), base)


def test_generate_equals_plain_diffusers(tiny: TinyModels) -> None:
    from diffusers import StableDiffusionPipeline

    prompt, negative, seed, scale = "psoriasis on the elbow", "blurry", 7, 0.7
    ours = _generator(tiny, loras=[LoraSpec(tiny.lora / "pytorch_lora_weights.safetensors", scale)])
    [result] = ours(prompt, negative, seeds=[seed], steps=4, guidance=6.0, width=64, height=64)

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.sd), safety_checker=None)
    pipe.load_lora_weights(str(tiny.lora), adapter_name="skin")
    pipe.set_adapters(["skin"], [scale])
    pipe.set_progress_bar_config(disable=True)
    plain = pipe(
        prompt, negative_prompt=negative, num_inference_steps=4, guidance_scale=6.0, width=64, height=64,
        generator=torch.Generator().manual_seed(seed),
    ).images[0]  # fmt: skip
    assert np.array_equal(pixels(result.image), pixels(plain))


def test_provenance_record_and_cache_hits(tiny: TinyModels, tmp_path: Path) -> None:
    generator = _generator(
        tiny, loras=[LoraSpec(tiny.lora, 0.5)], scheduler="euler", cache=ImageCache(tmp_path)
    )
    [first] = generator("vitiligo on the hands", "text", seeds=[5], **SIZE)
    record = first.record
    assert not first.cached
    assert record.loras[0].sha256 == file_sha256(tiny.lora / "pytorch_lora_weights.safetensors")
    assert record.loras[0].scale == 0.5 and record.scheduler == "EulerDiscreteScheduler"
    assert (record.prompt, record.negative_prompt, record.seed, record.steps) == (
        "vitiligo on the hands",
        "text",
        5,
        3,
    )
    assert (record.width, record.height, record.dtype, record.device) == (64, 64, "float32", "cpu")
    assert record.versions["diffusers"] and record.versions["torch"]

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached image was generated again")

    generator.generate = fail
    [second] = generator("vitiligo on the hands", "text", seeds=[5], **SIZE)
    assert second.cached and np.array_equal(pixels(second.image), pixels(first.image))


def test_ip_adapter_conditions_on_the_patient_photo(tiny: TinyModels) -> None:
    base = _generator(tiny)("eczema", seeds=[1], **SIZE)[0]
    generator = _generator(tiny, ip_adapter=tiny.ip_adapter, ip_adapter_scale=0.8)
    [one] = generator("eczema", seeds=[1], ip_adapter_image=photo(1), **SIZE)
    [other] = generator("eczema", seeds=[1], ip_adapter_image=photo(2), **SIZE)
    assert not np.array_equal(pixels(one.image), pixels(base.image))
    assert not np.array_equal(pixels(one.image), pixels(other.image))
    assert (
        one.record.ip_adapter.scale == 0.8
        and one.record.ip_adapter_image_sha256 != other.record.ip_adapter_image_sha256
    )
    with pytest.raises(SkinGenError, match="ip_adapter_image"):
        generator("eczema", seeds=[1], **SIZE)


def test_inpainting_with_mask(tiny: TinyModels) -> None:
    from PIL import Image

    generator = ReferenceGenerator.from_pretrained(str(tiny.inpaint), inpaint=True, device="cpu")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    [a] = generator("tinea", seeds=[2], image=photo(4), mask_image=mask, **SIZE)
    [b] = generator("tinea", seeds=[2], image=photo(4), mask_image=mask, **SIZE)
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert a.record.pipeline == "StableDiffusionInpaintPipeline" and a.record.mask_sha256
    with pytest.raises(SkinGenError, match="mask_image"):
        generator("tinea", seeds=[2], **SIZE)


def test_lora_for_another_base_is_rejected_naming_both(tiny: TinyModels) -> None:
    with pytest.raises(
        SkinGenError, match=rf"LoRA {tiny.lora_other_base}.* does not fit the base model {tiny.sd}"
    ):
        _generator(tiny, loras=[LoraSpec(tiny.lora_other_base)])


def test_stub_tokenizer_is_rejected(tiny: TinyModels, tmp_path: Path) -> None:
    """A failed hub download can leave a 2-token tokenizer that loads without error (tiny-models.md)."""
    model = tmp_path / "sd"
    shutil.copytree(tiny.sd, model)
    path = model / "tokenizer" / "tokenizer.json"
    data = json.loads(path.read_text())
    data["model"]["vocab"] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    data["model"]["merges"] = []
    path.write_text(json.dumps(data))
    with pytest.raises(SkinGenError, match=rf"{model}: its tokenizer has only 2 tokens"):
        ReferenceGenerator.from_pretrained(str(model), device="cpu")


def test_device_and_dtype_choice() -> None:
    from skingen.devices import resolve_device, resolve_dtype

    assert resolve_dtype("cuda") == torch.float16 and resolve_dtype("cpu") == torch.float32
    assert resolve_dtype("cuda", "float32") == torch.float32
    with pytest.raises(SkinGenError, match="--dtype 'float8'"):
        resolve_dtype("cpu", "float8")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(SkinGenError, match="--device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device() in {"cpu", "mps"}
        with pytest.raises(SkinGenError, match="--device 'cuda': not available"):
            resolve_device("cuda")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"steps": 0}, "steps"),
        ({"width": 60}, "width"),
        ({"seeds": []}, "seeds"),
        ({"guidance": -1}, "guidance"),
    ],
)
def test_check_inputs_names_the_argument(tiny: TinyModels, kwargs: dict, argument: str) -> None:
    arguments = {**SIZE, "seeds": [0], **kwargs}
    with pytest.raises(SkinGenError, match=f"^{argument}"):
        _generator(tiny)("x", **arguments)


# --- diagnosis ------------------------------------------------------------------------------------------


def test_clip_zero_shot_backend(tiny: TinyModels) -> None:
    from skingen.diagnosis.clip import ClipDiagnoser

    taxonomy = Taxonomy.load()
    diagnoser = ClipDiagnoser(str(tiny.clip), taxonomy, top_k=3, device="cpu")
    diagnosis = diagnoser.diagnose(photo(0))
    assert diagnosis.condition in taxonomy and diagnosis.condition == diagnosis.differential[0][0]
    assert len(diagnosis.differential) == 3 and diagnosis.differential[0][1] >= diagnosis.differential[1][1]
    assert sum(json.loads(diagnosis.raw_output).values()) == pytest.approx(1.0, abs=1e-4)
    assert diagnoser.diagnose(photo(0)) == diagnosis


def test_vlm_backend_generates_and_maps_text(tiny: TinyModels) -> None:
    from skingen.diagnosis.vlm import VlmDiagnoser

    taxonomy = Taxonomy.load()
    diagnoser = VlmDiagnoser(str(tiny.llava), taxonomy, max_new_tokens=12, device="cpu")
    diagnosis = diagnoser.diagnose(photo(0))
    assert diagnosis.raw_output and diagnosis.model_id == str(tiny.llava)
    assert diagnosis.condition == read_diagnosis(diagnosis.raw_output, taxonomy).condition
    assert diagnoser.diagnose(photo(0)) == diagnosis  # greedy decoding: deterministic
    history = [(diagnoser.question, diagnosis.raw_output)]
    follow_up = diagnoser.ask(photo(0), "is it red", history)  # the photo and the earlier turn in context
    assert isinstance(follow_up, str) and follow_up == diagnoser.ask(photo(0), "is it red", history)


# --- CLI ------------------------------------------------------------------------------------------------


def test_cli_generate_writes_pngs_with_provenance_and_reuses_cache(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate", "--sd", str(tiny.sd), "--lora", str(tiny.lora), "--lora-scale", "0.8", "--diagnosis",
        "plaque psoriasis", "--skin-tone", "V", "--trigger", "sks", "-n", "2", "--seed", "10",
        "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), *CLI_SIZE,
    ]  # fmt: skip
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["cached"] for line in lines] == [False, False]
    record = json.loads(Path(lines[0]["provenance"]).read_text())
    assert (
        record["prompt"].startswith("sks ")
        and "psoriasis" in record["prompt"]
        and "type V" in record["prompt"]
    )
    assert record["seed"] == 10 and record["loras"][0]["scale"] == 0.8 and record["negative_prompt"]
    assert Path(lines[0]["image"]).is_file() and Path(lines[1]["image"]).name.startswith("psoriasis_seed11")
    assert main(args) == 0
    assert [json.loads(line)["cached"] for line in capsys.readouterr().out.splitlines()] == [True, True]


def test_cli_generate_prompt_used_as_is_with_ip_adapter(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = tmp_path / "patient.png"
    photo(9).save(patient)
    args = [
        "generate", "--sd", str(tiny.sd), "--prompt", "my exact prompt", "--ip-adapter", str(tiny.ip_adapter),
        "--image", str(patient), "--no-cache", "--out", str(tmp_path / "out"), *CLI_SIZE,
    ]  # fmt: skip
    assert main(args) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    record = json.loads(Path(line["provenance"]).read_text())
    assert record["prompt"] == "my exact prompt" and record["negative_prompt"] == ""
    assert record["ip_adapter"]["sha256"] == file_sha256(tiny.ip_adapter)


def test_cli_generate_inpaints_with_mask(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    patient, mask = tmp_path / "patient.png", tmp_path / "mask.png"
    photo(3).save(patient)
    Image.new("L", (64, 64), 255).save(mask)
    args = [
        "generate",
        "--sd",
        str(tiny.inpaint),
        "--image",
        str(patient),
        "--mask",
        str(mask),
        "--diagnosis",
        "tinea",
    ]
    assert main([*args, "--strength", "0.9", "--no-cache", "--out", str(tmp_path / "out"), *CLI_SIZE]) == 0
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    record = json.loads(Path(line["provenance"]).read_text())
    assert record["pipeline"] == "StableDiffusionInpaintPipeline" and record["strength"] == 0.9
    assert record["mask_sha256"] and record["init_image_sha256"]


def test_cli_diagnose_prints_json_per_image(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = []
    for index in range(2):
        images.append(tmp_path / f"img{index}.png")
        photo(index).save(images[-1])
    assert main(["diagnose", *map(str, images), "--clip", str(tiny.clip), "--device", "cpu"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == list(map(str, images))
    assert all(line["condition"] in Taxonomy.load() and line["differential"] for line in lines)
    assert main(["diagnose", str(images[0]), "--vlm", str(tiny.llava), "--max-new-tokens", "8"]) == 0
    assert "raw_output" in json.loads(capsys.readouterr().out)


def test_cli_lora_mismatch_and_offline_hub_id(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = [
        "generate",
        "--sd",
        str(tiny.sd),
        "--lora",
        str(tiny.lora_other_base),
        "--prompt",
        "x",
        "--out",
        str(out),
    ]
    assert main([*args, *CLI_SIZE]) == 1
    err = capsys.readouterr().err
    assert f"LoRA {tiny.lora_other_base}" in err and f"base model {tiny.sd}" in err and "size mismatch" in err
    assert not out.exists()
    assert main(["diagnose", str(tiny.sd.parent / "none.png"), "--vlm", "nobody/no-vlm"]) == 1
    assert "not found" in capsys.readouterr().err
    image = tmp_path / "i.png"
    photo().save(image)
    assert main(["diagnose", str(image), "--vlm", "nobody/no-vlm"]) == 1
    assert "'nobody/no-vlm'" in capsys.readouterr().err


# --- bundle ---------------------------------------------------------------------------------------------


def test_bundle_build_end_to_end(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = write_cases(
        tmp_path / "cases",
        [
            {"case_id": "c1", "file": "c1.png", "ground_truth": "psoriasis", "ai_condition": "",
             "skin_tone": "II"},
            {"case_id": "c2", "file": "c2.png", "ground_truth": "psoriasis", "ai_condition": "eczema",
             "skin_tone": ""},  # a planted wrong AI output
            {"case_id": "c3", "file": "c3.png", "ground_truth": "acne", "ai_condition": "unknown",
             "skin_tone": ""},
        ],
    )  # fmt: skip
    out = tmp_path / "bundle"
    args = [
        "bundle", "build", str(cases), "--out", str(out), "--clip", str(tiny.clip), "--sd", str(tiny.sd),
        "--lora", str(tiny.lora), "-k", "2", "--version", "2026.1", "--cache", str(tmp_path / "cache"),
        *CLI_SIZE,
    ]  # fmt: skip
    assert main(args) == 0
    bundle = load_bundle(out)
    manifest = bundle.manifest
    assert manifest.bundle_id == "bundle" and manifest.version == "2026.1" and manifest.generator["k"] == 2
    assert manifest.generator["base"] == "sd"  # the base model's family (SDXL: "sdxl")
    c1, c2, c3 = manifest.cases
    assert (
        c1.ai.model_id == str(tiny.clip) and c1.ai.skin_condition in Taxonomy.load() and c1.skin_tone == "II"
    )
    assert c2.ai.skin_condition == "eczema" and not c2.ai_correct and c2.ai.text.endswith("Eczema.")
    assert c3.ai.skin_condition == UNKNOWN and c3.references == ()
    assert (
        len(c2.references) == 2
        and c2.references[0].caption == "Generated example of eczema — not the patient"
    )
    provenance = json.loads(bundle.path(c2.references[1].provenance).read_text())
    assert provenance["seed"] == 1 and provenance["loras"][0]["sha256"]
    assert "knee" in provenance["prompt"]  # eczema's second body site
    assert main(["bundle", "validate", str(out)]) == 0
    assert '"cases": 3' in capsys.readouterr().out

    # An existing bundle is kept unless --overwrite; a failing rebuild leaves the old one intact.
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    bad = [*args, "--overwrite", "--lora", str(tiny.lora_other_base)]
    assert main(bad) == 1 and "does not fit" in capsys.readouterr().err
    assert load_bundle(out).content_hash == bundle.content_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "cache", "cases"]


def test_bundle_build_failure_leaves_nothing(
    tiny: TinyModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = write_cases(tmp_path / "cases", [{"case_id": "c1", "file": "c1.png", "ground_truth": "acne"}])
    diagnoses = tmp_path / "diagnoses.csv"
    diagnoses.write_text("case_id,condition\nother,acne\n")  # no row for c1: fails mid-build
    out = tmp_path / "bundle"
    args = [
        "bundle",
        "build",
        str(cases),
        "--out",
        str(out),
        "--diagnoses",
        str(diagnoses),
        "--sd",
        str(tiny.sd),
    ]
    assert main([*args, "-k", "1", "--no-cache", *CLI_SIZE]) == 1
    assert "'c1' has no row" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases", "diagnoses.csv"]


# --- bench scripts --------------------------------------------------------------------------------------


def test_gpu_throughput_script_runs_tiny_on_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_generate_gpu

    out = tmp_path / "rows.json"
    assert bench_generate_gpu.main(["--tiny", "--steps", "2", "--batch-sizes", "1", "--json", str(out)]) == 0
    [row] = json.loads(out.read_text())
    assert row["batch_size"] == 1 and row["identical"] and row["ours_images_per_s"] > 0
