"""A database holding several studies: the researcher's Downloads and Analysis pages show only the data of the
engine's own study (its registered key), never another study's or an error about several studies."""

from __future__ import annotations

import json
import os

import pytest
from streamlit.testing.v1 import AppTest

from db.session import Database
from study.auth import Auth, hash_secret
from study.engine import StudyEngine
from study.protocol.loading import load_protocol
from study.registry import register
from study.simulate import Policy, simulate

PASSWORD = "two studies, one database"
N_OURS, N_OTHER = 10, 6


@pytest.fixture
def two_studies(protocol_file, database_url, monkeypatch):
    """Our study (within design, 10 participants) and another (between, id ``other_study``, 6) in one DB."""
    ours, other = protocol_file("within"), protocol_file("between", study__id="other_study")
    url = database_url
    db = Database(url)
    register(db, load_protocol(other))
    register(db, load_protocol(ours))
    other_engine = StudyEngine.open(db, str(other))
    engine = StudyEngine.open(db, str(ours))
    assert engine.version_id != other_engine.version_id
    policy = Policy(kind="effect", effects={"trust": 1.0})
    simulate(other_engine, N_OTHER, seed=2, policy=policy, progress=False)
    simulate(engine, N_OURS, seed=3, policy=policy, progress=False)
    monkeypatch.setenv("SKINGEN_DB_URL", url)
    monkeypatch.setenv("SKINGEN_PROTOCOL", str(ours))
    monkeypatch.setenv("SKINGEN_ADMIN_PASSWORD_HASH", hash_secret(PASSWORD))
    yield engine
    db.dispose()


def _page(name: str, engine: StudyEngine, timeout: int = 30) -> AppTest:
    session = Auth(engine.db, engine.protocol.study.id).sign_in_admin(PASSWORD, hash_secret(PASSWORD))
    at = AppTest.from_string(f"from app.views import admin\nadmin.{name}()\n", default_timeout=timeout)
    at.query_params["session"] = session
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_downloads_show_only_the_engines_study(two_studies):
    at = _page("downloads", two_studies)
    labels = [b.proto.label for b in at.get("download_button")]
    assert f"Participants — CSV ({N_OURS} rows)" in labels


def test_analysis_page_analyses_only_the_engines_study(two_studies):
    at = _page("analysis", two_studies, timeout=120)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    captions = "\n".join(str(c.value) for c in at.caption)
    protocol = two_studies.protocol
    assert f"{protocol.study.id} v{protocol.study.version}" in captions
    assert "within design" in captions and f"{N_OURS} participants" in captions
    assert at.dataframe and at.get("plotly_chart")


def test_analysis_page_shows_the_reports_numbers(two_studies, tmp_path):
    """The page and `skingen-analysis report` run one orchestration with the same settings: the settings the
    page shows are the report's (the page once ran 200 bootstrap resamples and no protocol), and so is every
    table, cell for cell."""
    from analysis.document import hypotheses_table, instruments_table, ratings_table, summary_table
    from app.analysis_command import main

    out = tmp_path / "report"
    argv = ["report", "--db", os.environ["SKINGEN_DB_URL"]]
    argv += ["--protocol", str(two_studies.loaded.path), "--out", str(out), "--no-figures", "--quiet"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    at = _page("analysis", two_studies, timeout=120)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    (settings,) = at.json
    assert json.loads(settings.value) == results["config"]
    shown = [frame.value.reset_index(drop=True).astype(str) for frame in at.dataframe]
    expected = [
        *([hypotheses_table(results)] if results["hypotheses"] else []),
        summary_table(results),
        *([instruments_table(results)] if results["instruments"] else []),
        *([ratings_table(results)] if results["ratings"] else []),
    ]
    assert len(shown) == len(expected)
    for table, reference in zip(shown, expected, strict=True):
        assert table.equals(reference.astype(str)), (table, reference)
