"""The packaged demo study: `serve --demo` draws it into a user folder; a missing demo bundle says how to draw it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

import skingen.bundle.demo.writer
from app import server
from app.demo import PROTOCOLS, packaged_protocol_text
from app.study_command import main
from app.views.consent import DECLINE
from study.protocol.loading import parse_protocol
from tests.factories import make_bundle

PACKAGED = resources.files("app.demo") / "between.yaml"


def test_validate_names_the_command_that_draws_a_missing_demo_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PACKAGED.read_text(encoding="utf-8")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "between.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "real.yaml").write_text(text.replace("  demo: true", "  demo: false"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert main(["validate", "demo/between.yaml"]) == 1
    err = capsys.readouterr().err
    assert "cases.bundle:" in err and "no bundle manifest here" in err
    assert "draw the demo bundle with `skingen-study demo-bundle demo/demo-bundle`" in err

    assert main(["validate", "real.yaml"]) == 1
    err = capsys.readouterr().err
    assert "no bundle manifest here" in err and "demo-bundle`" not in err, "only the demo gets the hint"

    make_bundle(tmp_path / "demo" / "demo-bundle")
    assert main(["validate", "demo/between.yaml"]) == 0


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    monkeypatch.setattr(skingen.bundle.demo.writer, "build_demo_bundle", lambda out: make_bundle(out))
    started: list[tuple] = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: started.append(a))
    monkeypatch.setattr(server, "check_port", lambda host, port: None)  # 8501 may be taken on a test machine
    return started


def test_serve_demo_copies_the_protocol_and_draws_its_bundle_in_the_demo_dir(
    tmp_path: Path, served: list[tuple]
) -> None:
    demo = tmp_path / "demo"
    url = f"sqlite:///{tmp_path}/demo.db"
    assert main(["serve", "--demo", "--demo-dir", str(demo), "--db", url]) == 0
    assert (demo / "demo-bundle" / "manifest.json").is_file()
    assert (demo / "between.yaml").read_text(encoding="utf-8") == PACKAGED.read_text(encoding="utf-8")
    assert served == [(url, str(demo / "between.yaml"))]
    # Served again: the bundle is kept, the study is already registered.
    manifest = (demo / "demo-bundle" / "manifest.json").stat().st_mtime_ns
    assert main(["serve", "--demo", "--demo-dir", str(demo), "--db", url]) == 0
    assert (demo / "demo-bundle" / "manifest.json").stat().st_mtime_ns == manifest


def test_serve_demo_defaults_to_the_user_data_dir_or_the_environment(
    tmp_path: Path, served: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("SKINGEN_DEMO_DIR", raising=False)
    assert main(["serve", "--demo", "--db", f"sqlite:///{tmp_path}/a.db"]) == 0
    assert (tmp_path / "data" / "skingen-study" / "demo" / "demo-bundle" / "manifest.json").is_file()
    monkeypatch.setenv("SKINGEN_DEMO_DIR", str(tmp_path / "env"))
    assert main(["serve", "--demo", "--db", f"sqlite:///{tmp_path}/b.db"]) == 0
    assert served[-1][1] == str(tmp_path / "env" / "between.yaml")


def test_serve_demo_refuses_a_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--demo", "--protocol", "x.yaml", "--db", f"sqlite:///{tmp_path}/c.db"]) == 2
    assert "leave out --protocol" in capsys.readouterr().err


@pytest.mark.parametrize("name", PROTOCOLS)
def test_the_demo_consent_is_true_about_what_is_stored_how_long_and_withdrawal(name: str) -> None:
    """The platform's participant id is recorded, so the answers are pseudonymous (the old text said
    "anonymous"); the text names every recorded identifier, the retention and the decline button."""
    protocol = parse_protocol(packaged_protocol_text(name), name)
    text = " ".join([protocol.consent.text, *(s.text for s in protocol.consent.statements)])
    assert "anonymous answers" not in text and "pseudonymous" in text
    spoken = {"PROLIFIC_PID": "Prolific ID", "STUDY_ID": "study ID", "SESSION_ID": "session ID"}
    assert set(protocol.url_parameters) == set(spoken)
    assert all(words in text for words in spoken.values())
    assert f"{protocol.retention_days:g} days after your last" in text
    assert "delete all your answers" in text and f'"{DECLINE}"' in text
