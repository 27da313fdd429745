"""A real ``skingen-study serve`` process that can report what it holds, for tests/test_app_server.py.

``python -m tests.server_probe REPORT [--without-uvloop] serve ARGS…`` starts an observer thread, then runs the
command exactly as the console script does (``--without-uvloop``: as where uvloop is missing — Windows, or an
install without it —, so Streamlit serves on asyncio's own event loop). When the file ``REPORT.ask`` appears
(the test creates it once its client is connected), the thread writes ``REPORT`` (JSON) from inside the
running server:

- ``app_modules``: which of the app's page modules are imported (before any session has run the script);
- ``frozen``: objects in the permanent generation (``gc.freeze``), ``walked``: the objects a full collection
  walks (every tracked object not frozen);
- ``nodelay``: ``TCP_NODELAY`` of each connected TCP socket of the process on the server's ``--port``;
- ``niceness``: the CPU niceness of the server's main thread (Linux sets it per thread; Streamlit's threads
  start from the main one).

The observer only reads; nothing of the server is replaced.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from app.server import APP_MODULES
from app.study_command import main


def connected_nodelay(port: int) -> list[int]:
    """TCP_NODELAY of every connected TCP socket of this process whose local port is ``port``."""
    values = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            try:
                tcp = sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
                if not tcp or sock.getsockname()[1] != port:
                    continue
                sock.getpeername()  # a listening socket has no peer
            except OSError:
                continue
            values.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return values


def observe(report: Path, port: int) -> None:
    ask = report.with_name(report.name + ".ask")
    while not ask.exists():
        time.sleep(0.05)
    try:
        state: dict[str, object] = {
            "app_modules": [name for name in APP_MODULES if name in sys.modules],
            "frozen": gc.get_freeze_count(),
            "walked": len(gc.get_objects()),
            "nodelay": connected_nodelay(port),
            "niceness": os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id),
        }
    except Exception as error:  # the test reads and shows it instead of waiting for a report never written
        state = {"error": f"{type(error).__name__}: {error}"}
    partial = report.with_name(report.name + ".partial")
    partial.write_text(json.dumps(state), encoding="utf-8")
    partial.replace(report)


if __name__ == "__main__":
    report_path, argv = Path(sys.argv[1]), sys.argv[2:]
    if argv[0] == "--without-uvloop":
        sys.modules["uvloop"] = None  # type: ignore[assignment]  # `import uvloop` now fails as if not installed
        argv = argv[1:]
    server_port = int(argv[argv.index("--port") + 1])
    threading.Thread(target=observe, args=(report_path, server_port), daemon=True).start()
    sys.argv = ["skingen-study", *argv]
    sys.exit(main())
