"""A rater and a researcher in a real browser (Debian chromium): invite → password → ratings → reload."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from study.auth import hash_secret
from tests.browser import Participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # a hang guard, not a speed check
ADMIN_PASSWORD = "browser admin password"


@pytest.fixture
def admin_env(monkeypatch):
    """Set before `server` starts, so the served app knows the researchers' password hash."""
    monkeypatch.setenv("SKINGEN_ADMIN_PASSWORD_HASH", hash_secret(ADMIN_PASSWORD))


def test_a_rater_rates_images_and_a_researcher_sees_the_dashboard(admin_env, server, browser, shots):
    from db.models import Rating
    from db.session import Database
    from study.engine import StudyEngine
    from study.rating import RatingPanel

    base, db_url, protocol = server.base, server.db_url, server.protocol
    engine = StudyEngine.open(Database(db_url), str(protocol))
    panel = RatingPanel(engine.db, engine.loaded)
    rater, invite = panel.add_rater("Dr Browser")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    r = Participant(page, shots)
    r.open(f"{base}/?invite={invite}")
    r.expect_text("Welcome to the rating panel", "Dr Browser")  # the name to sign in with
    assert r.chrome_visible() == []
    r.shot("20-rater-invite")
    page.get_by_label("New password").fill("a good rater password")
    page.get_by_label("Repeat the password").fill("a good rater password")
    r.click("Set password and start")
    assert "session=" in page.url and "invite=" not in page.url
    _, total = panel.progress(rater.id)
    for number in range(1, 4):
        r.expect_text(f"Image {number} of {total}", "Stated condition:")
        if number == 1:
            r.shot("21-rater-image")
        r.answer_all(option=2)
        r.click("Save and next")
    r.reload()
    r.expect_text(f"Image 4 of {total}")

    # the researcher's browser is in Tokyo: the dashboard shows times there (st.context.timezone)
    admin = browser.new_page(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Tokyo")
    admin.set_default_timeout(30_000)
    a = Participant(admin, shots)
    a.open(f"{base}/?area=admin")
    a.expect_text("Researcher sign-in")
    a.shot("30-admin-sign-in")
    admin.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    a.click("Sign in")
    a.expect_text("Enrollment by arm and stratum", "Rater progress", "times in Asia/Tokyo")
    # plotly charts draw after the run (their code loads on first use): wait for each chart's drawing
    admin.wait_for_function(
        """() => {
      const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
      return charts.length > 0 && Array.from(charts).every(c => c.querySelector('.main-svg') !== null);
    }"""
    )
    a.shot("31-admin-dashboard")

    with engine.db.read() as session:
        stored = session.scalar(select(func.count()).select_from(Rating).where(Rating.rater_id == rater.id))
    assert stored == 3 * 4  # three images, four answers each (answer_all also writes the optional comment)
