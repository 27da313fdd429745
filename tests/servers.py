"""`skingen-study serve` as a subprocess in end-to-end tests: a free port, waiting for health, stopping."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Poll ``base``'s Streamlit health check until it answers; fail with the server's log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the app server did not start:\n" + log_path.read_text())
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    """Terminate the server, killing it if it has not exited after 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
