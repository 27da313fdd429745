"""A ``skingen`` worker process with a model-free handler, for the queue tests (tests/test_jobs.py).

The handler appends ``start ID`` / ``end ID`` to a log per worker, so the test can count how often each job
was really run; a job whose payload names this worker in ``hang_in`` blocks forever (to be killed mid-job).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from db.jobs import JobQueue, JobView
from skingen.worker import Outcome, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--lease", type=float, default=60.0)
    args = parser.parse_args()

    def echo(jobs: list[JobView]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for job in jobs:
            with args.log.open("a") as log:
                log.write(f"start {job.id}\n")
            if job.payload.get("hang_in") == args.name:
                threading.Event().wait()
            with args.log.open("a") as log:
                log.write(f"end {job.id}\n")
            outcomes.append({"echo": job.payload["n"], "by": args.name})
        return outcomes

    queue = JobQueue.open(args.db, lease_seconds=args.lease)
    Worker(queue, {"echo": echo}, name=args.name, idle_wait=0.05).run()


if __name__ == "__main__":
    main()
