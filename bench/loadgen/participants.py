"""Simulated participants: each follows the study page by page through :class:`~bench.loadgen.client.StreamlitClient`
until the completion page, thinking between clicks; a :class:`Plan` adds reloads, replica moves and retries.

Latency is click → ``script_finished`` of the run that shows the next page; :class:`Outcome` keeps it with
the first load, the submits that lead to a case page, errors and reconnects.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets
from streamlit.proto.WidgetStates_pb2 import WidgetState

from app.images import ENLARGE
from bench.loadgen.client import Page, StreamlitClient, answer
from study.items.answers import AnswerProblem

NOT_SAVED = AnswerProblem("not_saved").message
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
