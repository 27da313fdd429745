"""Benchmark: bots through the real flow engine on SQLite (and optionally several processes at once).

    python bench/bench_simulate.py -n 1000 [--processes 4] [--design between|within] [--db URL]

Prints wall time, participants/s, answers stored, and the largest arm imbalance per stratum. Results are
written down in docs/performance.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.demo import demo_dir, prepare_demo
from db.session import Database
from study.engine import StudyEngine
from study.export import export_frames
from study.protocol.loading import load_protocol
from study.registry import register
from study.simulate import Policy, simulate


def _run(url: str, protocol: str, n: int, seed: int, dropout: float) -> int:
    engine = StudyEngine.open(Database(url), protocol)
    policy = Policy(
        kind="effect",
        effects={"trust": 0.5, "comprehension": 0.8},
        attention_fail_rate=0.05,
        dropout_rate=dropout,
    )
    return len(simulate(engine, n, seed=seed, policy=policy, progress=seed == 0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--design", choices=["between", "within"], default="between")
    parser.add_argument("--db", help="database URL (default: a new SQLite file in a temp dir)")
    parser.add_argument("--dropout", type=float, default=0.0, help="share of bots that leave midway")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    protocol = str(prepare_demo(demo_dir(), f"{args.design}.yaml"))
    url = args.db or f"sqlite:///{work}/bench.db"
    db = Database(url)
    register(db, load_protocol(protocol))

    share = [args.n // args.processes + (i < args.n % args.processes) for i in range(args.processes)]
    start = time.perf_counter()
    if args.processes == 1:
        _run(url, protocol, args.n, 0, args.dropout)
    else:
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            pool.starmap(_run, [(url, protocol, k, seed, args.dropout) for seed, k in enumerate(share)])
    elapsed = time.perf_counter() - start

    frames = export_frames(db)
    participants, responses = frames["participants"], frames["responses"]
    print(
        f"\n{args.n} participants ({args.design}, {args.processes} process(es)) on {url.split(':')[0]}: "
        f"{elapsed:.1f} s, {args.n / elapsed:.1f} participants/s, {len(responses)} answer rows, "
        f"{(participants['status'] == 'completed').sum()} completed"
    )
    print("largest arm imbalance per stratum (|max − min| allocated):")
    for stratum, group in participants[participants["arm"] != ""].groupby("stratum"):
        counts = Counter(group["arm"])
        print(
            f"  {stratum or '(none)'}: {dict(sorted(counts.items()))} → {max(counts.values()) - min(counts.values())}"
        )


if __name__ == "__main__":
    main()
