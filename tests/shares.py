"""Distributed runs without a cluster: shares simulated by threads (an in-memory stand-in for accelerate's
collectives), the same command once alone and once under `accelerate launch`, and the bundle comparisons both
use — shared by the bundle, evaluation and retrieval tests."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from formats.taxonomy import Taxonomy
from skingen.bundle.builder import BundleBuilder, BundleSettings
from skingen.bundle.evaluation import BundleEvaluator
from skingen.distributed import ProcessShare
from skingen.prompts import PromptBuilder
from tests.launching import accelerate_launch, launch_env
from tests.skingen_fixtures import FakeGenerator


class Exchange:
    """What accelerate's collectives do, for threads: each call waits for all, then returns the values."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count, timeout=30)
        self.slots: list[object] = [None] * count

    def all(self, index: int, value: object) -> list[object]:
        self.barrier.wait()
        self.slots[index] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()
        return values


@dataclass(frozen=True)
class ThreadShare(ProcessShare):
    """One share of a distributed run as a thread: gathers and broadcasts go through an :class:`Exchange`
    (pickled, as accelerate sends them)."""

    exchange: Exchange | None = None

    def gather(self, value: object) -> list[object]:
        return [pickle.loads(pickle.dumps(v)) for v in self.exchange.all(self.process_index, value)]

    def broadcast(self, value: object) -> object:
        return self.exchange.all(self.process_index, value)[0]

    def wait_for_everyone(self) -> None:
        self.exchange.all(self.process_index, None)


def shared_builder(generator: FakeGenerator, evaluator: BundleEvaluator | None = None) -> BundleBuilder:
    """A two-reference bundle builder on ``generator``: what each share builds with unless a test says."""
    taxonomy = Taxonomy.load()
    settings = BundleSettings(bundle_id="b", k=2)
    return BundleBuilder(
        taxonomy, PromptBuilder.load(taxonomy), generator, None, settings, evaluator=evaluator
    )


def in_threads(
    work: Callable[[ThreadShare], object], count: int = 2, timeout: float = 300
) -> tuple[list[object], list[BaseException | None]]:
    """``work(share)`` in ``count`` threads, each one process of a simulated share; every thread's result and
    exception. ``timeout`` is a hang guard per thread, not a speed check."""
    exchange = Exchange(count)
    results: list[object] = [None] * count
    errors: list[BaseException | None] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = work(ThreadShare(index, count, exchange=exchange))
        except BaseException as exc:
            errors[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a share hangs"
    return results, errors


def build_in_threads(
    cases: list,
    out: Path,
    generators: list[FakeGenerator],
    make_builder: Callable[[FakeGenerator], BundleBuilder] = shared_builder,
    **kwargs: object,
) -> list[BaseException | None]:
    """Build with one thread per generator, each a share of its own builder; every thread's exception."""

    def build(share: ThreadShare) -> None:
        make_builder(generators[share.process_index])(cases, out, progress=False, share=share, **kwargs)

    return in_threads(build, len(generators), timeout=60)[1]


def bundle_files(root: Path) -> dict[str, bytes]:
    """Every file of a bundle but its manifest (which holds the build time), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def manifest_without_time(root: Path) -> dict:
    """The bundle's manifest less ``created_at``: what two builds of the same bundle must share."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("created_at")
    return manifest


def run_once_and_launched(args: list[str], one: Path, two: Path) -> subprocess.CompletedProcess:
    """``skingen ARGS --out ONE`` as one process, then ``--out TWO`` under ``accelerate launch`` with 2 CPU
    processes (gloo); both must succeed. Returns the launch's completed process."""
    env = launch_env()
    single = subprocess.run(
        [sys.executable, "-m", "skingen", *args, "--out", str(one)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    multi = subprocess.run(
        [*accelerate_launch(2), "-m", "skingen", *args, "--out", str(two)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert multi.returncode == 0, multi.stderr[-4000:]
    return multi
