"""Worker throughput: waiting reference jobs batched into one diffusers call vs one image per call.

N users each ask for one reference image (conditions alternate, so prompts differ); a `skingen worker` loop
(the real queue on SQLite, the real ModelServer) serves them either batched (``--max-batch`` jobs claimed
together, all their images in one call) or one job and one image at a time. No image cache, so every image is
generated. Reports wall time and images/s of each; never asserts speed.

    PYTHONPATH=. python bench/bench_worker.py                     # tiny random model on CPU (~1 min)
    PYTHONPATH=. python bench/bench_worker.py --arch sd15 --device cuda --size 512 --steps 25 --jobs 32

Any model directory works with ``--sd``; ``--arch sd15`` is SD-1.5's architecture with random weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_generate import add_model_arguments, random_pipeline

from db.jobs import JobQueue
from db.migrate import upgrade
from db.session import Database
from formats.jobs import references_request
from formats.taxonomy import Taxonomy
from skingen.devices import resolve_device, resolve_dtype
from skingen.generation import ReferenceGenerator
from skingen.serving import GenerationSettings, ModelServer
from skingen.worker import Worker

CONDITIONS = ("psoriasis", "eczema", "acne", "melanoma")


@dataclass(frozen=True)
class Row:
    mode: str
    jobs: int
    max_batch: int
    wall_s: float
    images_per_s: float


def serve(generator: ReferenceGenerator, settings: GenerationSettings, jobs: int, max_batch: int) -> float:
    """Seconds for a worker to serve ``jobs`` one-image reference jobs, claiming ``max_batch`` at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/jobs.db")
        upgrade(db.engine)
        queue = JobQueue(db)
        for n in range(jobs):
            request = references_request(CONDITIONS[n % len(CONDITIONS)], "IV", count=1, first_seed=n)
            queue.submit(request.kind, request.payload, inputs=request.inputs, batch_key=request.batch_key)
        server = ModelServer(Taxonomy.load(), generator=generator, settings=settings)
        worker = Worker(queue, server.handlers(), name="bench", max_batch=max_batch)
        started = time.perf_counter()
        served = worker.run(max_jobs=jobs)
        elapsed = time.perf_counter() - started
        assert served == jobs and queue.counts() == {"done": jobs}, queue.counts()
        db.dispose()
    return elapsed


def run(args: argparse.Namespace) -> list[Row]:
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    device = resolve_device(args.device)
    dtype = resolve_dtype(device, args.dtype)
    if args.sd:
        generator = ReferenceGenerator.from_pretrained(args.sd, device=device, dtype=args.dtype)
        model = args.sd
    else:
        pipe = random_pipeline(args.arch).to(device, dtype)
        pipe.set_progress_bar_config(disable=True)
        model = f"random-{args.arch}"
        generator = ReferenceGenerator(pipe, model=model)
    modes = (("one image per call", 1), (f"batched ({args.max_batch} jobs per call)", args.max_batch))
    settings = {
        max_batch: GenerationSettings(
            steps=args.steps, width=args.size, height=args.size, max_images_per_call=max_batch
        )
        for _, max_batch in modes
    }
    for _, max_batch in modes:  # warm-up: kernels, allocator
        serve(generator, settings[max_batch], min(args.jobs, max_batch), max_batch)
    best = {max_batch: float("inf") for _, max_batch in modes}
    for _ in range(args.rounds):  # alternating rounds, best of each: other load on the machine hits both
        for _, max_batch in modes:
            best[max_batch] = min(
                best[max_batch], serve(generator, settings[max_batch], args.jobs, max_batch)
            )
    rows = [
        Row(mode, args.jobs, max_batch, round(best[max_batch], 3), round(args.jobs / best[max_batch], 3))
        for mode, max_batch in modes
    ]
    print(
        f"{model} on {device} ({str(dtype).removeprefix('torch.')}), {args.size}×{args.size}, {args.steps} steps"
    )
    print(f"{'mode':<32} {'jobs':>5} {'wall s':>8} {'images/s':>9}")
    for row in rows:
        print(f"{row.mode:<32} {row.jobs:>5} {row.wall_s:>8.2f} {row.images_per_s:>9.2f}")
    print(f"speed-up of batching: {rows[1].images_per_s / rows[0].images_per_s:.2f}×")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--jobs", type=int, default=16, help="waiting one-image jobs (users)")
    parser.add_argument("--max-batch", type=int, default=8, help="jobs claimed and generated together")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per mode (best reported)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_args())
    sys.exit(0)
