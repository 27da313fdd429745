"""Diagnosis and chat by a VLM behind an OpenAI-compatible chat endpoint (what vLLM, TGI and Ollama serve).

A lab that already hosts its VLM with an inference server points the worker at it instead of loading the
model itself. The request is the documented ``POST {base_url}/v1/chat/completions`` with the photo as a
``data:image/png;base64,…`` URL in an ``image_url`` content part of the first user message::

    {"model": "llava", "temperature": 0, "max_tokens": 160,
     "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:…"}},
                                               {"type": "text", "text": "Diagnosis: …"}]},
                  {"role": "assistant", "content": "…"}, {"role": "user", "content": "and if it itches?"}]}

and the answer is ``choices[0].message.content``. Every failure is a :class:`ChatEndpointError` whose
``code`` says what happened (``timeout``, ``unreachable``, ``http_error``, ``bad_response``) and whether a retry
may help; the message names the endpoint. Torch-free (``requests`` only).
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Sequence

import requests
from PIL import Image

from formats.taxonomy import Taxonomy
from skingen.diagnosis.base import Diagnosis, Turn
from skingen.diagnosis.vlm import DEFAULT_QUESTION, parse_answer
from skingen.errors import SkinGenError

API_KEY_ENV = "SKINGEN_CHAT_API_KEY"
RETRYABLE = frozenset({"timeout", "unreachable", "server_error"})


class ChatEndpointError(SkinGenError):
    """The endpoint failed; ``code`` is one of timeout, unreachable, server_error, http_error, bad_response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def chat_messages(image: Image.Image, question: str, history: Sequence[Turn] = ()) -> list[dict]:
    """The conversation so far (the photo with its first question), then ``question``."""
    questions = [q for q, _ in history] + [question]
    first = [
        {"type": "image_url", "image_url": {"url": data_url(image)}},
        {"type": "text", "text": questions[0]},
    ]
    messages: list[dict] = [{"role": "user", "content": first}]
    for (_, answer), follow_up in zip(history, questions[1:], strict=True):
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": follow_up}]
    return messages


class OpenAIChatDiagnoser:
    """Asks the model at ``base_url`` (``…/v1`` is added) about each photo; parses answers like the local VLM."""

    def __init__(
        self,
        base_url: str,
        model: str,
        taxonomy: Taxonomy,
        *,
        question: str = DEFAULT_QUESTION,
        max_new_tokens: int = 160,
        timeout: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise SkinGenError(f"chat endpoint {base_url!r}: expected an http:// or https:// URL")
        if timeout <= 0:
            raise SkinGenError(f"timeout: must be > 0 seconds, got {timeout}")
        self.url = base_url.rstrip("/").removesuffix("/v1") + "/v1/chat/completions"
        self.model = model
        self.model_id = f"{model}@{base_url}"
        self.taxonomy = taxonomy
        self.question = question
        self.max_new_tokens = max_new_tokens
        self.timeout = timeout
        self._session = requests.Session()
        key = api_key or os.environ.get(API_KEY_ENV)
        if key:
            self._session.headers["Authorization"] = f"Bearer {key}"
        self.last_latency_ms = 0

    def ask(self, image: Image.Image, question: str | None = None, history: Sequence[Turn] = ()) -> str:
        """The model's greedy answer to ``question`` (default: the diagnosis question) after ``history``."""
        body = {
            "model": self.model,
            "messages": chat_messages(image, question or self.question, history),
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }
        started = time.monotonic()
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise ChatEndpointError(
                "timeout", f"chat endpoint {self.url}: no answer within {self.timeout:g} s"
            ) from exc
        except requests.ConnectionError as exc:
            raise ChatEndpointError(
                "unreachable", f"chat endpoint {self.url}: cannot connect ({exc})"
            ) from exc
        self.last_latency_ms = round((time.monotonic() - started) * 1000)
        if response.status_code != 200:
            code = "server_error" if response.status_code >= 500 else "http_error"
            raise ChatEndpointError(
                code, f"chat endpoint {self.url}: HTTP {response.status_code}: {_error_message(response)}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatEndpointError(
                "bad_response", f"chat endpoint {self.url}: the answer has no choices[0].message.content"
            ) from exc
        if not isinstance(content, str):
            raise ChatEndpointError("bad_response", f"chat endpoint {self.url}: message.content is not text")
        return content.strip()

    def diagnose(self, image: Image.Image, case_id: str = "") -> Diagnosis:
        return parse_answer(self.ask(image), self.taxonomy, self.model_id)


def _error_message(response: requests.Response) -> str:
    """The server's own error message (OpenAI format ``{"error": {"message": …}}``), else its text."""
    try:
        error = response.json().get("error")
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:200]
    return str(error or response.reason)[:200]
