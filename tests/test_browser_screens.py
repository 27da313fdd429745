"""Every screen, every participant, in a real browser (Debian chromium): axe-core finds no serious or
critical WCAG 2.1 AA violation on any page, a visual case is compact on a phone and its first question
visible on a laptop, and the whole study can be done with the keyboard alone.

One server for the module (the demo study, the explorer open, a researcher password); participants are
moved to the page a check needs through the study engine, then opened in the browser by their link.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from formats.contract import IMAGE_ENLARGE_EVENT
from study.auth import ADMIN_HASH_ENV, hash_secret
from study.path import Step
from tests.axe import Violation, require_axe, violations
from tests.browser import RERUN_DONE, AppServer, Participant
from tests.keyboard import KeyboardUser, Stop

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # a hang guard, not a speed check
ADMIN_PASSWORD = "screens admin password"
VISUAL = "skingen_visual"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
# A visual case on a phone: 3,633 px tall before the thumbnails (the demo bundle of these tests; 3,433 px with
# the one `serve --demo` draws), ~1,900 px after. Below this bound, no reference image is full width.
PHONE_PAGE_HEIGHT_MAX = 2400
# What lies between the last case image and the first question on a phone (the thumbnails' captions and the
# divider): at most a quarter of the screen, so the questions come right after the images.
PHONE_IMAGES_TO_QUESTION_MAX = PHONE["height"] // 4
# The page's height (Streamlit scrolls inside stMain, so the document's own scroll height stays the
# viewport's), where its images are, and the top of the form's first question label.
MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const images = Array.from(main.querySelectorAll('img')).map(image => {
    const box = image.getBoundingClientRect();
    return {alt: image.alt, width: box.width, bottom: box.bottom};
  });
  const question = main.querySelector('[data-testid="stForm"] [data-testid="stWidgetLabel"]');
  return {document: document.scrollingElement.scrollHeight, main: main.scrollHeight, images,
          question_top: question.getBoundingClientRect().top};
}"""
IMAGES_LOADED = "() => Array.from(document.images).every(image => image.complete)"


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_bundle):
    """The between-subjects demo study, with the explorer open to all and a researcher password set."""
    from tests.factories import example_protocol, write_protocol

    folder = tmp_path_factory.mktemp("screens")
    protocol = write_protocol(folder, example_protocol("between"), bundle=demo_bundle)
    app = AppServer(
        folder,
        f"sqlite:///{folder}/study.db",
        protocol,
        extra=("--explorer-open",),
        env={ADMIN_HASH_ENV: hash_secret(ADMIN_PASSWORD)},
    )
    try:
        app.start()
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def cohort(engine):
    """The module's participants made through the engine (one numbering for their platform ids)."""
    return Cohort(engine)


@pytest.fixture(scope="module")
def engine(site):
    """The study engine of the served database, in the test process: it enrols and advances participants."""
    from db.session import Database
    from study.engine import StudyEngine

    return StudyEngine.open(Database(site.db_url), str(site.protocol))


class Cohort:
    """Participants made through the engine, each moved to the step a check needs (bots' answers)."""

    def __init__(self, engine) -> None:
        from study.simulate import Bot, Policy

        self.engine = engine
        self.bot = Bot(engine, Policy(), random.Random(25), datetime.now(UTC))
        self.count = 0

    def enrol(self) -> str:
        self.count += 1
        ticked = [s.id for s in self.engine.protocol.consent.statements]
        return self.engine.consent(ticked, {"PROLIFIC_PID": f"screens-{self.count}"})

    def advance(self, token: str, until: Callable[[Step], bool]):
        """Answer step after step until ``until(step)`` holds for the current one (or the study is over)."""
        position = self.engine.position(token)
        while not position.completed and not until(position.step):
            position = self.engine.submit(token, position.step.key, self.bot.answer(position))
        return position

    def in_arm(self, arm: str) -> str:
        """A new participant allocated to ``arm``, on their first case."""
        for _ in range(12):  # allocation blocks of 4 and 6 per stratum: both arms come within a block
            token = self.enrol()
            position = self.advance(token, lambda step: step.kind == "trial")
            if position.arm == arm:
                return token
        raise AssertionError(f"no participant was allocated to {arm} in 12 tries")

    def stratum_for(self, arm: str) -> int:
        """The answer (1-based) to the stratifying entry question whose next allocation goes to ``arm``; bots
        take allocations until one stratum's next is ``arm``."""
        from db.models import AllocationSlot

        protocol = self.engine.protocol
        item = next(i for i in protocol.questionnaires.entry if i.id == protocol.randomization.stratify_by)
        labels = list(item.value_labels().values())
        for _ in range(12):  # allocation blocks of 4 and 6: within one block a stratum's next slot is ``arm``
            with self.engine.db.read() as session:
                for number, label in enumerate(labels, start=1):
                    next_arm = session.scalar(
                        select(AllocationSlot.arm)
                        .where(
                            AllocationSlot.version_id == self.engine.version_id,
                            AllocationSlot.stratum == label,
                            AllocationSlot.participant_id.is_(None),
                        )
                        .order_by(AllocationSlot.position)
                        .limit(1)
                    )
                    if next_arm == arm:
                        return number
            self.advance(self.enrol(), first_trial)
        raise AssertionError(f"no stratum's next allocation went to {arm} in 12 tries")


def first_trial(step: Step) -> bool:
    return step.kind == "trial"


def section(name: str) -> Callable[[Step], bool]:
    return lambda step: step.section == name


def test_every_page_has_no_serious_accessibility_violation(site, engine, cohort, browser, shots):
    """axe-core on each participant page (and its error state), the rater pages, the explorer and the
    researchers' sign-in: no serious or critical WCAG 2.1 A/AA violation."""
    from playwright.sync_api import expect

    from study.rating import RatingPanel

    require_axe()
    base = site.base
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    found: list[Violation] = []

    def check(name: str) -> None:
        page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
        found.extend(violations(page, name))

    p.open(f"{base}/?PROLIFIC_PID=screens-axe")
    p.expect_text("Participant information")
    check("consent")
    p.click("I agree — start the study")
    p.expect_text("please tick every statement")
    check("consent, not ticked")
    p.click("I do not want to take part")
    p.expect_text("Thank you for considering our study")
    check("declined")

    token = cohort.enrol()
    p.open(f"{base}/?token={token}")
    p.expect_heading("About you")
    check("entry questions")
    p.click("Continue")
    p.expect_text("have not been saved")
    check("entry questions, unanswered")
    cohort.advance(token, section("instructions"))
    p.open(f"{base}/?token={token}")
    p.expect_text("How this works")
    check("instructions")

    for arm in [condition.id for condition in engine.protocol.conditions]:
        arm_token = cohort.in_arm(arm)
        p.open(f"{base}/?token={arm_token}")
        p.expect_text("Case 1 of", "The AI's diagnosis")
        check(f"case, {arm}")
        p.click("Next")
        p.expect_text("not been saved")
        check(f"case, {arm}, unanswered")
        if arm == VISUAL:
            page.get_by_role("button", name="Enlarge").first.click()
            expect(page.get_by_role("dialog")).to_be_visible()
            check(f"case, {arm}, enlarged image")

    for name, reached in (("post_block", "About the explanations"), ("post", "Almost done")):
        cohort.advance(token, section(name))
        p.open(f"{base}/?token={token}")
        p.expect_heading(reached)
        check(f"{name} questions")
    cohort.advance(token, section("debrief"))
    p.open(f"{base}/?token={token}")
    p.expect_text("what this study was about")
    check("debrief")
    assert cohort.advance(token, lambda step: False).completed
    p.open(f"{base}/?token={token}")
    p.expect_text("Your completion code")
    check("complete")
    p.open(f"{base}/?token=not-a-real-token")
    p.expect_text("This link is not valid")
    check("invalid link")

    panel = RatingPanel(engine.db, engine.loaded)
    _, invite = panel.add_rater("Dr Screens")
    p.open(f"{base}/?invite={invite}")
    p.expect_text("Welcome to the rating panel")
    check("rater invite")
    page.get_by_label("New password").fill("a good rater password")
    page.get_by_label("Repeat the password").fill("a good rater password")
    p.click("Set password and start")
    p.expect_text("Image 1 of", "Stated condition:")
    check("rating task")
    p.open(f"{base}/?invite={invite}")
    p.expect_text("already been used")
    check("rater invite, used")
    p.open(f"{base}/?area=rate")
    p.expect_text("Rating panel — sign in")
    check("rater sign-in")
    p.open(f"{base}/?area=admin")
    p.expect_text("Researcher sign-in")
    check("researcher sign-in")

    p.open(f"{base}/?area=explore")
    p.expect_text("SkinGEN explorer")
    check("explorer")
    photo = engine.loaded.bundle.path(engine.loaded.bundle.manifest.cases[0].image)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(photo))
    p.expect_text("Your photo")
    check("explorer, photo uploaded")

    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(map(str, found))


def enlarged(engine, token: str) -> list[dict]:
    """The images this participant enlarged, as the server logged them."""
    from db.models import Event

    participant_id = engine.position(token).participant_id
    with engine.db.read() as session:
        rows = session.scalars(
            select(Event.detail).where(
                Event.participant_id == participant_id, Event.kind == IMAGE_ENLARGE_EVENT
            )
        )
        return list(rows)


def test_a_visual_case_is_compact_on_a_phone_and_its_first_question_in_view_on_a_laptop(
    site,
    engine,
    cohort,
    browser,
    shots,
):
    from playwright.sync_api import expect

    token = cohort.in_arm(VISUAL)
    phone = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = phone.new_page()
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{site.base}/?token={token}")
    page.get_by_role("button", name="Next").wait_for()
    page.wait_for_function(IMAGES_LOADED)
    measured = page.evaluate(MEASURE)
    p.shot("40-phone-visual-case")
    height = max(measured["document"], measured["main"])
    print(f"phone, visual case: page {height} px tall, first question at {measured['question_top']:.0f} px")
    assert height <= PHONE_PAGE_HEIGHT_MAX
    images = measured["images"]
    assert len(images) == 4 and all(image["alt"] for image in images)  # the case photo and three references
    assert all(image["width"] <= PHONE["width"] * 2 / 3 for image in images), "no full-width image on a phone"
    after_images = measured["question_top"] - max(image["bottom"] for image in images)
    assert 0 < after_images <= PHONE_IMAGES_TO_QUESTION_MAX

    # A tap on a thumbnail opens it large, and the server logs it (the engagement measure)
    thumbnail = page.get_by_role("img", name=re.compile("example picture 2 of 3"))
    thumbnail.scroll_into_view_if_needed()  # a tap lands only on what is on the screen
    box = thumbnail.bounding_box()
    before = p.runs()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(RERUN_DONE, arg=[before])
    expect(
        page.get_by_role("dialog").get_by_role("img", name=re.compile("example picture 2 of 3"))
    ).to_be_visible()
    assert enlarged(engine, token) == [{"image_kind": "generated", "image": 2}]
    phone.close()

    for arm in [condition.id for condition in engine.protocol.conditions]:
        arm_token = token if arm == VISUAL else cohort.in_arm(arm)
        laptop = browser.new_page(viewport=LAPTOP)
        laptop.set_default_timeout(30_000)
        q = Participant(laptop, shots)
        q.open(f"{site.base}/?token={arm_token}")
        laptop.get_by_role("button", name="Next").wait_for()
        laptop.wait_for_function(IMAGES_LOADED)
        top = laptop.evaluate(MEASURE)["question_top"]
        print(f"laptop, {arm} case: first question at {top:.0f} px")
        assert top < LAPTOP["height"], f"{arm}: the first question starts below the screen ({top:.0f} px)"
        laptop.close()


def test_a_participant_completes_the_study_with_the_keyboard_only(site, engine, cohort, browser, shots):
    """No mouse: Tab and Shift+Tab, Space, Enter and the arrow keys from the consent page to the completion
    code; on the first page of each kind, every control is in the tab order and shows when it has the focus."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    p = Participant(page, shots)
    p.open(f"{site.base}/?PROLIFIC_PID=screens-keyboard")
    user = KeyboardUser(page)
    stratum = cohort.stratum_for(VISUAL)  # so that the keyboard meets the references too

    def choose(stop: Stop) -> int:
        if stop.label.startswith("Which best describes your background"):
            return stratum
        return min(5, stop.options)  # 5 is "Somewhat agree", which the attention check asks for

    problems: dict[str, list[str]] = {}
    pages = 0
    while "Your completion code" not in p.text():
        pages += 1
        assert pages < 30, "the study did not end"
        heading = page.locator("[data-testid='stMain'] :is(h1, h2)")
        kind = heading.first.inner_text() if heading.count() else "case"
        first_of_kind = kind not in problems
        if kind == "case" and first_of_kind:
            enlarge_with_the_keyboard(user, page)
        problems.setdefault(kind, [])
        problems[kind] += user.answer_page(choose, check_focus=first_of_kind)
    p.expect_text("Your completion code", "SKGDEMO1")
    problems["completion"] = user.focus_round()

    assert {kind: found for kind, found in problems.items() if found} == {}
    assert {"case", "About you", "About the explanations"} <= set(problems)
    token = parse_qs(urlparse(page.url).query)["token"][0]
    assert (engine.position(token).status, engine.position(token).arm) == ("completed", VISUAL)
    assert enlarged(engine, token) == [{"image_kind": "case_photo", "image": 1}]


def enlarge_with_the_keyboard(user: KeyboardUser, page) -> None:
    """Tab to the case photo, open it large with Enter, close it with Escape."""
    from playwright.sync_api import expect

    for _ in range(user.MAX_STOPS):
        stop = user.tab()
        if stop is not None and stop.name.endswith("Enlarge"):
            break
    user.press_and_wait("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
