"""Check that a refactor changed no output: run the study's commands at two revisions and compare every file.

Each revision is checked out into a temporary git worktree (``--after WORKTREE`` uses this checkout as it is,
uncommitted changes included). In each, with fixed seeds, the script produces what a refactor must not change:

- ``demo/``: the demo stimulus bundle (``skingen-study demo-bundle``) and the demo protocols
  (``between.yaml``, ``within.yaml``, found in whichever package holds the ``demo`` folder);
- ``fixtures/``: the test fixtures' bundle and their three-arm protocols (``tests/factories.py``:
  ``make_bundle(..., retrieved=1)``, ``multi_arm_protocol(design, 3)``, ``write_protocol``);
- for every protocol: ``prereg`` (``prereg.md`` and its hash), ``init`` of a SQLite database, ``simulate``
  bots with a seed, ``export`` (all CSVs) and ``skingen-analysis report`` (``results.json``, ``report.md``,
  ``report.html``, ``tables.tex``, the figures as HTML, PNG and SVG).

The commands run through each revision's own code: the console scripts ``skingen-study`` and
``skingen-analysis`` are resolved from that revision's ``pyproject.toml`` ``[project.scripts]`` and imported
with the revision first on ``sys.path``, so the comparison does not depend on where a command's module lives.

Then every file is compared byte for byte after the normalization rules below. The script prints a table of
the files that differ (``--all``: every file) with a unified diff for text files and a key-level diff for JSON,
and exits 0 only when every file is identical or matches an ``--allow`` glob (e.g. a documented results.json
schema change: ``--allow '*/results/results.json'``).

Normalization rules (each applies to the files its pattern names; anything else is compared as produced):

- ``run-paths`` (every text file): the absolute path of the revision's run folder becomes ``<run>`` and that
  of its checkout ``<checkout>`` — the two revisions necessarily run in different folders.
- ``study-exported-at`` (``*/export/study.csv``): the ``exported_at`` value, the wall clock at export, becomes
  ``<clock>``.
- ``events-register-at`` (``*/export/events.csv``): the ``at`` of ``register`` events, the wall clock at
  ``init``, becomes ``<clock>`` (the bots' own events run on a simulated clock and are compared as they are).
- ``plotly-div-ids`` (``*.html``): plotly's random UUID of each figure's ``<div>`` becomes ``<uuid-N>``,
  numbered by first appearance.
- ``svg-uids`` (``*.svg``): plotly.js' random six-hex ids of the figure (``defs-…``, ``clip…``) and of each
  trace (``trace…``) become ``<uid-N>``, numbered by first appearance.

Not compared: the SQLite files (``*.db``, ``*.db-wal``, ``*.db-shm``: page layout, not content — the export
is their content) and ``logs/`` (each command's own output, kept for reading a failure). No compared command
prints or writes a random password; a rule is added here, named, when one does.

The default ``--before`` is 60201ee (branch ``s24-compare-baseline``): 6b2a2be, the last commit before the
package cut, plus one fix — McDonald's ω started its factor fit from a fresh random draw, so two runs of
6b2a2be itself differ in ``results.json``, ``report.md`` and ``report.html``; nothing else differs between
two runs of 6b2a2be.

Usage::

    python scripts/compare_outputs.py                                  # the baseline vs HEAD
    python scripts/compare_outputs.py --after WORKTREE                 # vs uncommitted changes
    python scripts/compare_outputs.py --before HEAD --after WORKTREE --only demo/between
    python scripts/compare_outputs.py --dirs OLD_RUN NEW_RUN           # compare two produced folders only
"""

from __future__ import annotations

import argparse
import csv
import difflib
import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
BASELINE = "60201ee"  # 6b2a2be + the deterministic start of McDonald's ω (see the module docstring)
WORKTREE = "WORKTREE"  # the --after/--before value meaning "this checkout as it is now"
DEMO_PROTOCOLS = ("between", "within")
FIXTURE_PROTOCOLS = ("between-k3", "within-k3")
NOT_COMPARED = ("*.db", "*.db-wal", "*.db-shm", "logs/*", "*/logs/*")


@dataclass(frozen=True)
class Settings:
    """The seeds and sizes every revision runs with (small: the whole comparison takes a few minutes)."""

    bundle_seed: int = 2024
    bundle_size: int = 128  # the smallest `demo-bundle --size`
    bots: int = 12
    bot_seed: int = 7
    bootstrap: int = 100
    analysis_seed: int = 0
    static_figures: bool = True


# --------------------------------------------------------------------------------------------------------------
# 1. Checkouts and their commands


@dataclass(frozen=True)
class Checkout:
    """One revision on disk, with its console scripts as ``name -> "module:function"``."""

    label: str  # "before" or "after"
    revision: str
    path: Path
    scripts: dict[str, str]

    def python(self, code: str, argv: Sequence[str], cwd: Path, log: Path) -> None:
        """Run ``code`` (with ``sys.argv[1:] = argv``) in a fresh interpreter that imports this checkout's code.

        ``-P`` keeps the working folder off ``sys.path``; ``PYTHONPATH`` puts the checkout first for this
        process and any it starts (an editable install of another checkout comes after it).
        """
        env = {**os.environ, "PYTHONPATH": str(self.path), "HF_HUB_OFFLINE": "1", "TZ": "UTC"}
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            done = subprocess.run(
                [sys.executable, "-P", "-c", code, *argv],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0:
            tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-25:])
            raise CommandFailed(
                f"{self.label} ({self.revision}): `{' '.join(argv)}` in {cwd} failed:\n{tail}"
            )

    def command(self, script: str, args: Sequence[str], cwd: Path, log: Path) -> None:
        """Run console script ``script`` as its installed wrapper would: ``sys.exit(function())``."""
        if script not in self.scripts:
            raise CommandFailed(
                f"{self.label} ({self.revision}): pyproject.toml has no [project.scripts] {script}"
            )
        module, function = self.scripts[script].split(":")
        code = (
            "import importlib, sys\n"
            f"sys.argv[0] = {script!r}\n"
            f"sys.exit(getattr(importlib.import_module({module!r}), {function!r})())\n"
        )
        self.python(code, [*args], cwd, log)


class CommandFailed(RuntimeError):
    """A revision's command exited non-zero (the message holds the end of its output)."""


def console_scripts(checkout: Path) -> dict[str, str]:
    """``[project.scripts]`` of the checkout's pyproject.toml."""
    with (checkout / "pyproject.toml").open("rb") as file:
        return dict(tomllib.load(file)["project"]["scripts"])


@contextmanager
def checked_out(label: str, revision: str, parent: Path) -> Iterator[Checkout]:
    """The revision in a temporary detached git worktree (removed afterwards), or this checkout for WORKTREE."""
    if revision == WORKTREE:
        yield Checkout(label, "working tree", REPO, console_scripts(REPO))
        return
    path = parent / f"checkout-{label}"
    git("worktree", "add", "--detach", "--quiet", str(path), revision)
    try:
        yield Checkout(label, revision, path, console_scripts(path))
    finally:
        git("worktree", "remove", "--force", str(path))


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


# --------------------------------------------------------------------------------------------------------------
# 2. What each revision produces


@dataclass(frozen=True)
class ProtocolRun:
    """One protocol to run: ``group/name.yaml`` in the run folder; its outputs go to ``group/name/``."""

    group: str  # "demo" or "fixtures"
    name: str

    @property
    def key(self) -> str:
        return f"{self.group}/{self.name}"


PROTOCOL_RUNS = tuple(ProtocolRun("demo", n) for n in DEMO_PROTOCOLS) + tuple(
    ProtocolRun("fixtures", n) for n in FIXTURE_PROTOCOLS
)
FIXTURE_CODE = """\
from pathlib import Path
from tests.factories import make_bundle, multi_arm_protocol, write_protocol
make_bundle(Path("bundle"), retrieved=1)
for design in ("between", "within"):
    write_protocol(Path("."), multi_arm_protocol(design, 3), Path("bundle"), f"{design}-k3.yaml")
"""


def demo_protocols(checkout: Path) -> dict[str, Path]:
    """The demo protocols, wherever the checkout keeps its ``demo`` folder (``study/demo``, ``app/demo``, …)."""
    found: dict[str, Path] = {}
    for name in DEMO_PROTOCOLS:
        hits = sorted(p for p in checkout.glob(f"*/demo/{name}.yaml") if p.parts[-3] != "tests")
        if len(hits) != 1:
            raise CommandFailed(f"{checkout}: expected one demo/{name}.yaml, found {[str(h) for h in hits]}")
        found[name] = hits[0]
    return found


def prepare_group(
    checkout: Checkout, group: str, run: Path, settings: Settings, tick: Callable[[str], None]
) -> None:
    """Write the group's shared inputs: the demo bundle and protocols, or the test fixtures."""
    folder = run / group
    folder.mkdir(parents=True, exist_ok=True)
    if group == "demo":
        for name, path in demo_protocols(checkout.path).items():
            shutil.copyfile(path, folder / f"{name}.yaml")
        drawing = ["--seed", str(settings.bundle_seed), "--size", str(settings.bundle_size)]
        args = ["demo-bundle", "demo-bundle", *drawing]
        checkout.command("skingen-study", args, folder, run / "logs" / "demo-bundle.log")
    else:
        checkout.python(FIXTURE_CODE, [], folder, run / "logs" / "fixtures.log")
    tick(f"{checkout.label} {group}: inputs")


def protocol_steps(spec: ProtocolRun, settings: Settings) -> list[tuple[str, list[str]]]:
    """prereg → init → simulate → export → report of one protocol, as ``(console script, arguments)`` run in
    its group's folder; all outputs go under ``group/name/``."""
    protocol, db, out = f"{spec.name}.yaml", f"sqlite:///{spec.name}/study.db", spec.name
    bots = ["-n", str(settings.bots), "--seed", str(settings.bot_seed), "--quiet"]
    analysis = ["--bootstrap", str(settings.bootstrap), "--seed", str(settings.analysis_seed), "--quiet"]
    if not settings.static_figures:
        analysis.append("--no-static")
    return [
        ("skingen-study", ["prereg", protocol, "--out", f"{out}/prereg.md"]),
        ("skingen-study", ["init", "--db", db, "--protocol", protocol, "--prereg", f"{out}/prereg.md"]),
        ("skingen-study", ["simulate", "--db", db, *bots]),
        ("skingen-study", ["export", "--db", db, "--out", f"{out}/export"]),
        ("skingen-analysis", ["report", "--db", db, "--out", f"{out}/results", *analysis]),
    ]


def run_protocol(
    checkout: Checkout, spec: ProtocolRun, run: Path, settings: Settings, tick: Callable[[str], None]
) -> None:
    """Run :func:`protocol_steps` with this checkout's code; a failing step stops the protocol."""
    (run / spec.group / spec.name).mkdir(parents=True, exist_ok=True)
    for number, (script, args) in enumerate(protocol_steps(spec, settings), 1):
        log = run / "logs" / spec.group / f"{spec.name}-{number}-{args[0]}.log"
        checkout.command(script, args, run / spec.group, log)
        tick(f"{checkout.label} {spec.key}: {args[0]}")


def produce(
    checkouts: Sequence[Checkout],
    runs: dict[str, Path],
    specs: Sequence[ProtocolRun],
    settings: Settings,
    jobs: int,
) -> None:
    """Every revision's outputs, ``jobs`` pipelines at a time, with one progress bar over all commands."""
    groups = sorted({s.group for s in specs})
    total = len(checkouts) * (len(groups) + sum(len(protocol_steps(s, settings)) for s in specs))
    lock = threading.Lock()
    with tqdm(total=total, unit="cmd", desc="producing", file=sys.stderr) as bar:

        def tick(what: str) -> None:
            with lock:
                bar.set_postfix_str(what, refresh=False)
                bar.update()

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            # 1. shared inputs of each group, 2. the protocols that read them
            for future in [
                pool.submit(prepare_group, c, g, runs[c.label], settings, tick)
                for c in checkouts
                for g in groups
            ]:
                future.result()
            for future in [
                pool.submit(run_protocol, c, s, runs[c.label], settings, tick)
                for c in checkouts
                for s in specs
            ]:
                future.result()


# --------------------------------------------------------------------------------------------------------------
# 3. Normalization


@dataclass(frozen=True)
class Rule:
    """A named rewrite of legitimately varying text in the files matching ``pattern`` (see the docstring)."""

    name: str
    pattern: str
    rewrite: Callable[[str], str]

    def applies(self, relative: str) -> bool:
        return fnmatch.fnmatch(relative, self.pattern)


def _mask_column(
    column: str, when: Callable[[dict[str, str]], bool] = lambda row: True
) -> Callable[[str], str]:
    """Replace each value of ``column`` (in rows where ``when``) by ``<clock>``, leaving the file's bytes as is."""

    def rewrite(text: str) -> str:
        rows = csv.DictReader(io.StringIO(text, newline=""))
        for value in {row[column] for row in rows if when(row) and row.get(column)}:
            text = text.replace(value, "<clock>")
        return text

    return rewrite


def _number_ids(pattern: re.Pattern[str], placeholder: str) -> Callable[[str], str]:
    """Replace every id ``pattern`` captures (group 1), wherever it occurs, by ``<placeholder-N>``."""

    def rewrite(text: str) -> str:
        ids = list(dict.fromkeys(pattern.findall(text)))
        for number, value in enumerate(ids, 1):
            text = text.replace(value, f"<{placeholder}-{number}>")
        return text

    return rewrite


RULES = (
    Rule("study-exported-at", "*export/study.csv", _mask_column("exported_at")),
    Rule(
        "events-register-at",
        "*export/events.csv",
        _mask_column("at", lambda row: row.get("kind") == "register"),
    ),
    Rule(
        "plotly-div-ids",
        "*.html",
        _number_ids(
            re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"), "uuid"
        ),
    ),
    Rule("svg-uids", "*.svg", _number_ids(re.compile(r"""(?:\bdefs-|\btrace)([0-9a-f]{6})\b"""), "uid")),
)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its run folder, and the checkout that produced it (for ``run-paths``)."""

    run: Path
    checkout: Path | None = None

    def normalized(self, relative: str) -> bytes:
        """The file's bytes after every rule that applies (text files only; binary files as they are)."""
        data = (self.run / relative).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        # run-paths: longest first, so a checkout inside the run folder is named as the checkout
        for path, name in sorted(self._roots(), key=lambda item: -len(str(item[0]))):
            text = text.replace(str(path), name)
        for rule in RULES:
            if rule.applies(relative):
                text = rule.rewrite(text)
        return text.encode("utf-8")

    def _roots(self) -> list[tuple[Path, str]]:
        roots = [(self.run.resolve(), "<run>")]
        if self.checkout is not None:
            roots.append((self.checkout.resolve(), "<checkout>"))
        return roots


# --------------------------------------------------------------------------------------------------------------
# 4. Comparison


@dataclass(frozen=True)
class FileResult:
    """How one file compares: ``identical``, ``different``, ``allowed`` (differs, on the allow-list),
    ``only before`` or ``only after``; ``diff`` holds the explanation of a difference."""

    path: str
    status: str
    diff: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("identical", "allowed")


def compared_files(run: Path) -> set[str]:
    """Relative paths of the files under ``run`` that are compared (POSIX separators)."""
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    return {f for f in files if not any(fnmatch.fnmatch(f, glob) for glob in NOT_COMPARED)}


def compare_runs(
    before: Side, after: Side, allow: Sequence[str] = (), diff_lines: int = 60
) -> list[FileResult]:
    """Compare every file of the two run folders, sorted by path."""
    old, new = compared_files(before.run), compared_files(after.run)
    results = []
    for relative in sorted(old | new):
        allowed = any(fnmatch.fnmatch(relative, glob) for glob in allow)
        if relative not in new or relative not in old:
            status = "only before" if relative in old else "only after"
            results.append(FileResult(relative, "allowed" if allowed else status, status))
            continue
        a, b = before.normalized(relative), after.normalized(relative)
        if a == b:
            results.append(FileResult(relative, "identical"))
        else:
            results.append(
                FileResult(
                    relative, "allowed" if allowed else "different", explain(relative, a, b, diff_lines)
                )
            )
    return results


def explain(relative: str, a: bytes, b: bytes, limit: int) -> str:
    """A key-level diff for JSON, a unified diff for other text, sizes and hashes for binary files."""
    try:
        old, new = a.decode("utf-8"), b.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary: {len(a)} B sha256 {_sha(a)} → {len(b)} B sha256 {_sha(b)}"
    if relative.endswith(".json"):
        try:
            lines = list(json_diff(json.loads(old), json.loads(new)))
        except json.JSONDecodeError:
            lines = []
        if lines:
            return _cut(lines, limit)
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"before/{relative}", f"after/{relative}", lineterm=""
    )
    return _cut(list(diff), limit) or "(differs only in line endings or a final newline)"


def json_diff(old: Any, new: Any, where: str = "$") -> Iterator[str]:
    """One line per changed, added (``+``) or removed (``-``) key or list item, by JSON path."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{where}.{key}"
            if key not in new:
                yield f"- {path}: {_short(old[key])}"
            elif key not in old:
                yield f"+ {path}: {_short(new[key])}"
            else:
                yield from json_diff(old[key], new[key], path)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            path = f"{where}[{index}]"
            if index >= len(new):
                yield f"- {path}: {_short(old[index])}"
            elif index >= len(old):
                yield f"+ {path}: {_short(new[index])}"
            else:
                yield from json_diff(old[index], new[index], path)
    elif old != new or type(old) is not type(new):
        yield f"~ {where}: {_short(old)} → {_short(new)}"


def _short(value: Any, width: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _cut(lines: list[str], limit: int) -> str:
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(f"… {len(lines) - limit} more lines")
    return "\n".join(shown)


def print_table(results: Sequence[FileResult], every_file: bool, out: Any = sys.stdout) -> None:
    """One row per file that is not identical (every file with ``every_file``), a count per folder, the diffs."""
    rows = [r for r in results if every_file or r.status != "identical"]
    width = max([len(r.path) for r in rows] + [4])
    print(f"{'status':<12} {'file':<{width}}", file=out)
    for result in rows:
        print(f"{result.status:<12} {result.path:<{width}}", file=out)
    print(file=out)
    folders: dict[str, dict[str, int]] = {}
    for result in results:
        folder = "/".join(result.path.split("/")[:2])
        counts = folders.setdefault(folder, {})
        counts[result.status] = counts.get(result.status, 0) + 1
    for folder, counts in sorted(folders.items()):
        print(f"{folder:<24} " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), file=out)
    for result in results:
        if result.diff and result.status in ("different", "allowed"):
            print(f"\n=== {result.status}: {result.path}\n{result.diff}", file=out)


# --------------------------------------------------------------------------------------------------------------
# 5. Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--before",
        default=BASELINE,
        help=f"revision before the change (default: {BASELINE}, 6b2a2be + the ω fix)",
    )
    parser.add_argument(
        "--after", default="HEAD", help=f"revision after it (default: HEAD; {WORKTREE}: this checkout)"
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="PATH_GLOB",
        help="a file that may differ (glob on the compared path, e.g. '*/results/results.json'); repeatable",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[s.key for s in PROTOCOL_RUNS],
        help="run only this protocol (repeatable; default: all)",
    )
    parser.add_argument(
        "--dirs", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="only compare two run folders"
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="produce into DIR (new) and keep it")
    parser.add_argument("--jobs", type=int, default=2, help="pipelines run at once (default 2)")
    parser.add_argument("--no-static", action="store_true", help="HTML figures only (skip PNG/SVG; faster)")
    parser.add_argument("--all", action="store_true", help="list every file, identical ones too")
    parser.add_argument(
        "--diff-lines", type=int, default=60, help="lines of diff shown per file (default 60)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be ≥ 1, got {args.jobs}")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: must be new or empty")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dirs:
        results = compare_runs(Side(args.dirs[0]), Side(args.dirs[1]), args.allow, args.diff_lines)
        return report(results, args.all)
    settings = Settings(static_figures=not args.no_static)
    specs = [s for s in PROTOCOL_RUNS if args.only is None or s.key in args.only]
    with ExitStack() as stack:
        parent = args.keep or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="compare-outputs-"))
        )
        parent = parent.resolve()
        runs = {label: parent / label for label in ("before", "after")}
        try:
            checkouts = [
                stack.enter_context(checked_out("before", args.before, parent)),
                stack.enter_context(checked_out("after", args.after, parent)),
            ]
            produce(checkouts, runs, specs, settings, args.jobs)
        except CommandFailed as error:
            print(f"compare_outputs: {error}", file=sys.stderr)
            return 2
        sides = {c.label: Side(runs[c.label], c.path) for c in checkouts}
        results = compare_runs(sides["before"], sides["after"], args.allow, args.diff_lines)
        print(f"before: {args.before} ({runs['before']})\nafter:  {args.after} ({runs['after']})\n")
        return report(results, args.all)


def report(results: Sequence[FileResult], every_file: bool) -> int:
    print_table(results, every_file)
    failed = [r for r in results if r.failed]
    allowed = sum(r.status == "allowed" for r in results)
    identical = len(results) - len(failed) - allowed
    print(f"\n{len(results)} files: {identical} identical, {allowed} allowed, {len(failed)} not")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
