"""Servers as subprocesses, for the benchmarks and the end-to-end tests: a free port, waiting for the health
check, stopping; `skingen-study serve` on a fresh or given database; `skingen worker` processes.

One launcher for both: the tests import it from here (tests may use bench's tools; the benchmarks never
import the tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0  # a hang guard for a server's first start (imports, the app's first compile)


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(base: str) -> bool:
    """Does the Streamlit server at ``base`` answer its health check?"""
    try:
        with urllib.request.urlopen(base + "/_stcore/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until_healthy(base: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Poll ``base``'s Streamlit health check until it answers; fail with the server's log if it exits first."""
    deadline = time.monotonic() + timeout
    while not healthy(base):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the app server did not start:\n" + log_path.read_text())
        time.sleep(0.3)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate the process (a server finishes its requests, a worker its batch), killing it if it has not
    exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def app_server(
    kind: str,
    protocol: Path,
    workdir: Path,
    root: Path = ROOT,
    extra: Sequence[str] = (),
    db_url: str | None = None,
) -> Iterator[tuple[str, str, int]]:
    """`skingen-study serve` (tuned, or --default-streamlit) on a free port and a fresh SQLite file (or the
    study already in ``db_url``: a second server of the same study); yields its URL, database URL and
    process id. ``root``: the checkout whose code the server runs; ``extra``: more `serve` options
    (``--explorer-open``). Its log is ``workdir/KIND-PORT.log``."""
    port = free_port()
    init = ["--init"] if db_url is None else []
    db_url = db_url or f"sqlite:///{workdir}/{kind}-{port}.db"
    command = [sys.executable, "-m", "app.study_command", "serve", *init, "--db", db_url]
    command += ["--protocol", str(protocol), "--port", str(port), *extra]
    command += ["--default-streamlit"] if kind == "default" else []
    log_path = workdir / f"{kind}-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(root)}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process, log_path, START_TIMEOUT_S)
        yield base, db_url, process.pid
    finally:
        stop(process)


def lowest_priority() -> None:
    """This process at the lowest priority (what :func:`model_workers` gives the workers): Linux's idle
    scheduling class, else nice 19. It then runs only when nothing else wants the CPU."""
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)


@contextmanager
def model_workers(
    count: int, db_url: str, chat_url: str, sd: Path, workdir: Path, nice: bool = True
) -> Iterator[list[int]]:
    """``count`` `skingen worker` processes on CPU (``sd`` a tiny model: 64×64, 2 steps; the diagnosis and
    answers from the chat endpoint ``chat_url``), no image cache so every image is generated; yields their
    process ids. ``nice``: at the lowest priority, so that they stand in for GPU machines elsewhere and take
    CPU only when the app server does not want it: Linux's idle scheduling class (``chrt --idle 0``, below
    any nice level), else ``nice -n 19``; one compute thread each (``OMP_NUM_THREADS=1``)."""
    command = [sys.executable, "-m", "skingen", "worker", "--db", db_url, "--chat-endpoint", chat_url]
    command += ["--sd", str(sd), "--steps", "2", "--width", "64", "--height", "64", "--device", "cpu"]
    command += ["--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    lowest = ["chrt", "--idle", "0"] if shutil.which("chrt") else ["nice", "-n", "19"]
    with contextlib.ExitStack() as stack:
        processes = []
        for i in range(count):
            log = stack.enter_context((workdir / f"worker-{i}-{free_port()}.log").open("w"))
            niced = lowest if nice else []
            processes.append(
                subprocess.Popen(
                    [*niced, *command, "--name", f"loadgen-worker-{i}"],
                    cwd=workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            yield [process.pid for process in processes]
        finally:
            for process in processes:
                process.terminate()  # SIGTERM: the worker stops after its current batch
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
