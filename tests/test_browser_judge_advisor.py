"""A judge–advisor study (protocol ``trial.advice: after_initial``) in a real browser: the advice appears only
after the first answer is stored, a reload lands on the right half, an enlarged image is logged, and a stale
tab cannot change the first answer once the advice was shown.

Uses the browser harness of tests/browser.py (Debian chromium + playwright; waits for each rerun, never
sleeps); runs in CI, skipped locally without a browser.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser import RERUN_DONE, AppServer, Participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # a hang guard, not a speed check


@pytest.fixture
def judge_advisor_server(tmp_path, demo_bundle):
    from tests.factories import example_protocol, write_protocol

    data = {**example_protocol("between"), "trial": {"advice": "after_initial"}}
    protocol = write_protocol(tmp_path, data, bundle=demo_bundle)
    app = AppServer(tmp_path, f"sqlite:///{tmp_path}/study.db", protocol)
    try:
        app.start()
        yield app
    finally:
        app.stop()


def _choose(p: Participant, option: int) -> None:
    """The ``option``-th condition in the diagnosis list, and the middle confidence."""
    p.page.get_by_test_id("stSelectbox").first.click()
    p.page.get_by_role("option").nth(option).click()
    radios = p.page.get_by_test_id("stRadio")
    for index in range(radios.count()):
        radios.nth(index).get_by_test_id("stRadioOption").nth(2).click()


def _stored(db_url: str, step_suffix: str = ".initial") -> dict[str, str]:
    from db.models import Response
    from db.session import Database

    db = Database(db_url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(Response.step_key, Response.value).where(Response.item_id == "own_diagnosis_initial")
            ).all()
    finally:
        db.dispose()
    return {step: value for step, value in rows if step.endswith(step_suffix)}


def test_judge_advisor_trials_in_chromium(judge_advisor_server, browser, shots):
    server = judge_advisor_server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{server.base}/?PROLIFIC_PID=ja-browser-1&STUDY_ID=s1")
    p.expect_text("Participant information")
    for box in range(page.get_by_test_id("stCheckbox").count()):
        page.get_by_test_id("stCheckbox").nth(box).click()
    p.click("I agree — start the study")
    p.answer_all(option=1)
    p.click("Continue")
    p.click("Start with the first case")

    # case 1, first half: the photo alone, no advice in the page
    p.expect_text("Case 1 of 10", "Your own assessment first")
    assert "The AI's diagnosis" not in p.text().replace("The AI's diagnosis follows", "")
    assert page.get_by_test_id("stImage").count() == 1
    p.shot("ja-1-own-assessment")
    _choose(p, option=1)
    p.click("Next")

    # second half: the advice and the first answer; a reload lands here again
    p.expect_text("Case 1 of 10", "The AI's diagnosis", "Your answer before the AI's advice")
    first_answer = _stored(server.db_url)
    assert len(first_answer) == 1
    p.reload()
    p.expect_text("Case 1 of 10", "The AI's diagnosis", "Your answer before the AI's advice")
    p.shot("ja-2-advice")
    before = (
        p.runs()
    )  # the case photo's "Enlarge" (the first), in a dialog; the click is logged by the server
    page.get_by_role("button", name="Enlarge").first.click()
    page.wait_for_function(RERUN_DONE, arg=[before])
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    dialog.get_by_test_id("stImage").wait_for()
    p.shot("ja-3-enlarged")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    p.answer_all()
    p.click("Next")

    # case 2: a second tab opens the first half; the first tab answers it and sees the advice; the stale tab
    # then sends another first answer: refused, the stored one stays
    p.expect_text("Case 2 of 10", "Your own assessment first")
    stale = Participant(browser.new_page(viewport={"width": 1280, "height": 900}), shots)
    stale.open(page.url)
    stale.expect_text("Case 2 of 10", "Your own assessment first")
    _choose(p, option=1)
    p.click("Next")
    p.expect_text("Case 2 of 10", "The AI's diagnosis")
    stored = _stored(server.db_url)
    assert len(stored) == 2
    _choose(stale, option=3)
    stale.click("Next")
    stale.expect_text("Case 2 of 10", "The AI's diagnosis", "Your answer before the AI's advice")
    assert _stored(server.db_url) == stored, "the first answer changed after the advice was shown"

    for case in range(2, 11):  # finish: the second half of case 2, then both halves of the rest
        if case > 2:
            p.expect_text(f"Case {case} of 10", "Your own assessment first")
            p.answer_all()
            p.click("Next")
        p.expect_text(f"Case {case} of 10", "The AI's diagnosis")
        p.answer_all()
        p.click("Next")
    assert len(_stored(server.db_url)) == 10

    from db.models import Event
    from db.session import Database

    db = Database(server.db_url)
    try:
        with db.read() as session:
            kinds = session.scalars(select(Event.kind)).all()
            enlarged = session.scalars(select(Event.detail).where(Event.kind == "image_enlarge")).all()
    finally:
        db.dispose()
    assert enlarged == [{"image_kind": "case_photo", "image": 1}]
    assert "submit_refused" in kinds
