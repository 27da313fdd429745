"""The launcher: tuned Streamlit options, TCP_NODELAY on accepted connections, and `skingen-study serve`."""

from __future__ import annotations

import asyncio
import socket

import pytest

from app import server
from app.study_command import build_parser, main


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


def test_serve_init_registers_and_starts(protocol_file, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(server, "serve", lambda *a, **k: started.append((a, k)))
    url = f"sqlite:///{tmp_path}/s.db"
    path = str(protocol_file())
    assert main(["serve", "--init", "--db", url, "--protocol", path, "--port", "9123"]) == 0
    (args, kwargs) = started[0]
    assert args == (url, path) and kwargs == {
        "host": "127.0.0.1",
        "port": 9123,
        "tuned": True,
        "explorer_open": False,
        "explorer_photos": None,
        "nice": 0,
    }


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


def test_the_runtime_loop_sends_a_flush_without_yielding_between_messages(monkeypatch):
    import asyncio

    from streamlit.runtime import runtime

    monkeypatch.setattr(runtime, "asyncio", runtime.asyncio)
    monkeypatch.setattr(runtime, "MESSAGE_FLUSH_INTERVAL_SECS", runtime.MESSAGE_FLUSH_INTERVAL_SECS)
    assert server.send_flushes_at_once()
    assert runtime.MESSAGE_FLUSH_INTERVAL_SECS == server.FLUSH_INTERVAL_S
    assert runtime.asyncio.Event is asyncio.Event  # everything but sleep is asyncio's

    order = []

    async def flush():
        await runtime.asyncio.sleep(0)  # what the loop awaits after each message
        order.append("flush sent")
        await runtime.asyncio.sleep(0.001, "slept")  # a real sleep still yields
        order.append("flush interval over")

    async def other_task():
        order.append("other task ran")

    async def both():
        await asyncio.gather(flush(), other_task())

    asyncio.run(both())
    assert order == ["flush sent", "other task ran", "flush interval over"]


def test_freezing_the_startup_heap_imports_the_app_and_leaves_full_collections_less_to_walk(monkeypatch):
    import gc
    import sys

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(gc.get_freeze_count()))
    server.freeze_startup_heap()
    assert frozen and all(name in sys.modules for name in server.APP_MODULES)
    assert "app.views.trial" in sys.modules and "app.context" in sys.modules


@pytest.fixture
def startup(monkeypatch) -> list:
    """What `server.serve` does before Streamlit would start (it doesn't: "streamlit runs" is recorded)."""
    from streamlit.web import bootstrap

    for name in ("SKINGEN_DB_URL", "SKINGEN_PROTOCOL", "SKINGEN_EXPLORER_OPEN", "SKINGEN_EXPLORER_PHOTOS"):
        monkeypatch.delenv(name, raising=False)  # serve sets them; restored afterwards
    calls: list = []
    monkeypatch.setattr(bootstrap, "load_config_options", lambda flag_options: None)
    monkeypatch.setattr(bootstrap, "run", lambda *args: calls.append("streamlit runs"))
    return calls


def test_a_tuned_server_applies_every_setting_before_streamlit_starts_and_a_stock_one_none(
    monkeypatch, startup
):
    calls = startup
    tuning = (
        "enable_tcp_nodelay",
        "disable_config_watchers",
        "memoize_section_options",
        "send_flushes_at_once",
        "freeze_startup_heap",
    )
    for name in tuning:
        monkeypatch.setattr(server, name, lambda name=name: calls.append(name))
    server.serve("sqlite:///unused.db")
    assert calls == [*tuning, "streamlit runs"]
    calls.clear()
    server.serve("sqlite:///unused.db", tuned=False)
    assert calls == ["streamlit runs"]


def test_a_server_started_with_nice_lowers_its_own_priority_first(monkeypatch, startup):
    import os

    calls = startup
    monkeypatch.setattr(os, "nice", lambda n: calls.append(f"nice {n}"))
    server.serve("sqlite:///unused.db", tuned=False, nice=10)
    assert calls == ["nice 10", "streamlit runs"]
    calls.clear()
    server.serve("sqlite:///unused.db", tuned=False)
    assert calls == ["streamlit runs"]  # the default keeps the normal priority
