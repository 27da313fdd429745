"""`skingen-study deploy nginx` for real: nginx + 2 replicas (supervisor, start.sh) + PostgreSQL, with
protocol-level participants (bench/loadgen) reloading, moving between replicas, and living through a
replica killed with SIGKILL and a PostgreSQL restart. Afterwards every answer is stored exactly once and the
audit log explains every row."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from app.study_command import main
from bench import loadgen
from bench.servers import healthy
from db.models import AllocationSlot
from db.session import Database
from study.audit import audit
from study.deploy import ROUTE_COOKIE, SECURITY_HEADERS
from tests import postgres
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
PARTICIPANTS = int(os.environ.get("SKINGEN_DEPLOY_PARTICIPANTS", "200"))
FAST_THINK = (0.05, 0.4)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Running:
    """A running deployment: nginx's URL, the replicas' ports, the shared database and the process tree."""

    out: Path
    base: str
    ports: list[int]
    db_url: str
    protocol: Path
    pg: postgres.Server
    process: subprocess.Popen
    explorer_base: str  # nginx's port for the explorer's own server (--explorer-port)

    def get(self, path: str, route: str | None = None) -> tuple[int, email.message.Message]:
        request = urllib.request.Request(self.base + path)
        if route:
            request.add_header("Cookie", f"{ROUTE_COOKIE}={route}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers

    def access_log(self) -> list[str]:
        return (self.out / "logs" / "nginx-access.log").read_text().splitlines()

    def upstream_of(self, route: str) -> int:
        """The replica port nginx sends ``route`` to (read back from nginx's access log)."""
        before = len(self.access_log())
        self.get("/_stcore/health", route)
        # nginx writes the log line after sending the response: wait for it.
        wait_for(
            lambda: any(line.endswith(f" route={route}") for line in self.access_log()[before:]),
            "the log line",
        )
        line = next(line for line in self.access_log()[before:] if line.endswith(f" route={route}"))
        return int(re.search(r"upstream=127\.0\.0\.1:(\d+)", line).group(1))

    def routes(self) -> dict[int, str]:
        """One sticky-cookie value per replica port."""
        found: dict[int, str] = {}
        for i in range(200):
            found.setdefault(self.upstream_of(f"probe{i}"), f"probe{i}")
            if len(found) == len(self.ports):
                return found
        raise AssertionError(f"nginx sent 200 routes to {sorted(found)} only")

    def supervisorctl(self, *args: str) -> str:
        command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.out / "supervisord.conf")]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30).stdout.strip()

    def replica_pid(self, port: int) -> int:
        return int(self.supervisorctl("pid", f"replica:replica-{port}"))


def free_block(n: int) -> int:
    """The first of ``n`` consecutive free ports on 127.0.0.1."""
    for _ in range(100):
        first = random.randrange(20_000, 60_000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + n):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise AssertionError(f"no {n} consecutive free ports")


def wait_for(check, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def deployment():
    require(postgres.available(), "PostgreSQL is not installed (apt-get install postgresql)")
    require(shutil.which("nginx") is not None, "nginx is not installed (apt-get install nginx)")
    pytest.importorskip("supervisor", reason="supervisor is not installed (pip install supervisor)")
    from app.demo import prepare_demo

    # A folder nginx's workers can reach: run as root, nginx hands requests to workers running as nobody.
    tmp = Path(tempfile.mkdtemp(prefix="skingen-deploy-"))
    tmp.chmod(0o755)
    protocol = prepare_demo(tmp / "demo")
    port = free_block(
        5
    )  # nginx, the two replicas and the explorer's server on the next ports, its nginx port
    replica_ports = [port + 1, port + 2]
    out = tmp / "site"
    with postgres.restartable_server() as pg:
        args = ["deploy", "nginx", "--replicas", "2", "--port", str(port), "--db", pg.url]
        args += ["--explorer-port", str(port + 4)]
        assert main([*args, "--protocol", str(protocol), "--out", str(out)]) == 0
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp)}
        process = subprocess.Popen([str(out / "start.sh")], env=env, start_new_session=True)
        running = Running(
            out,
            f"http://127.0.0.1:{port}",
            replica_ports,
            pg.url,
            protocol,
            pg,
            process,
            f"http://127.0.0.1:{port + 4}",
        )
        try:
            for p in [*replica_ports, port + 3, port + 4]:
                wait_for(lambda p=p: healthy(f"http://127.0.0.1:{p}"), f"server on port {p}")
            wait_for(lambda: healthy(running.base), "nginx")
            yield running
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            stopped = [p for p in range(port, port + 5) if healthy(f"http://127.0.0.1:{p}")]
            assert not stopped, f"still answering after SIGTERM to start.sh: {stopped}"
            shutil.rmtree(tmp, ignore_errors=True)


# --- helpers over the participants --------------------------------------------------------------------------
def people(running: Running, numbers: range, plans, think=FAST_THINK) -> list[loadgen.SimulatedParticipant]:
    return [loadgen.SimulatedParticipant(running.base, i, think, 1, plans(i)) for i in numbers]


def check_stored(running: Running, outcomes: list[loadgen.Outcome]) -> None:
    """Every participant completed without an error; every expected answer stored exactly once."""
    errors = [f"{o.label}: {e}" for o in outcomes for e in o.errors]
    assert not errors, errors[:10]
    assert all(o.completed for o in outcomes)
    stored, expected, problems = loadgen.verify(running.db_url, running.protocol, outcomes)
    assert not problems, problems[:10]
    assert stored == expected > 0


def check_audit(running: Running) -> None:
    from study.engine import StudyEngine

    db = Database(running.db_url)
    try:
        report = audit(StudyEngine.open(db, str(running.protocol)))
    finally:
        db.dispose()
    assert report.ok, [str(p) for p in report.problems[:10]]


def check_balance(running: Running) -> None:
    """Allocation balanced within each block and stratum, whichever replica enrolled whom."""
    db = Database(running.db_url)
    try:
        with db.read() as session:
            slots = session.scalars(select(AllocationSlot).order_by(AllocationSlot.position)).all()
    finally:
        db.dispose()
    blocks: dict[tuple[str, int], list[AllocationSlot]] = {}
    for slot in slots:
        blocks.setdefault((slot.stratum, slot.block), []).append(slot)
    for (stratum, block), members in blocks.items():
        claimed = [s for s in members if s.participant_id is not None]
        positions = [s.position for s in members]
        # Slots are claimed from the top, so a block is either full, untouched, or the stratum's current one.
        assert [s.position for s in claimed] == positions[: len(claimed)], (stratum, block)
        if len(claimed) == len(members):
            arms = Counter(s.arm for s in claimed)
            assert len(set(arms.values())) == 1, (stratum, block, arms)


def streams_per_replica(running: Running) -> Counter:
    lines = (line for line in running.access_log() if "/_stcore/stream" in line)
    found = (re.search(r"upstream=127\.0\.0\.1:(\d+)", line) for line in lines)
    return Counter(int(m.group(1)) for m in found if m)


async def _all(crowd: list[loadgen.SimulatedParticipant]) -> list[loadgen.Outcome]:
    return await asyncio.gather(*(p.run() for p in crowd))


async def _while_running(crowd: list[loadgen.SimulatedParticipant], when, action) -> list[loadgen.Outcome]:
    """Run ``crowd``; call ``action()`` (in a thread) once ``when()`` is true; return the outcomes."""
    tasks = [asyncio.create_task(p.run()) for p in crowd]
    while not when():
        assert not all(t.done() for t in tasks), "everyone finished before the moment to act"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(action)
    return list(await asyncio.gather(*tasks))


def mid_study(crowd: list[loadgen.SimulatedParticipant]):
    """True once the crowd has, on average, three pages acknowledged (everyone well into the study)."""
    return lambda: sum(len(p.outcome.acknowledged) for p in crowd) >= 3 * len(crowd)


# --- the tests (one deployment, run in this order) ------------------------------------------------------------
def test_nginx_sends_security_headers_and_a_sticky_cookie(deployment):
    status, headers = deployment.get("/")
    assert status == 200
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name
    sticky = [c for c in headers.get_all("Set-Cookie") if c.startswith(f"{ROUTE_COOKIE}=")]
    assert len(sticky) == 1 and "HttpOnly" in sticky[0], headers.get_all("Set-Cookie")
    routes = deployment.routes()
    assert sorted(routes) == deployment.ports
    for port, route in routes.items():
        assert all(deployment.upstream_of(route) == port for _ in range(3))  # sticky


def test_the_explorer_is_open_on_its_own_port_and_closed_on_the_studys(deployment):
    async def explorer_page(base: str) -> loadgen.Page:
        async with loadgen.StreamlitClient(base, loadgen.EXPLORE_QUERY) as client:
            return await client.run()

    opened = asyncio.run(explorer_page(deployment.explorer_base))
    assert "SkinGEN explorer" in opened.texts and loadgen.UPLOADER in opened.controls
    closed = asyncio.run(explorer_page(deployment.base))  # the study's replicas: researchers only
    assert "SkinGEN explorer" not in closed.texts and loadgen.UPLOADER not in closed.controls


def test_participants_through_nginx_reload_and_move_between_replicas(deployment):
    """PARTICIPANTS participants over both replicas; every 5th reloads twice, every 4th moves midway."""
    a, b = (deployment.routes()[p] for p in deployment.ports)
    other = {a: b, b: a}

    def plan(i: int) -> loadgen.Plan:
        route = a if i % 2 else b
        moves = i % 4 == 0
        return loadgen.Plan(
            route=route,
            reload_after=frozenset({3, 9}) if i % 5 == 0 else frozenset(),
            move_after=6 if moves else None,
            move_route=other[route] if moves else None,
        )

    before = streams_per_replica(deployment)
    outcomes = asyncio.run(_all(people(deployment, range(PARTICIPANTS), plan)))
    check_stored(deployment, outcomes)
    reconnects = sum((i % 5 == 0) * 2 + (i % 4 == 0) for i in range(PARTICIPANTS))
    assert sum(o.reconnects for o in outcomes) == reconnects
    served = streams_per_replica(deployment) - before
    assert all(served[p] > PARTICIPANTS / 4 for p in deployment.ports), served
    images = [line for line in deployment.access_log() if '"GET /media/' in line]
    assert any(" cache=HIT " in line for line in images)  # content-addressed images come from nginx's cache
    check_balance(deployment)
    check_audit(deployment)


def test_a_replica_killed_mid_study_loses_nothing(deployment):
    """SIGKILL one replica while participants are mid-study on it: they continue on the survivor (nginx),
    at the right step; supervisor brings the dead one back."""
    victim = deployment.ports[0]
    plan = loadgen.Plan(route=deployment.routes()[victim], retries=20, retry_wait_s=0.3)
    crowd = people(deployment, range(10_000, 10_030), lambda i: plan, think=(0.1, 0.5))
    old_pid = deployment.replica_pid(victim)
    outcomes = asyncio.run(_while_running(crowd, mid_study(crowd), lambda: os.kill(old_pid, signal.SIGKILL)))
    check_stored(deployment, outcomes)
    assert sum(o.reconnects for o in outcomes) >= len(crowd) // 2  # most were on it when it died
    wait_for(lambda: healthy(f"http://127.0.0.1:{victim}"), "supervisor to restart the killed replica")
    assert deployment.replica_pid(victim) != old_pid
    check_audit(deployment)


def test_postgresql_restarted_mid_study_shows_not_saved_then_continues(deployment):
    """PostgreSQL stops hard and comes back: participants read "not saved, try again", nothing is
    half-written, and they finish without any replica being restarted."""
    pids = [deployment.replica_pid(p) for p in deployment.ports]
    routes = list(deployment.routes().values())
    plans = lambda i: loadgen.Plan(route=routes[i % 2], retries=200, retry_wait_s=0.2)  # noqa: E731
    crowd = people(deployment, range(20_000, 20_020), plans, think=(0.1, 0.4))

    def outage() -> None:
        deployment.pg.stop()
        wait_for(lambda: sum(p.outcome.not_saved for p in crowd) >= 1, "a participant to see 'not saved'")
        deployment.pg.start()

    outcomes = asyncio.run(_while_running(crowd, mid_study(crowd), outage))
    check_stored(deployment, outcomes)
    assert sum(o.not_saved for o in outcomes) >= 1
    assert [deployment.replica_pid(p) for p in deployment.ports] == pids
    check_audit(deployment)
