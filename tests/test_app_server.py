"""The launcher: tuned Streamlit options, TCP_NODELAY on accepted connections, and `skingen-study serve`.

What a tuned server does is checked on real `skingen-study serve` processes (tests/server_probe.py reports
from inside them) and on Streamlit's real runtime loop, against a stock server / loop where the cause shows."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import Runtime, RuntimeConfig
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.session_manager import SessionClient

from app import server
from app.study_command import build_parser, main
from bench.servers import free_port, stop, wait_until_healthy
from db.session import Database
from study.registry import active_version
from tests.factories import example_protocol, write_protocol

ROOT = Path(__file__).resolve().parents[1]


def test_tuned_and_stock_options_differ_only_in_speed_settings():
    tuned = server.streamlit_options("127.0.0.1", 8501)
    stock = server.streamlit_options("127.0.0.1", 8501, tuned=False)
    assert tuned["runner.postScriptGC"] is False and tuned["server.fileWatcherType"] == "none"
    assert stock["runner.postScriptGC"] is True and stock["server.fileWatcherType"] == "auto"
    assert {k for k in tuned if tuned[k] != stock[k]} == {"runner.postScriptGC", "server.fileWatcherType"}
    assert tuned["client.toolbarMode"] == "minimal" and tuned["client.showErrorDetails"] == "none"
    assert tuned["server.address"] == "127.0.0.1" and tuned["server.headless"] is True


def _listener() -> socket.socket:
    """A listening socket made the way Streamlit 1.67 makes it: socket.socket(family), protocol 0."""
    sock = socket.socket(family=socket.AF_INET)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


async def _server_side_nodelay(listener: socket.socket) -> int:
    accepted: list[int] = []

    def connected(reader, writer):
        accepted.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    srv = await asyncio.start_server(connected, sock=listener)
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(100):
        if accepted:
            break
        await asyncio.sleep(0.01)
    value = accepted[0]
    writer.close()
    srv.close()
    await srv.wait_closed()
    return value


def test_stock_listener_gets_no_tcp_nodelay_and_the_fix_adds_it():
    assert asyncio.run(_server_side_nodelay(_listener())) == 0  # the cause: Nagle stays on
    fixed = server.nodelay_listener(_listener)()
    assert fixed.proto == socket.IPPROTO_TCP
    assert asyncio.run(_server_side_nodelay(fixed)) != 0


def test_enable_tcp_nodelay_patches_streamlits_bind_once(monkeypatch):
    from streamlit.web.server.starlette import starlette_server

    original = starlette_server._bind_socket
    monkeypatch.setattr(starlette_server, "_bind_socket", original)
    assert server.enable_tcp_nodelay() and server.enable_tcp_nodelay()
    patched = starlette_server._bind_socket
    assert patched.__wrapped__ is original  # wrapped once, not twice
    sock = patched("127.0.0.1", 0, 8)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_serve_command_line():
    args = build_parser().parse_args(
        ["serve", "--protocol", "p.yaml", "--port", "9000", "--default-streamlit"]
    )
    assert (args.host, args.port, args.default_streamlit, args.init) == ("127.0.0.1", 9000, True, False)


def test_serve_refuses_an_unregistered_study_before_starting(tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: started.append(a))
    assert main(["serve", "--db", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "skingen-study init" in capsys.readouterr().err and not started


def test_init_without_protocol_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--bogus"])
    assert main(["serve", "--init", "--db", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert "--init needs --protocol" in capsys.readouterr().err


def test_tuned_servers_skip_streamlits_config_file_polling(monkeypatch):
    from streamlit.web import bootstrap

    polled = []
    monkeypatch.setattr(bootstrap, "_install_config_watchers", bootstrap._install_config_watchers)
    monkeypatch.setattr(bootstrap, "watch_file", lambda *args, **kwargs: polled.append(args))
    bootstrap._install_config_watchers({})
    assert polled  # the cause: Streamlit polls its config files
    polled.clear()
    assert server.disable_config_watchers()
    bootstrap._install_config_watchers({})
    assert polled == []


def test_config_sections_are_read_once_and_each_caller_gets_its_own_copy(monkeypatch):
    from streamlit import config

    scans = []
    original = config.get_options_for_section
    monkeypatch.setattr(
        config, "get_options_for_section", lambda section: scans.append(section) or original(section)
    )
    assert server.memoize_section_options() and server.memoize_section_options()
    first = config.get_options_for_section("theme")
    assert first == original("theme") and scans == ["theme"]
    first["base"] = "changed by a caller"
    assert config.get_options_for_section("theme") == original("theme") and scans == ["theme"]
    config.get_options_for_section("theme.light")
    assert scans == ["theme", "theme.light"]  # one scan per section, not per call


class _Recorder(SessionClient):
    """The browser end of a session: records each "script finished" message the runtime sends to it."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def write_forward_msg(self, msg: ForwardMsg) -> None:
        if msg.WhichOneof("type") == "script_finished":
            self.order.append("sent")


async def _one_flush_beside_another_task(script: Path, messages: int) -> list[str]:
    """Streamlit's real runtime loop sends one flush of ``messages`` queued messages while another task of the
    event loop wants to run; returns the order in which both happened."""
    runtime = Runtime(
        RuntimeConfig(
            script_path=str(script),
            media_file_storage=MemoryMediaFileStorage("/media"),
            uploaded_file_manager=MemoryUploadedFileManager("/upload"),
        )
    )
    await runtime.start()
    order: list[str] = []
    session_id = runtime.connect_session(_Recorder(order), user_info={})
    session = runtime._session_mgr.get_active_session_info(session_id).session
    for _ in range(messages):  # what a script run does for each element it draws
        message = ForwardMsg()
        message.script_finished = ForwardMsg.FINISHED_SUCCESSFULLY
        session._enqueue_forward_msg(message)

    async def other_task() -> None:
        while order.count("sent") < messages:
            order.append("other task ran")
            await asyncio.sleep(0)

    await asyncio.wait_for(other_task(), timeout=30)
    runtime.stop()
    await runtime.stopped
    return order


@pytest.mark.parametrize("tuned", [False, True])
def test_the_runtime_loop_sends_a_flush_without_yielding_between_messages(tuned, monkeypatch, tmp_path):
    from streamlit.runtime import runtime

    monkeypatch.setattr(Runtime, "_instance", None)  # one runtime per process: each test gets its own
    monkeypatch.setattr(runtime, "asyncio", runtime.asyncio)  # restored afterwards
    monkeypatch.setattr(runtime, "MESSAGE_FLUSH_INTERVAL_SECS", runtime.MESSAGE_FLUSH_INTERVAL_SECS)
    if tuned:
        assert server.send_flushes_at_once()
    script = tmp_path / "page.py"
    script.write_text("", encoding="utf-8")
    order = asyncio.run(_one_flush_beside_another_task(script, messages=5))
    first = order.index("sent")
    in_one_go = order[first : first + 5] == ["sent"] * 5
    assert in_one_go == tuned, order  # stock: the other task runs between two messages of the flush


# --- real servers, observed from inside (tests/server_probe.py) ----------------------------------------------
SERVERS = {
    "tuned": ["--nice", "3"],  # as `skingen-study serve` runs by default (on uvloop where installed)
    "tuned_asyncio": ["--without-uvloop"],
    "stock_asyncio": ["--without-uvloop", "--default-streamlit"],
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory, bundle_dir) -> dict[str, dict]:
    """What three real `skingen-study serve` processes hold once they answer: each reports from inside while
    the test holds one connection to it open, before any session has run the app."""
    directory = tmp_path_factory.mktemp("servers")
    protocol = write_protocol(directory, example_protocol("between"), bundle_dir)
    started = {}
    try:
        for name, options in SERVERS.items():
            port, log = free_port(), directory / f"{name}.log"
            probe = [str(directory / f"{name}.json"), *[o for o in options if o == "--without-uvloop"]]
            serve = [
                "serve",
                "--init",
                "--db",
                f"sqlite:///{directory}/{name}.db",
                "--protocol",
                str(protocol),
            ]
            serve += ["--port", str(port), *[o for o in options if o != "--without-uvloop"]]
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tests.server_probe", *probe, *serve],
                    cwd=directory,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started[name] = (process, port, log)
        reports = {name: _report(directory / f"{name}.json", *started[name]) for name in SERVERS}
        return {
            name: {**report, "db": f"sqlite:///{directory}/{name}.db"} for name, report in reports.items()
        }
    finally:
        for process, _, _ in started.values():
            stop(process)


def _report(path: Path, process: subprocess.Popen, port: int, log: Path) -> dict:
    wait_until_healthy(f"http://127.0.0.1:{port}", process, log, timeout=180)
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /_stcore/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(1024).startswith(b"HTTP/1.1 200")  # accepted, and still open: the report sees it
        path.with_name(path.name + ".ask").touch()
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.05)
    report = json.loads(path.read_text(encoding="utf-8"))
    assert "error" not in report, report
    return report


def test_a_tuned_server_has_imported_the_app_before_any_session_and_a_stock_one_has_not(servers):
    assert servers["tuned"]["app_modules"] == list(server.APP_MODULES)
    assert servers["stock_asyncio"]["app_modules"] == []


def test_a_tuned_servers_full_collections_walk_what_runs_create_not_the_startup_heap(servers):
    tuned, stock = servers["tuned"], servers["stock_asyncio"]
    assert stock["frozen"] == 0
    assert tuned["frozen"] > 5 * tuned["walked"]  # the imported app, Streamlit, SQLAlchemy, pandas: frozen
    assert tuned["walked"] < stock["walked"] / 5  # what a full (generation-2) collection walks


def test_every_connection_gets_tcp_nodelay_on_uvloop_and_on_asyncio(servers):
    assert servers["stock_asyncio"]["nodelay"] == [0]  # the cause: Streamlit's listener, asyncio's loop
    assert servers["tuned_asyncio"]["nodelay"] == [1]  # the relabelled listener
    assert servers["tuned"]["nodelay"] == [1]  # uvloop sets it on every connection itself


def test_a_server_started_with_nice_lowers_its_own_priority(servers):
    ours = os.getpriority(os.PRIO_PROCESS, 0)  # the servers start from this process's priority
    assert servers["tuned"]["niceness"] == min(ours + 3, 19)
    assert servers["stock_asyncio"]["niceness"] == ours  # the default keeps the normal priority


def test_serve_init_registers_the_protocol_before_it_serves(servers):
    for name in SERVERS:
        db = Database(servers[name]["db"])
        try:
            assert active_version(db).protocol_id == example_protocol("between")["study"]["id"]
        finally:
            db.dispose()
