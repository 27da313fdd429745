"""``skingen worker``: take model jobs from the study database, run them, write the results back.

The loop is torch-free: what it runs for each job kind is a :data:`Handler` (skingen/serving.py holds the
models'). One worker per GPU, on any machine that reaches the database; several may share a database
because a job is claimed atomically and held only under a lease that a background thread renews while the
job runs — a worker that dies leaves its jobs to be taken again when their leases run out (db/jobs.py).
Every few seconds, idle or busy, a worker says it is alive (``worker_beats``: pages tell "no worker is
running" from "busy" by it) and sweeps the queue (expired jobs, photos of pages that were left).

This module is the one place skingen imports the study database's package, and only its torch-free queue
(``db.jobs``): an ``ignore_imports`` entry of the import-linter contract in pyproject.toml says so.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError

from db.jobs import WORKER_BEAT_S, JobQueue, JobView

__all__ = ["Handler", "JobFailure", "JobQueue", "JobView", "Outcome", "Worker"]

LOG = logging.getLogger("skingen.worker")
DATABASE_RETRY_S = 5.0


@dataclass(frozen=True)
class JobFailure:
    """A job that cannot be done: ``code`` says why (for pages to choose their message), ``retry`` whether
    another attempt may succeed (a timeout) or not (an unreadable photo)."""

    code: str
    message: str
    retry: bool = False


Outcome = dict[str, Any] | JobFailure
# A batch of jobs of one kind (sharing a batch key) in, one outcome per job out, in order.
Handler = Callable[[list[JobView]], list[Outcome]]


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Claims jobs of the kinds it has handlers for, batch by batch, and records each outcome."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        name: str | None = None,
        max_batch: int = 8,
        idle_wait: float = 0.5,
    ) -> None:
        if not handlers:
            raise ValueError("handlers: a worker needs at least one job kind to serve")
        if max_batch < 1:
            raise ValueError(f"max_batch: must be ≥ 1, got {max_batch}")
        self.queue = queue
        self.handlers = dict(handlers)
        self.name = name or default_name()
        self.max_batch = max_batch
        self.idle_wait = idle_wait
        self._last_beat = -float("inf")

    def beat(self) -> None:
        """Say this worker is alive (and which kinds it serves), and sweep the queue meanwhile."""
        self.queue.beat(self.name, self.handlers)
        self.queue.sweep()
        self._last_beat = time.monotonic()

    def run_once(self) -> int:
        """Claim one batch and process it; returns the number of jobs processed (0 when none waited)."""
        if time.monotonic() - self._last_beat >= WORKER_BEAT_S:
            self.beat()
        jobs = self.queue.claim(self.name, self.handlers, max_batch=self.max_batch)
        if not jobs:
            return 0
        kind = jobs[0].kind
        LOG.info("%s: %d %s job(s): %s", self.name, len(jobs), kind, [job.id for job in jobs])
        with _LeaseKeeper(self, [job.id for job in jobs]):
            outcomes = self._outcomes(kind, jobs)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, JobFailure):
                self.queue.fail(self.name, job.id, outcome.code, outcome.message, retry=outcome.retry)
            elif not self.queue.complete(self.name, job.id, outcome):
                LOG.warning("%s: job %d was taken over by another worker; result dropped", self.name, job.id)
        return len(jobs)

    def run(self, *, stop: threading.Event | None = None, max_jobs: int | None = None) -> int:
        """Process jobs until ``stop`` is set or ``max_jobs`` were processed; returns the count."""
        stop = stop or threading.Event()
        done = 0
        try:
            while not stop.is_set() and (max_jobs is None or done < max_jobs):
                try:
                    processed = self.run_once()
                except OperationalError:  # the database is briefly unreachable: its jobs wait there, so do we
                    LOG.exception("%s: the database is unreachable; trying again", self.name)
                    stop.wait(DATABASE_RETRY_S)
                    continue
                done += processed
                if not processed:
                    stop.wait(self.idle_wait)
        finally:
            try:
                self.queue.leave(self.name)
            except OperationalError:  # its heartbeat goes stale instead
                LOG.exception("%s: could not sign off", self.name)
        return done

    def _outcomes(self, kind: str, jobs: list[JobView]) -> list[Outcome]:
        try:
            outcomes = self.handlers[kind](jobs)
        except Exception as exc:  # a bug or an unusable model: every job of the batch says so
            LOG.exception("%s: %s handler failed", self.name, kind)
            return [JobFailure("worker_error", f"{type(exc).__name__}: {exc}") for _ in jobs]
        if len(outcomes) != len(jobs):
            message = f"{kind} handler returned {len(outcomes)} outcomes for {len(jobs)} jobs"
            return [JobFailure("worker_error", message) for _ in jobs]
        return outcomes


class _LeaseKeeper:
    """Renews the leases of the jobs being worked on (at a third of the lease at most) and the worker's
    heartbeat (every :data:`WORKER_BEAT_S`), until the block ends: a long batch is not a vanished worker."""

    def __init__(self, worker: Worker, job_ids: list[int]) -> None:
        self.owner, self.queue, self.worker, self.job_ids = worker, worker.queue, worker.name, job_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = min(self.queue.lease.total_seconds() / 3, WORKER_BEAT_S)
        while not self._stop.wait(interval):
            try:
                self.queue.renew(self.worker, self.job_ids)
                self.owner.beat()
            except Exception:  # the database is briefly unreachable: try again at the next interval
                LOG.exception("%s: lease renewal failed", self.worker)
