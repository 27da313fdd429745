"""End to end in a real browser: `skingen-study serve` + Debian chromium, one participant through the demo.

Screenshots of every page type go to the test's tmp directory (and to $SKINGEN_SCREENSHOT_DIR if set), so a
person can check what participants see. Runs in CI (CI=true makes a missing browser a failure, not a skip).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.servers import free_port, stop, wait_until_healthy
from tests.conftest import require

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

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # a hang guard, not a speed check
# Streamlit loads an element type's code the first time a page uses it (st.code, plotly, …), so such an
# element appears after the run is over. The tests delay every script loaded after the first page by this
# much: an assertion that reads the page instead of waiting for what it needs fails every time, not only
# on a loaded machine.
LATE_SCRIPT_DELAY_S = 1.0


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    from skingen.bundle.demo.writer import build_demo_bundle

    root = tmp_path_factory.mktemp("demo") / "bundle"
    build_demo_bundle(root, seed=2024, n_references=3, size=384)
    return root


class AppServer:
    """`skingen-study serve` as a subprocess on a fixed port, which can be stopped and started again."""

    def __init__(self, workdir: Path, db_url: str, protocol: Path, extra: tuple[str, ...] = ()) -> None:
        self.workdir, self.db_url, self.protocol, self.extra = workdir, db_url, protocol, extra
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "server.log"

    def start(self) -> None:
        command = [sys.executable, "-m", "app.study_command", "serve", "--init", "--db", self.db_url]
        command += ["--protocol", str(self.protocol), "--port", str(self.port), *self.extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SKINGEN_TEST_HOOKS": "1"}
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


@pytest.fixture
def server(tmp_path, demo_bundle):
    """The between-subjects demo study on a free port with a fresh SQLite file."""
    from tests.factories import example_protocol, write_protocol

    protocol = write_protocol(tmp_path, example_protocol("between"), bundle=demo_bundle)
    app = AppServer(tmp_path, f"sqlite:///{tmp_path}/study.db", protocol)
    try:
        app.start()
        yield app
    finally:
        app.stop()


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


@pytest.fixture
def browser():
    """Debian's chromium driven by playwright (skipped locally without them, a failure in CI)."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "python playwright is missing (pip install playwright)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path):
    """Screenshot folder of a test; copied to $SKINGEN_SCREENSHOT_DIR afterwards, if set."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    target = os.environ.get("SKINGEN_SCREENSHOT_DIR")
    if target:
        shutil.copytree(folder, target, dirs_exist_ok=True)


def test_a_participant_completes_the_demo_study_in_chromium(server, browser, shots):
    base = server.base

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{base}/?PROLIFIC_PID=browser-1&STUDY_ID=s1")
    p.expect_text("Participant information")
    assert page.title() == "Understanding AI skin diagnoses"
    assert p.chrome_visible() == []
    p.shot("01-consent")
    p.click("I agree — start the study")
    p.expect_text("please tick every statement")
    p.shot("02-consent-missing")
    for box in range(p.page.get_by_test_id("stCheckbox").count()):
        p.page.get_by_test_id("stCheckbox").nth(box).click()
    p.click("I agree — start the study")
    assert "token=" in page.url and "PROLIFIC_PID=browser-1" in page.url
    p.expect_heading("About you")
    p.shot("03-entry")
    p.answer_all(option=1)
    p.click("Continue")
    p.shot("04-instructions")
    p.click("Start with the first case")
    for trials in range(1, 11):
        p.expect_text(f"Case {trials} of 10")
        if trials == 1:
            p.click("Next")
            p.expect_text("not been saved")
            p.shot("06-trial-missing-answers")
        if trials == 3:
            p.answer_all()  # answered but not submitted: a reload keeps the step, not the form
            p.reload()
            p.expect_text("Case 3 of 10")
            assert "token=" in page.url
        if trials == 5:
            restart_mid_page(server, p, trials)
            continue
        p.answer_all()
        if trials == 1:
            p.shot("05-trial")
        p.page.get_by_role("button", name="Next").scroll_into_view_if_needed()
        p.click("Next")
        assert p.scroll_top() == 0, "each new step opens at its top"
    p.expect_text("About the explanations")
    p.shot("07-post-block")
    p.answer_all(option=5)
    p.click("Continue")
    p.shot("08-post")
    p.answer_all()
    p.click("Continue")
    p.expect_text("what this study was about")
    p.shot("09-debrief")
    p.click("Finish and get your completion code")
    p.expect_text("Your completion code", "SKGDEMO1")
    p.shot("10-complete")
    p.reload()
    p.expect_text("Your completion code", "SKGDEMO1")
    assert not p.page.get_by_test_id("stCheckbox").count()

    forged = browser.new_page(viewport={"width": 1280, "height": 900})
    q = Participant(forged, shots)
    q.open(f"{base}/?token=not-a-real-token")
    q.expect_text("This link is not valid")
    q.shot("11-invalid-link")
    both_trial_layouts(browser, base, shots)

    check_database(server.db_url, server.protocol)


def restart_mid_page(server: AppServer, p: Participant, number: int) -> None:
    """The server restarts while case ``number`` is open: answering it and clicking Next must just work."""
    server.stop()
    server.start()
    p.answer_all()
    p.page.get_by_role("button", name="Next").click()
    p.page.wait_for_function(RECONNECTED, timeout=60_000)
    p.expect_text(f"Case {number + 1} of 10")  # one click, one step
    assert f"Case {number + 2} of 10" not in p.text()


def both_trial_layouts(browser, base: str, shots: Path) -> None:
    """New participants until both conditions' first case is on screen, to screenshot both trial layouts."""
    wanted = {"05-trial-visual", "05-trial-text"}
    for n in range(8):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        p = Participant(page, shots)
        p.open(f"{base}/?PROLIFIC_PID=browser-extra-{n}")
        for box in range(page.get_by_test_id("stCheckbox").count()):
            page.get_by_test_id("stCheckbox").nth(box).click()
        p.click("I agree — start the study")
        p.answer_all(option=1)
        p.click("Continue")
        p.click("Start with the first case")
        # The references are drawn before the form: once its button shows, the layout is complete.
        p.expect_text("Case 1 of", "The AI's diagnosis")
        page.get_by_role("button", name="Next").wait_for()
        name = "05-trial-visual" if "Generated example pictures" in p.text() else "05-trial-text"
        if name in wanted:
            p.shot(name)
            wanted.discard(name)
        page.close()
        if not wanted:
            return
    raise AssertionError(f"no participant got a {wanted} trial in 8 tries (allocation blocks of 4 and 6)")


def check_database(db_url: str, protocol: Path) -> None:
    from db.models import Participant as ParticipantRow
    from db.models import Response
    from db.session import Database
    from study.engine import StudyEngine
    from study.path import expected_fields

    engine = StudyEngine.open(Database(db_url), str(protocol))
    with engine.db.read() as session:
        first = session.scalar(select(ParticipantRow).order_by(ParticipantRow.id))
        assert first.status == "completed"
        assert first.url_params == {"PROLIFIC_PID": "browser-1", "STUDY_ID": "s1"}
        stored = session.execute(
            select(Response.step_key, Response.item_id).where(Response.participant_id == first.id)
        ).all()
    path = engine.path(first.arm, first.order_seed)
    expected = {(step.key, field) for step in path for field in expected_fields(step)}
    assert sorted(stored) == sorted(expected), "every answer stored exactly once"
