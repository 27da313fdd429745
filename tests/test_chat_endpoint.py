"""The OpenAI-compatible chat backend against a local server speaking the documented format (no torch)."""

from __future__ import annotations

import pytest
from PIL import Image

from formats.taxonomy import Taxonomy
from skingen.diagnosis.openai_chat import ChatEndpointError, OpenAIChatDiagnoser
from skingen.diagnosis.vlm import DEFAULT_QUESTION
from skingen.errors import SkinGenError
from tests.chat_server import HANG, MALFORMED, ChatServer

PHOTO = Image.new("RGB", (32, 32), (180, 120, 100))


@pytest.fixture
def server():
    with ChatServer() as running:
        yield running


def client(server: ChatServer, **kwargs: float) -> OpenAIChatDiagnoser:
    return OpenAIChatDiagnoser(server.url, "llava-derm", Taxonomy.load(), **kwargs)


def test_diagnosis_sends_the_photo_as_a_data_url_and_maps_the_answer(server: ChatServer) -> None:
    diagnosis = client(server).diagnose(PHOTO)
    assert (diagnosis.condition, [c for c, _ in diagnosis.differential]) == (
        "psoriasis",
        ["psoriasis", "eczema"],
    )
    assert diagnosis.rationale == "silvery scales on a red plaque."
    assert diagnosis.model_id == f"llava-derm@{server.url}"
    [request] = server.requests
    assert request["model"] == "llava-derm" and request["temperature"] == 0
    assert request["messages"][0]["content"][1] == {"type": "text", "text": DEFAULT_QUESTION}


def test_follow_up_questions_carry_the_conversation(server: ChatServer) -> None:
    server.replies = ["It may itch."]
    history = [(DEFAULT_QUESTION, "Diagnosis: psoriasis"), ("Is it contagious?", "No.")]
    assert client(server).ask(PHOTO, "Does it itch?", history) == "It may itch."
    messages = server.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in messages[1:]] == [
        "Diagnosis: psoriasis",
        "Is it contagious?",
        "No.",
        "Does it itch?",
    ]


@pytest.mark.parametrize(
    ("reply", "code", "retryable", "message"),
    [
        ((503, "model is loading"), "server_error", True, "HTTP 503: model is loading"),
        ((400, "image too large"), "http_error", False, "HTTP 400: image too large"),
        (MALFORMED, "bad_response", False, "no choices"),
    ],
)
def test_failures_carry_a_code_and_the_servers_message(server, reply, code, retryable, message) -> None:
    server.replies = [reply]
    with pytest.raises(ChatEndpointError, match=message) as raised:
        client(server).diagnose(PHOTO)
    assert (raised.value.code, raised.value.retryable) == (code, retryable)
    assert server.url in str(raised.value)


def test_a_server_that_does_not_answer_times_out(server: ChatServer) -> None:
    server.replies = [HANG]
    with pytest.raises(ChatEndpointError, match=r"no answer within 0.3 s") as raised:
        client(server, timeout=0.3).diagnose(PHOTO)
    assert raised.value.code == "timeout" and raised.value.retryable


def test_an_unreachable_endpoint_and_a_bad_url_are_named() -> None:
    with ChatServer() as stopped:
        url = stopped.url
    with pytest.raises(ChatEndpointError, match="cannot connect") as raised:
        OpenAIChatDiagnoser(url, "m", Taxonomy.load(), timeout=5).diagnose(PHOTO)
    assert raised.value.code == "unreachable"
    with pytest.raises(SkinGenError, match="expected an http"):
        OpenAIChatDiagnoser("localhost:8000", "m", Taxonomy.load())
