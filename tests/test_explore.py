"""The explorer page (AppTest): access, upload → diagnosis → follow-up → references, busy-model notes.

The worker runs in the test itself (``run_once`` between page runs), against a local OpenAI-compatible chat
server, so every step is deterministic: no waiting on timers.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import make_url
from streamlit.testing.v1 import AppTest

from app.context import configured_engine, live_queue
from db.models import Job
from formats.taxonomy import Taxonomy
from skingen.diagnosis.openai_chat import OpenAIChatDiagnoser
from skingen.serving import GenerationSettings, ModelServer
from skingen.worker import Worker
from tests.app_driver import APP
from tests.chat_server import ChatServer
from tests.privacy_scan import photo_traces, stored_traces


def photo_png(skin=(140, 95, 70)) -> bytes:
    image = Image.new("RGB", (96, 96), skin)
    ImageDraw.Draw(image).ellipse((30, 30, 66, 66), fill=(150, 30, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def study(protocol_file, make_engine, monkeypatch, tmp_path):
    path = protocol_file()
    url = f"sqlite:///{tmp_path}/explore.db"
    engine = make_engine(path, url)
    monkeypatch.setenv("SKINGEN_DB_URL", url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    monkeypatch.setenv("SKINGEN_EXPLORER_OPEN", "1")
    monkeypatch.setenv("SKINGEN_EXPLORER_REFERENCES", "2")
    return engine


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server


def open_explorer() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["area"] = "explore"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def text(at: AppTest) -> str:
    kinds = ("title", "subheader", "markdown", "caption", "info", "error")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def chat_worker(url: str, **models) -> Worker:
    taxonomy = Taxonomy.load()
    diagnoser = OpenAIChatDiagnoser(url, "llava", taxonomy, timeout=5)
    server = ModelServer(taxonomy, diagnoser=diagnoser, **models)
    worker = Worker(live_queue(), server.handlers(), name="test-worker")
    worker.beat()  # running: pages see a live worker
    return worker


def test_photo_diagnosis_follow_up_with_the_skin_tone_estimated(study, chat_server) -> None:
    worker = chat_worker(chat_server.url)
    at = open_explorer()
    at.file_uploader[0].set_value(("spot.png", photo_png(), "image/png"))
    at.run()
    assert "Waiting for a model worker" in text(at)
    assert at.selectbox[0].value == "V"  # the surrounding skin's ITA is −14°
    assert worker.run_once() == 1
    at.run()
    page = text(at)
    assert "Psoriasis" in page and "silvery scales on a red plaque" in page and "Eczema" in page
    chat_server.replies = ["It often itches; eczema itches more."]
    at.chat_input[0].set_value("Does it itch?").run()
    assert worker.run_once() == 1
    at.run()
    assert "It often itches; eczema itches more." in text(at)
    assert "Mapped onto the taxonomy: **Eczema**" in text(at)
    sent = chat_server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"] and sent[-1][
        "content"
    ] == "Does it itch?"
    assert not at.exception


def test_with_no_worker_the_page_says_so_and_a_left_pages_photo_is_erased(study, monkeypatch) -> None:
    """No worker running: the page says so at once and names the command that starts one on this database;
    once the user has left (the page no longer renews its hold), no byte of the photo stays in any table."""
    monkeypatch.setenv("SKINGEN_JOB_HOLD", "0.5")  # `serve --job-hold`: 2 minutes by default
    upload = photo_png()
    at = open_explorer()
    at.file_uploader[0].set_value(("spot.png", upload, "image/png")).run()
    [warning] = at.warning
    assert "No model worker is running" in warning.value
    url = make_url(configured_engine().db.url)  # the worker's --db names this database as it is reached
    shown = f"sqlite:///{url.database}" if url.get_backend_name() == "sqlite" else f"@{url.host}:{url.port}/"
    assert "`skingen worker --db " in warning.value and shown in warning.value
    assert url.password is None or url.password not in warning.value
    traces = photo_traces(upload)
    db = configured_engine().db
    assert stored_traces(db, traces) == ["jobs.inputs"]  # the open job holds it while the page is open
    # the user leaves: nothing renews the hold; the app's sweeper erases it (bounded wait, no fixed sleep)
    deadline = time.monotonic() + 30
    while stored_traces(db, traces) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_traces(db, traces) == []
    [job] = live_queue().statuses([1]).values()
    assert job.finished


def test_a_busy_model_gets_a_calm_note_and_a_retry(study, chat_server) -> None:
    worker = chat_worker(chat_server.url)
    chat_server.replies = [(503, "overloaded")] * 3  # every attempt of the job fails
    at = open_explorer()
    at.file_uploader[0].set_value(("spot.png", photo_png(), "image/png"))
    at.run()
    assert worker.run(max_jobs=3) == 3
    at.run()
    assert "The model is busy right now. Please try again in a moment." in text(at)
    assert "overloaded" not in text(at)  # the server's message is for the log, not the user
    at.button(key="retry:diagnosis").click().run()
    worker.run_once()
    at.run()
    assert "Psoriasis" in text(at)


@pytest.mark.ml
def test_references_of_the_diagnosis_and_a_differential_come_from_a_worker(
    study, chat_server, tmp_path_factory
) -> None:
    pytest.importorskip("torch")
    from skingen.generation import ReferenceGenerator
    from tests.skingen_fixtures import tiny_models

    models = tiny_models(tmp_path_factory)
    generator = ReferenceGenerator.from_pretrained(str(models.sd), device="cpu")
    settings = GenerationSettings(steps=2, width=64, height=64)
    worker = chat_worker(chat_server.url, generator=generator, settings=settings)
    at = open_explorer()
    at.file_uploader[0].set_value(("spot.png", photo_png(), "image/png"))
    at.run()
    worker.run_once()
    at.run()
    at.button(key="explore.show:psoriasis").click().run()
    at.button(key="explore.show:eczema").click().run()
    assert worker.run_once() == 2  # both requests in one batch
    at.run()
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions.count("AI-generated: Psoriasis") == 2 and captions.count("AI-generated: Eczema") == 2
    assert "skin type V" in text(at) and "StableDiffusionPipeline" in text(at)  # provenance on demand


def test_a_photo_is_kept_only_with_its_users_consent(study, monkeypatch, tmp_path) -> None:
    folder = tmp_path / "kept"
    at = open_explorer()
    at.file_uploader[0].set_value(("spot.png", photo_png(), "image/png")).run()
    assert not at.checkbox and not folder.exists()  # no photo folder configured: nothing is offered or kept
    monkeypatch.setenv("SKINGEN_EXPLORER_PHOTOS", str(folder))
    at.run()
    assert not folder.exists()
    at.checkbox[0].check().run()
    [kept] = folder.glob("*.png")
    assert kept.with_suffix(".json").is_file() and "Your photo is kept" in text(at)
    with configured_engine().db.read() as session:  # the open diagnosis job holds it only until it ends
        assert [job.inputs is not None for job in session.query(Job)] == [True]
