"""bench/loadgen.py's simulated explorer against a real `skingen-study serve --explorer-open` and one
`skingen worker` (tiny SD on CPU, a local OpenAI-compatible chat server as the diagnoser): one exploration
from upload to downloaded images, so the client the "explorers beside a study" benchmark relies on can't
silently rot."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from bench import loadgen
from db.jobs import JobQueue
from db.session import Database
from tests.chat_server import ChatServer
from tests.skingen_fixtures import tiny_models

pytestmark = [pytest.mark.ml, pytest.mark.slow, pytest.mark.timeout(600)]


def sent_photo(request: dict) -> Image.Image:
    """The photo of one chat request (its first message's PNG data URL)."""
    parts = {part["type"]: part for part in request["messages"][0]["content"]}
    data = parts["image_url"]["image_url"]["url"].split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def test_a_simulated_explorer_completes_one_exploration(tmp_path, tmp_path_factory):
    pytest.importorskip("torch")
    from study.demo import prepare_demo

    sd = tiny_models(tmp_path_factory).sd
    protocol = prepare_demo(tmp_path / "demo")
    with (
        ChatServer() as chat,
        loadgen.app_server("tuned", protocol, tmp_path, extra=["--explorer-open"]) as (base, db_url, _),
        loadgen.model_workers(1, db_url, chat.url, sd, tmp_path, nice=False),
    ):
        explorer = loadgen.SimulatedExplorer(base, 0, (0.0, 0.0), seed=1)
        outcome = asyncio.run(explorer.run(asyncio.Event(), limit=1))
        counts = JobQueue(Database(db_url)).counts()
    assert outcome.errors == []
    assert outcome.explorations == 1
    assert len(outcome.diagnosis) == len(outcome.answer) == len(outcome.images) == 1
    assert outcome.images_shown == 3  # the explorer's default: three references
    assert outcome.images_fetched == 1 + 3  # the user's photo and the generated images
    assert counts == {"done": 3}  # a diagnosis, an answer, one references job
    assert len(chat.requests) == 2  # the diagnosis and the follow-up, both about the uploaded photo
    uploaded = Image.open(io.BytesIO(loadgen.explorer_photo(0, 0))).convert("RGB")
    assert all(sent_photo(request).tobytes() == uploaded.tobytes() for request in chat.requests)
