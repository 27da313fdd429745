"""The app's side of the live model: submit jobs to the workers, read their state, keep what a session said.

The Streamlit server never loads a model: each diagnosis, follow-up answer or set of reference images is a
job in the database (db/jobs.py) that a ``skingen worker`` takes; pages poll the job on each rerun, so a slow
model delays only the page that asked. The requests and results are those of formats/jobs.py.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from cachetools import LRUCache

from db.jobs import DONE, FAILED, QUEUED, JobQueue, JobStatus, JobView
from db.session import Database, absolute_url
from formats.jobs import RETRY_LATER, JobRequest

LOG = logging.getLogger("skingen.live")

DIAGNOSIS_QUESTION = "What is the most likely diagnosis, what else could it be, and why?"
BUSY = "The model is busy right now. Please try again in a moment."
NOT_ANSWERED = "The model could not answer this request."
NO_WORKER = "No model worker is running, so nothing can answer this request yet."


def worker_command(url: str) -> str:
    """The command that starts a worker on the database at ``url``, to copy as shown."""
    return f"skingen worker --db {shlex.quote(absolute_url(url))} --vlm VLM_MODEL --sd SD_MODEL"


def submit(queue: JobQueue, request: JobRequest, *, held: bool = False) -> JobView:
    """Submit ``request``; ``held``: the page holds the job (:meth:`JobQueue.hold`) and its photo is erased
    once the page is left. Starts this process's sweeper, which expires and erases what needs it even when no
    worker is running."""
    job = queue.submit(
        request.kind, request.payload, inputs=request.inputs, batch_key=request.batch_key, held=held
    )
    start_sweeper(queue)
    return job


# One sweeper thread per database in a process, alive while the queue has open or held jobs (it stops itself
# when there is nothing left to sweep; the next submit starts it again).
_SWEEPERS: dict[str, threading.Thread] = {}
_SWEEPERS_LOCK = threading.Lock()
SWEEP_EVERY_MAX_S = 15.0


def sweep_interval(queue: JobQueue) -> float:
    """A quarter of the shortest deadline the sweeper keeps, at most :data:`SWEEP_EVERY_MAX_S`: a photo is
    erased at most a quarter of its hold late."""
    shortest = min(queue.ttl, queue.hold_for).total_seconds()
    return min(SWEEP_EVERY_MAX_S, max(0.05, shortest / 4))


def start_sweeper(queue: JobQueue) -> None:
    """Run :meth:`JobQueue.sweep` in a background thread of this process until nothing is left to sweep."""
    with _SWEEPERS_LOCK:
        running = _SWEEPERS.get(queue.db.url)
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(
            target=_sweep_until_idle, args=(queue,), name=f"job-sweeper:{queue.db.url}", daemon=True
        )
        _SWEEPERS[queue.db.url] = thread
        thread.start()


def _sweep_until_idle(queue: JobQueue) -> None:
    every = sweep_interval(queue)
    stop = threading.Event()
    while not stop.wait(every):
        try:
            queue.sweep()
            with _SWEEPERS_LOCK:  # decided under the lock, so a submit meanwhile starts a new sweeper
                if not queue.sweepable():
                    _SWEEPERS.pop(queue.db.url, None)
                    return
        except Exception:  # the database is briefly away: the jobs wait there, the sweeper tries again
            LOG.exception("sweeping the job queue failed; trying again in %.1f s", every)


@dataclass(frozen=True)
class JobState:
    """What a page shows for a job: still waiting (and where), its result, or a calm note."""

    job: JobView
    waiting_ahead: int = 0
    workers: int = 1  # live workers serving the job's kind, counted while it is queued

    @property
    def pending(self) -> bool:
        return not self.job.finished

    @property
    def result(self) -> dict | None:
        return self.job.result if self.job.status == DONE else None

    @property
    def retry_later(self) -> bool:
        """The model was busy or away: asking again later may work (a participant sees :data:`BUSY`)."""
        return self.job.status == FAILED and (self.job.error_code or "") in RETRY_LATER

    @property
    def note(self) -> str:
        if self.job.status != FAILED:
            return ""
        return BUSY if self.retry_later else NOT_ANSWERED

    @property
    def progress(self) -> str:
        return _progress_line(self.job.status, self.waiting_ahead, self.workers)


def _progress_line(status: str, waiting_ahead: int, workers: int) -> str:
    if status == QUEUED:
        if not workers:
            return NO_WORKER
        ahead = f" ({waiting_ahead} request(s) ahead)" if waiting_ahead else ""
        return f"Waiting for a model worker{ahead}…"
    return "The model is working on it…"


def progress(queue: JobQueue, job: JobStatus) -> str:
    """The waiting line of an open job, from its status alone (a poller's tick reads no job contents)."""
    if job.status != QUEUED:
        return _progress_line(job.status, 0, 1)
    return _progress_line(job.status, queue.waiting_ahead(job), queue.live_workers(job.kind))


# Finished jobs never change (until a withdrawal deletes them, and then nobody's page shows them), so the pages'
# reruns read each one once per process and database: a references result carries its images. Bounded by size.
_FINISHED: WeakKeyDictionary[Database, LRUCache[int, JobState]] = WeakKeyDictionary()
_FINISHED_LOCK = threading.Lock()
_FINISHED_BYTES = 256 * 2**20


def _finished(db: Database) -> LRUCache[int, JobState]:
    cache = _FINISHED.get(db)
    if cache is None:
        cache = _FINISHED[db] = LRUCache(
            maxsize=_FINISHED_BYTES, getsizeof=lambda found: 1 + len(json.dumps(found.job.result or {}))
        )
    return cache


def state(queue: JobQueue, job_id: int) -> JobState:
    with _FINISHED_LOCK:
        found = _finished(queue.db).get(job_id)
    if found is not None:
        return found
    job = queue.get(job_id)
    if job is None:
        raise KeyError(f"no job {job_id}")
    queued = job.status == QUEUED
    found = JobState(
        job,
        queue.waiting_ahead(job) if queued else 0,
        queue.live_workers(job.kind) if queued else 1,
    )
    if job.finished:
        with _FINISHED_LOCK:
            _finished(queue.db)[job_id] = found
    return found
