"""The browser suite's harness: Debian chromium's flags, `skingen-study serve` as a subprocess, and a
participant who waits for each Streamlit rerun instead of sleeping. Its fixtures (``browser``, ``shots``,
``demo_bundle``, ``server``) live in tests/conftest.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from PIL import Image, ImageDraw

from bench.servers import free_port, stop, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The app renders a hidden run counter last (SKINGEN_TEST_HOOKS=1): a rerun is over when it has grown and
# the app says it is not running. The script-state attribute alone misses fast reruns.
# Widgets load their code on first use and can appear after the counter: wait for as many as the app drew.
RERUN_DONE = """([before]) => {
  const counter = document.getElementById('skingen-run');
  const app = document.querySelector('[data-testid="stApp"]');
  const inputs = document.querySelectorAll(
    '[data-testid="stMain"] :is([data-testid="stRadio"], [data-testid="stSelectbox"], '
    + '[data-testid="stCheckbox"], [data-testid="stTextArea"], [data-testid="stNumberInput"])');
  return counter !== null && Number(counter.textContent) > before
    && inputs.length >= Number(counter.dataset.inputs)
    && app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""

# After a server restart the browser reconnects quietly; the next click runs in a new session, whose
# counter starts again at 1.
RECONNECTED = """() => {
  const counter = document.getElementById('skingen-run');
  const app = document.querySelector('[data-testid="stApp"]');
  return counter !== null && counter.textContent === '1'
    && app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
# Streamlit loads an element type's code the first time a page uses it (st.code, plotly, …), so such an
# element appears after the run is over. The tests delay every script loaded after the first page by this
# much: an assertion that reads the page instead of waiting for what it needs fails every time, not only
# on a loaded machine.
LATE_SCRIPT_DELAY_S = 1.0


class AppServer:
    """`skingen-study serve` as a subprocess on a fixed port, which can be stopped and started again."""

    def __init__(
        self,
        workdir: Path,
        db_url: str,
        protocol: Path,
        extra: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir, self.db_url, self.protocol, self.extra = workdir, db_url, protocol, extra
        self.env = dict(env or {})  # more environment for the server (a researcher password hash)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "server.log"

    def start(self) -> None:
        command = [sys.executable, "-m", "app.study_command", "serve", "--init", "--db", self.db_url]
        command += ["--protocol", str(self.protocol), "--port", str(self.port), *self.extra]
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "SKINGEN_TEST_HOOKS": "1"}
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_healthy(self.base, self.process, self.log_path, timeout=90)

    def stop(self) -> None:
        if self.process is None:
            return
        stop(self.process)
        self.process = None


def delay_late_scripts(page) -> dict:
    """Hold back each script first requested after the page's first run by ``LATE_SCRIPT_DELAY_S``; returns the
    switch (``state["on"]``) that :meth:`Participant.open` turns on."""
    state = {"on": False, "seen": set()}

    def handle(route) -> None:
        url = route.request.url
        if state["on"] and url not in state["seen"]:
            time.sleep(LATE_SCRIPT_DELAY_S)
        state["seen"].add(url)
        route.continue_()

    page.route(re.compile(r".*/static/js/.*\.js$"), handle)
    return state


class Participant:
    """A person at the browser: waits for each rerun to finish before the next click."""

    def __init__(self, page, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.late_scripts = delay_late_scripts(page)

    def runs(self) -> int:
        counter = self.page.locator("#skingen-run")
        return int(counter.text_content() or 0) if counter.count() else 0

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function(RERUN_DONE, arg=[0])
        self.late_scripts["on"] = True

    def reload(self) -> None:
        self.page.reload()
        self.page.wait_for_function(RERUN_DONE, arg=[0])

    def click(self, button: str) -> None:
        before = self.runs()
        self.page.get_by_role("button", name=button).click()
        self.page.wait_for_function(RERUN_DONE, arg=[before])

    def shot(self, name: str) -> None:
        """The whole page: Streamlit scrolls inside stMain, so grow the viewport to the content first."""
        self.page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
        size = self.page.viewport_size
        height = 80 + self.page.evaluate(
            "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
        )
        self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)
        self.page.set_viewport_size(size)

    def answer_all(self, option: int = 4) -> None:
        """Choose an answer for every question on the page (the ``option``-th choice, or the last)."""
        radios = self.page.get_by_test_id("stRadio")
        for index in range(radios.count()):
            options = radios.nth(index).get_by_test_id("stRadioOption")
            options.nth(min(option, options.count()) - 1).click()
        selects = self.page.get_by_test_id("stSelectbox")
        for index in range(selects.count()):
            selects.nth(index).click()
            self.page.get_by_role("option").first.click()
        areas = self.page.get_by_test_id("stTextArea").locator("textarea")
        for index in range(areas.count()):
            areas.nth(index).fill("The pictures were clear.")

    def scroll_top(self) -> int:
        return self.page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTop")

    def chrome_visible(self) -> list[str]:
        """Streamlit's own controls a participant could wander into, if any are visible."""
        ids = ("stToolbar", "stMainMenu", "stAppDeployButton", "stSidebar", "stSidebarNav", "stHeader")
        return [
            i
            for i in ids
            if self.page.get_by_test_id(i).count() and self.page.get_by_test_id(i).first.is_visible()
        ]

    def expect_text(self, *texts: str) -> None:
        """Wait until the page shows every one of ``texts``: an element can render after its run is over
        (its code loads on first use), so reading the page once right after a rerun is not enough."""
        from playwright.sync_api import expect

        for text in texts:
            expect(self.page.get_by_test_id("stMain")).to_contain_text(text)

    def expect_heading(self, text: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("h1, h2").first).to_have_text(text)

    def text(self) -> str:
        """The page's text as it is now: only for choices after ``expect_text`` waited for the page."""
        return self.page.get_by_test_id("stMain").inner_text()


def skin_photo(path: Path) -> Path:
    """A photo to upload to the explorer: a dark red spot on skin-coloured ground."""
    image = Image.new("RGB", (160, 160), (190, 140, 105))
    ImageDraw.Draw(image).ellipse((50, 50, 110, 110), fill=(160, 40, 50))
    image.save(path)
    return path
