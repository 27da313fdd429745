"""Explorer load beside a study: do explorer users, generating images through model workers, slow down the
page submits of a study's participants on the same server? (Issue 14: 20 explorers beside 50 participants,
the participants' p95 within 1.1× of the same run without the explorers.)

One run, side by side and alternating (A B A B …), each round on a fresh `skingen-study serve
--explorer-open` with a fresh SQLite database and a warm-up:

- **A**: bench/loadgen's participants alone (think time 1–5 s);
- **B**: the same participants and, at the same time, loadgen's simulated explorers (upload a photo, wait
  for the diagnosis, ask one follow-up, ask for the pictures, fetch them, again with a new photo) until the
  participants have finished. K `skingen worker` processes answer them: a tiny Stable Diffusion on CPU
  (64×64, 2 steps, no image cache, so every image is generated) and a local OpenAI-compatible chat server
  (tests/chat_server.py) as the diagnoser. B's warm-up also runs one exploration, which waits for the workers'
  models to load.

The workers run at the lowest priority by default (Linux's idle scheduling class, else ``nice -n 19``; see
servers.model_workers): on one machine they stand in for GPU machines elsewhere, which take no CPU from the
app server. It is an approximation, not isolation: they still share caches, memory bandwidth and the
database file. The explorers and the chat server run in processes of their own, at the lowest priority too
(browsers and an inference server on other machines), so that they don't hold up the participants' client.
``--no-nice`` runs the workers at normal priority (the worst case: models on the app's host).
``--explorer-server own`` gives B's explorers a second `serve` process of the same study and database, started
as `skingen-study deploy nginx --explorer-port` starts it (open to all, at a lower CPU priority: ``--nice``): a
deployment that keeps the explorer off the participants' servers; the default is the participants' own.

Prints loadgen's table for the participants of every round (p50/p95/p99, errors, answers stored/expected,
server CPU per submit, which in B includes serving the explorers), a table of the explorers' work in B, and
p95(B)/p95(A) over each kind's pooled submits. Never asserts speed.

    PYTHONPATH=. python bench/bench_explorer.py                 # 50 participants, 20 explorers, 2 workers
    PYTHONPATH=. python bench/bench_explorer.py --participants 5 --explorers 2 --workers 1 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

from sqlalchemy import select

from bench import loadgen, servers
from db.jobs import DONE, JobQueue
from db.models import Job
from db.session import Database
from formats.jobs import REFERENCES
from study.deploy import EXPLORER_SERVER_OPTIONS
from tests.chat_server import ChatServer
from tests.tiny_models import build_sd


@dataclass
class Round:
    """One A or B round: the participants' loadgen row and, in B, the explorers' outcomes and the jobs."""

    kind: str  # "A": the participants alone, "B": with the explorers
    row: loadgen.Row
    explorers: list[loadgen.ExplorerOutcome] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    images_generated: int = 0

    def explorer_cells(self, workers: int) -> list[str]:
        outcomes = self.explorers
        seconds = {
            what: [s for o in outcomes for s in getattr(o, what)]
            for what in ("diagnosis", "answer", "images")
        }
        spread = {
            what: f"{loadgen.percentile(v, 50):.1f} / {loadgen.percentile(v, 95):.1f}" if v else "–"
            for what, v in seconds.items()
        }
        return [
            self.row.server,
            str(len(outcomes)),
            str(workers),
            str(sum(o.explorations for o in outcomes)),
            str(self.images_generated),
            str(sum(o.images_shown for o in outcomes)),
            str(sum(o.images_fetched for o in outcomes)),
            ", ".join(f"{status} {n}" for status, n in sorted(self.jobs.items())) or "–",
            spread["diagnosis"],
            spread["answer"],
            spread["images"],
            str(sum(len(o.errors) for o in outcomes)),
        ]


EXPLORER_HEADER = [
    "round",
    "explorers",
    "workers",
    "explorations",
    "images generated (warm-up incl.)",
    "images shown",
    "media fetched",
    "jobs (warm-up incl.)",
    "diagnosis p50 / p95 s",
    "answer p50 / p95 s",
    "images p50 / p95 s",
    "explorer errors",
]


async def side_by_side(
    base: str, explorer_base: str, args: argparse.Namespace, explorers: int, pid: int
) -> tuple[list[loadgen.Outcome], list[loadgen.ExplorerOutcome], float, float]:
    """The participants' crowd with ``explorers`` explorers beside it until the crowd is done; returns
    both outcomes and the crowd's wall and server CPU seconds (the explorers finish the exploration under
    way afterwards, outside the measurement). The explorers run in a process of their own: in this one
    their uploads and pages would hold up the participants' client, not only the server."""
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    exploring = context.Process(
        target=explore_apart,
        args=(explorer_base, explorers, args.think, args.seed, stop, results),
        daemon=True,
    )
    if explorers:
        exploring.start()
    start, cpu = time.monotonic(), servers.cpu_seconds(pid)
    try:
        outcomes = await loadgen.crowd(base, args.participants, args.think, args.seed)
        wall, cpu_used = time.monotonic() - start, servers.cpu_seconds(pid) - cpu
    finally:
        stop.set()
    explored = results.get(timeout=loadgen.MODEL_WAIT_S) if explorers else []
    if explorers:
        exploring.join()
    return outcomes, explored, wall, cpu_used


def explore_apart(
    base: str, n: int, think: tuple[float, float], seed: int, stop: EventType, results: Queue
) -> None:
    """A process's explorers until ``stop`` is set; their outcomes go into ``results``. At the lowest priority:
    they stand in for browsers on other machines, so they take only the CPU the server leaves."""
    servers.lowest_priority()

    async def explore() -> list[loadgen.ExplorerOutcome]:
        stopped = asyncio.Event()
        exploring = asyncio.ensure_future(loadgen.explorers(base, n, think, seed, stopped))
        while not stop.is_set():
            await asyncio.sleep(0.2)
        stopped.set()
        return await exploring

    results.put(asyncio.run(explore()))


@contextlib.contextmanager
def chat_endpoint() -> Iterator[str]:
    """The local chat server (the workers' diagnoser), in a process of its own: in this one its threads would
    compete with the participants' client for the GIL. Yields its URL."""
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    serving = context.Process(target=serve_chat, args=(urls, stop), daemon=True)
    serving.start()
    try:
        yield urls.get(timeout=120)
    finally:
        stop.set()
        serving.join(timeout=30)


def serve_chat(urls: Queue, stop: EventType) -> None:
    servers.lowest_priority()  # it stands in for an inference server on another machine
    with ChatServer() as chat:
        urls.put(chat.url)
        stop.wait()


async def warm_up_explorer(base: str) -> None:
    """One exploration before measuring: the explorer page compiles and the workers load their models."""
    outcome = await loadgen.SimulatedExplorer(base, 10_000, (0.0, 0.0), seed=0).run(asyncio.Event(), limit=1)
    if outcome.errors:
        raise RuntimeError(f"warm-up explorer failed: {outcome.errors}")


def jobs_and_images(db_url: str) -> tuple[dict[str, int], int]:
    """The round's jobs per status, and the images of the finished references jobs that a worker generated
    (not taken from an image cache)."""
    db = Database(db_url)
    try:
        with db.read() as session:
            results = session.scalars(select(Job.result).where(Job.kind == REFERENCES, Job.status == DONE))
            generated = sum(not image["cached"] for result in results for image in result["images"])
        return JobQueue(db).counts(), generated
    finally:
        db.dispose()


def one_round(kind: str, label: str, args: argparse.Namespace, sd: Path, chat: str, tmp: Path) -> Round:
    """A fresh server and database, a warm-up, then the participants (with the explorers and workers in B).
    A's server is started the same way (``--explorer-open``), only nobody explores. With
    ``--explorer-server own`` B's explorers use a second server of the same study and database."""
    explorers = args.explorers if kind == "B" else 0
    with contextlib.ExitStack() as stack:
        base, db_url, pid = stack.enter_context(
            servers.app_server("tuned", args.protocol, tmp, extra=["--explorer-open"])
        )
        explorer_base = base
        if explorers and args.explorer_server == "own":
            explorer_base = stack.enter_context(
                servers.app_server("tuned", args.protocol, tmp, extra=EXPLORER_SERVER_OPTIONS, db_url=db_url)
            )[0]
        if explorers:
            stack.enter_context(
                servers.model_workers(args.workers, db_url, chat, sd, tmp, nice=not args.no_nice)
            )
        asyncio.run(loadgen.warm_up(base))
        if explorers:
            asyncio.run(warm_up_explorer(explorer_base))
        outcomes, explored, wall, cpu = asyncio.run(side_by_side(base, explorer_base, args, explorers, pid))
    row = loadgen.Row(label, args.participants, outcomes, wall_s=wall, cpu_s=cpu)
    row.stored, row.expected, row.problems = loadgen.verify(db_url, args.protocol, outcomes)
    jobs, generated = jobs_and_images(db_url)
    return Round(kind, row, explored, jobs, generated)


def p95(rounds: list[Round]) -> float:
    return loadgen.percentile([s for r in rounds for o in r.row.outcomes for s in o.submits], 95)


def run(args: argparse.Namespace) -> list[Round]:
    if args.protocol is None:
        from app.demo import demo_dir, prepare_demo

        args.protocol = prepare_demo(demo_dir())
    args.protocol = args.protocol.resolve()
    rounds: list[Round] = []
    order = ["A", "B"] * args.rounds
    with tempfile.TemporaryDirectory(prefix="skingen-explorer-bench-") as tmp, chat_endpoint() as chat_url:
        sd = build_sd(Path(tmp) / "sd")
        for number, kind in enumerate(order, start=1):
            label = f"{kind}{(number + 1) // 2}" + (
                f" +{args.explorers} explorers" + (" (own server)" if args.explorer_server == "own" else "")
                if kind == "B"
                else " alone"
            )
            print(f"round {number}/{len(order)}: {label} …", file=sys.stderr, flush=True)
            rounds.append(one_round(kind, label, args, sd, chat_url, Path(tmp)))
            print(loadgen.table([rounds[-1].row]).splitlines()[-1], file=sys.stderr, flush=True)
    report(rounds, args)
    return rounds


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    a = [r for r in rounds if r.kind == "A"]
    b = [r for r in rounds if r.kind == "B"]
    for r in rounds:
        messages = [e for o in r.row.outcomes for e in o.errors][:5] + r.row.problems[:5]
        messages += [e for o in r.explorers for e in o.errors][:5]
        for message in messages:
            print(f"  {r.row.server}: {message}", file=sys.stderr)
    workers = f"{args.workers} `skingen worker` ({'normal priority' if args.no_nice else 'lowest priority'})"
    print(
        f"\n{args.participants} participants, think time {args.think[0]:g}–{args.think[1]:g} s; B adds "
        f"{args.explorers} explorers served by {workers}, tiny SD on CPU (64×64, 2 steps, no image cache). "
        "Latency = submit click → next page's script_finished; server CPU covers the participants' run.\n"
    )
    print(loadgen.table([r.row for r in rounds]))
    print()
    print(loadgen.markdown(EXPLORER_HEADER, [r.explorer_cells(args.workers) for r in b]))
    ratio = p95(b) / p95(a) if a and b else float("nan")
    pairs = ", ".join(f"{p95([rb]) / p95([ra]):.2f}" for ra, rb in zip(a, b, strict=True))
    print(
        f"\np95(B)/p95(A) = {ratio:.2f} (participants' submits pooled over {len(a)} A and {len(b)} B rounds; "
        f"per A B pair: {pairs})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=50, help="participants in each round")
    parser.add_argument("--explorers", type=int, default=20, help="explorer users beside them in B")
    parser.add_argument("--workers", type=int, default=2, help="`skingen worker` processes in B")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs, alternating (default 2: A B A B)")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--no-nice", action="store_true", help="run the workers at normal priority")
    parser.add_argument(
        "--explorer-server",
        choices=["same", "own"],
        default="same",
        help="B's explorers on the participants' server (default) or on a second server of the same study",
    )
    parser.add_argument("--protocol", type=Path, help="default: the demo study (`serve --demo`'s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.think = (args.think[0], args.think[1])
    return args


if __name__ == "__main__":
    rounds = run(parse_args())
    sys.exit(0 if all(r.row.errors == 0 and not any(o.errors for o in r.explorers) for r in rounds) else 1)
