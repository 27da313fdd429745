"""Commands that never mislead: a wrong ``--db`` creates nothing and names what it tried; ``serve`` checks its
port before it prints a password or touches a database; a running demo says where; the demo's printed commands
work as printed; a report on a study without participants says so."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import skingen.bundle.demo.writer
from app import analysis_command, study_command
from app.demo import RUNNING_FILE, check_not_running, running
from db.jobs import JobQueue
from db.session import DatabaseNotFound
from tests.factories import make_bundle


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# Every command that reads or changes an existing database (only init, serve --init/--demo and restore create).
READERS = [
    ["simulate", "-n", "1"],
    ["export", "--out", "{tmp}/export"],
    ["raters", "add", "Dr A"],
    ["raters", "list"],
    ["withdraw", "--label=someone"],
    ["purge"],
    ["backup", "--out", "{tmp}/backup.db"],
    ["audit"],
    ["serve", "--port", "0"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda argv: " ".join(argv[:2]))
def test_a_wrong_db_creates_nothing_and_names_the_path_it_tried(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    before = files_under(tmp_path)
    args = [part.format(tmp=tmp_path) for part in argv]
    assert study_command.main([*args, "--db", "sqlite:///typo/study.db"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "typo" / "study.db") in err, err  # the resolved path, not just the URL
    assert files_under(tmp_path) == before  # no file, no folder


def test_analysis_and_workers_refuse_a_wrong_db_without_creating_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/typo.db"
    assert analysis_command.main(["report", "--db", url, "--out", str(tmp_path / "results")]) == 2
    assert f"no database file at {tmp_path / 'typo.db'}" in capsys.readouterr().err
    with pytest.raises(DatabaseNotFound, match=r"typo\.db"):
        JobQueue.open(url)  # what `skingen worker --db` starts from
    assert files_under(tmp_path) == set()


def test_an_unreachable_postgresql_server_is_named_by_host_and_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("psycopg")
    url = _unreachable_postgresql()
    assert study_command.main(["audit", "--db", url]) == 2
    err = capsys.readouterr().err
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert f"cannot connect to database 'no_such_study' on 127.0.0.1:{port}" in err
    assert "secret" not in err


def _unreachable_postgresql() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://someone:secret@127.0.0.1:{port}/no_such_study"


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_the_worker_checks_its_db_before_loading_any_model(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Models that do not exist: the refusal can only be about --db if the queue is opened before loading."""
    from skingen.cli import main

    if where == "postgresql":
        pytest.importorskip("psycopg")
    url = f"sqlite:///{tmp_path}/typo.db" if where == "sqlite" else _unreachable_postgresql()
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path / "no-such-model")
    assert main(["worker", "--db", url, "--sd", missing, "--vlm", missing, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    expected = f"no database file at {tmp_path / 'typo.db'}" if where == "sqlite" else "cannot connect"
    assert err.startswith("skingen: error: ") and expected in err and "no-such-model" not in err, err
    assert files_under(tmp_path) == set()


@pytest.fixture
def demo_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skingen.bundle.demo.writer, "build_demo_bundle", lambda out: make_bundle(out))


def test_serve_checks_its_port_before_any_password_file_or_database(
    tmp_path: Path, demo_drawn: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--demo", "--demo-dir", str(tmp_path / "demo"), "--port", str(port)]
        assert study_command.main([*argv, "--db", f"sqlite:///{tmp_path}/demo.db"]) == 2
    out, err = capsys.readouterr()
    assert f"port {port} on 127.0.0.1 is not free" in err
    assert "password" not in out + err
    assert files_under(tmp_path) == set()  # no demo drawn, no database


def test_rerunning_the_demo_while_it_runs_says_where(
    tmp_path: Path, demo_drawn: None, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"]
    )  # the running demo's pid
    try:
        (folder / RUNNING_FILE).write_text(
            f'{{"pid": {server.pid}, "url": "http://127.0.0.1:8765", "db": "sqlite:///var/study.db"}}\n'
        )
        argv = [
            "serve",
            "--demo",
            "--demo-dir",
            str(folder),
            "--port",
            "0",
            "--db",
            f"sqlite:///{tmp_path}/x.db",
        ]
        assert study_command.main(argv) == 2
        err = capsys.readouterr().err
        assert (
            "the demo is already running at http://127.0.0.1:8765" in err and f"process {server.pid}" in err
        )
        assert not (tmp_path / "x.db").exists()
    finally:
        server.kill()
        server.wait()
    check_not_running(folder)  # the marker of a server that is gone is ignored


def test_the_running_marker_lives_as_long_as_the_server(tmp_path: Path) -> None:
    with running(tmp_path, "http://127.0.0.1:8501", "sqlite:///var/study.db"):
        assert (tmp_path / RUNNING_FILE).is_file()
    assert not (tmp_path / RUNNING_FILE).exists()


def test_the_demos_printed_commands_work_as_printed_from_another_folder(
    tmp_path: Path,
    demo_drawn: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import server

    started = tmp_path / "started-here"
    started.mkdir()
    monkeypatch.chdir(started)
    monkeypatch.delenv("SKINGEN_DB_URL", raising=False)
    monkeypatch.setattr(server, "serve", lambda *a, **k: None)
    monkeypatch.setattr(server, "check_port", lambda host, port: None)
    assert (
        study_command.main(["serve", "--demo", "--demo-dir", str(tmp_path / "demo"), "--port", "8765"]) == 0
    )
    printed = capsys.readouterr().out
    [raters_add] = [line.strip() for line in printed.splitlines() if "raters add" in line]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    argv = shlex.split(raters_add.replace("NAME", "'Dr Example'"))
    assert argv[0] == "skingen-study"
    assert study_command.main(argv[1:]) == 0
    out = capsys.readouterr().out
    assert "(Dr Example)" in out and "http://127.0.0.1:8765/?invite=" in out
    assert files_under(elsewhere) == set()


def test_a_report_on_a_registered_study_without_participants_says_so(
    protocol_file, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    assert study_command.main(["init", "--db", url, "--protocol", str(protocol_file())]) == 0
    capsys.readouterr()
    assert analysis_command.main(["report", "--db", url, "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "is registered but has no participants' answers and no ratings yet" in err
    assert "no input" not in err
    assert not (tmp_path / "results").exists()
