"""The explorer in a real browser with no model worker running: the page says so and names the command; the
open page keeps its photo's jobs held, and once the page is closed the photo is erased from the database."""

from __future__ import annotations

import time

import pytest

from db.session import Database
from tests.browser import AppServer, Participant, skin_photo
from tests.privacy_scan import photo_traces, stored_traces

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]  # a hang guard, not a speed check
HOLD_S = 4  # `serve --job-hold`: 120 s by default; the page renews its hold every HOLD_S / 4 seconds


def test_no_worker_is_said_and_a_closed_pages_photo_is_erased(tmp_path, demo_bundle, browser, shots):
    from tests.factories import example_protocol, write_protocol

    protocol = write_protocol(tmp_path, example_protocol("between"), bundle=demo_bundle)
    url = f"sqlite:///{tmp_path}/study.db"
    app = AppServer(tmp_path, url, protocol, extra=("--explorer-open", "--job-hold", str(HOLD_S)))
    app.start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(30_000)
        p = Participant(page, shots)
        p.open(f"{app.base}/?area=explore")
        p.expect_text("SkinGEN explorer")
        photo = skin_photo(tmp_path / "spot.png")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(photo)
        p.expect_text("No model worker is running", f"skingen worker --db sqlite:///{tmp_path}/study.db")
        p.shot("explore-no-worker")
        db = Database(url)
        traces = photo_traces(photo.read_bytes())
        assert stored_traces(db, traces) == ["jobs.inputs"]
        # Open for more than twice the hold: the page's timer renews it, so the photo is still there.
        page.wait_for_timeout(2.5 * HOLD_S * 1000)
        assert stored_traces(db, traces) == ["jobs.inputs"]
        page.close()  # the user leaves
        deadline = time.monotonic() + 60
        while stored_traces(db, traces) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored_traces(db, traces) == []
    finally:
        app.stop()
