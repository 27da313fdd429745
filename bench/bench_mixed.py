"""Benchmark: the crossed linear mixed model (``fit_linear``) in Python and in R, at two study sizes.

Within design, 2 conditions, 4 Likert items per case stored one row per answer (the long frame the analysis
passes), simulated with case effects (tests/data/r/mixed_exports.py: case SD 0.6, case × condition SD 0.4,
participant SD 0.8, participant × condition SD 0.3). The timed part is one ``fit_linear`` call: the fit,
the simplification rule if needed and Satterthwaite's df. The table also prints each backend's estimate,
SE and df, so a run shows the two backends agree at scale, and CPU seconds beside wall seconds (a busy
machine stretches wall time). Nothing is asserted about speed.

    PYTHONPATH=. python bench/bench_mixed.py                  # 200 × 10 × 4 and 2,000 × 20 × 4
    PYTHONPATH=. python bench/bench_mixed.py --backends r --sizes 2000x20
"""

from __future__ import annotations

import argparse
import resource
import time

from analysis.mixed import r_backend
from analysis.mixed.linear import fit_linear
from tests.data.r.mixed_exports import simulate

SIZES = ((200, 10), (2000, 20))  # participants, cases
CONDITIONS = ("baseline", "skingen_visual")


def _cpu_seconds() -> float:
    """CPU time of this process and of finished children (Rscript): on a shared machine wall time also
    counts the other processes' turns."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["python", "r"], choices=["python", "r"])
    parser.add_argument("--items", type=int, default=4, help="Likert items per case (one row each)")
    parser.add_argument(
        "--sizes", nargs="+", default=[f"{p}x{c}" for p, c in SIZES], help="participants x cases, e.g. 200x10"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    backends = [b for b in args.backends if b == "python" or r_backend.available()]
    print(
        f"{'participants':>12} {'cases':>5} {'rows':>8} {'backend':>7} {'wall s':>8} {'CPU s':>8}  "
        "estimate / SE / df  model"
    )
    for participants, cases in (tuple(int(v) for v in size.split("x")) for size in args.sizes):
        frame = simulate(
            participants,
            design="within",
            conditions=CONDITIONS,
            n_participants=participants,
            n_cases=cases,
            items=args.items,
            item_rows=True,
        )
        for backend in backends:
            start, cpu = time.perf_counter(), _cpu_seconds()
            fit = fit_linear(frame, design="within", conditions=CONDITIONS, backend=backend)
            seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
            term = fit.terms[f"condition[{CONDITIONS[1]}]"]
            print(
                f"{participants:>12,} {cases:>5} {len(frame):>8,} {backend:>7} {seconds:>8.1f} {cpu:>8.1f}  "
                f"{term.estimate:.4f} / {term.se:.4f} / {term.df:.2f}  {fit.formula}",
                flush=True,
            )


if __name__ == "__main__":
    main()
