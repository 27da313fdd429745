"""A local OpenAI-compatible chat endpoint for tests: the documented request/response format, and failures.

``POST /v1/chat/completions`` checks the request as vLLM/TGI/Ollama would (a model name, a first user message
whose content parts hold a PNG data URL and a text), records it, and answers with the next scripted reply: a
text (OpenAI's ``choices[0].message.content``), an HTTP error with an OpenAI error body, a body without choices,
or no answer until :meth:`ChatServer.release` (a hung server, for timeouts).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

HANG = "<hang>"
MALFORMED = "<malformed>"


@dataclass
class ChatServer:
    replies: list[str | tuple[int, str]] = field(default_factory=list)
    default: str = "Diagnosis: psoriasis\nDifferential: eczema\nReasoning: silvery scales on a red plaque."
    requests: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def next_reply(self) -> str | tuple[int, str]:
        return self.replies.pop(0) if self.replies else self.default


def check_request(body: dict) -> str | None:
    """What is wrong with a chat request (None when it follows the documented format)."""
    try:
        first = body["messages"][0]
        parts = {part["type"]: part for part in first["content"]}
        url = parts["image_url"]["image_url"]["url"]
        header, data = url.split(",", 1)
        if header != "data:image/png;base64":
            return f"image_url is not a PNG data URL: {header}"
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
        if not body["model"] or first["role"] != "user" or not parts["text"]["text"]:
            return "model, role or text missing"
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        return f"malformed request: {exc!r}"
    return None


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append(body)
            problem = check_request(body)
            if problem:
                return self._send(400, {"error": {"message": problem, "type": "invalid_request_error"}})
            reply = server.next_reply()
            if reply == HANG:
                server._released.wait()
                return None
            if reply == MALFORMED:
                return self._send(200, {"id": "x", "object": "chat.completion"})
            if isinstance(reply, tuple):
                status, message = reply
                return self._send(status, {"error": {"message": message, "type": "server_error"}})
            message = {"role": "assistant", "content": reply}
            return self._send(
                200,
                {
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                },
            )

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
