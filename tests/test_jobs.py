"""The job queue (db/jobs.py) and the worker loop (skingen/worker.py): atomic claims, leases, identical
requests, batching — in one process, and with real worker processes on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from db.jobs import ABANDONED, DONE, EXPIRED, FAILED, LEASE_EXPIRED, QUEUED, RUNNING, JobQueue
from db.migrate import upgrade
from db.models import Job, WorkerBeat, utcnow
from db.session import Database
from skingen.worker import JobFailure, Worker

ROOT = Path(__file__).resolve().parent.parent


def make_queue(url: str, **kwargs: float) -> JobQueue:
    db = Database(url)
    upgrade(db.engine)
    return JobQueue(db, **kwargs)


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return make_queue(f"sqlite:///{tmp_path}/jobs.db")


def expire_leases(queue: JobQueue) -> None:
    """What the passing of a lease's time does, without waiting for it."""
    with queue.db.write() as session:
        session.execute(update(Job).values(lease_until=utcnow() - timedelta(seconds=1)))


# --- one process ----------------------------------------------------------------------------------------


def test_identical_request_joins_the_open_job_and_gets_the_finished_result(queue: JobQueue) -> None:
    first = queue.submit("diagnose", {"model": "m"}, inputs={"photo": "abc"})
    assert queue.submit("diagnose", {"model": "m"}, inputs={"photo": "abc"}).id == first.id
    assert queue.submit("diagnose", {"model": "m"}, inputs={"photo": "other"}).id != first.id
    [claimed] = queue.claim("w1", ["diagnose"])
    assert claimed.id == first.id and claimed.inputs == {"photo": "abc"} and claimed.attempts == 1
    assert queue.complete("w1", first.id, {"condition": "acne"})
    again = queue.submit("diagnose", {"model": "m"}, inputs={"photo": "abc"})
    assert (again.id, again.status, again.result) == (first.id, DONE, {"condition": "acne"})
    assert again.inputs == {}  # the photo is gone once the job ended


def test_a_job_is_claimed_once_and_only_its_holder_completes_it(queue: JobQueue) -> None:
    job = queue.submit("chat", {"q": 1})
    assert [j.id for j in queue.claim("w1", ["chat"])] == [job.id]
    assert queue.claim("w2", ["chat"]) == []
    assert not queue.complete("w2", job.id, {"a": 2})
    assert queue.complete("w1", job.id, {"a": 1})
    assert not queue.complete("w1", job.id, {"a": 3})  # done once
    assert queue.get(job.id).result == {"a": 1}


def test_a_poller_reads_statuses_alone_and_pages_read_a_finished_job_once(
    queue: JobQueue, monkeypatch
) -> None:
    from study import live

    first, second = queue.submit("chat", {"q": 1}), queue.submit("chat", {"q": 2}, inputs={"photo": "x"})
    statuses = queue.statuses([first.id, second.id, 999])
    assert {i: (s.kind, s.status, s.finished) for i, s in statuses.items()} == {
        first.id: ("chat", QUEUED, False),
        second.id: ("chat", QUEUED, False),
    }  # a missing job is left out
    assert live.progress(queue, statuses[second.id]) == live.NO_WORKER  # nothing would ever answer it
    queue.beat("w1", ["chat"])
    assert live.progress(queue, statuses[second.id]) == "Waiting for a model worker (1 request(s) ahead)…"
    queue.claim("w1", ["chat"])
    assert live.state(queue, first.id).pending  # open: read again on every rerun
    queue.complete("w1", first.id, {"answer": "yes"})
    assert live.state(queue, first.id).result == {"answer": "yes"}
    reads = []
    monkeypatch.setattr(queue, "get", lambda job_id: reads.append(job_id))
    assert live.state(queue, first.id).result == {"answer": "yes"} and reads == []  # finished: read once
    assert queue.statuses([first.id])[first.id].finished
    other = make_queue(str(queue.db.url).replace("jobs.db", "other.db"))
    other.submit("chat", {"q": 3})
    assert live.state(other, first.id).pending  # another database's job of the same id is its own


def test_an_expired_lease_frees_the_job_and_its_old_holder_loses_it(queue: JobQueue) -> None:
    job = queue.submit("chat", {"q": 1}, max_attempts=2)
    queue.claim("w1", ["chat"])
    assert queue.renew("w1", [job.id]) == 1
    expire_leases(queue)
    [retried] = queue.claim("w2", ["chat"])
    assert (retried.worker, retried.attempts) == ("w2", 2)
    assert queue.renew("w1", [job.id]) == 0
    assert not queue.complete("w1", job.id, {"late": True})
    expire_leases(queue)  # the second worker vanished too: no attempts left
    assert queue.claim("w3", ["chat"]) == []
    failed = queue.get(job.id)
    assert (failed.status, failed.error_code) == (FAILED, LEASE_EXPIRED)


def pass_time(queue: JobQueue, **columns_in_the_past: bool) -> None:
    """Move the named deadline columns of every job a second into the past (instead of waiting for them)."""
    past = utcnow() - timedelta(seconds=1)
    with queue.db.write() as session:
        for column in columns_in_the_past:
            session.execute(update(Job).where(getattr(Job, column).is_not(None)).values({column: past}))


def test_an_open_job_expires_after_the_ttl_and_loses_its_photo(queue: JobQueue) -> None:
    queued = queue.submit("chat", {"q": 1}, inputs={"photo": "UHJpdmF0ZQ"})
    running = queue.submit("chat", {"q": 2}, inputs={"photo": "UHJpdmF0ZQ"})
    queue.claim("w1", ["chat"])
    with queue.db.read() as session:
        assert all(job.expires_at is not None for job in session.query(Job))
    assert queue.sweep() == (0, 0)  # not yet
    pass_time(queue, expires_at=True)
    assert queue.claim("w2", ["chat"]) == []  # an expired job is never taken
    assert queue.sweep() == (2, 0)
    for job_id in (queued.id, running.id):
        job = queue.get(job_id)
        assert (job.status, job.error_code, job.inputs) == (FAILED, EXPIRED, {})
    assert not queue.complete("w1", running.id, {"late": True})  # its worker's late result is refused
    assert not queue.sweepable()


def test_a_left_pages_jobs_lose_their_photo_and_results_and_others_keep_theirs(queue: JobQueue) -> None:
    photo = {"photo": "UHJpdmF0ZQ"}
    held_open = queue.submit("chat", {"q": 1}, inputs=photo, held=True)
    held_done = queue.submit("chat", {"q": 2}, inputs=photo, held=True)
    trial = queue.submit("chat", {"q": 1}, inputs=photo)  # a study trial's job: nobody holds it
    assert trial.id != held_open.id  # a held request never joins an unheld job, nor the reverse
    assert queue.submit("chat", {"q": 1}, inputs=photo, held=True).id == held_open.id
    [claimed] = queue.claim("w1", ["chat"])
    assert queue.complete("w1", claimed.id, {"diagnosis": "psoriasis"})
    assert claimed.id == held_open.id
    assert queue.hold([held_open.id, held_done.id, trial.id]) == 2  # the page is open: holds renewed
    assert queue.sweep() == (0, 0)
    pass_time(queue, held_until=True)  # the page was left
    assert queue.sweep() == (0, 1)
    for job_id in (held_open.id, held_done.id):
        job = queue.get(job_id)
        assert (job.inputs, job.result) == ({}, None), job_id
    assert queue.get(held_done.id).error_code == ABANDONED and queue.get(held_done.id).status == FAILED
    assert queue.get(trial.id).inputs == photo  # the trial's job is untouched
    assert queue.hold([held_open.id]) == 0  # a lapsed hold stays lapsed
    again = queue.submit("chat", {"q": 1}, inputs=photo, held=True)
    assert again.id not in (held_open.id, held_done.id)  # the erased result is never served again


def test_a_running_worker_beats_and_signs_off(queue: JobQueue) -> None:
    import threading

    worker = Worker(queue, {"chat": lambda jobs: [{} for _ in jobs]}, name="beating", idle_wait=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop})
    assert queue.live_workers("chat") == 0
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while queue.live_workers("chat") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.live_workers("chat") == 1 and queue.live_workers("references") == 0
    finally:
        stop.set()
        thread.join()
    assert queue.live_workers("chat") == 0  # signed off
    queue.beat("gone", ["chat"])
    with queue.db.write() as session:  # a worker that died without signing off: its beat goes stale
        session.execute(update(WorkerBeat).values(last_seen=utcnow() - timedelta(minutes=5)))
    assert queue.live_workers("chat") == 0


def test_claim_batches_jobs_of_one_kind_sharing_the_batch_key(queue: JobQueue) -> None:
    a = queue.submit("generate", {"n": 0}, batch_key="sd:64")
    b = queue.submit("generate", {"n": 1}, batch_key="sd:128")
    c = queue.submit("generate", {"n": 2}, batch_key="sd:64")
    queue.submit("chat", {"n": 3}, batch_key="sd:64")
    d = queue.submit("generate", {"n": 4}, batch_key="sd:64")
    assert [j.id for j in queue.claim("w", ["generate", "chat"], max_batch=2)] == [a.id, c.id]
    assert [j.id for j in queue.claim("w", ["generate"], max_batch=8)] == [b.id]  # the oldest, alone
    assert [j.id for j in queue.claim("w", ["generate"], max_batch=8)] == [d.id]


def test_worker_records_results_and_failures_and_retries_when_asked(queue: JobQueue) -> None:
    ok, bad, flaky = (queue.submit("echo", {"n": n}) for n in range(3))
    attempts = Counter()

    def handler(jobs):
        outcomes = []
        for job in jobs:
            attempts[job.id] += 1
            if job.id == bad.id:
                outcomes.append(JobFailure("bad_photo", "the photo cannot be read"))
            elif job.id == flaky.id and attempts[job.id] == 1:
                outcomes.append(JobFailure("timeout", "the model did not answer", retry=True))
            else:
                outcomes.append({"n": job.payload["n"]})
        return outcomes

    worker = Worker(queue, {"echo": handler}, name="w")
    assert worker.run(max_jobs=4) == 4
    assert queue.get(ok.id).result == {"n": 0}
    assert (queue.get(bad.id).status, queue.get(bad.id).error_code) == (FAILED, "bad_photo")
    assert (queue.get(flaky.id).status, queue.get(flaky.id).attempts) == (DONE, 2)


def test_a_crashing_handler_fails_its_batch_with_the_error(queue: JobQueue) -> None:
    job = queue.submit("echo", {"n": 0})

    def handler(jobs):
        raise RuntimeError("CUDA out of memory")

    Worker(queue, {"echo": handler}, name="w").run_once()
    failed = queue.get(job.id)
    assert (failed.status, failed.error_code) == (FAILED, "worker_error")
    assert "CUDA out of memory" in failed.error


# --- worker processes -----------------------------------------------------------------------------------


def start_worker(url: str, name: str, logs: Path, *, lease: float = 60.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.queue_worker", "--db", url, "--name", name]
    command += ["--log", str(logs / f"{name}.log"), "--lease", str(lease)]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_until(condition, *, timeout: float = 60.0, what: str) -> None:
    """Poll a state (never a fixed sleep); fail naming ``what`` if it does not arrive in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def runs(logs: Path, mark: str) -> Counter:
    lines = [line.split() for log in logs.glob("*.log") for line in log.read_text().splitlines()]
    return Counter(int(job) for kind, job in lines if kind == mark)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_two_worker_processes_do_each_of_20_jobs_exactly_once(database_url: str, tmp_path: Path) -> None:
    queue = make_queue(database_url)
    workers = [start_worker(database_url, name, tmp_path) for name in ("a", "b")]
    try:
        jobs = [queue.submit("echo", {"n": n}) for n in range(20)]
        wait_until(lambda: queue.counts().get(DONE) == 20, what="20 jobs done")
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    assert runs(tmp_path, "end") == Counter({job.id: 1 for job in jobs})
    assert [queue.get(job.id).result["echo"] for job in jobs] == list(range(20))


@pytest.mark.slow
def test_a_job_whose_worker_is_killed_completes_on_the_other(database_url: str, tmp_path: Path) -> None:
    queue = make_queue(database_url, lease_seconds=1.0)
    hanging = start_worker(database_url, "a", tmp_path, lease=1.0)
    job = queue.submit("echo", {"n": 7, "hang_in": "a"})
    other = None
    try:
        wait_until(lambda: runs(tmp_path, "start")[job.id] == 1, what="worker a to start the job")
        assert (queue.get(job.id).status, queue.get(job.id).worker) == (RUNNING, "a")
        other = start_worker(database_url, "b", tmp_path, lease=1.0)
        hanging.send_signal(signal.SIGKILL)
        hanging.wait(timeout=30)
        wait_until(lambda: queue.get(job.id).status == DONE, what="worker b to finish the job")
    finally:
        for worker in (hanging, other):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
    done = queue.get(job.id)
    assert (done.worker, done.attempts, done.result) == ("b", 2, {"echo": 7, "by": "b"})
    assert runs(tmp_path, "end") == Counter({job.id: 1})
    assert queue.counts() == {DONE: 1} and QUEUED not in queue.counts()


def test_a_worker_outlasts_a_database_outage(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from skingen import worker as worker_module

    monkeypatch.setattr(worker_module, "DATABASE_RETRY_S", 0.0)
    job = queue.submit("echo", {"n": 1})
    claim, failures = queue.claim, [OperationalError("SELECT", {}, Exception("server closed the connection"))]

    def flaky_claim(*args, **kwargs):
        if failures:
            raise failures.pop()
        return claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", flaky_claim)
    worker = Worker(queue, {"echo": lambda jobs: [{"n": j.payload["n"]} for j in jobs]}, name="w")
    assert worker.run(max_jobs=1) == 1 and not failures
    assert queue.get(job.id).result == {"n": 1}
