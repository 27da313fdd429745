"""What a worker runs (skingen/serving.py) on tiny models and a local chat endpoint, and `skingen worker`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from db.jobs import DONE, FAILED, QUEUED, JobQueue
from db.migrate import upgrade
from db.session import Database
from formats.jobs import (
    CHAT,
    DIAGNOSE,
    REFERENCES,
    chat_request,
    decode_png,
    diagnose_request,
    references_request,
)
from formats.taxonomy import Taxonomy
from skingen.diagnosis.openai_chat import OpenAIChatDiagnoser
from skingen.generation import ReferenceGenerator
from skingen.provenance import ImageCache
from skingen.serving import GenerationSettings, ModelServer
from skingen.worker import Worker
from tests.chat_server import ChatServer
from tests.skingen_fixtures import TinyModels, photo

pytestmark = pytest.mark.ml
pytest.importorskip("torch")

SETTINGS = GenerationSettings(steps=2, width=64, height=64)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    db = Database(f"sqlite:///{tmp_path}/jobs.db")
    upgrade(db.engine)
    return JobQueue(db)


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server


def submit(queue: JobQueue, request):
    return queue.submit(request.kind, request.payload, inputs=request.inputs, batch_key=request.batch_key)


def test_waiting_reference_jobs_share_one_diffusers_call(tiny: TinyModels, queue: JobQueue, tmp_path) -> None:
    generator = ReferenceGenerator.from_pretrained(
        str(tiny.sd), device="cpu", cache=ImageCache(tmp_path / "c")
    )
    calls: list[int] = []
    generate = generator.generate
    generator.generate = lambda requests, seeds: calls.append(len(seeds)) or generate(requests, seeds)
    server = ModelServer(Taxonomy.load(), generator=generator, settings=SETTINGS)
    jobs = [
        submit(queue, references_request("psoriasis", "V", count=2)),
        submit(queue, references_request("acne", "II", count=2)),
        submit(queue, references_request("not a condition", "II", count=1)),
    ]
    worker = Worker(queue, server.handlers(), name="w", max_batch=8)
    assert worker.run_once() == 3
    assert calls == [4]  # both good jobs' four images in one call
    first, second, bad = (queue.get(job.id) for job in jobs)
    assert (bad.status, bad.error_code) == (FAILED, "bad_request") and "not a condition" in bad.error
    images = first.result["images"]
    assert [i["provenance"]["seed"] for i in images] == [0, 1] and first.result["skin_tone"] == "V"
    assert "dark brown, Fitzpatrick type V" in images[0]["provenance"]["prompt"]
    assert decode_png(images[0]["png"]).size == (64, 64) and images[0]["mask"] is None
    assert second.result["condition"] == "acne"
    again = submit(queue, references_request("psoriasis", "V", count=2))
    assert (again.id, again.status) == (first.id, DONE)  # an identical request: answered at once


def masker(tiny: TinyModels, **thresholds: float):
    from skingen.masking import AffectedAreaMasker

    thresholds = {"box_threshold": 0.0, "text_threshold": 0.0, **thresholds}  # random weights: low scores
    return AffectedAreaMasker(str(tiny.grounding_dino), str(tiny.sam), device="cpu", **thresholds)


def test_the_masker_detects_by_text_and_segments_the_box(tiny: TinyModels) -> None:
    from skingen.errors import SkinGenError

    find = masker(tiny)
    spot = photo(4, size=96)
    x0, y0, x1, y1 = find.box(spot, "Psoriasis")
    assert 0 <= x0 <= x1 <= 96 and 0 <= y0 <= y1 <= 96
    mask = find(spot, "Psoriasis")
    assert (mask.size, mask.mode) == (spot.size, "L") and set(mask.tobytes()) <= {0, 255}
    assert find(spot, "Psoriasis").tobytes() == mask.tobytes()  # deterministic
    with pytest.raises(SkinGenError, match="no affected area found for 'Psoriasis'"):
        masker(tiny, box_threshold=1.01).box(spot, "Psoriasis")


def test_inpainting_into_the_photo_names_its_mask_and_photo(tiny: TinyModels, queue: JobQueue) -> None:
    inpainter = ReferenceGenerator.from_pretrained(str(tiny.inpaint), inpaint=True, device="cpu")
    server = ModelServer(Taxonomy.load(), inpainter=inpainter, masker=masker(tiny), settings=SETTINGS)
    job = submit(queue, references_request("acne", "III", count=1, photo=photo(3), inpaint=True))
    Worker(queue, server.handlers(), name="w").run_once()
    [image] = queue.get(job.id).result["images"]
    assert image["mask"] == f"{tiny.grounding_dino}+{tiny.sam}"
    assert image["provenance"]["pipeline"] == "StableDiffusionInpaintPipeline"
    assert image["provenance"]["init_image_sha256"] and image["provenance"]["mask_sha256"]
    assert queue.get(job.id).inputs == {}  # the photo left the database with the job


def test_ip_adapter_worker_conditions_on_the_photo_and_needs_one(tiny: TinyModels, queue: JobQueue) -> None:
    generator = ReferenceGenerator.from_pretrained(str(tiny.sd), ip_adapter=tiny.ip_adapter, device="cpu")
    server = ModelServer(Taxonomy.load(), generator=generator, settings=SETTINGS)
    with_photo = submit(queue, references_request("acne", "III", count=1, photo=photo(1)))
    without = submit(queue, references_request("acne", "IV", count=1))
    Worker(queue, server.handlers(), name="w").run_once()
    [image] = queue.get(with_photo.id).result["images"]
    assert image["provenance"]["ip_adapter"] and image["provenance"]["ip_adapter_image_sha256"]
    assert "photo" in queue.get(without.id).error


def test_diagnosis_and_chat_through_an_openai_compatible_endpoint(chat_server: ChatServer, queue) -> None:
    taxonomy = Taxonomy.load()
    diagnoser = OpenAIChatDiagnoser(chat_server.url, "llava", taxonomy, timeout=5)
    server = ModelServer(taxonomy, diagnoser=diagnoser)
    assert set(server.handlers()) == {DIAGNOSE, CHAT}
    chat_server.replies = [(503, "model is loading")]  # the first try fails; the job is retried
    diagnosis = submit(queue, diagnose_request(photo(0)))
    worker = Worker(queue, server.handlers(), name="w")
    worker.run_once()
    assert queue.get(diagnosis.id).status == QUEUED and queue.get(diagnosis.id).error_code == "server_error"
    worker.run_once()
    done = queue.get(diagnosis.id)
    assert (done.status, done.attempts, done.result["condition"]) == (DONE, 2, "psoriasis")
    history = [("diagnose", done.result["raw_output"])]
    chat_server.replies = ["It could also be eczema.", "Nothing I know of."]
    turns = [submit(queue, chat_request(photo(0), history, q)) for q in ("What else?", "And this?")]
    worker.run(max_jobs=2)
    answers = [queue.get(turn.id).result for turn in turns]
    assert [(a["answer"], a["condition"]) for a in answers] == [
        ("It could also be eczema.", "eczema"),
        ("Nothing I know of.", "unknown"),
    ]
    assert answers[0]["model_id"] == diagnoser.model_id and answers[0]["latency_ms"] >= 0
    sent = chat_server.requests[-2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


def test_a_classifier_worker_serves_diagnoses_but_not_chat(tiny: TinyModels, queue: JobQueue) -> None:
    from skingen.diagnosis.classifier import ClassifierDiagnoser

    taxonomy = Taxonomy.load()
    diagnoser = ClassifierDiagnoser(str(tiny.classifier), taxonomy, device="cpu")
    server = ModelServer(taxonomy, diagnoser=diagnoser)
    assert set(server.handlers()) == {DIAGNOSE}  # it cannot answer follow-up questions
    job = submit(queue, diagnose_request(photo(3)))
    Worker(queue, server.handlers(), name="w").run_once()
    result = queue.get(job.id).result
    expected = diagnoser.diagnose(photo(3))
    assert (result["condition"], result["model_id"]) == (expected.condition, str(tiny.classifier))
    assert [d["condition"] for d in result["differential"]] == [c for c, _ in expected.differential]


@pytest.mark.slow
def test_skingen_worker_command_serves_jobs_until_its_limit(tiny: TinyModels, chat_server, queue, tmp_path):
    diagnosis = submit(queue, diagnose_request(photo(0)))
    references = submit(queue, references_request("acne", "IV", count=2))
    command = [sys.executable, "-m", "skingen", "worker", "--db", queue.db.url, "--chat-endpoint"]
    command += [chat_server.url, "--sd", str(tiny.sd), "--steps", "2", "--width", "64", "--height", "64"]
    command += ["--device", "cpu", "--cache", str(tmp_path / "cache"), "--max-jobs", "2", "--name", "cli"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "serving diagnose, chat, references" in finished.stdout
    assert queue.get(diagnosis.id).result["condition"] == "psoriasis"
    images = queue.get(references.id).result["images"]
    assert (
        len(images) == 2 and (tmp_path / "cache" / images[0]["key"][:2] / f"{images[0]['key']}.png").is_file()
    )
    assert not np.array_equal(
        np.asarray(decode_png(images[0]["png"])), np.asarray(decode_png(images[1]["png"]))
    )
    assert {queue.get(diagnosis.id).worker, queue.get(references.id).worker} == {"cli"}
    assert REFERENCES in finished.stdout


def test_worker_command_names_what_is_missing(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    from skingen.cli import main

    assert main(["worker", "--db", queue.db.url]) == 1
    assert "give a diagnoser (--vlm, --chat-endpoint, --clip, --classifier)" in capsys.readouterr().err
    assert main(["worker", "--db", queue.db.url, "--inpaint-sd", "x"]) == 1
    assert "--inpaint-sd needs --detector and --segmenter" in capsys.readouterr().err
