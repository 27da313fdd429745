"""The diagnoser backends every diagnosing command takes (skingen.diagnosis.options), and the image-classifier
backend: the same flags and specs everywhere, errors that name the flag, the chat endpoint in every command,
and a tiny ViT classifier checked against transformers' own image-classification pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from formats.taxonomy import UNKNOWN, Taxonomy
from skingen.cli import build_parser, main
from skingen.diagnosis.options import BACKENDS, DiagnoserSpec, diagnoser_spec, judge_spec
from skingen.errors import SkinGenError
from tests.chat_server import ChatServer
from tests.skingen_fixtures import TinyModels, photo, tiny_models

HEDGED = "I cannot rule out melanoma, but it is probably a seborrheic keratosis."


@pytest.fixture
def chat_server():
    with ChatServer() as running:
        yield running


# --- the same backends in every command (no models) -------------------------------------------------------

COMMANDS = {
    "diagnose": ["diagnose", "x.png"],
    "bundle build": ["bundle", "build", "cases", "--out", "b", "--sd", "sd"],
    "worker": ["worker", "--db", "sqlite://"],
}
SOURCES = {"vlm": "v", "clip": "c", "classifier": "k", "fixed": "d.csv", "chat": "http://h:1"}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.kind)
def test_every_diagnosing_command_takes_every_backend_flag(command: str, backend) -> None:
    args = build_parser().parse_args([*COMMANDS[command], backend.flag, SOURCES[backend.kind]])
    spec = diagnoser_spec(args)
    assert (spec.kind, spec.source, spec.where) == (backend.kind, SOURCES[backend.kind], backend.flag)


@pytest.mark.parametrize("command", [["evaluate", "--real", "r", "--generated", "g", "--features", "f", "--out", "o"],
                                     [*COMMANDS["bundle build"], "--evaluate"]])  # fmt: skip
@pytest.mark.parametrize("kind", SOURCES)
def test_every_judge_takes_every_backend_spec(command: list[str], kind: str) -> None:
    args = build_parser().parse_args([*command, "--diagnoser", f"{kind}:{SOURCES[kind]}"])
    spec = judge_spec(args)
    assert (spec.kind, spec.source, spec.where) == (kind, SOURCES[kind], "--diagnoser")


def test_chat_specs_carry_the_model_and_bad_specs_name_the_forms() -> None:
    spec = DiagnoserSpec.parse("chat:llava-derm@https://gpu1:8000/v1", "--diagnoser")
    assert (spec.source, spec.chat_model, str(spec)) == (
        "https://gpu1:8000/v1",
        "llava-derm",
        "chat:llava-derm@https://gpu1:8000/v1",
    )
    assert DiagnoserSpec.parse("chat:http://h:1", "x").chat_model == "default"
    assert str(DiagnoserSpec.parse("classifier:./m", "x")) == "classifier:./m"
    with pytest.raises(SkinGenError, match=r"^base\.diagnoser 'resnet:x': expected vlm:PATH, clip:PATH"):
        DiagnoserSpec.parse("resnet:x", "base.diagnoser")
    with pytest.raises(SkinGenError, match="http:// or https://"):
        DiagnoserSpec.parse("chat:gpu1:8000", "--diagnoser")
    args = build_parser().parse_args(
        [*COMMANDS["worker"], "--chat-endpoint", "http://h:1", "--chat-model", "m"]
    )
    assert diagnoser_spec(args) == DiagnoserSpec("chat", "http://h:1", "--chat-endpoint", "m")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diagnose", "{img}", "--diagnoses", "{tmp}/missing.csv"], "--diagnoses: "),
        (["diagnose", "{img}", "--clip", "c", "--chat-model", "m"], "--chat-model: only used with --chat-endpoint"),
        (["diagnose", "{img}", "--chat-endpoint", "gpu1:8000"], "--chat-endpoint 'gpu1:8000': expected an http"),
        (["diagnose", "{img}", "--vlm", "v", "--max-new-tokens", "0"], "--max-new-tokens: must be > 0"),
        (["worker", "--db", "sqlite://", "--diagnoses", "d.csv"], "--diagnoses: a worker diagnoses users' photos"),
    ],
)  # fmt: skip
def test_bad_diagnoser_options_name_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    image = tmp_path / "case.png"
    photo(0).save(image)
    assert main([a.format(img=image, tmp=tmp_path) for a in argv]) == 1
    assert message in capsys.readouterr().err


def test_diagnose_through_a_chat_endpoint_reads_the_hedged_answer(
    tmp_path: Path, chat_server: ChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "case.png"
    photo(0).save(image)
    chat_server.replies = [HEDGED]
    argv = ["diagnose", str(image), "--chat-endpoint", chat_server.url, "--chat-model", "llava-derm"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["condition"] == "seborrheic_keratosis"
    assert [d["condition"] for d in result["differential"]] == ["seborrheic_keratosis", "melanoma"]
    assert [(e["name"], e["status"], e["cue"]) for e in result["evidence"]] == [
        ("melanoma", "considered", "cannot rule out"),
        ("seborrheic keratosis", "likely", "is probably"),
    ]
    assert chat_server.requests[0]["model"] == "llava-derm"
    assert result["model_id"] == f"llava-derm@{chat_server.url}"


def test_diagnose_with_fixed_diagnoses_looks_images_up_by_file_stem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "case7.png"
    photo(0).save(image)
    (tmp_path / "d.csv").write_text("case_id,condition,rationale\ncase7,Plaque psoriasis,planted\n")
    assert main(["diagnose", str(image), "--diagnoses", str(tmp_path / "d.csv")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["condition"], result["rationale"], result["model_id"]) == ("psoriasis", "planted", "fixed")


# --- the image classifier (tiny ViT) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    pytest.importorskip("torch")
    return tiny_models(tmp_path_factory)


def _biased_classifier(root: Path, labels: tuple[str, ...], favoured: int) -> Path:
    """A tiny classifier whose head strongly prefers label ``favoured``."""
    import torch
    from transformers import AutoModelForImageClassification

    from tests.tiny_models import build_image_classifier

    path = build_image_classifier(root, labels)
    model = AutoModelForImageClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[favoured] = 8.0
    model.save_pretrained(path)
    return path


@pytest.mark.ml
def test_classifier_scores_equal_the_transformers_pipeline_summed_by_condition(tiny: TinyModels) -> None:
    from transformers import pipeline

    from skingen.diagnosis.classifier import ClassifierDiagnoser

    taxonomy = Taxonomy.load()
    diagnoser = ClassifierDiagnoser(str(tiny.classifier), taxonomy, device="cpu")
    # "Seborrheic dermatitis" is outside the taxonomy, not eczema; "mole" is a synonym of nevus
    assert diagnoser.conditions == {0: "psoriasis", 1: "eczema", 2: UNKNOWN, 3: "melanoma", 4: "nevus"}
    reference = pipeline("image-classification", model=str(tiny.classifier), device="cpu")
    for seed in range(3):
        expected = {row["label"]: row["score"] for row in reference(photo(seed), top_k=None)}
        diagnosis = diagnoser.diagnose(photo(seed))
        assert json.loads(diagnosis.raw_output) == pytest.approx(expected, abs=1e-6)
        scores = dict(diagnosis.differential)
        assert scores["eczema"] == pytest.approx(expected["Atopic dermatitis"], abs=1e-6)
        best = max(expected, key=expected.get)
        assert diagnosis.condition == diagnoser.conditions[list(diagnoser.labels.values()).index(best)]


@pytest.mark.ml
def test_classifier_adds_labels_of_one_condition_and_answers_unknown_outside(tmp_path: Path) -> None:
    from skingen.diagnosis.classifier import ClassifierDiagnoser

    taxonomy = Taxonomy.load()
    labels = ("Psoriasis", "plaque psoriasis", "Seborrheic dermatitis", "Eczema")
    outside = ClassifierDiagnoser(str(_biased_classifier(tmp_path / "a", labels, 2)), taxonomy, device="cpu")
    diagnosis = outside.diagnose(photo(0))
    assert diagnosis.condition == UNKNOWN and diagnosis.differential[0][0] == UNKNOWN
    assert [c for c, _ in diagnosis.differential[1:]] and UNKNOWN not in dict(diagnosis.differential[1:])
    psoriasis = ClassifierDiagnoser(
        str(_biased_classifier(tmp_path / "b", labels, 1)), taxonomy, device="cpu"
    )
    diagnosis = psoriasis.diagnose(photo(0))
    raw = json.loads(diagnosis.raw_output)
    assert diagnosis.condition == "psoriasis"
    assert dict(diagnosis.differential)["psoriasis"] == pytest.approx(
        raw["Psoriasis"] + raw["plaque psoriasis"], abs=2e-6
    )


@pytest.mark.ml
def test_a_classifier_naming_no_condition_is_refused_by_its_flag(tmp_path: Path, capsys) -> None:
    from tests.tiny_models import build_image_classifier

    path = build_image_classifier(tmp_path / "generic", ("LABEL_0", "cat", "dog"))
    image = tmp_path / "x.png"
    photo(0).save(image)
    assert main(["diagnose", str(image), "--classifier", str(path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "--classifier: classifier" in err and "none of its labels ('LABEL_0', 'cat', 'dog'" in err


@pytest.mark.ml
def test_evaluate_judges_with_a_classifier_or_a_chat_endpoint(
    tiny: TinyModels, chat_server, tmp_path: Path
) -> None:
    from skingen.diagnosis.classifier import ClassifierDiagnoser
    from skingen.sources import load_image
    from tests.image_sets import write_sets

    data, generated = write_sets(tmp_path / "sets")
    fast = ["--jackknife-groups", "4", "--equal-n-draws", "2", "--bootstrap", "0"]
    base = ["evaluate", "--real", str(data), "--generated", str(generated), "--features", str(tiny.clip),
            "--device", "cpu", *fast]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "k"), "--diagnoser", f"classifier:{tiny.classifier}"]) == 0
    loop = json.loads((tmp_path / "k" / "metrics.json").read_text())["closed_loop"]
    judge = ClassifierDiagnoser(str(tiny.classifier), Taxonomy.load(), device="cpu")
    images = sorted(generated.glob("*.png"))
    right = sum(judge.diagnose(load_image(p)).condition == p.stem.split("_")[0] for p in images)
    assert (loop["diagnoser"], loop["n"]) == (str(tiny.classifier), 36)
    assert loop["accuracy"] == pytest.approx(right / 36)
    # a VLM behind an endpoint as the judge: every answer reads "psoriasis", a third of the images are
    assert main([*base, "--out", str(tmp_path / "c"), "--diagnoser", f"chat:llava@{chat_server.url}"]) == 0
    loop = json.loads((tmp_path / "c" / "metrics.json").read_text())["closed_loop"]
    assert (loop["diagnoser"], loop["accuracy"]) == (f"llava@{chat_server.url}", pytest.approx(1 / 3))
    assert len(chat_server.requests) == 36 and {r["model"] for r in chat_server.requests} == {"llava"}
