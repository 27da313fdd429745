"""Simulated users of the explorer (``/?area=explore``): upload a photo through Streamlit's upload path, follow
the page's poller fragment until the diagnosis, ask a follow-up, fetch the generated images — against
`skingen worker` processes (:func:`bench.servers.model_workers`); bench/bench_explorer.py runs them beside
the participants.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench.loadgen.client import Page, StreamlitClient, Widget

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
