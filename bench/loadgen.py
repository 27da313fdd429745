"""Protocol-level load generator for the participant app: N simulated participants, no browser.

Each simulated participant speaks Streamlit's websocket protocol the way the browser does: it opens
``ws://HOST:PORT/_stcore/stream``, asks for a script run (``BackMsg.rerun_script`` with the URL's query
string), reads the page from the ``ForwardMsg`` deltas (widget ids, options, the form's submit button),
waits a think time, then submits the page the way a browser submits an ``st.form``: one ``rerun_script``
whose widget states hold every answer plus ``trigger_value=True`` for the form's submit button. It also
downloads the page's images (``/media/...``) like a browser would. It goes on until the completion page.

Latency is click → ``script_finished`` of the run that shows the next page. After a run, every simulated
participant's answers are checked in the database: each expected answer stored exactly once. The table also
gives the server's CPU time per submit (from ``/proc``) and the latency of submits that lead to a case page.

The client is importable (tests/test_deployment.py, bench/bench_deployment.py): a :class:`Plan` makes a
participant reload, move to another replica (nginx's sticky cookie), or come back after a dropped
connection or a "not saved" page, checking that it resumes at the right step.

A :class:`SimulatedExplorer` uses the explorer (``/?area=explore``) the same way: it uploads photos through
Streamlit's upload path, follows the page's poller fragment, asks a follow-up and fetches the generated
images, against `skingen worker` processes (:func:`model_workers`); bench/bench_explorer.py runs explorers
beside the participants.

Usage (starts its own servers on fresh SQLite files, prints a markdown table)::

    python bench/loadgen.py --participants 1 10 50 --servers tuned default --think 1 5

    python bench/loadgen.py --url http://127.0.0.1:8501 --participants 5   # an already running server

    python bench/loadgen.py --participants 1 50 --servers tuned --checkout before=/tmp/before  # side by side

    # a few-percent change: both servers up at once, six turns each, the CPU ratio block by block
    python bench/loadgen.py --participants 10 --think 0.1 0.3 --servers tuned --checkout before=/tmp/before \
        --blocks 6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.message
import io
import mimetypes
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME
from urllib3.filepost import encode_multipart_formdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.images import ENLARGE  # noqa: E402
from study.deploy import ROUTE_COOKIE  # noqa: E402  (after the path: the script runs from a clone too)
from study.items.answers import AnswerProblem  # noqa: E402

NOT_SAVED = AnswerProblem("not_saved").message
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


# --- participants ------------------------------------------------------------------------------------------
DROPPED = (websockets.ConnectionClosed, OSError, TimeoutError)  # a replica died, nginx dropped the socket, …


@dataclass(frozen=True)
class Plan:
    """What one simulated participant does besides answering pages (the default: nothing else).

    ``route`` is the sticky-session cookie sent to nginx (which replica serves the tab). After the submits
    numbered in ``reload_after`` the tab reloads (a new session, same URL); after submit ``move_after`` it
    drops the connection and comes back with ``move_route`` (another replica). ``retries``: how often to
    come back after a dropped connection, a page that was not saved or a page that is not available,
    waiting ``retry_wait_s`` in between (what a patient participant does).
    """

    route: str | None = None
    reload_after: frozenset[int] = frozenset()
    move_after: int | None = None
    move_route: str | None = None
    retries: int = 0
    retry_wait_s: float = 0.5
    enlarge: bool = False
    """On every page with images, enlarge one before answering (the server logs each click)."""


@dataclass
class Outcome:
    label: str
    token: str | None = None
    completed: bool = False
    submits: list[float] = field(default_factory=list)
    case_submits: list[float] = field(default_factory=list)  # those whose next page shows images (a case)
    load: float | None = None
    errors: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # forms whose submit showed the next page
    not_saved: int = 0  # pages that came back with "not saved" (and were submitted again)
    reconnects: int = 0
    enlarged: int = 0  # images enlarged (Plan.enlarge)


class SimulatedParticipant:
    """One simulated participant following a :class:`Plan`; :meth:`run` returns its :class:`Outcome`."""

    def __init__(self, base: str, number: int, think: tuple[float, float], seed: int, plan: Plan) -> None:
        self.rng = random.Random(seed * 100_003 + number)
        self.think, self.plan = think, plan
        self.outcome = Outcome(f"loadgen-{number}")
        self.client = StreamlitClient(base, f"PROLIFIC_PID={self.outcome.label}", plan.route)
        self.retries_left = plan.retries

    async def run(self, fetch_media: bool = True) -> Outcome:
        outcome, client = self.outcome, self.client
        await asyncio.sleep(self.rng.uniform(0, self.think[1]))  # arrivals spread out, as in a real study
        try:
            await client.connect()
            start = time.perf_counter()
            page = await self.open_page()
            outcome.load = time.perf_counter() - start
            while page.submit is not None:
                if fetch_media:
                    await media(client, page, outcome)
                await asyncio.sleep(self.rng.uniform(*self.think))
                if self.plan.enlarge and ENLARGE in page.controls:
                    page = await self.enlarge(page)
                following = await self.submit(page)
                if following is None:
                    return outcome
                page = await self.after_submit(following)
            outcome.token = client.token
            outcome.completed = page.completed
            if not outcome.completed:
                outcome.errors.append(f"ended on a page without a completion code: {page.texts[:2]}")
        except Exception as exc:  # every failure is an error in the report
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await client.__aexit__()
        return outcome

    async def enlarge(self, page: Page) -> Page:
        """Click an image's "Enlarge" button, as a browser does (a button trigger); the same step comes back,
        with the image in a dialog."""
        opened = await self.client.run([WidgetState(id=page.controls[ENLARGE].id, trigger_value=True)])
        self.outcome.errors += opened.exceptions
        if opened.form != page.form:
            self.outcome.errors.append(f"enlarging an image on {page.form} showed {opened.form}")
        self.outcome.enlarged += 1
        return opened

    async def open_page(self) -> Page:
        """The current page after (re)connecting; waits out an unavailable study while retries are left."""
        while True:
            try:
                page = await self.client.run()
            except DROPPED:
                if not self.spend_retry():
                    raise
                await self.reconnect()
                continue
            self.outcome.errors += page.exceptions
            if page.submit is not None or page.completed or not self.spend_retry():
                return page
            await asyncio.sleep(self.plan.retry_wait_s)  # "not available right now": come back later

    async def submit(self, page: Page) -> Page | None:
        """Submit ``page`` until it advances; None (and an error) when it can't."""
        while True:
            states = answer(page, self.rng)
            start = time.perf_counter()
            try:
                following = await self.client.run(states)
            except DROPPED:
                if not self.spend_retry():
                    raise
                await self.reconnect()
                following = await self.open_page()
                if following.form in self.outcome.acknowledged:
                    self.outcome.errors.append(f"resumed at {following.form}, answered before")
                    return None
                if following.form != page.form:  # the submit was stored before the connection dropped
                    self.outcome.acknowledged.append(page.form or "")
                    return following
                page = following  # not stored: answer the same step again
                continue
            self.outcome.errors += following.exceptions
            if following.submit is None and not following.completed and self.spend_retry():
                # "not available right now" instead of a page: come back when the study is there again
                await asyncio.sleep(self.plan.retry_wait_s)
                following = await self.open_page()
            if following.form != page.form:
                self.outcome.submits.append(time.perf_counter() - start)
                if following.images:
                    self.outcome.case_submits.append(self.outcome.submits[-1])
                self.outcome.acknowledged.append(page.form or "")
                return following
            self.outcome.not_saved += any(NOT_SAVED in text for text in following.texts)
            if not self.spend_retry():
                self.outcome.errors.append(f"page {page.form} did not advance: {following.texts[-1:]}")
                return None
            await asyncio.sleep(self.plan.retry_wait_s)
            page = following

    async def after_submit(self, page: Page) -> Page:
        """Reload, or move to another replica, where the plan says; the page must be the same afterwards."""
        number = len(self.outcome.acknowledged)
        if number == self.plan.move_after:
            self.client.route = self.plan.move_route
        elif number not in self.plan.reload_after:
            return page
        await self.reconnect()
        again = await self.open_page()
        if again.form != page.form:
            self.outcome.errors.append(f"after reconnecting: {again.form}, expected {page.form}")
        return again

    async def reconnect(self) -> None:
        self.outcome.reconnects += 1
        while True:
            try:
                await self.client.reconnect()
                return
            except DROPPED:
                if not self.spend_retry():
                    raise
                await asyncio.sleep(self.plan.retry_wait_s)

    def spend_retry(self) -> bool:
        self.retries_left -= 1
        return self.retries_left >= 0


async def participant(
    base: str,
    number: int,
    think: tuple[float, float],
    seed: int,
    fetch_media: bool = True,
    plan: Plan = Plan(),
) -> Outcome:
    return await SimulatedParticipant(base, number, think, seed, plan).run(fetch_media)


async def media(client: StreamlitClient, page: Page, outcome: Outcome) -> None:
    statuses = await asyncio.gather(*(client.fetch(url) for url in page.images), return_exceptions=True)
    outcome.errors += [
        f"media {url}: {status}" for url, status in zip(page.images, statuses, strict=True) if status != 200
    ]


async def crowd(
    base: str,
    n: int,
    think: tuple[float, float],
    seed: int,
    rounds: int = 1,
    fetch_media: bool = True,
    plans: Callable[[int], Plan] = lambda _: Plan(),
    first: int = 0,
) -> list[Outcome]:
    """``n`` participants at once; ``rounds`` > 1 runs that many groups one after the other (more samples).
    ``plans(number)`` gives each participant's plan (reloads, replica moves, retries); participants are
    numbered from ``first`` (their labels must be new to the database)."""
    outcomes: list[Outcome] = []
    for r in range(rounds):
        numbers = range(first + r * n, first + (r + 1) * n)
        outcomes += await asyncio.gather(
            *(participant(base, i, think, seed, fetch_media, plans(i)) for i in numbers)
        )
    return outcomes


async def warm_up(base: str) -> None:
    """One quick participant before measuring: the server's first runs import and compile the app."""
    outcome = await participant(base, 10_000, (0.0, 0.0), seed=0)
    if outcome.errors:
        raise RuntimeError(f"warm-up participant failed: {outcome.errors}")


# --- explorers ---------------------------------------------------------------------------------------------
EXPLORE_QUERY = "area=explore"
UPLOADER = "A photo of the skin area"  # the labels of app/views/explore.py's inputs
CHAT_BOX = "Ask a follow-up question"
SHOW = "Show what it looks like"
DIAGNOSED = "**The AI's diagnosis**"
ANSWERED = ("Mapped onto the taxonomy", "Names no condition we know")  # a follow-up's answer caption
GENERATED = "AI-generated:"  # the caption of every generated image
QUESTIONS = ("Does it itch?", "What else could it be?", "Is it contagious?", "Should I see a doctor?")
MODEL_WAIT_S = 600.0  # a hang guard for one answer from the workers, not a speed check


@dataclass
class ExplorerOutcome:
    """One simulated explorer's work: finished explorations, images seen, latencies (s), errors."""

    label: str
    explorations: int = 0
    images_shown: int = 0  # generated images the pages showed
    images_fetched: int = 0  # media files (photo and generated images) downloaded with HTTP 200
    diagnosis: list[float] = field(default_factory=list)  # upload → diagnosis shown
    answer: list[float] = field(default_factory=list)  # question sent → answer shown
    images: list[float] = field(default_factory=list)  # "Show what it looks like" → images shown
    errors: list[str] = field(default_factory=list)


def explorer_photo(number: int, exploration: int) -> bytes:
    """A skin-coloured PNG with a red spot, different for every explorer and exploration (so every
    diagnosis, answer and image is a new job: equal requests would share one)."""
    from PIL import Image, ImageDraw

    rng = random.Random(f"{number}:{exploration}")
    image = Image.new(
        "RGB", (128, 128), (rng.randrange(120, 230), rng.randrange(90, 170), rng.randrange(60, 130))
    )
    x, y, r = rng.randrange(30, 90), rng.randrange(30, 90), rng.randrange(10, 30)
    ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(140, 200), 40, 50))
    for i, value in enumerate((number, exploration)):  # two corner pixels: no two photos are equal
        image.putpixel((i, 0), (value >> 16 & 255, value >> 8 & 255, value & 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class SimulatedExplorer:
    """One user of the explorer (``/?area=explore``), speaking the protocol as the browser does.

    Per exploration: upload a new photo, follow the page's poller (the ``run_every`` fragment of
    app/conversation.py) until the diagnosis is shown, ask one follow-up in the chat box and wait
    for its answer, click "Show what it looks like", wait for the images and download them; with a think
    time between actions. Like the browser it sends the uploader's state with every run (a widget state
    missing from a run is the widget's default: no photo). It goes on until ``stop`` is set, finishing the
    exploration under way; an exploration that fails is an error, and the next starts on a new session.
    """

    def __init__(self, base: str, number: int, think: tuple[float, float], seed: int) -> None:
        self.rng = random.Random(seed * 100_019 + number)
        self.number, self.think = number, think
        self.outcome = ExplorerOutcome(f"explorer-{number}")
        self.client = StreamlitClient(base, EXPLORE_QUERY)
        self.photo_state: WidgetState | None = None
        self.page = Page()

    async def run(self, stop: asyncio.Event, limit: int | None = None) -> ExplorerOutcome:
        """Explore until ``stop`` is set (or ``limit`` explorations were tried: a warm-up, a test)."""
        await asyncio.sleep(self.rng.uniform(0, self.think[1]))  # arrivals spread out
        tried = 0
        try:
            await self.client.connect()
            while not stop.is_set() and (limit is None or tried < limit):
                tried += 1
                try:
                    await self.explore()
                    self.outcome.explorations += 1
                except Exception as exc:  # every failure is an error in the report; start afresh
                    self.outcome.errors.append(f"{type(exc).__name__}: {exc}")
                    await self.client.reconnect()
                    self.photo_state, self.page = None, Page()
        except Exception as exc:
            self.outcome.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await self.client.__aexit__()
        return self.outcome

    async def explore(self) -> None:
        """One photo: diagnosis, one follow-up, the images (numbered steps as the user takes them)."""
        outcome = self.outcome
        # 1. Upload a new photo (on a new session, open the page first; the old photo is removed, as in the
        # browser when the user replaces it)
        if UPLOADER not in self.page.controls:
            self.page = await self.rerun()
        uploader = self.control(UPLOADER)
        if self.photo_state is not None:
            await self.client.delete_upload(self.photo_state)
        name = f"spot-{self.number}-{outcome.explorations}.png"
        start = time.perf_counter()
        self.photo_state = await self.client.upload(
            uploader, name, explorer_photo(self.number, outcome.explorations)
        )
        self.page = await self.rerun()
        await self.until(lambda page: DIAGNOSED in page.texts, "the diagnosis")
        outcome.diagnosis.append(time.perf_counter() - start)
        # 2. Ask one follow-up question and wait for its answer
        await asyncio.sleep(self.rng.uniform(*self.think))
        box = self.control(CHAT_BOX)
        start = time.perf_counter()
        question = WidgetState(id=box.id)
        question.chat_input_value.data = self.rng.choice(QUESTIONS)
        self.page = await self.rerun([question])
        await self.until(lambda page: any(text.startswith(ANSWERED) for text in page.texts), "the answer")
        outcome.answer.append(time.perf_counter() - start)
        # 3. Ask for the pictures, wait for them and download every image of the page
        await asyncio.sleep(self.rng.uniform(*self.think))
        start = time.perf_counter()
        self.page = await self.rerun([WidgetState(id=self.control(SHOW).id, trigger_value=True)])
        await self.until(lambda page: any(c.startswith(GENERATED) for c in page.captions), "the images")
        outcome.images.append(time.perf_counter() - start)
        outcome.images_shown += sum(c.startswith(GENERATED) for c in self.page.captions)
        statuses = await asyncio.gather(*(self.client.fetch(url) for url in self.page.images))
        outcome.images_fetched += statuses.count(200)
        if statuses.count(200) != len(statuses):
            raise RuntimeError(f"media: HTTP {sorted(set(statuses) - {200})}")
        await asyncio.sleep(self.rng.uniform(*self.think))

    async def rerun(self, triggers: list[WidgetState] = (), fragment_id: str | None = None) -> Page:
        """A run with the photo's state (and ``triggers``: a click, a question), as the browser sends it."""
        states = ([self.photo_state] if self.photo_state is not None else []) + list(triggers)
        page = await self.client.run(states, fragment_id)
        if page.exceptions:
            raise RuntimeError(f"the page raised {page.exceptions[0]}")
        return page

    async def until(self, shown: Callable[[Page], bool], what: str) -> None:
        """Follow the page's poller like the browser's timer until ``shown(page)``: each tick reruns the
        fragment; the fragment reruns the whole page when a job finished. The explorer draws one poller."""
        deadline = time.monotonic() + MODEL_WAIT_S
        while not shown(self.page):
            if not self.client.auto_reruns:
                raise RuntimeError(f"no {what}, and the page stopped polling: {self.page.texts[-2:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {MODEL_WAIT_S:.0f} s")
            fragment_id, interval = next(iter(self.client.auto_reruns.items()))
            await asyncio.sleep(interval)
            page = await self.rerun(fragment_id=fragment_id)
            if not page.fragment_run:
                self.page = page

    def control(self, label: str) -> Widget:
        if label not in self.page.controls:
            raise RuntimeError(f"no {label!r} on the page: {self.page.texts[-2:]}")
        return self.page.controls[label]


async def explorers(
    base: str, n: int, think: tuple[float, float], seed: int, stop: asyncio.Event
) -> list[ExplorerOutcome]:
    """``n`` explorer users at once, exploring until ``stop`` is set."""
    return await asyncio.gather(*(SimulatedExplorer(base, i, think, seed).run(stop) for i in range(n)))


# --- checking the database ---------------------------------------------------------------------------------
def verify(db_url: str, protocol: Path, outcomes: list[Outcome]) -> tuple[int, int, list[str]]:
    """(answers stored, answers expected, problems) for the simulated participants' tokens; an image a
    participant enlarged is one logged ``image_enlarge`` event, no more, no fewer."""
    from sqlalchemy import func, select

    from db.models import Event, Response
    from db.session import Database
    from formats.contract import IMAGE_ENLARGE_EVENT
    from study.engine import StudyEngine
    from study.path import expected_fields

    db = Database(db_url)
    engine = StudyEngine.open(db, str(protocol))
    stored_total = expected_total = 0
    problems = []
    try:
        for outcome in outcomes:
            if outcome.token is None:
                problems.append(f"{outcome.label}: no token")
                continue
            position = engine.position(outcome.token)
            arm_path = engine.path(position.arm, _order_seed(engine, position.participant_id))
            expected = sorted((s.key, f) for s in arm_path for f in expected_fields(s))
            with db.read() as session:
                stored = sorted(
                    session.execute(
                        select(Response.step_key, Response.item_id).where(
                            Response.participant_id == position.participant_id
                        )
                    ).all()
                )
                enlarged = session.scalar(
                    select(func.count()).where(
                        Event.participant_id == position.participant_id, Event.kind == IMAGE_ENLARGE_EVENT
                    )
                )
            if enlarged != outcome.enlarged:
                problems.append(
                    f"{outcome.label}: {enlarged} enlarged images logged, {outcome.enlarged} clicked"
                )
            stored_total += len(stored)
            expected_total += len(expected)
            if not position.completed:
                problems.append(f"{outcome.label}: not completed in the database")
            if [tuple(row) for row in stored] != expected:
                problems.append(f"{outcome.label}: {len(stored)} answers stored, {len(expected)} expected")
    finally:
        db.dispose()
    return stored_total, expected_total, problems


def _order_seed(engine, participant_id: int) -> int | None:
    from db.models import Participant

    with engine.db.read() as session:
        return session.get(Participant, participant_id).order_seed


# --- servers -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(base: str) -> bool:
    """Does the Streamlit server at ``base`` answer its health check?"""
    try:
        with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def app_server(
    kind: str,
    protocol: Path,
    workdir: Path,
    root: Path = ROOT,
    extra: Sequence[str] = (),
    db_url: str | None = None,
) -> Iterator[tuple[str, str, int]]:
    """`skingen-study serve` (tuned, or --default-streamlit) on a free port and a fresh SQLite file (or the
    study already in ``db_url``: a second server of the same study); yields its URL, database URL and
    process id. ``root``: the checkout whose code the server runs; ``extra``: more `serve` options
    (``--explorer-open``)."""
    port = free_port()
    init = ["--init"] if db_url is None else []
    db_url = db_url or f"sqlite:///{workdir}/{kind}-{port}.db"
    command = [
        sys.executable,
        "-m",
        "app.study_command",
        "serve",
        *init,
        "--db",
        db_url,
        "--protocol",
        str(protocol),
    ]
    command += ["--port", str(port), *extra] + (["--default-streamlit"] if kind == "default" else [])
    log = (workdir / f"{kind}-{port}.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {log.name}")
            time.sleep(0.3)
        yield base, db_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def lowest_priority() -> None:
    """This process at the lowest priority (what :func:`model_workers` gives the workers): Linux's idle
    scheduling class, else nice 19. It then runs only when nothing else wants the CPU."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


@contextmanager
def model_workers(
    count: int, db_url: str, chat_url: str, sd: Path, workdir: Path, nice: bool = True
) -> Iterator[list[int]]:
    """``count`` `skingen worker` processes on CPU (``sd`` a tiny model: 64×64, 2 steps; the diagnosis and
    answers from the chat endpoint ``chat_url``), no image cache so every image is generated; yields their
    process ids. ``nice``: at the lowest priority, so that they stand in for GPU machines elsewhere and take
    CPU only when the app server does not want it: Linux's idle scheduling class (``chrt --idle 0``, below
    any nice level), else ``nice -n 19``; one compute thread each (``OMP_NUM_THREADS=1``)."""
    command = [sys.executable, "-m", "skingen", "worker", "--db", db_url, "--chat-endpoint", chat_url]
    command += ["--sd", str(sd), "--steps", "2", "--width", "64", "--height", "64", "--device", "cpu"]
    command += ["--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    lowest = ["chrt", "--idle", "0"] if shutil.which("chrt") else ["nice", "-n", "19"]
    with contextlib.ExitStack() as stack:
        processes = []
        for i in range(count):
            log = stack.enter_context((workdir / f"worker-{i}-{free_port()}.log").open("w"))
            niced = lowest if nice else []
            processes.append(
                subprocess.Popen(
                    [*niced, *command, "--name", f"loadgen-worker-{i}"],
                    cwd=workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            yield [process.pid for process in processes]
        finally:
            for process in processes:
                process.terminate()  # SIGTERM: the worker stops after its current batch
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def checkout(value: str) -> tuple[str, str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not Path(folder, "study").is_dir():
        raise SystemExit(f"--checkout expects NAME=DIR with DIR a clone of this project, got {value!r}")
    return name, "tuned", Path(folder).resolve()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- reporting ---------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    server: str
    participants: int
    outcomes: list[Outcome]
    stored: int | None = None
    expected: int | None = None
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float | None = None  # the server process's CPU time (user + system) during the run
    block_cpu_ms: list[float] = field(default_factory=list)  # CPU ms per submit of each block (--blocks)

    @property
    def errors(self) -> int:
        return sum(len(o.errors) for o in self.outcomes) + len(self.problems)

    def cells(self) -> list[str]:
        submits = [s * 1000 for o in self.outcomes for s in o.submits]
        loads = [o.load * 1000 for o in self.outcomes if o.load is not None]
        cases = [s * 1000 for o in self.outcomes for s in o.case_submits]
        errors = self.errors
        done = sum(o.completed for o in self.outcomes)
        stored = "–" if self.stored is None else f"{self.stored}/{self.expected}"
        return [
            self.server,
            str(self.participants),
            f"{done}/{len(self.outcomes)}",
            str(len(submits)),
            f"{statistics.median(submits):.0f}" if submits else "–",
            f"{percentile(submits, 95):.0f}",
            f"{percentile(submits, 99):.0f}",
            f"{max(submits):.0f}" if submits else "–",
            f"{statistics.median(loads):.0f}" if loads else "–",
            f"{percentile(cases, 50):.0f} / {percentile(cases, 95):.0f}" if cases else "–",
            str(errors),
            stored,
            f"{self.wall_s:.0f}",
            "–" if self.cpu_s is None or not submits else f"{self.cpu_s * 1000 / len(submits):.1f}",
        ]


HEADER = [
    "server",
    "participants",
    "completed",
    "submits",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "first load p50 ms",
    "→ case page p50 / p95 ms",
    "errors",
    "answers in DB",
    "run s",
    "server CPU ms/submit",
]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(rows: list[Row]) -> str:
    return markdown(HEADER, [row.cells() for row in rows])


def paired(rows: list[Row]) -> list[str]:
    """Each other server's CPU per submit over the first one's, block by block: blocks that ran minutes
    apart compare only within themselves, as the machine's speed drifts (by 10 % and more on a shared VM)."""
    first, lines = rows[0], []
    for row in rows[1:]:
        ratios = [b / a for a, b in zip(first.block_cpu_ms, row.block_cpu_ms, strict=True) if a > 0]
        if len(ratios) > 1:
            lines.append(
                f"CPU per submit, {row.server} / {first.server} at {row.participants} participants, per block: "
                f"{' '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}"
            )
    return lines


def measure_level(
    servers: list[tuple[str, str, Path]], n: int, args: argparse.Namespace, think: tuple[float, float]
) -> list[Row]:
    """``n`` participants on each server: all servers up at once, then ``args.blocks`` crowds on each,
    taking turns (A B, B A, A B …), so that a drift of the machine's speed falls on all of them alike."""
    rounds = args.single_rounds if n == 1 else 1
    with tempfile.TemporaryDirectory(prefix="skingen-loadgen-") as tmp, contextlib.ExitStack() as stack:
        running = []
        for label, kind, root in servers:
            base, db_url, pid = stack.enter_context(app_server(kind, args.protocol, Path(tmp), root))
            asyncio.run(warm_up(base))
            running.append((Row(label, n, []), base, db_url, pid))
        for block in range(args.blocks):
            for row, base, _, pid in running if block % 2 == 0 else running[::-1]:
                start, cpu = time.monotonic(), cpu_seconds(pid)
                outcomes = asyncio.run(
                    crowd(
                        base,
                        n,
                        think,
                        args.seed,
                        rounds,
                        not args.no_media,
                        plans=lambda _: Plan(enlarge=args.enlarge),
                        first=block * n * rounds,
                    )
                )
                spent = cpu_seconds(pid) - cpu
                row.wall_s += time.monotonic() - start
                row.cpu_s = (row.cpu_s or 0.0) + spent
                row.block_cpu_ms.append(1000 * spent / max(1, sum(len(o.submits) for o in outcomes)))
                row.outcomes += outcomes
                if args.blocks > 1:
                    print(
                        f"{row.server}, {n}, block {block + 1}: {row.block_cpu_ms[-1]:.1f} ms CPU/submit",
                        file=sys.stderr,
                        flush=True,
                    )
        for row, _, db_url, _ in running:
            row.stored, row.expected, row.problems = verify(db_url, args.protocol, row.outcomes)
            print(table([row]).splitlines()[-1], file=sys.stderr, flush=True)
        return [row for row, *_ in running]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--servers", nargs="+", choices=["tuned", "default"], default=["tuned", "default"])
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument(
        "--protocol", type=Path, help="default: the demo study (`serve --demo`'s, drawn if missing)"
    )
    parser.add_argument("--url", help="use this running server instead of starting one (no DB check)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--single-rounds",
        type=int,
        default=3,
        help="the 1-participant level runs this many participants one after the other (more samples)",
    )
    parser.add_argument("--no-media", action="store_true", help="don't download the pages' images")
    parser.add_argument(
        "--enlarge", action="store_true", help="enlarge one image on every case page (a logged click)"
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also run the tuned server from another checkout (e.g. before a change), side by side",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=1,
        help="run each level this many times per server, the servers taking turns; reports the paired "
        "CPU-per-submit ratios (a small difference shows only this way on a machine whose speed drifts)",
    )
    args = parser.parse_args(argv)
    if args.url and args.blocks > 1:
        parser.error("--blocks takes turns between servers loadgen starts itself; it can't with --url")
    think = (args.think[0], args.think[1])
    rows: list[Row] = []
    if args.url:
        for n in args.participants:
            start = time.monotonic()
            rounds = args.single_rounds if n == 1 else 1
            plans = lambda _: Plan(enlarge=args.enlarge)  # noqa: E731
            outcomes = asyncio.run(crowd(args.url, n, think, args.seed, rounds, not args.no_media, plans))
            rows.append(Row("running", n, outcomes, wall_s=time.monotonic() - start))
            print(table(rows[-1:]), file=sys.stderr)
    else:
        if args.protocol is None:
            from app.demo import demo_dir, prepare_demo

            args.protocol = prepare_demo(demo_dir())
        args.protocol = args.protocol.resolve()
        servers = [(kind, kind, ROOT) for kind in args.servers] + [checkout(c) for c in args.checkout]
        for n in args.participants:  # servers side by side at each level: the same machine load
            rows += measure_level(servers, n, args, think)
    for row in rows:
        for message in [e for o in row.outcomes for e in o.errors][:5] + row.problems[:5]:
            print(f"  {row.server}/{row.participants}: {message}", file=sys.stderr)
    print(
        f"\nthink time {think[0]:g}–{think[1]:g} s; latency = submit click → next page's script_finished; "
        f"the 1-participant level ran {args.single_rounds} participants one after the other\n"
    )
    print(table(rows))
    for n in args.participants:
        for line in paired([row for row in rows if row.participants == n]):
            print(f"\n{line}")
    return 0 if all(row.errors == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
