"""The app's side of the live model: submit jobs to the workers, read their state, keep what a session said.

The Streamlit server never loads a model: each diagnosis, follow-up answer or set of reference images is a
job in the database (db/jobs.py) that a ``skingen worker`` takes; pages poll the job on each rerun, so a slow
model delays only the page that asked. The requests and results are those of formats/jobs.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from cachetools import LRUCache

from db.jobs import DONE, FAILED, QUEUED, JobQueue, JobStatus, JobView
from db.session import Database
from formats.jobs import RETRY_LATER, JobRequest

DIAGNOSIS_QUESTION = "What is the most likely diagnosis, what else could it be, and why?"
BUSY = "The model is busy right now. Please try again in a moment."
NOT_ANSWERED = "The model could not answer this request."


def submit(queue: JobQueue, request: JobRequest) -> JobView:
    return queue.submit(request.kind, request.payload, inputs=request.inputs, batch_key=request.batch_key)


@dataclass(frozen=True)
class JobState:
    """What a page shows for a job: still waiting (and where), its result, or a calm note."""

    job: JobView
    waiting_ahead: int = 0

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
        return _progress_line(self.job.status, self.waiting_ahead)


def _progress_line(status: str, waiting_ahead: int) -> str:
    if status == QUEUED:
        ahead = f" ({waiting_ahead} request(s) ahead)" if waiting_ahead else ""
        return f"Waiting for a model worker{ahead}…"
    return "The model is working on it…"


def progress(queue: JobQueue, job: JobStatus) -> str:
    """The waiting line of an open job, from its status alone (a poller's tick reads no job contents)."""
    return _progress_line(job.status, queue.waiting_ahead(job) if job.status == QUEUED else 0)


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
    found = JobState(job, queue.waiting_ahead(job) if job.status == QUEUED else 0)
    if job.finished:
        with _FINISHED_LOCK:
            _finished(queue.db)[job_id] = found
    return found
