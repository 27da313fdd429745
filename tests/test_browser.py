"""End to end in a real browser: `skingen-study serve` + Debian chromium, one participant through the demo.

Screenshots of every page type go to the test's tmp directory (and to $SKINGEN_SCREENSHOT_DIR if set), so a
person can check what participants see. Runs in CI (CI=true makes a missing browser a failure, not a skip).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.browser import RECONNECTED, AppServer, Participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # a hang guard, not a speed check


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
