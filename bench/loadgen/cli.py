"""``python -m bench.loadgen``: start the servers (or use a running one), run the crowds level by level, print
the table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen.participants import Plan, crowd, warm_up
from bench.loadgen.tables import Row, paired, table
from bench.loadgen.verify import verify
from bench.servers import ROOT, app_server, cpu_seconds


def checkout(value: str) -> tuple[str, str, Path]:
    """``--checkout NAME=DIR``: the tuned server run from another clone of this project."""
    name, sep, folder = value.partition("=")
    if not sep or not Path(folder, "study").is_dir():
        raise SystemExit(f"--checkout expects NAME=DIR with DIR a clone of this project, got {value!r}")
    return name, "tuned", Path(folder).resolve()


def measure_level(
    servers: list[tuple[str, str, Path]], n: int, args: argparse.Namespace, think: tuple[float, float]
) -> list[Row]:
    """``n`` participants on each server: all servers up at once, then ``args.blocks`` crowds on each,
    taking turns (A B, B A, A B …), so that a drift of the machine's speed falls on all of them alike."""
    rounds = args.single_rounds if n == 1 else 1
    with tempfile.TemporaryDirectory(prefix="skingen-loadgen-") as tmp, contextlib.ExitStack() as stack:
        running = []
        for label, kind, root in servers:
            base, db_url, pid = stack.enter_context(app_server(kind, args.protocol, Path(tmp), root))
            asyncio.run(warm_up(base))
            running.append((Row(label, n, []), base, db_url, pid))
        for block in range(args.blocks):
            for row, base, _, pid in running if block % 2 == 0 else running[::-1]:
                start, cpu = time.monotonic(), cpu_seconds(pid)
                outcomes = asyncio.run(
                    crowd(
                        base,
                        n,
                        think,
                        args.seed,
                        rounds,
                        not args.no_media,
                        plans=lambda _: Plan(enlarge=args.enlarge),
                        first=block * n * rounds,
                    )
                )
                spent = cpu_seconds(pid) - cpu
                row.wall_s += time.monotonic() - start
                row.cpu_s = (row.cpu_s or 0.0) + spent
                row.block_cpu_ms.append(1000 * spent / max(1, sum(len(o.submits) for o in outcomes)))
                row.outcomes += outcomes
                if args.blocks > 1:
                    print(
                        f"{row.server}, {n}, block {block + 1}: {row.block_cpu_ms[-1]:.1f} ms CPU/submit",
                        file=sys.stderr,
                        flush=True,
                    )
        for row, _, db_url, _ in running:
            row.stored, row.expected, row.problems = verify(db_url, args.protocol, row.outcomes)
            print(table([row]).splitlines()[-1], file=sys.stderr, flush=True)
        return [row for row, *_ in running]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Protocol-level load generator for the participant app: N simulated participants, no browser.",
    )
    parser.add_argument("--participants", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--servers", nargs="+", choices=["tuned", "default"], default=["tuned", "default"])
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument(
        "--protocol", type=Path, help="default: the demo study (`serve --demo`'s, drawn if missing)"
    )
    parser.add_argument("--url", help="use this running server instead of starting one (no DB check)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--single-rounds",
        type=int,
        default=3,
        help="the 1-participant level runs this many participants one after the other (more samples)",
    )
    parser.add_argument("--no-media", action="store_true", help="don't download the pages' images")
    parser.add_argument(
        "--enlarge", action="store_true", help="enlarge one image on every case page (a logged click)"
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also run the tuned server from another checkout (e.g. before a change), side by side",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=1,
        help="run each level this many times per server, the servers taking turns; reports the paired "
        "CPU-per-submit ratios (a small difference shows only this way on a machine whose speed drifts)",
    )
    args = parser.parse_args(argv)
    if args.url and args.blocks > 1:
        parser.error("--blocks takes turns between servers loadgen starts itself; it can't with --url")
    think = (args.think[0], args.think[1])
    rows: list[Row] = []
    if args.url:
        for n in args.participants:
            start = time.monotonic()
            rounds = args.single_rounds if n == 1 else 1
            plans = lambda _: Plan(enlarge=args.enlarge)  # noqa: E731
            outcomes = asyncio.run(crowd(args.url, n, think, args.seed, rounds, not args.no_media, plans))
            rows.append(Row("running", n, outcomes, wall_s=time.monotonic() - start))
            print(table(rows[-1:]), file=sys.stderr)
    else:
        if args.protocol is None:
            from app.demo import demo_dir, prepare_demo

            args.protocol = prepare_demo(demo_dir())
        args.protocol = args.protocol.resolve()
        servers = [(kind, kind, ROOT) for kind in args.servers] + [checkout(c) for c in args.checkout]
        for n in args.participants:  # servers side by side at each level: the same machine load
            rows += measure_level(servers, n, args, think)
    for row in rows:
        for message in [e for o in row.outcomes for e in o.errors][:5] + row.problems[:5]:
            print(f"  {row.server}/{row.participants}: {message}", file=sys.stderr)
    print(
        f"\nthink time {think[0]:g}–{think[1]:g} s; latency = submit click → next page's script_finished; "
        f"the 1-participant level ran {args.single_rounds} participants one after the other\n"
    )
    print(table(rows))
    for n in args.participants:
        for line in paired([row for row in rows if row.participants == n]):
            print(f"\n{line}")
    return 0 if all(row.errors == 0 for row in rows) else 1
