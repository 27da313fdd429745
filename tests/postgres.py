"""A throwaway PostgreSQL server for tests: initdb into a temp dir, listen on 127.0.0.1, stop afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


def available() -> bool:
    return _bin_dir() is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A private PostgreSQL cluster on a free port; :meth:`restart` stops it at once (like a crash) and
    starts it again on the same data directory (crash recovery), for tests of a database that goes away."""

    def __init__(self, bin_dir: Path, root: Path, as_user: list[str]) -> None:
        self.bin_dir, self.root, self.as_user = bin_dir, root, as_user
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def initdb(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=100"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """``-m immediate``: no shutdown checkpoint, clients cut off, as when the server crashes."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def temporary_server() -> Iterator[str]:
    """Yield the URL of a fresh server's ``postgres`` database (see :func:`restartable_server`)."""
    with restartable_server() as server:
        yield server.url


@contextmanager
def restartable_server() -> Iterator[Server]:
    """A fresh :class:`Server`, removed afterwards; PostgreSQL refuses root, so it runs as postgres."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="skingen-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    server = Server(bin_dir, root, as_user)
    server.initdb()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
