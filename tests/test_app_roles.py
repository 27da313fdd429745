"""Raters and researchers in the app (AppTest): sign-in, rating flow, resume, throttling, access control."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import numpy as np
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import Rating
from study.auth import FREE_FAILURES, hash_secret
from study.rating import RatingPanel
from tests.app_driver import APP
from tests.factories import make_bundle

ADMIN_PASSWORD = "researcher secret 42"
RATER_PASSWORD = "dermatology rocks"


@pytest.fixture(scope="module")
def admin_hash() -> str:
    return hash_secret(ADMIN_PASSWORD)


@pytest.fixture
def study(protocol_file, make_engine, monkeypatch, database_url, admin_hash):
    path = protocol_file()
    engine = make_engine(path)
    monkeypatch.setenv("SKINGEN_DB_URL", database_url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    monkeypatch.setenv("SKINGEN_ADMIN_PASSWORD_HASH", admin_hash)
    return engine


def open_app(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def text(at: AppTest) -> str:
    parts = [
        str(e.value)
        for kind in (
            "title",
            "header",
            "subheader",
            "markdown",
            "caption",
            "error",
            "success",
            "warning",
            "info",
        )
        for e in getattr(at, kind)
    ]
    return "\n".join(parts)


def param(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def rate(at: AppTest, relevant: int = 1, realism: int = 4, show: int = 0) -> None:
    radios = {r.key.rsplit(":", 1)[-1]: r for r in at.radio}
    radios["relevant"].set_value(relevant)
    radios["realism"].set_value(realism)
    radios["show_patient"].set_value(show)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]


def ratings(engine) -> int:
    with engine.db.read() as session:
        return session.scalar(select(func.count()).select_from(Rating))


def test_rater_sets_password_rates_and_resumes(study):
    panel = RatingPanel(study.db, study.loaded)
    _, invite = panel.add_rater("derm1")
    at = open_app(invite=invite)
    assert "Welcome to the rating panel" in text(at)
    at.text_input[0].input(RATER_PASSWORD)
    at.text_input[1].input(RATER_PASSWORD)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    session = param(at, "session")
    assert session and param(at, "invite") is None and "Image 1 of 9" in text(at)
    assert "Stated condition:" in text(at) and len(at.get("image")) == 1
    [image] = at.get("image")
    assert not any(image.captions)  # nothing tells a generated image from a case photo
    assert ".r0" not in text(at) and ".photo" not in text(at) and "provenance" not in text(at).lower()
    # a page with a missing answer: message, nothing saved
    radios = {r.key.rsplit(":", 1)[-1]: r for r in at.radio}
    radios["relevant"].set_value(1)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert "have not been saved yet" in text(at) and ratings(study) == 0
    rate(at)
    rate(at, relevant=0, realism=2, show=1)
    assert "Image 3 of 9" in text(at) and ratings(study) == 6
    reloaded = open_app(area="rate", session=session)  # a reload: only the URL survives
    assert "Image 3 of 9" in text(reloaded)


def test_rater_sign_in_and_throttling(study):
    panel = RatingPanel(study.db, study.loaded)
    _, invite = panel.add_rater("derm2")
    from study.auth import Auth

    Auth(study.db, study.protocol.study.id).accept_invite(invite, RATER_PASSWORD)
    at = open_app(area="rate")
    assert "sign in" in text(at).lower() and param(at, "session") is None
    for _ in range(FREE_FAILURES):
        at.text_input[0].input("derm2")
        at.text_input[1].input("wrong password")
        next(iter(at.get("form_submit_button"))).click()
        at.run()
        assert "Sign-in failed" in text(at)
    at.text_input[0].input("derm2")
    at.text_input[1].input(RATER_PASSWORD)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert "Too many failed sign-ins" in text(at) and param(at, "session") is None


def test_admin_sign_in_and_every_page_refused_without_it(study):
    at = open_app(area="admin")
    assert "Researcher sign-in" in text(at)
    at.text_input[0].input("not the password")
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert "Sign-in failed" in text(at) and param(at, "session") is None
    at.text_input[0].input(ADMIN_PASSWORD)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert not at.exception and param(at, "session")
    assert "Understanding AI skin diagnoses" in text(at) and "Enrollment by arm and stratum" in text(at)


@pytest.mark.parametrize("page", ["dashboard", "downloads", "analysis", "raters", "sign_out"])
def test_admin_pages_check_the_role_themselves(study, page):
    """Requested directly (not through the router) and without a valid session, a page shows nothing."""
    at = AppTest.from_string(f"from app.views import admin\nadmin.{page}()\n", default_timeout=30)
    at.query_params["session"] = "forged-session-token"
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Please sign in to see this page."]
    assert not at.get("download_button") and not at.get("plotly_chart") and not at.get("metric")


def test_participant_and_rater_sessions_grant_no_dashboard(study):
    participant = open_app()
    for box in participant.checkbox:
        box.check()
    next(iter(participant.get("form_submit_button"))).click()
    participant.run()
    token = param(participant, "token")
    assert token
    for query in ({"area": "admin", "token": token}, {"area": "admin", "session": token}):
        at = open_app(**query)
        assert "Researcher sign-in" in text(at) and not at.get("metric")
    panel = RatingPanel(study.db, study.loaded)
    _, invite = panel.add_rater("derm3")
    from study.auth import Auth

    rater_session = Auth(study.db, study.protocol.study.id).accept_invite(invite, RATER_PASSWORD)
    at = open_app(area="admin", session=rater_session)
    assert "Researcher sign-in" in text(at) and not at.get("metric")


def test_signed_in_admin_sees_downloads_and_raters(study):
    from study.auth import Auth

    session = Auth(study.db, study.protocol.study.id).sign_in_admin(
        ADMIN_PASSWORD, hash_secret(ADMIN_PASSWORD)
    )
    downloads = AppTest.from_string("from app.views import admin\nadmin.downloads()\n", default_timeout=30)
    downloads.query_params["session"] = session
    downloads.run()
    assert not downloads.exception and not downloads.error
    labels = [b.proto.label for b in downloads.get("download_button")]
    assert any(label.startswith("Responses (long) — CSV") for label in labels)
    assert any(label.startswith("Codebook — CSV") for label in labels)
    assert any(label.startswith("Audit log — CSV") for label in labels)
    assert "Responses (wide) — Parquet" in labels


def test_dashboard_and_analysis_with_data(study):
    from study.auth import Auth
    from study.simulate import Policy, simulate

    simulate(
        study,
        12,
        seed=1,
        policy=Policy(kind="effect", effects={"trust": 1.0}, dropout_rate=0.2),
        progress=False,
    )
    panel = RatingPanel(study.db, study.loaded)
    rater, _ = panel.add_rater("derm")
    task = panel.next_task(rater.id)
    panel.submit(rater.id, task.image.image_id, {"relevant": 1, "realism": 5, "show_patient": 1})
    session = Auth(study.db, study.protocol.study.id).sign_in_admin(
        ADMIN_PASSWORD, hash_secret(ADMIN_PASSWORD)
    )

    dashboard = open_app(area="admin", session=session)
    metrics = {m.label: m.value for m in dashboard.get("metric")}
    assert metrics["Consented"] == "12" and int(metrics["Completed"]) + int(metrics["Dropped out"]) == 12
    assert len(dashboard.get("plotly_chart")) >= 4  # enrollment, funnel, step times, rater progress

    report = AppTest.from_string("from app.views import admin\nadmin.analysis()\n", default_timeout=120)
    report.query_params["session"] = session
    report.run()
    report.button[0].click()
    report.run()
    assert not report.exception, [e.message for e in report.exception]
    assert report.get("plotly_chart") and report.dataframe
    assert any(b.proto.label == "Download report.html" for b in report.get("download_button"))


def test_raters_cannot_tell_retrieved_generated_and_case_photos_apart(
    protocol_file, make_engine, monkeypatch, tmp_path, database_url
):
    bundle = make_bundle(tmp_path / "retrieval-bundle", retrieved=2)
    path = protocol_file(cases__bundle=str(bundle), rating__include_retrieved=True)
    engine = make_engine(path)
    monkeypatch.setenv("SKINGEN_DB_URL", database_url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(path))
    panel = RatingPanel(engine.db, engine.loaded)
    rater, invite = panel.add_rater("derm")
    from study.auth import Auth

    at = open_app(
        area="rate", session=Auth(engine.db, engine.protocol.study.id).accept_invite(invite, RATER_PASSWORD)
    )
    kinds = set()
    while (task := panel.next_task(rater.id)) is not None:
        kinds.add(task.image.kind)
        [image] = at.get("image")
        page = text(at)
        assert f"Stated condition: {task.skin_condition_name}" in page and not any(image.captions)
        # the instructions on image 1 say some images are photos and some generated; nothing says which
        for telltale in ("Real", "Atlas", "CC BY", "Dr. Example", "retriev", task.image.image_id):
            assert telltale not in page
        assert not any(task.image.image_id in r.key for r in at.radio)  # keys become CSS classes
        rate(at)
    assert kinds == {"generated", "retrieved", "case_photo"} and "All images rated" in text(at)


def test_invite_pages_name_the_rater_and_explain_a_bad_link(study):
    panel = RatingPanel(study.db, study.loaded)
    _, invite = panel.add_rater("Dr Ana Lopez")
    at = open_app(invite=invite)
    assert "Welcome to the rating panel" in text(at) and [c.value for c in at.code] == ["Dr Ana Lopez"]
    for link, title in (
        (invite[:-4], "This sign-in link is incomplete"),  # cut short in an e-mail
        (invite[:-1] + ("x" if invite[-1] != "x" else "y"), "This sign-in link is not valid"),
    ):
        bad = open_app(invite=link)
        assert title in text(bad) and not bad.text_input and "Dr Ana Lopez" not in text(bad)
    at.text_input[0].input(RATER_PASSWORD)
    at.text_input[1].input(RATER_PASSWORD)
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert "Image 1 of" in text(at)
    used = open_app(invite=invite)  # the same link again, e.g. from the e-mail a week later
    assert "This sign-in link has already been used" in text(used) and not used.text_input
    used.button[0].click()  # "Go to sign-in"
    used.run()
    assert "Rating panel — sign in" in text(used) and param(used, "invite") is None
    used.text_input[0].input("dr ana lopez")  # any capitalisation
    used.text_input[1].input(RATER_PASSWORD)
    next(iter(used.get("form_submit_button"))).click()
    used.run()
    assert param(used, "session") and "Image 1 of" in text(used)


def test_admin_sign_in_error_does_not_mention_a_name(study):
    at = open_app(area="admin")
    at.text_input[0].input("not the password")
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    [error] = at.error
    assert error.value == "Sign-in failed: check the password"


def _admin_page(study, page: str, **query: str) -> AppTest:
    """One researcher page, run directly with a signed-in researcher's session."""
    from study.auth import Auth

    session = Auth(study.db, study.protocol.study.id).sign_in_admin(
        ADMIN_PASSWORD, hash_secret(ADMIN_PASSWORD)
    )
    at = AppTest.from_string(f"from app.views import admin\nadmin.{page}()\n", default_timeout=60)
    at.query_params["session"] = session
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _identifier_events(study) -> int:
    from db.models import Event
    from formats.contract import IDENTIFIERS_SHOWN_EVENT

    with study.db.read() as session:
        return session.scalar(select(func.count()).where(Event.kind == IDENTIFIERS_SHOWN_EVENT))


def test_dashboard_participant_table_hides_platform_ids_until_asked_and_logs_it(study):
    from study.simulate import simulate

    simulate(study, 5, seed=4, progress=False)
    study.consent(
        ["read_information", "voluntary", "agree_data"], {"PROLIFIC_PID": "5f00aa", "STUDY_ID": "s1"}
    )
    at = _admin_page(study, "dashboard")
    [table] = [d.value for d in at.dataframe if "participant" in d.value.columns]
    assert len(table) == 6 and "PROLIFIC_PID" not in table.columns and "5f00aa" not in table.to_csv()
    assert {"arm", "status", "current step", "attention checks failed"} <= set(table.columns)
    assert "last activity (UTC)" in table.columns and "times in UTC" in text(at)
    assert not set(table["current step"]) & {"consent", "entry", "p1.t01", "complete"}  # readable names
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [c["layout"].get("title", {}).get("text") for c in charts]
    assert "Enrollment over time" in titles
    funnel = next(c for c in charts if c["data"][0]["type"] == "funnel")
    assert (
        funnel["data"][0]["y"][:2] == ["Consent", "Entry questions"]
        and "Case 1 of 6" in funnel["data"][0]["y"]
    )
    assert _identifier_events(study) == 0
    [toggle] = at.toggle
    toggle.set_value(True)
    at.run()
    [table] = [d.value for d in at.dataframe if "participant" in d.value.columns]
    assert "5f00aa" in table["PROLIFIC_PID"].tolist() and _identifier_events(study) == 1


def test_dashboard_counts_declines_beside_consents_and_nowhere_else(study):
    from study.simulate import simulate

    simulate(study, 4, seed=6, progress=False)
    for _ in range(3):
        study.decline()  # three people read the consent page and did not take part
    at = _admin_page(study, "dashboard")
    metrics = {m.label: m.value for m in at.get("metric")}
    labels = list(metrics)
    assert labels.index("Declined") == labels.index("Consented") + 1
    assert (metrics["Consented"], metrics["Declined"]) == ("4", "3")
    assert sum(int(metrics[k]) for k in ("Completed", "Active", "Dropped out")) == 4
    funnel = next(
        c
        for c in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
        if c["data"][0]["type"] == "funnel"
    )
    x = funnel["data"][0]["x"]  # plotly's typed array: {"dtype", "bdata": base64 of the values}
    counts = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else x
    assert counts[0] == 4  # the funnel starts at the consented: declines are nobody's row
    [table] = [d.value for d in at.dataframe if "participant" in d.value.columns]
    assert len(table) == 4


def test_downloads_offer_one_zip_and_spss_stata_files(study):
    from study.simulate import simulate

    simulate(study, 3, seed=5, progress=False)
    at = _admin_page(study, "downloads")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[0].startswith("Download all (zip:")
    assert "Responses (wide) — SPSS (.sav, value labels)" in labels
    assert "Responses (wide) — Stata (.dta, value labels)" in labels
    assert _identifier_events(study) == 0
    at.checkbox[0].check()
    at.run()
    assert _identifier_events(study) == 1


def test_download_all_carries_the_analysis_pages_report_computed_once(study, monkeypatch):
    import analysis.report
    from app.dashboard_report import SKIPPED_FILE, zip_with_report
    from study.export import export_files, export_frames
    from study.simulate import simulate

    built = []
    build_report = analysis.report.build_report
    monkeypatch.setattr(
        analysis.report, "build_report", lambda *a, **k: built.append(1) or build_report(*a, **k)
    )

    def download_all() -> dict[str, bytes]:
        """What the Downloads page's "Download all" button hands over when clicked."""
        files = export_files(export_frames(study.db, version_id=study.version_id))
        with zipfile.ZipFile(io.BytesIO(zip_with_report(study, files))) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    empty = download_all()  # nobody has joined: the export, and why there is no report
    assert "report.html" not in empty and b"cannot run on these data yet" in empty[SKIPPED_FILE]
    simulate(study, 8, seed=7, progress=False)
    page = _admin_page(study, "analysis")
    page.button[0].click()
    page.run()
    assert not page.exception and len(built) == 1
    zipped = download_all()
    assert len(built) == 1  # the page's report, not a second computation
    assert {"responses.csv", "codebook.csv", "report.html", "results.json"} <= set(zipped)
    assert SKIPPED_FILE not in zipped and zipped["report.html"].startswith(b"<!DOCTYPE html>")
    assert json.loads(zipped["results.json"])["config"] == json.loads(
        page.json[0].value
    )  # the page's settings
    simulate(study, 1, seed=8, progress=False)
    assert "results.json" in download_all() and len(built) == 2  # new data: a new report
    downloads = _admin_page(study, "downloads")
    assert downloads.get("download_button")[0].proto.label.endswith("and the analysis report)")


def test_a_researcher_invites_a_rater_from_the_dashboard(study):
    at = _admin_page(study, "raters")
    at.text_input[0].input("Dr Ana Lopez")
    at.text_input[2].input("https://study.example.org")
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    [link] = [c.value for c in at.code]
    assert link.startswith("https://study.example.org/?invite=") and "Sign-in name: Dr Ana Lopez" in text(at)
    rater = open_app(invite=link.split("=", 1)[1])  # the link opens the rater's set-password page
    assert [c.value for c in rater.code] == ["Dr Ana Lopez"]
    at.text_input[0].input("DR ANA LOPEZ")  # the same name: refused, as `raters add` refuses it
    next(iter(at.get("form_submit_button"))).click()
    at.run()
    assert "A rater named 'Dr Ana Lopez' already exists" in text(at) and not at.code
