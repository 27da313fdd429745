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
  Nothing waits forever: an open job fails as ``expired`` once it is older than the server's job TTL
  (:data:`DEFAULT_JOB_TTL_S`, ``skingen-study serve --job-ttl``). A page that submits a user's photo holds
  its jobs (``held=True``) and renews the hold while it is open (:meth:`JobQueue.hold`); once a hold lapses —
  the user has left — :meth:`JobQueue.sweep` fails the job if it is still open and erases its photo and its
  results (a diagnosis of someone's skin is theirs). The app servers sweep in a background thread and every
  worker sweeps beside its heartbeat, so this happens with or without a worker running.
- **Worker liveness.** A running worker renews a row in ``worker_beats`` every :data:`WORKER_BEAT_S`
  seconds (:meth:`JobQueue.beat`), so a page can tell "no worker is running" from "the workers are busy"
  (:meth:`JobQueue.live_workers`).

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

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from db.models import Job, WorkerBeat, utcnow
from db.session import Database, open_existing

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
OPEN = (QUEUED, RUNNING)
LEASE_EXPIRED = "lease_expired"  # error code of a job whose every attempt's worker vanished
EXPIRED = "expired"  # error code of a job still open when its time to live ran out
ABANDONED = "abandoned"  # error code of a held job whose page was left (its photo and results erased)
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_JOB_TTL_S = 600.0  # an open job fails after 10 minutes: nobody waits longer for an answer
DEFAULT_HOLD_S = 120.0  # a page's hold on its jobs: their photos are erased 2 minutes after it was left
WORKER_BEAT_S = 5.0  # how often a worker says it is alive
WORKER_STALE_S = 4 * WORKER_BEAT_S  # a worker not heard from for this long is taken to be gone


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

    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        ttl_seconds: float = DEFAULT_JOB_TTL_S,
        hold_seconds: float = DEFAULT_HOLD_S,
    ) -> None:
        for name, value in (
            ("lease_seconds", lease_seconds),
            ("ttl_seconds", ttl_seconds),
            ("hold_seconds", hold_seconds),
        ):
            if value <= 0:
                raise ValueError(f"{name}: must be > 0, got {value}")
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.ttl = timedelta(seconds=ttl_seconds)
        self.hold_for = timedelta(seconds=hold_seconds)
        self._skip_locked = db.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, url: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> JobQueue:
        """A queue on the existing database at ``url`` (what a worker on another machine starts from; a wrong
        ``--db`` is refused with the path or host it tried, never created)."""
        return cls(open_existing(url), lease_seconds=lease_seconds)

    # --- the app's side ---------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        inputs: dict[str, Any] | None = None,
        batch_key: str = "",
        max_attempts: int = 3,
        held: bool = False,
    ) -> JobView:
        """A job for this request: an equal finished or open one if there is one, else a new queued one.

        ``held``: the submitting page holds the job and renews the hold (:meth:`hold`) while it is open; a
        held request joins only held jobs (and renews their hold), so a page that leaves never erases a job
        a study's trial recorded."""
        key = request_key(kind, payload, inputs)
        now = utcnow()
        held_until = now + self.hold_for if held else None
        with self.db.write() as session:
            existing = session.scalars(
                select(Job)
                .where(
                    Job.request_key == key,
                    Job.status.in_((*OPEN, DONE)),
                    Job.held_until.is_not(None) if held else Job.held_until.is_(None),
                )
                .order_by(Job.id.desc())
                .limit(1)
            ).first()
            if existing is not None:
                if held_until is not None:
                    existing.held_until = max(existing.held_until, held_until)
                return JobView.of(existing)
            job = Job(
                kind=kind,
                request_key=key,
                batch_key=batch_key,
                payload=payload,
                inputs=inputs,
                status=QUEUED,
                max_attempts=max_attempts,
                created_at=now,
                expires_at=now + self.ttl,
                held_until=held_until,
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

    def hold(self, job_ids: Sequence[int]) -> int:
        """Renew a page's hold on its jobs (while the page is open); returns how many are still held (a
        job whose hold lapsed has had its photo and results erased and stays so)."""
        if not job_ids:
            return 0
        with self.db.write() as session:
            held = session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.held_until.is_not(None))
                .values(held_until=utcnow() + self.hold_for)
            )
            return held.rowcount

    def live_workers(self, kind: str) -> int:
        """Workers serving ``kind`` heard from within :data:`WORKER_STALE_S` seconds (0: none is running)."""
        since = utcnow() - timedelta(seconds=WORKER_STALE_S)
        with self.db.read() as session:
            kinds = session.scalars(select(WorkerBeat.kinds).where(WorkerBeat.last_seen >= since))
            return sum(kind in served for served in kinds)

    def counts(self) -> dict[str, int]:
        """Jobs per status (for the dashboard and the tests)."""
        with self.db.read() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {status: count for status, count in rows}

    # --- the sweeper (app servers and workers) ---------------------------------------------------------

    def sweep(self) -> tuple[int, int]:
        """Fail the open jobs past their time to live, and fail-and-erase the held jobs whose page was left;
        returns (expired, abandoned). Idempotent and cheap (two indexed UPDATEs): any process may run it."""
        now = utcnow()
        with self.db.write() as session:
            expired = session.execute(
                update(Job)
                .where(Job.status.in_(OPEN), Job.expires_at < now)
                .values(
                    status=FAILED,
                    error_code=EXPIRED,
                    error="no worker finished this job in time",
                    inputs=None,
                    lease_until=None,
                    finished_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            left = Job.held_until < now
            # the held jobs' results are erased too: a diagnosis of a user's photo (or the photo inpainted)
            abandoned = session.execute(
                update(Job)
                .where(left, Job.status.in_(OPEN))
                .values(
                    status=FAILED,
                    error_code=ABANDONED,
                    error="its page was left before it finished",
                    finished_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            session.execute(
                update(Job)
                .where(left)
                .values(inputs=None, result=None, lease_until=None, held_until=None)
                .execution_options(synchronize_session=False)
            )
        return expired, abandoned

    def sweepable(self) -> bool:
        """Whether a later :meth:`sweep` may have work: a job open with an expiry, or still held."""
        with self.db.read() as session:
            found = session.scalar(
                select(Job.id)
                .where(or_(Job.status.in_(OPEN) & Job.expires_at.is_not(None), Job.held_until.is_not(None)))
                .limit(1)
            )
            return found is not None

    # --- the workers' side ------------------------------------------------------------------------------

    def beat(self, worker: str, kinds: Iterable[str]) -> None:
        """Say that ``worker`` is alive and serves ``kinds`` (a worker calls it every :data:`WORKER_BEAT_S`)."""
        now = utcnow()
        with self.db.write() as session:
            row = session.get(WorkerBeat, worker)
            if row is None:
                session.add(WorkerBeat(name=worker, kinds=sorted(kinds), started_at=now, last_seen=now))
            else:
                row.kinds, row.last_seen = sorted(kinds), now

    def leave(self, worker: str) -> None:
        """``worker`` stops: pages see at once that it is gone."""
        with self.db.write() as session:
            session.execute(delete(WorkerBeat).where(WorkerBeat.name == worker))

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
                or_(Job.expires_at.is_(None), Job.expires_at >= now),
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
