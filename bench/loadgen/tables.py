"""The load generator's report: one markdown row per server × participants level (latency percentiles, errors,
answers stored, server CPU per submit) and the block-by-block CPU ratios of ``--blocks``."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.loadgen.participants import Outcome


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    server: str
    participants: int
    outcomes: list[Outcome]
    stored: int | None = None
    expected: int | None = None
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float | None = None  # the server process's CPU time (user + system) during the run
    block_cpu_ms: list[float] = field(default_factory=list)  # CPU ms per submit of each block (--blocks)

    @property
    def errors(self) -> int:
        return sum(len(o.errors) for o in self.outcomes) + len(self.problems)

    def cells(self) -> list[str]:
        submits = [s * 1000 for o in self.outcomes for s in o.submits]
        loads = [o.load * 1000 for o in self.outcomes if o.load is not None]
        cases = [s * 1000 for o in self.outcomes for s in o.case_submits]
        errors = self.errors
        done = sum(o.completed for o in self.outcomes)
        stored = "–" if self.stored is None else f"{self.stored}/{self.expected}"
        return [
            self.server,
            str(self.participants),
            f"{done}/{len(self.outcomes)}",
            str(len(submits)),
            f"{statistics.median(submits):.0f}" if submits else "–",
            f"{percentile(submits, 95):.0f}",
            f"{percentile(submits, 99):.0f}",
            f"{max(submits):.0f}" if submits else "–",
            f"{statistics.median(loads):.0f}" if loads else "–",
            f"{percentile(cases, 50):.0f} / {percentile(cases, 95):.0f}" if cases else "–",
            str(errors),
            stored,
            f"{self.wall_s:.0f}",
            "–" if self.cpu_s is None or not submits else f"{self.cpu_s * 1000 / len(submits):.1f}",
        ]


HEADER = [
    "server",
    "participants",
    "completed",
    "submits",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "first load p50 ms",
    "→ case page p50 / p95 ms",
    "errors",
    "answers in DB",
    "run s",
    "server CPU ms/submit",
]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(rows: list[Row]) -> str:
    return markdown(HEADER, [row.cells() for row in rows])


def paired(rows: list[Row]) -> list[str]:
    """Each other server's CPU per submit over the first one's, block by block: blocks that ran minutes
    apart compare only within themselves, as the machine's speed drifts (by 10 % and more on a shared VM)."""
    first, lines = rows[0], []
    for row in rows[1:]:
        ratios = [b / a for a, b in zip(first.block_cpu_ms, row.block_cpu_ms, strict=True) if a > 0]
        if len(ratios) > 1:
            lines.append(
                f"CPU per submit, {row.server} / {first.server} at {row.participants} participants, per block: "
                f"{' '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}"
            )
    return lines
