"""Streamlit's browser protocol without a browser: a page as one script run drew it, and one tab's websocket.

:class:`StreamlitClient` opens ``ws://HOST:PORT/_stcore/stream``, asks for a script run (``BackMsg.rerun_script``
with the URL's query string) and reads the page from the ``ForwardMsg`` deltas (:class:`Page`: widget ids,
options, the form's submit button, images, texts); :func:`answer` fills in a form the way a browser submits an
``st.form`` (every answer plus ``trigger_value=True`` for the submit button). It also fetches media, uploads
files through Streamlit's upload path and keeps nginx's sticky cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import mimetypes
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME
from urllib3.filepost import encode_multipart_formdata

from study.deploy import ROUTE_COOKIE

# A hang, not a slow machine: CI's loaded 2 cores take seconds per step with 200 participants.
RUN_TIMEOUT_S = 120


# --- one participant's view of a page ----------------------------------------------------------------------
@dataclass
class Widget:
    kind: str
    id: str
    form_id: str
    label: str
    options: tuple[str, ...] = ()
    scale: tuple[float, float, float] | None = None  # a slider's min, max, step


@dataclass
class Page:
    """What one finished script run drew: its inputs, the form's submit button, images and texts."""

    widgets: list[Widget] = field(default_factory=list)
    submit: Widget | None = None
    images: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    controls: dict[str, Widget] = field(default_factory=dict)  # buttons, uploaders, chat boxes by label
    captions: list[str] = field(default_factory=list)  # of the images
    fragment_run: bool = False  # only a fragment ran: the rest of the page is as the last full run drew it

    @property
    def completed(self) -> bool:
        return any("completion code" in text.lower() for text in self.texts)

    @property
    def form(self) -> str | None:
        return self.submit.form_id if self.submit else None


def read_element(page: Page, element) -> None:
    kind = element.WhichOneof("type")
    if kind in FILL:
        proto = getattr(element, kind)
        options = tuple(getattr(proto, "options", ()))
        scale = (proto.min, proto.max, proto.step) if kind == "slider" else None
        page.widgets.append(Widget(kind, proto.id, proto.form_id, proto.label, options, scale))
    elif kind == "button" and element.button.is_form_submitter:
        b = element.button
        page.submit = Widget("button", b.id, b.form_id, b.label)
    elif kind in ("button", "file_uploader"):
        proto = getattr(element, kind)
        page.controls[proto.label] = Widget(kind, proto.id, proto.form_id, proto.label)
    elif kind == "chat_input":
        chat = element.chat_input
        page.controls[chat.placeholder] = Widget(kind, chat.id, "", chat.placeholder)
    elif kind == "imgs":
        page.images += [img.url for img in element.imgs.imgs]
        page.captions += [img.caption for img in element.imgs.imgs]
    elif kind in ("markdown", "heading", "alert"):
        page.texts.append(getattr(element, kind).body)
    elif kind == "code":
        page.texts.append(element.code.code_text)
    elif kind == "exception":  # an uncaught error in the app: participants must never see one
        page.exceptions.append(f"{element.exception.type}: {element.exception.message}")


def _slide(state: WidgetState, widget: Widget, rng: random.Random) -> None:
    """A slider's marker on one of its steps (Streamlit sends a slider's value as a one-element array)."""
    assert widget.scale is not None
    low, high, step = widget.scale
    state.double_array_value.data.append(low + rng.randint(0, round((high - low) / step)) * step)


def _set(field: str, value: object) -> Callable[[WidgetState, Widget, random.Random], None]:
    def fill(state: WidgetState, widget: Widget, rng: random.Random) -> None:
        setattr(state, field, value)

    return fill


def _choose(state: WidgetState, widget: Widget, rng: random.Random) -> None:
    state.string_value = rng.choice(widget.options)


FILL: dict[str, Callable[[WidgetState, Widget, random.Random], None]] = {
    "checkbox": _set("bool_value", True),  # consent statements, a slider's "This is my answer"
    "radio": _choose,
    "selectbox": _choose,
    "text_area": _set("string_value", "Answered by the load generator."),
    "number_input": _set("double_value", 1.0),
    "slider": _slide,
}
"""How a browser fills each Streamlit input the item kinds draw (study/items: each kind's ``widget``); a
form with an input not listed here would never advance, so a new kind's new widget goes here too."""


def answer(page: Page, rng: random.Random) -> list[WidgetState]:
    """Widget states of a filled-in form, plus the submit trigger (what the browser sends on submit)."""
    states = []
    for widget in page.widgets:
        if widget.form_id != page.form:
            continue
        state = WidgetState(id=widget.id)
        FILL[widget.kind](state, widget, rng)
        states.append(state)
    assert page.submit is not None
    states.append(WidgetState(id=page.submit.id, trigger_value=True))
    return states


# --- the protocol client -----------------------------------------------------------------------------------
class StreamlitClient:
    """One browser tab, minus the browser: a websocket session and the URL's query string."""

    def __init__(self, base: str, query: str, route: str | None = None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.ws_url = f"ws://{self.host}:{self.port}/_stcore/stream"
        self.query = query
        self.route = route  # nginx's sticky-session cookie (study/deploy.py): which replica serves this tab
        self.cookies: dict[str, str] = {}  # other cookies the server set (Streamlit's XSRF cookie)
        self.auto_reruns: dict[str, float] = {}  # fragment id → seconds: the page's `run_every` fragments
        self.ws = None

    @property
    def headers(self) -> dict[str, str]:
        cookies = ({ROUTE_COOKIE: self.route} if self.route else {}) | self.cookies
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}

    async def connect(self) -> None:
        # Like a browser: wait as long as the server takes to open the session (websockets' default gives up
        # after 10 s) and send no keepalive pings of our own (the server pings; the library answers).
        self.ws = await websockets.connect(
            self.ws_url,
            subprotocols=["streamlit"],
            max_size=None,
            additional_headers=self.headers,
            open_timeout=RUN_TIMEOUT_S,
            ping_interval=None,
        )
        self.auto_reruns = {}  # a new session: the old page's timers are gone with it
        if self.route is None:  # keep nginx's sticky cookie, as a browser does
            for cookie in self.ws.response.headers.get_all("Set-Cookie"):
                name, _, value = cookie.partition(";")[0].partition("=")
                if name == ROUTE_COOKIE:
                    self.route = value

    async def reconnect(self) -> None:
        """A reload (or a dropped connection): a new websocket session with the same URL."""
        with contextlib.suppress(Exception):
            await self.ws.close()
        await self.connect()

    async def __aenter__(self) -> StreamlitClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()

    async def run(self, widget_states: list[WidgetState] = (), fragment_id: str | None = None) -> Page:
        """Ask for a script run (of one fragment, as the browser's ``run_every`` timer does, when given);
        return the page of the run that finishes without a rerun.

        The ``auto_rerun`` messages of that run set :attr:`auto_reruns` as the browser's timers: a full run
        replaces them, a fragment run adds its own, ``stop_auto_rerun`` ends some. The server never sends
        ``ref_hash`` (a cached message) to this client, which announces no cached messages; one would be an
        error."""
        msg = BackMsg()
        msg.rerun_script.query_string = self.query
        msg.rerun_script.widget_states.widgets.extend(widget_states)
        if fragment_id is not None:
            msg.rerun_script.fragment_id = fragment_id
            msg.rerun_script.is_auto_rerun = True
        await self.ws.send(msg.SerializeToString())
        page, timers = Page(), {}
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while True:
                fwd = ForwardMsg()
                fwd.ParseFromString(await self.ws.recv())
                kind = fwd.WhichOneof("type")
                if kind == "new_session":
                    page, timers = Page(), {}  # a new script run (e.g. after st.rerun): only its page counts
                elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                    read_element(page, fwd.delta.new_element)
                elif kind == "page_info_changed":
                    self.query = fwd.page_info_changed.query_string
                elif kind == "auto_rerun":
                    timers[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
                elif kind == "ref_hash":  # a cached element we could not draw: the page would be incomplete
                    raise RuntimeError(f"the server referred to a cached message {fwd.ref_hash}")
                elif kind == "stop_auto_rerun":
                    for stopped in fwd.stop_auto_rerun.fragment_ids:
                        self.auto_reruns.pop(stopped, None)
                        timers.pop(stopped, None)
                elif kind == "script_finished":
                    if fwd.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                        self.auto_reruns = timers
                        return page
                    if fwd.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                        self.auto_reruns |= timers
                        page.fragment_run = True
                        return page
                    if fwd.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                        raise RuntimeError("the app failed to compile")

    async def http(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, email.message.Message]:
        """One HTTP request from this tab (its cookies); keeps the cookies the server sets, as a browser
        does. Returns the status and the response's headers."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close"]
        sent = {**self.headers, **(headers or {})} | ({"Content-Length": str(len(body))} if body else {})
        lines += [f"{name}: {value}" for name, value in sent.items()]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        if not data.startswith(b"HTTP/"):
            return 0, email.message.Message()
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n", 1)
        response = email.message_from_bytes(head[1] if len(head) > 1 else b"")
        for cookie in response.get_all("Set-Cookie") or []:
            name, _, value = cookie.partition(";")[0].partition("=")
            if name != ROUTE_COOKIE:  # the replica's cookie belongs to the websocket (connect)
                self.cookies[name.strip()] = value.strip()
        return int(head[0].split(b" ", 2)[1]), response

    async def fetch(self, path: str) -> int:
        """GET one media file like the browser does; returns the HTTP status."""
        return (await self.http("GET", path))[0]

    async def upload(self, uploader: Widget, name: str, data: bytes) -> WidgetState:
        """Upload one file through ``uploader`` the way the browser does; returns the widget state to send.

        The browser asks the session for an upload URL (``file_urls_request`` → ``file_urls_response``),
        PUTs the file there as multipart form data with the XSRF cookie echoed in ``X-Xsrftoken`` (the
        cookie comes with the health check the browser makes before it connects), then reruns the script
        with the uploader's state naming the uploaded file."""
        if XSRF_COOKIE_NAME not in self.cookies:
            await self.http("GET", "/_stcore/health")
        request_id = f"upload-{random.getrandbits(64):x}"
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.append(name)
        await self.ws.send(msg.SerializeToString())
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while True:
                fwd = ForwardMsg()
                fwd.ParseFromString(await self.ws.recv())
                if fwd.WhichOneof("type") == "file_urls_response":
                    response = fwd.file_urls_response
                    if response.response_id == request_id:
                        break
        if response.error_msg:
            raise RuntimeError(f"file_urls_request refused: {response.error_msg}")
        urls = response.file_urls[0]
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        body, content_type = encode_multipart_formdata({"file": (name, data, mime)})  # the browser's FormData
        headers = {"Content-Type": content_type, "X-Xsrftoken": self.cookies.get(XSRF_COOKIE_NAME, "")}
        status, _ = await self.http("PUT", urls.upload_url, headers, body)
        if status not in (200, 204):
            raise RuntimeError(f"upload of {name} to {urls.upload_url}: HTTP {status}")
        info = UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id, file_urls=urls)
        return WidgetState(
            id=uploader.id, file_uploader_state_value=FileUploaderState(uploaded_file_info=[info])
        )

    async def delete_upload(self, state: WidgetState) -> None:
        """Remove an uploaded file, as the browser does when the user replaces it."""
        for info in state.file_uploader_state_value.uploaded_file_info:
            xsrf = {"X-Xsrftoken": self.cookies.get(XSRF_COOKIE_NAME, "")}
            status, _ = await self.http("DELETE", info.file_urls.delete_url, xsrf)
            if status not in (200, 204):
                raise RuntimeError(f"removing {info.name}: HTTP {status}")

    @property
    def token(self) -> str | None:
        return (parse_qs(self.query).get("token") or [None])[0]
