"""Shared test setup: offline hub, and suites that skip locally but must run in CI."""

from __future__ import annotations

import os

import pytest

# Never reach a model hub from tests (there is none here or in CI); set before any ML import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip the calling test locally when ``condition`` is false; fail it in CI, where nothing may skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory):
    from tests.factories import make_bundle

    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle", n_cases=6, wrong=(1, 4))


@pytest.fixture
def protocol_file(tmp_path, bundle_dir):
    """Write an example protocol (optionally modified) pointing at the test bundle; returns its path."""
    from tests.factories import example_protocol, write_protocol

    def make(design: str = "between", /, **changes):
        data = example_protocol(design)
        data["cases"]["bundle"] = str(bundle_dir)
        for dotted, value in changes.items():  # conditions__1__references=...: a list index is a number
            target = data
            *parents, last = dotted.split("__")
            for key in parents:
                target = target[int(key)] if isinstance(target, list) else target[key]
            target[int(last) if isinstance(target, list) else last] = value
        return write_protocol(tmp_path, data, name=f"{design}-{len(changes)}.yaml")

    return make


@pytest.fixture
def make_engine(database_url):
    """Register a protocol file in a fresh database (each backend of ``database_url``) and return its engine."""
    from db.session import Database
    from study.engine import StudyEngine
    from study.protocol.loading import load_protocol
    from study.registry import register

    def make(path, url: str | None = None):
        db = Database(url or database_url)
        register(db, load_protocol(path))
        return StudyEngine.open(db, str(path))

    return make


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (skipped locally without one, required in CI)."""
    from tests import postgres

    require(postgres.available(), "PostgreSQL is not installed (apt-get install postgresql)")
    with postgres.temporary_server() as url:
        yield url


def _fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on ``server_url``'s server; return its URL (one per test: no leftovers)."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's server for each test."""
    return _fresh_postgres_database(postgres_server)


BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def _backend_url(request: pytest.FixtureRequest, directory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{directory}/study.db"
    return _fresh_postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh, empty database for this test, on SQLite and (a second run of the test) on PostgreSQL."""
    return _backend_url(request, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request, tmp_path_factory):
    """Like ``database_url``, shared by a module's tests (for data set up once per module)."""
    return _backend_url(request, tmp_path_factory.mktemp("db"))


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves its script as ``sys.modules["__main__"]``; spawned worker processes would
    re-import (and run) that script. Put the real ``__main__`` back after every test."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


# --- the browser suite (helpers in tests/browser.py) ----------------------------------------------------


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """The demo's case bundle (3 references a case, 384 px), built once per module."""
    from skingen.bundle.demo.writer import build_demo_bundle

    root = tmp_path_factory.mktemp("demo") / "bundle"
    build_demo_bundle(root, seed=2024, n_references=3, size=384)
    return root


@pytest.fixture
def server(tmp_path, demo_bundle):
    """The between-subjects demo study on a free port with a fresh SQLite file."""
    from tests.browser import AppServer
    from tests.factories import example_protocol, write_protocol

    protocol = write_protocol(tmp_path, example_protocol("between"), bundle=demo_bundle)
    app = AppServer(tmp_path, f"sqlite:///{tmp_path}/study.db", protocol)
    try:
        app.start()
        yield app
    finally:
        app.stop()


@pytest.fixture
def browser():
    """Debian's chromium driven by playwright (skipped locally without them, a failure in CI)."""
    from pathlib import Path

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

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
    import shutil

    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    target = os.environ.get("SKINGEN_SCREENSHOT_DIR")
    if target:
        shutil.copytree(folder, target, dirs_exist_ok=True)


# --- the skingen suite (helpers in tests/skingen_fixtures.py, tests/lora_data.py) --------------------------


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The session's tiny checkpoints, built lazily on first use (see tests/skingen_fixtures.py)."""
    from tests.skingen_fixtures import tiny_models

    return tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def lora_data(tmp_path_factory: pytest.TempPathFactory):
    """A prepared image set of tests/lora_data.py's four rows, written once per module."""
    from tests.lora_data import write_data

    return write_data(tmp_path_factory.mktemp("data") / "DATA")
