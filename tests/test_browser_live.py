"""The live model in a real browser: the explorer (upload → diagnosis → follow-up → references) and an
interactive-condition participant through the whole study, answered by a `skingen worker` process on tiny
models and a local OpenAI-compatible chat server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from db.jobs import JobQueue
from db.session import Database
from tests.browser import RERUN_DONE, AppServer, Participant, skin_photo
from tests.chat_server import ChatServer
from tests.factories import interactive_conditions
from tests.skingen_fixtures import tiny_models

pytestmark = [pytest.mark.browser, pytest.mark.ml, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
MODEL_WAIT_MS = 300_000  # a worker's first job loads torch and the models: a hang guard, not a speed check


@pytest.fixture
def chat():
    with ChatServer() as server:
        yield server


@pytest.fixture
def live_study(tmp_path, tmp_path_factory, chat, demo_bundle):
    """The within demo with an interactive visual condition, served with an open explorer, and one worker."""
    pytest.importorskip("torch")
    from tests.factories import example_protocol, write_protocol

    data = example_protocol("within")
    data["conditions"] = interactive_conditions(questions=1, references=2)
    protocol = write_protocol(tmp_path, data, bundle=demo_bundle)
    url = f"sqlite:///{tmp_path}/live.db"
    app = AppServer(tmp_path, url, protocol, extra=("--explorer-open",))
    sd = tiny_models(tmp_path_factory).sd
    command = [
        sys.executable,
        "-m",
        "skingen",
        "worker",
        "--db",
        url,
        "--chat-endpoint",
        chat.url,
        "--sd",
        str(sd),
    ]
    command += [
        "--steps",
        "2",
        "--width",
        "64",
        "--height",
        "64",
        "--device",
        "cpu",
        "--name",
        "browser-worker",
    ]
    command += ["--cache", str(tmp_path / "cache")]
    log = (tmp_path / "worker.log").open("w")
    worker = None
    try:
        app.start()  # registers the study: the schema exists before the worker connects
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        yield app
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        log.close()
        app.stop()


def expect_text(p: Participant, text: str) -> None:
    from playwright.sync_api import expect

    expect(p.page.get_by_test_id("stMain")).to_contain_text(text, timeout=MODEL_WAIT_MS)


def ask(p: Participant, question: str) -> None:
    """Type into the chat box and send, once the rerun that drew it is over (a rerun redraws the box)."""
    p.page.wait_for_function(RERUN_DONE, arg=[p.runs() - 1])
    box = p.page.get_by_test_id("stChatInputTextArea")
    box.click()
    box.press_sequentially(question)
    p.page.get_by_test_id("stChatInputSubmitButton").click()


def test_explorer_upload_diagnosis_follow_up_and_references(live_study, browser, shots, chat, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{live_study.base}/?area=explore")
    p.expect_text("SkinGEN explorer")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
        skin_photo(tmp_path / "spot.png")
    )
    expect_text(p, "silvery scales on a red plaque.")  # the page polled the worker until it answered
    expect_text(p, "It could also be:")
    p.shot("explore-1-diagnosis")
    chat.replies = ["Psoriasis often itches a little."]
    ask(p, "Does it itch?")
    expect_text(p, "Psoriasis often itches a little.")
    expect_text(p, "Mapped onto the taxonomy:")
    page.get_by_role("button", name="Show what it looks like").click()
    expect_text(p, "Generated example pictures of psoriasis")
    p.expect_text("(skin type IV)")
    page.get_by_text("AI-generated: Psoriasis").nth(2).wait_for(timeout=MODEL_WAIT_MS)
    p.shot("explore-2-references")
    queue = JobQueue(Database(live_study.db_url))
    assert queue.counts() == {"done": 3}
    assert all(queue.get(job_id).inputs == {} for job_id in (1, 2, 3))  # no photo left in the database


def next_page(p: Participant) -> None:
    """Click the page's own button (Next, Continue, …: the last one on it, but never the consent page's
    "I do not want to take part", which comes after its agree button) and wait for the rerun."""
    before = p.runs()
    buttons = p.page.get_by_test_id("stMain").get_by_role("button")
    buttons.filter(has_not_text="I do not want to take part").last.click()
    p.page.wait_for_function(RERUN_DONE, arg=[before])


def test_an_interactive_participant_completes_the_study_in_chromium(live_study, browser, shots, chat):
    from db.models import InteractionTurn

    chat.default = "It could also be eczema."
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{live_study.base}/?PROLIFIC_PID=live-1")
    for box in range(page.get_by_test_id("stCheckbox").count()):
        page.get_by_test_id("stCheckbox").nth(box).click()
    interactive = plain = 0
    while "Your completion code" not in p.text():
        if "The AI's diagnosis" in p.text():
            page.get_by_role("button", name="Next").wait_for()  # the trial's layout is complete
        if "Ask the AI about this case" in p.text():
            interactive += 1
            ask(p, "What else could it be?")
            expect_text(p, "It could also be eczema.")
            page.get_by_role("button", name="Show what it looks like").click()
            page.get_by_text("AI-generated:").nth(1).wait_for(timeout=MODEL_WAIT_MS)
            assert page.get_by_test_id("stChatInputTextArea").count() == 0  # its one question is used
            if interactive == 1:
                p.shot("study-interactive-trial")
        elif "The AI's diagnosis" in p.text():
            plain += 1
        p.answer_all()
        next_page(p)
    assert interactive and plain  # within: both conditions
    with Database(live_study.db_url).read() as session:
        turns = session.query(InteractionTurn).order_by(InteractionTurn.id).all()
    assert len(turns) == 2 * interactive and all(turn.answered_at is not None for turn in turns)
    assert [turn.kind for turn in turns[:2]] == ["question", "references"]
    assert {turn.condition for turn in turns if turn.kind == "question"} == {"eczema"}
    assert {len(turn.images) for turn in turns if turn.kind == "references"} == {2}
