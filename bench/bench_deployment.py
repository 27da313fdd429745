"""Participants through nginx in front of N replicas: `skingen-study deploy nginx` + `start.sh`, for real.

Writes a deployment into a temporary folder for the given PostgreSQL database, starts it (supervisor, nginx,
the replicas), runs bench/loadgen's participants through nginx (each keeps nginx's sticky cookie, as a
browser does) at each level, checks every answer in the database, and prints loadgen's table; the CPU column
is all replicas' CPU together per submit. Needs nginx, supervisor and an empty PostgreSQL database::

    PYTHONPATH=. python bench/bench_deployment.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        --replicas 2 --participants 1 200 --think 1 5
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.demo import demo_dir, prepare_demo
from app.study_command import main as study_cli
from bench import loadgen, servers


def replica_pids(out: Path) -> list[int]:
    """The running replicas' process ids, from ``supervisorctl status`` ("… RUNNING pid 123, uptime …")."""
    command = [
        sys.executable,
        "-m",
        "supervisor.supervisorctl",
        "-c",
        str(out / "supervisord.conf"),
        "status",
    ]
    status = subprocess.run([*command, "replica:*"], capture_output=True, text=True).stdout
    return [int(pid) for pid in re.findall(r"RUNNING\s+pid (\d+)", status)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="an empty PostgreSQL database the replicas share")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--participants", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--single-rounds", type=int, default=3, help="rounds of the 1-participant level")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    protocol = prepare_demo(demo_dir()).resolve()
    think = (args.think[0], args.think[1])
    rows = []
    with tempfile.TemporaryDirectory(prefix="skingen-deploy-bench-") as tmp:
        Path(tmp).chmod(0o755)  # nginx's workers (nobody, when started as root) must reach the folder
        out, port = Path(tmp) / "site", servers.free_port()
        deploy = ["deploy", "nginx", "--replicas", str(args.replicas), "--port", str(port), "--db", args.db]
        if study_cli([*deploy, "--protocol", str(protocol), "--out", str(out)]) != 0:
            return 2
        process = subprocess.Popen([str(out / "start.sh")], stdout=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            while len(replica_pids(out)) < args.replicas or not all(
                servers.healthy(f"http://127.0.0.1:{port + 1 + i}") for i in range(args.replicas)
            ):
                time.sleep(0.5)
            asyncio.run(loadgen.warm_up(base))
            for n in args.participants:
                pids = replica_pids(out)
                cpu, start = sum(map(servers.cpu_seconds, pids)), time.monotonic()
                rounds = args.single_rounds if n == 1 else 1
                first = 1_000_000 * (len(rows) + 1)  # fresh participant labels per level
                plans = lambda i: loadgen.Plan()  # noqa: E731
                outcomes = asyncio.run(loadgen.crowd(base, n, think, args.seed, rounds, True, plans, first))
                row = loadgen.Row(f"nginx + {args.replicas}", n, outcomes, wall_s=time.monotonic() - start)
                row.cpu_s = sum(map(servers.cpu_seconds, pids)) - cpu
                row.stored, row.expected, row.problems = loadgen.verify(args.db, protocol, outcomes)
                rows.append(row)
                print(loadgen.table([row]).splitlines()[-1], file=sys.stderr, flush=True)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    print(f"\nthink time {think[0]:g}–{think[1]:g} s, {args.replicas} replicas behind nginx\n")
    print(loadgen.table(rows))
    return 0 if all(row.errors == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
