"""Launch the participant app with Streamlit tuned for many concurrent participants.

``skingen-study serve`` calls :func:`serve`. Two Streamlit defaults cost about 10× latency per click under
load (measured in docs/performance.md):

1. ``runner.postScriptGC`` (default on) runs a full ``gc.collect()`` after every script run, holding the GIL
   for ~80 ms, so every other participant's rerun waits behind it. We turn it off.
2. Streamlit binds its listening socket with ``socket.socket(family)``, i.e. protocol number 0. asyncio only
   sets ``TCP_NODELAY`` on accepted connections when ``sock.proto == IPPROTO_TCP``, and accepted sockets
   inherit the listener's protocol number, so every websocket message waits for Nagle's algorithm and the
   peer's delayed ACK (~40 ms on loopback). :func:`enable_tcp_nodelay` relabels the listening socket as
   ``IPPROTO_TCP`` right after Streamlit binds it; asyncio then sets ``TCP_NODELAY`` on every connection.
   The bind itself (address reuse, IPv6 dual-stack, port retry) stays Streamlit's. On uvloop (installed with
   the ``study`` extra except on Windows) every connection gets ``TCP_NODELAY`` anyway; the fix is for
   asyncio's own loop (tests/test_app_server.py checks both on real servers).

3. Streamlit polls every ``config.toml`` it could read five times a second for the server's whole life (a
   thread-pool task per file and poll, each needing the GIL). Nothing edits a running study's config, so
   :func:`disable_config_watchers` skips installing them: an idle server then uses almost no CPU.

4. Every script run rebuilds the theme part of its first message from the config: six sections, each found by
   scanning all ~250 config options (~0.6 ms per run, ~4 % of a page submit's CPU).
   :func:`memoize_section_options` reads each section once: with the watchers off (3.) the config cannot
   change after start.

5. Python's full (generation-2) garbage collections walk every long-lived object: ~160 ms with the app's
   modules loaded, a pause for every session, twice per 800 submits. :func:`freeze_startup_heap` imports the
   app's modules before serving and moves all that exists then into the permanent generation
   (``gc.freeze``), so full collections walk only what the script runs create.

6. Streamlit's runtime loop sends the queued messages of all sessions with an ``await asyncio.sleep(0)``
   after each one, then sleeps 5 ms before the next flush. Every zero sleep is a pass through the event loop's
   ``epoll`` call, which releases the GIL; while a script run holds it, the loop waits up to the interpreter's
   switch interval (5 ms) to get it back, so a page of 25 messages reached its participant up to tens of ms
   after its run had finished (at 50 participants: p50 3 ms, p95 13–16 ms, p99 27–33 ms).
   :func:`send_flushes_at_once` makes that loop send each flush without yielding between messages and flush
   every 1 ms: that delay falls to p50 0.3 ms, p95 2 ms, at no extra CPU (docs/performance.md).

``--default-streamlit`` runs stock settings, for comparison (bench/loadgen).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

APP_MAIN = Path(__file__).resolve().parent / "main.py"
LOG = logging.getLogger("skingen.server")

# Options that don't change speed: participants see no Streamlit chrome or tracebacks either way.
COMMON_OPTIONS: dict[str, Any] = {
    "server.headless": True,
    "browser.gatherUsageStats": False,
    "client.toolbarMode": "minimal",
    "client.showSidebarNavigation": False,
    "client.showErrorDetails": "none",
    "runner.magicEnabled": False,
    "server.runOnSave": False,
}
TUNED_OPTIONS: dict[str, Any] = {
    "runner.postScriptGC": False,
    "server.fileWatcherType": "none",
}
# Streamlit's own defaults, set explicitly so app/.streamlit/config.toml can't leak into the comparison.
STOCK_OPTIONS: dict[str, Any] = {
    "runner.postScriptGC": True,
    "server.fileWatcherType": "auto",
}


def streamlit_options(host: str, port: int, *, tuned: bool = True) -> dict[str, Any]:
    """The Streamlit config options (as ``streamlit run`` flags) for one server."""
    return {
        **COMMON_OPTIONS,
        **(TUNED_OPTIONS if tuned else STOCK_OPTIONS),
        "server.address": host,
        "server.port": port,
    }


def nodelay_listener(bind: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
    """Wrap a function that returns a bound listening socket so that it reports ``IPPROTO_TCP``."""

    def bind_with_tcp_proto(*args: Any, **kwargs: Any) -> socket.socket:
        sock = bind(*args, **kwargs)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            # Same file descriptor, same bound and listening socket, now labelled TCP: sock.accept() creates
            # connections with this protocol number and asyncio sets TCP_NODELAY on them.
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        return sock

    bind_with_tcp_proto.__wrapped__ = bind  # type: ignore[attr-defined]
    return bind_with_tcp_proto


def enable_tcp_nodelay() -> bool:
    """Patch Streamlit's socket binding (see the module docstring). False if Streamlit changed its internals."""
    try:
        from streamlit.web.server.starlette import starlette_server
    except ImportError:  # pragma: no cover - another Streamlit server implementation
        LOG.warning("TCP_NODELAY not enabled: streamlit.web.server.starlette.starlette_server not found")
        return False
    bind = getattr(starlette_server, "_bind_socket", None)
    if bind is None:  # pragma: no cover - Streamlit renamed its bind helper
        LOG.warning("TCP_NODELAY not enabled: Streamlit's _bind_socket() not found")
        return False
    if not hasattr(bind, "__wrapped__"):
        starlette_server._bind_socket = nodelay_listener(bind)
    return True


def disable_config_watchers() -> bool:
    """Skip Streamlit's config-file polling (see the module docstring). False if Streamlit changed it."""
    from streamlit.web import bootstrap

    if not hasattr(bootstrap, "_install_config_watchers"):  # pragma: no cover - Streamlit renamed it
        LOG.warning(
            "config watchers not disabled: streamlit.web.bootstrap._install_config_watchers not found"
        )
        return False
    bootstrap._install_config_watchers = lambda flag_options: None
    return True


def memoize_section_options() -> bool:
    """Read each config section once (see the module docstring). False if Streamlit changed it."""
    from streamlit import config

    lookup = getattr(config, "get_options_for_section", None)
    if lookup is None:  # pragma: no cover - Streamlit renamed it
        LOG.warning("config sections not memoized: streamlit.config.get_options_for_section not found")
        return False
    if hasattr(lookup, "__wrapped__"):
        return True
    sections = functools.cache(lookup)

    def options_for_section(section: str) -> dict[str, Any]:
        return dict(sections(section))  # a copy: callers own what they get, as before

    options_for_section.__wrapped__ = lookup  # type: ignore[attr-defined]
    config.get_options_for_section = options_for_section
    return True


class _AsyncioWithoutZeroSleeps:
    """``asyncio`` as Streamlit's runtime loop sees it after :func:`send_flushes_at_once`: ``sleep(0)``
    returns at once, everything else is asyncio's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        if delay <= 0:
            return result
        return await asyncio.sleep(delay, result)


FLUSH_INTERVAL_S = 0.001


def send_flushes_at_once() -> bool:
    """Send each flush of queued messages in one go (see the module docstring). False if Streamlit changed."""
    from streamlit.runtime import runtime

    if not hasattr(runtime, "MESSAGE_FLUSH_INTERVAL_SECS") or not hasattr(runtime, "asyncio"):
        LOG.warning("message flushes unchanged: streamlit.runtime.runtime no longer has its flush loop")
        return False
    runtime.asyncio = _AsyncioWithoutZeroSleeps()
    runtime.MESSAGE_FLUSH_INTERVAL_SECS = FLUSH_INTERVAL_S
    return True


# What the app's first script run would import (main.py's own imports bring in all the others).
APP_MODULES = ("app.roles", *(f"app.views.{name}" for name in ("consent", "questions", "trial")))


def freeze_startup_heap() -> None:
    """Import the app's modules and freeze the heap (see the module docstring)."""
    for name in APP_MODULES:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


class PortInUse(ValueError):
    """The port ``serve`` was asked for is taken: said before a password is printed or a database touched."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`PortInUse` unless ``host:port`` can be bound now (as Streamlit will bind it: address
    reuse on, so a port a stopped server left in TIME_WAIT counts as free)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"--host {host}: not an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortInUse(
                f"port {port} on {host} is not free ({exc.strerror}): another server (a study app already "
                f"running?) listens on http://{host}:{port}; stop it or choose another --port"
            ) from None


def serve(
    db_url: str,
    protocol: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    tuned: bool = True,
    explorer_open: bool = False,
    explorer_photos: str | None = None,
    job_ttl: float | None = None,
    job_hold: float | None = None,
    nice: int = 0,
) -> None:
    """Run the participant app until interrupted. The app reads the study (and the explorer's settings: open
    to all, where photos are kept with consent; the model jobs' time to live and a left page's hold) from the
    environment. ``nice`` > 0 lowers the process's CPU priority, so that other servers on the machine (a
    study's replicas) come first when the cores are busy."""
    from streamlit import config as streamlit_config
    from streamlit.web import bootstrap

    from app.context import JOB_HOLD_ENV, JOB_TTL_ENV

    os.environ["SKINGEN_DB_URL"] = db_url
    _set_env("SKINGEN_PROTOCOL", str(Path(protocol).resolve()) if protocol else None)
    _set_env("SKINGEN_EXPLORER_OPEN", "1" if explorer_open else None)
    _set_env("SKINGEN_EXPLORER_PHOTOS", str(Path(explorer_photos).resolve()) if explorer_photos else None)
    if job_ttl is not None:
        os.environ[JOB_TTL_ENV] = f"{job_ttl:g}"
    if job_hold is not None:
        os.environ[JOB_HOLD_ENV] = f"{job_hold:g}"
    if nice > 0:
        os.nice(nice)
    options = streamlit_options(host, port, tuned=tuned)
    streamlit_config._main_script_path = str(APP_MAIN)  # so the script-level config.toml is found
    bootstrap.load_config_options(flag_options=options)
    if tuned:
        enable_tcp_nodelay()
        disable_config_watchers()
        memoize_section_options()
        send_flushes_at_once()
        freeze_startup_heap()
    print(
        f"SkinGEN study app ({'tuned' if tuned else 'stock Streamlit settings'}) on http://{host}:{port} "
        f"— database {db_url}",
        flush=True,
    )
    bootstrap.run(str(APP_MAIN), False, [], options)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
