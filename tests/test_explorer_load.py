"""bench/loadgen's simulated explorer against a real `skingen-study serve --explorer-open` and one
`skingen worker` (tiny SD on CPU, a local OpenAI-compatible chat server as the diagnoser): an exploration
from upload to downloaded images, and a second one with a new photo, so the client the "explorers beside a
study" benchmark relies on can't silently rot."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from bench import loadgen, servers
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


def test_a_simulated_explorer_explores_two_photos(tmp_path, tmp_path_factory):
    pytest.importorskip("torch")
    from app.demo import prepare_demo

    sd = tiny_models(tmp_path_factory).sd
    protocol = prepare_demo(tmp_path / "demo")
    with (
        ChatServer() as chat,
        servers.app_server("tuned", protocol, tmp_path, extra=["--explorer-open"]) as (base, db_url, _),
        servers.model_workers(1, db_url, chat.url, sd, tmp_path, nice=False),
    ):
        explorer = loadgen.SimulatedExplorer(base, 0, (0.0, 0.0), seed=1)
        outcome = asyncio.run(explorer.run(asyncio.Event(), limit=2))
        counts = JobQueue(Database(db_url)).counts()
    assert outcome.errors == []
    assert outcome.explorations == 2
    assert len(outcome.diagnosis) == len(outcome.answer) == len(outcome.images) == 2
    assert outcome.images_shown == 2 * 3  # the explorer's default: three references per request
    assert outcome.images_fetched == 2 * (1 + 3)  # each time the user's photo and the generated images
    assert counts == {"done": 2 * 3}  # per photo a diagnosis, an answer and one references job
    # the diagnosis and the follow-up of each photo, about the photo uploaded (the second replaced the first)
    photos = [Image.open(io.BytesIO(loadgen.explorer_photo(0, n))).convert("RGB").tobytes() for n in (0, 1)]
    assert [sent_photo(request).tobytes() for request in chat.requests] == [photos[0]] * 2 + [photos[1]] * 2
