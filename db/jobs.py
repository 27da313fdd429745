"""A job queue in the study database: the app submits model work, ``skingen worker`` processes take it.

Why the database and not a queue library: the study already runs on SQLite by default and on PostgreSQL to
scale out, and every worker must reach the same place as the app. The maintained Python queues either need a
broker we do not run (Celery, RQ, Dramatiq, SAQ, Taskiq: Redis/RabbitMQ), serve PostgreSQL only (procrastinate,
pgqueuer, pgmq) or SQLite only (litequeue, persist-queue), or drop a job whose worker dies after taking it
(huey's SQL storage deletes on dequeue). What we need is small: an atomic claim, a lease, a result row
(docs/workers.md has the whole argument).

- **Atomic claim.** Candidates are read and taken in one write transaction: ``SELECT … FOR UPDATE SKIP LOCKED``
  on PostgreSQL (two workers never wait on or take the same row), ``BEGIN IMMEDIATE`` on SQLite (one writer at
  a time, see db/session.py). The UPDATE is conditional on the row still being free, so a job is never held by
  two workers even if a backend gave neither guarantee.
- **Leases.** A worker holds a job until ``lease_until`` and renews it while it works (:meth:`JobQueue.renew`);
  a job whose lease ran out is free again, up to ``max_attempts`` tries, so a dead worker's job is retried.
  Only the current holder can complete a job: a worker that lost its lease has its result refused.
- **Identical requests.** The request key is the SHA-256 of the kind, payload and inputs: a request equal to a
  finished one gets that job (and its result) at once, one equal to an open one joins it.
- **Photos.** ``inputs`` (a user's photo) is kept only while the job is open and cleared when it ends.

Torch-free: the app imports it, and so does ``skingen worker`` (the one import from skingen into db, see the
import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from db.models import Job, utcnow
from db.session import Database

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
OPEN = (QUEUED, RUNNING)
LEASE_EXPIRED = "lease_expired"  # error code of a job whose every attempt's worker vanished
DEFAULT_LEASE_SECONDS = 60.0


def request_key(kind: str, payload: dict[str, Any], inputs: dict[str, Any] | None = None) -> str:
    """The identity of a request: equal keys are the same work, so one answer serves both."""
    canonical = json.dumps([kind, payload, inputs or {}], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class JobView:
    """A job as a page or worker sees it (a plain value, usable after the session closed)."""

    id: int
    kind: str
    status: str
    payload: dict[str, Any]
    inputs: dict[str, Any]
    batch_key: str
    result: dict[str, Any] | None
    error_code: str | None
    error: str | None
    attempts: int
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            payload=dict(job.payload),
            inputs=dict(job.inputs or {}),
            batch_key=job.batch_key,
            result=job.result,
            error_code=job.error_code,
            error=job.error,
            attempts=job.attempts,
            worker=job.worker,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


@dataclass(frozen=True)
class JobStatus:
    """Where a job is, without its contents (:meth:`JobQueue.statuses`)."""

    id: int
    kind: str
    status: str

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)


class JobQueue:
    """Submit, claim, renew, complete and fail jobs; every method is one short transaction."""

    def __init__(self, db: Database, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds: must be > 0, got {lease_seconds}")
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self._skip_locked = db.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> JobQueue:
        """A queue on the database at ``url`` (what a worker on another machine starts from)."""
        return cls(Database(url), lease_seconds=lease_seconds)

    # --- the app's side ---------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        inputs: dict[str, Any] | None = None,
        batch_key: str = "",
        max_attempts: int = 3,
    ) -> JobView:
        """A job for this request: an equal finished or open one if there is one, else a new queued one."""
        key = request_key(kind, payload, inputs)
        with self.db.write() as session:
            existing = session.scalars(
                select(Job)
                .where(Job.request_key == key, Job.status.in_((*OPEN, DONE)))
                .order_by(Job.id.desc())
                .limit(1)
            ).first()
            if existing is not None:
                return JobView.of(existing)
            job = Job(
                kind=kind,
                request_key=key,
                batch_key=batch_key,
                payload=payload,
                inputs=inputs,
                status=QUEUED,
                max_attempts=max_attempts,
            )
            session.add(job)
            session.flush()
            return JobView.of(job)

    def get(self, job_id: int) -> JobView | None:
        with self.db.read() as session:
            job = session.get(Job, job_id)
            return JobView.of(job) if job is not None else None

    def wait(self, job_id: int, *, timeout: float, poll: float = 0.05) -> JobView:
        """The job once it has finished, or as it is after ``timeout`` seconds (for command-line clients and
        tests; pages poll :meth:`get` on each rerun instead of blocking)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(f"no job {job_id}")
            if job.finished or time.monotonic() > deadline:
                return job
            time.sleep(poll)

    def statuses(self, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        """The status of each of ``job_ids`` that exists, in one query that reads no payload, photo or result
        (what a page's poller asks every second while it waits)."""
        with self.db.read() as session:
            rows = session.execute(select(Job.id, Job.kind, Job.status).where(Job.id.in_(job_ids)))
            return {row.id: JobStatus(row.id, row.kind, row.status) for row in rows}

    def waiting_ahead(self, job: JobView | JobStatus) -> int:
        """Queued jobs of the same kind submitted before ``job`` (what "your place in the queue" shows)."""
        with self.db.read() as session:
            return session.scalar(
                select(func.count()).where(Job.kind == job.kind, Job.status == QUEUED, Job.id < job.id)
            )

    def counts(self) -> dict[str, int]:
        """Jobs per status (for the dashboard and the tests)."""
        with self.db.read() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {status: count for status, count in rows}

    # --- the workers' side ------------------------------------------------------------------------------

    def claim(self, worker: str, kinds: Iterable[str], *, max_batch: int = 1) -> list[JobView]:
        """Take the oldest free job of ``kinds``, and up to ``max_batch - 1`` more sharing its batch key.

        Free means queued, or running with its lease run out (its worker is gone). Jobs whose last attempt's
        lease ran out are marked failed (``lease_expired``) instead of being tried again.
        """
        if max_batch < 1:
            raise ValueError(f"max_batch: must be ≥ 1, got {max_batch}")
        kinds = tuple(kinds)
        now = utcnow()
        with self.db.write() as session:
            self._fail_exhausted(session, kinds, now)
            first = self._candidates(session, kinds, now, limit=1)
            if not first:
                return []
            batch = first
            if max_batch > 1 and first[0].batch_key:
                more = self._candidates(
                    session,
                    (first[0].kind,),
                    now,
                    limit=max_batch - 1,
                    batch_key=first[0].batch_key,
                    exclude=first[0].id,
                )
                batch = first + more
            return [JobView.of(job) for job in batch if self._take(session, job, worker, now)]

    def renew(self, worker: str, job_ids: Sequence[int]) -> int:
        """Extend the leases ``worker`` still holds on ``job_ids``; returns how many it still holds."""
        if not job_ids:
            return 0
        with self.db.write() as session:
            taken = session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.worker == worker, Job.status == RUNNING)
                .values(lease_until=utcnow() + self.lease)
            )
            return taken.rowcount

    def complete(self, worker: str, job_id: int, result: dict[str, Any]) -> bool:
        """Store the result if ``worker`` still holds the job; False when it lost it (another took over)."""
        return self._finish(worker, job_id, status=DONE, result=result)

    def fail(self, worker: str, job_id: int, code: str, message: str, *, retry: bool = False) -> bool:
        """Record a failure; with ``retry`` the job is queued again while it has attempts left."""
        if retry:
            with self.db.write() as session:
                requeued = session.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.worker == worker,
                        Job.status == RUNNING,
                        Job.attempts < Job.max_attempts,
                    )
                    .values(status=QUEUED, worker=None, lease_until=None, error_code=code, error=message)
                )
                if requeued.rowcount:
                    return True
        return self._finish(worker, job_id, status=FAILED, error_code=code, error=message)

    # --- one transaction's parts ------------------------------------------------------------------------

    def _candidates(
        self,
        session: Session,
        kinds: tuple[str, ...],
        now: datetime,
        *,
        limit: int,
        batch_key: str | None = None,
        exclude: int | None = None,
    ) -> list[Job]:
        query = (
            select(Job)
            .where(
                Job.kind.in_(kinds),
                or_(Job.status == QUEUED, (Job.status == RUNNING) & (Job.lease_until < now)),
                Job.attempts < Job.max_attempts,
            )
            .order_by(Job.id)
            .limit(limit)
        )
        if batch_key is not None:
            query = query.where(Job.batch_key == batch_key)
        if exclude is not None:
            query = query.where(Job.id != exclude)
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def _take(self, session: Session, job: Job, worker: str, now: datetime) -> bool:
        # Conditional on the row being as we read it: a second guard besides the locks.
        taken = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == job.status, Job.attempts == job.attempts)
            .values(
                status=RUNNING,
                worker=worker,
                attempts=job.attempts + 1,
                lease_until=now + self.lease,
                started_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return False
        session.refresh(job)
        return True

    def _fail_exhausted(self, session: Session, kinds: tuple[str, ...], now: datetime) -> None:
        session.execute(
            update(Job)
            .where(
                Job.kind.in_(kinds),
                Job.status == RUNNING,
                Job.lease_until < now,
                Job.attempts >= Job.max_attempts,
            )
            .values(
                status=FAILED,
                error_code=LEASE_EXPIRED,
                error="every worker that took this job stopped before finishing it",
                inputs=None,
                finished_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    def _finish(self, worker: str, job_id: int, **values: Any) -> bool:
        with self.db.write() as session:
            finished = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == RUNNING)
                .values(inputs=None, lease_until=None, finished_at=utcnow(), **values)
            )
            return finished.rowcount == 1
