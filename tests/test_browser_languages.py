"""A second language in a real browser: Chromium set to German sends ``Accept-Language: de-DE``, and the
served demo protocol (English and German) starts in German without any ``?lang=``; ``?lang=de`` wins over an
English browser. What AppTest can't show: the header through Streamlit's server, and the page's ``lang``."""

from __future__ import annotations

import pytest

from tests.browser import AppServer, Participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]  # a hang guard, not a speed check


@pytest.fixture
def bilingual_server(tmp_path, demo_bundle):
    from tests.factories import example_protocol, write_protocol

    protocol = write_protocol(tmp_path, example_protocol("between", languages=True), bundle=demo_bundle)
    app = AppServer(tmp_path, f"sqlite:///{tmp_path}/study.db", protocol)
    try:
        app.start()
        yield app
    finally:
        app.stop()


@pytest.mark.parametrize(("locale", "query", "language"), [("de-DE", "", "de"), ("en-US", "lang=de", "de")])
def test_the_browser_or_the_link_picks_german(bilingual_server, browser, tmp_path, locale, query, language):
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    p = Participant(page, tmp_path)
    p.open(f"{bilingual_server.base}/?PROLIFIC_PID=lang-{locale}&{query}")
    p.expect_text("Informationen für Teilnehmende")
    page.wait_for_function("(code) => document.documentElement.lang === code", arg=language)
    for box in range(page.get_by_test_id("stCheckbox").count()):
        page.get_by_test_id("stCheckbox").nth(box).click()
    p.click("Ich stimme zu – Studie beginnen")
    p.expect_heading("Über Sie")
    context.close()


def test_an_english_browser_gets_english(bilingual_server, browser, tmp_path):
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    p = Participant(page, tmp_path)
    p.open(f"{bilingual_server.base}/")
    p.expect_text("Participant information")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    context.close()
