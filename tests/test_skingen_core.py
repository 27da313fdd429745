"""skingen parts that need no torch: taxonomy mapping, prompts, provenance, cache, cases, CLI basics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from formats.errors import FormatError
from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.bundle.builder import read_cases
from skingen.cli import main
from skingen.diagnosis.base import Diagnosis
from skingen.diagnosis.fixed import FixedDiagnoser
from skingen.diagnosis.vlm import parse_answer
from skingen.errors import SkinGenError
from skingen.prompts import PromptBuilder
from skingen.provenance import ImageCache, ProvenanceRecord, save_image
from skingen.sources import load_image, resolve_model
from tests.skingen_fixtures import photo, write_cases

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.load()


# --- taxonomy -------------------------------------------------------------------------------------------


def test_taxonomy_covers_common_dataset_classes(taxonomy: Taxonomy) -> None:
    expected = {
        "eczema", "psoriasis", "acne", "melanoma", "basal_cell_carcinoma", "nevus", "urticaria", "tinea",
        "vitiligo", "seborrheic_keratosis",
    }  # fmt: skip
    assert expected <= set(taxonomy.ids)
    for condition in taxonomy:
        assert (
            condition.display_name and condition.description and condition.morphology and condition.synonyms
        )


# Free text → taxonomy id: tests/test_diagnosis_reading.py and its written sentences.


def test_vlm_answer_parsing_uses_sections(taxonomy: Taxonomy) -> None:
    answer = (
        "Diagnosis: plaque psoriasis\nDifferential: eczema, tinea corporis\n"
        "Reasoning: silvery scale on the elbow; not melanoma."
    )
    diagnosis = parse_answer(answer, taxonomy, "tiny-vlm")
    assert diagnosis.condition == "psoriasis"
    assert [c for c, _ in diagnosis.differential] == ["psoriasis", "eczema", "tinea"]
    assert sum(s for _, s in diagnosis.differential) == pytest.approx(1.0)
    assert diagnosis.rationale == "silvery scale on the elbow; not melanoma."
    assert diagnosis.raw_output == answer and diagnosis.model_id == "tiny-vlm"


def test_vlm_answer_naming_nothing_is_unknown_not_a_guess(taxonomy: Taxonomy) -> None:
    diagnosis = parse_answer("Diagnosis: a skin lesion of uncertain type.", taxonomy, "m")
    assert diagnosis.condition == UNKNOWN and diagnosis.differential == ()
    ai = diagnosis.ai_output()
    assert ai.skin_condition == UNKNOWN and "could not" in ai.text


# --- prompts --------------------------------------------------------------------------------------------


def test_prompts_vary_skin_tone_site_severity_and_trigger(taxonomy: Taxonomy) -> None:
    builder = PromptBuilder.load(taxonomy)
    prompt = builder.build("psoriasis", skin_tone="VI", body_site="scalp", severity="severe", trigger="sks")
    assert prompt.prompt.startswith("sks ")
    assert "psoriasis" in prompt.prompt and "scalp" in prompt.prompt and "type VI" in prompt.prompt
    assert "severe" in prompt.prompt and prompt.negative_prompt
    default = builder.build("psoriasis")
    assert "type III" in default.prompt and not default.prompt.startswith("sks")
    sites = [p.body_site for p in builder.variations("psoriasis", 5)]
    assert sites == ["elbow", "knee", "scalp", "lower back", "elbow"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"skin_tone": "VII"}, "skin_tone"), ({"severity": "awful"}, "severity")],
)
def test_prompt_options_are_checked(taxonomy: Taxonomy, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(SkinGenError, match=message):
        PromptBuilder.load(taxonomy).build("acne", **kwargs)
    with pytest.raises(SkinGenError, match="unknown"):
        PromptBuilder.load(taxonomy).build(UNKNOWN)


# --- provenance and cache -------------------------------------------------------------------------------


def _record(**changes: object) -> ProvenanceRecord:
    fields = dict(
        model="m", model_fingerprint="f", pipeline="StableDiffusionPipeline", prompt="p", negative_prompt="",
        seed=1, steps=4, guidance=7.5, scheduler="DDIMScheduler", width=64, height=64, device="cpu",
        dtype="float32", versions={"diffusers": "x"},
    )  # fmt: skip
    fields.update(changes)
    return ProvenanceRecord(**fields)


def test_provenance_key_changes_with_every_input() -> None:
    base = _record()
    assert base.key() == _record().key()
    for change in ({"seed": 2}, {"prompt": "q"}, {"steps": 5}, {"versions": {"diffusers": "y"}}):
        assert _record(**change).key() != base.key(), change


def test_cache_round_trip_and_provenance_beside_image(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache")
    record = _record()
    assert cache.get(record) is None
    cache.put(photo(1), record)
    assert np.array_equal(np.asarray(cache.get(record)), np.asarray(photo(1)))
    json_path = save_image(photo(1), record, tmp_path / "out" / "a.png")
    data = json.loads(json_path.read_text())
    assert data["key"] == record.key() and data["seed"] == 1 and "created_at" in data


# --- inputs ---------------------------------------------------------------------------------------------


def test_missing_model_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(SkinGenError, match=r"model path not found: .*nope"):
        resolve_model(str(tmp_path / "nope"), "Stable Diffusion model")


def test_hub_id_while_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(SkinGenError, match=r"'someone/some-model'.*HF_HUB_OFFLINE"):
        resolve_model("someone/some-model", "VLM")


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(SkinGenError, match=r"not a readable image: .*bad\.png"):
        load_image(bad)
    with pytest.raises(SkinGenError, match=r"not found: .*missing\.png"):
        load_image(tmp_path / "missing.png")


def test_manifest_diagnoser_reads_fixed_and_rejects_unknown_names(taxonomy: Taxonomy, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("case_id,condition,rationale\nc1,Psoriasis,silvery plaques\nc2,unknown,\n")
    diagnoser = FixedDiagnoser(good, taxonomy)
    first = diagnoser.diagnose(photo(), "c1")
    assert (first.condition, first.rationale, first.model_id) == ("psoriasis", "silvery plaques", "fixed")
    assert diagnoser.diagnose(photo(), "c2").condition == UNKNOWN
    with pytest.raises(SkinGenError, match="'c3'"):
        diagnoser.diagnose(photo(), "c3")
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,condition\nc1,space measles\n")
    # The taxonomy's own error (formats.taxonomy.TaxonomyError): a FormatError, the base the CLI reports
    with pytest.raises(FormatError, match=r"bad\.csv, line 2: condition 'space measles'"):
        FixedDiagnoser(bad, taxonomy)


def test_read_cases_with_fixed_wrong_ai(taxonomy: Taxonomy, tmp_path: Path) -> None:
    root = write_cases(
        tmp_path / "cases",
        [
            {"case_id": "c1", "file": "c1.png", "ground_truth": "psoriasis", "ai_condition": "eczema",
             "ai_text": "Probably eczema.", "ai_rationale": "itchy", "skin_tone": "V"},
            {"case_id": "c2", "file": "c2.png", "ground_truth": "acne", "ai_condition": "", "ai_text": "",
             "ai_rationale": "", "skin_tone": ""},
        ],
    )  # fmt: skip
    first, second = read_cases(root, taxonomy)
    assert first.fixed_ai is not None and first.fixed_ai.skin_condition == "eczema"
    assert first.fixed_ai.text == "Probably eczema." and first.skin_tone == "V"
    assert second.fixed_ai is None and second.skin_tone is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"case_id": "c 1", "file": "c1.png", "ground_truth": "acne"}, "case_id 'c 1'"),
        ({"case_id": "c1", "file": "c1.png", "ground_truth": "space measles"}, "condition 'space measles'"),
        ({"case_id": "c1", "file": "c1.png", "ground_truth": "acne", "skin_tone": "VII"}, "skin_tone 'VII'"),
    ],
)
def test_read_cases_names_the_bad_row(taxonomy: Taxonomy, tmp_path: Path, row: dict, message: str) -> None:
    root = write_cases(tmp_path / "cases", [row])
    with pytest.raises(FormatError, match=rf"cases\.csv, line 2: {message}"):  # SkinGenError or TaxonomyError
        read_cases(root, taxonomy)


def test_read_cases_missing_or_unreadable_photo(taxonomy: Taxonomy, tmp_path: Path) -> None:
    root = write_cases(tmp_path / "cases", [{"case_id": "c1", "file": "c1.png", "ground_truth": "acne"}])
    (root / "c1.png").write_bytes(b"garbage")
    with pytest.raises(SkinGenError, match=r"line 2: case photo is not a readable image: .*c1\.png"):
        read_cases(root, taxonomy)
    (root / "c1.png").unlink()
    with pytest.raises(SkinGenError, match=r"c1\.png"):
        read_cases(root, taxonomy)
    with pytest.raises(SkinGenError, match=r"cases file not readable: .*elsewhere"):
        read_cases(tmp_path / "elsewhere", taxonomy)


def test_existing_bundle_output_needs_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    assert main(["bundle", "build", str(tmp_path), "--out", str(out), "--sd", "x"]) == 1
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == "{}"


def test_diagnosis_to_ai_output_sentence(taxonomy: Taxonomy) -> None:
    diagnosis = Diagnosis.from_ranking(
        taxonomy,
        [("melanoma", 0.7), ("nevus", 0.3)],
        rationale="irregular border",
        raw_output="",
        model_id="m",
    )
    ai = diagnosis.ai_output()
    assert ai.text == "The AI's most likely diagnosis is Melanoma." and ai.rationale == "irregular border"
    assert [d.skin_condition for d in ai.differential] == ["melanoma", "nevus"]


# --- CLI without torch ----------------------------------------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import atexit, sys; from skingen.cli import main\n"
        "heavy = lambda: ','.join(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "atexit.register(lambda: print('HEAVY=' + heavy(), file=sys.stderr))\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=60,
        env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_import_skingen_and_manifest_stay_torch_free() -> None:
    code = (
        "import sys, skingen, formats.bundle, skingen.bundle.builder, skingen.diagnosis; "
        "import skingen.cli, skingen.prompts, skingen.provenance, skingen.bundle.writing; "
        "import skingen.bundle.demo.drawing, skingen.bundle.demo.material, skingen.bundle.demo.writer; "
        "import skingen.dataset, skingen.data_prepare.pipeline, skingen.data_prepare.formats; "
        "print(','.join(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_help_is_torch_free() -> None:
    result = _run("--help")
    assert result.returncode == 0 and "bundle" in result.stdout
    assert result.stderr.rstrip().endswith("HEAVY=")


def test_bundle_validate_reports_problems_torch_free(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"format": "skingen-bundle"}')
    result = _run("bundle", "validate", str(tmp_path))
    assert result.returncode == 1
    assert "invalid bundle" in result.stderr and "manifest.json" in result.stderr
    assert result.stderr.rstrip().endswith("HEAVY=")


def test_cli_missing_model_exits_nonzero_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    rc = main(["generate", "--sd", str(tmp_path / "no-model"), "--prompt", "x", "--out", str(out)])
    assert rc == 1
    assert f"model path not found: {tmp_path / 'no-model'}" in capsys.readouterr().err
    assert not out.exists()


def test_cli_generate_rejects_unknown_diagnosis_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["generate", "--sd", "x/y", "--diagnosis", "space measles", "--out", str(tmp_path / "o")])
    assert (
        rc == 1 and "--diagnosis: condition 'space measles' is not in the taxonomy" in capsys.readouterr().err
    )


def test_cli_unreadable_image_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    assert main(["diagnose", str(bad), "--clip", str(tmp_path / "no-model")]) == 1
    assert f"not a readable image: {bad}" in capsys.readouterr().err


def test_the_skin_tone_reaches_the_text_encoder_in_every_prompt(taxonomy: Taxonomy) -> None:
    """CLIP reads 77 tokens (start and end included) and drops the rest: the skin tone, the point of the
    per-skin-tone references and captions, must come well before that for every condition and tone. Words
    and punctuation undercount CLIP's BPE tokens (rare terms such as "lichenification" split into several),
    so the tone must end within 30 pieces, leaving room for a 2x expansion."""
    import re

    prompts = PromptBuilder.load(taxonomy)
    clip_pieces = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+", re.IGNORECASE)  # CLIP's pre-tokenizer, roughly
    for condition in taxonomy.ids:
        for tone in ("I", "III", "VI"):
            prompt = prompts.build(condition, skin_tone=tone, trigger="sks").prompt
            through_tone = prompt[: prompt.index(f"type {tone} skin") + len(f"type {tone} skin")]
            assert len(clip_pieces.findall(through_tone)) <= 30, (condition, tone, through_tone)
