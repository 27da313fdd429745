"""Benchmark: size and load time of ``report.html`` for the between-subjects demo study with 200 participants.

Builds the demo study (its protocol, the test bundle), runs N bots and a full rating panel through the study
engine, exports it, writes the report with each given analysis checkout (``--code DIR``, default this one;
pass an older checkout to compare before/after), then opens each report.html in Chromium through playwright —
launched as the browser tests launch it — and reports the file size, the copies of plotly.js in it, the time
to the first painted text, to the page's ``load`` event, until the first figure has drawn (scrolled to at
load) and until all figures have drawn (scrolled through).

    PYTHONPATH=. python bench/bench_report_html.py                       # this checkout, 200 bots
    PYTHONPATH=. python bench/bench_report_html.py --code /tmp/old --code . -n 200 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
ALL_DRAWN = """() => {
  const figs = document.querySelectorAll('.plotly-graph-div');
  return figs.length > 0 && [...figs].every(f => f.querySelector('.main-svg'));
}"""
FIRST_DRAWN = "() => !!document.querySelector('.plotly-graph-div .main-svg')"


def build_export(folder: Path, n: int) -> Path:
    """The between demo study with ``n`` bots and every rater's ratings, exported to ``folder/export``."""
    from app.study_command import main as study_main
    from db.session import Database
    from study.protocol.loading import load_protocol
    from study.rating import RatingPanel
    from tests.factories import make_bundle

    demo = folder / "demo"
    demo.mkdir(parents=True)
    protocol = demo / "between.yaml"
    shutil.copy(Path(str(resources.files("app.demo") / "between.yaml")), protocol)
    make_bundle(demo / "demo-bundle")
    url = f"sqlite:///{folder}/study.db"
    assert study_main(["init", "--db", url, "--protocol", str(protocol)]) == 0
    assert (
        study_main(["simulate", "--db", url, "-n", str(n), "--seed", "1", "--quiet", "--effect", "trust=0.5"])
        == 0
    )
    db = Database(url)
    panel = RatingPanel(db, load_protocol(protocol))
    rng = random.Random(1)
    for index in range(panel.rating.raters):
        rater, _ = panel.add_rater(f"Rater {index}")
        while (task := panel.next_task(rater.id)) is not None:
            answers = {i.id: rng.choice(list(i.value_labels()) or [""]) for i in panel.rating.items}
            panel.submit(rater.id, task.image.image_id, answers)
    db.dispose()
    assert study_main(["export", "--db", url, "--out", str(folder / "export")]) == 0
    return folder / "export"


def write_report(code: Path, export: Path, out: Path) -> Path:
    """``skingen-analysis report`` run from the checkout ``code`` (run in it: ``python -m`` puts the working
    directory first on the path, before PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
    cmd = [
        sys.executable,
        "-m",
        "app.analysis_command",
        "report",
        "--export",
        str(export),
        "--out",
        str(out.resolve()),
    ]
    subprocess.run([*cmd, "--no-static", "--quiet", "--bootstrap", "200"], check=True, env=env, cwd=code)
    return out / "report.html"


def measure(page_path: Path, repeat: int) -> dict:
    """File size, plotly.js copies, and load / first-screen / all-figures times (medians over ``repeat``)."""
    from playwright.sync_api import sync_playwright

    text = page_path.read_text(encoding="utf-8")
    copies = len(re.findall(r"\* plotly\.js .*?v\d", text))  # the library's banner, once per inlined copy
    paint, load, first, everything = [], [], [], []
    with sync_playwright() as pw:
        for _ in range(repeat):  # a fresh browser each time: a reader opens the file cold (no code cache)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
            load.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
            paint.append(page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime"))
            page.evaluate("document.querySelector('.plotly-graph-div').scrollIntoView()")
            page.wait_for_function(FIRST_DRAWN, timeout=120_000)
            first.append(page.evaluate("performance.now()"))
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            for y in range(0, page.evaluate("document.body.scrollHeight"), 600):
                page.evaluate(f"window.scrollTo(0, {y})")
                page.wait_for_timeout(20)
            page.wait_for_function(ALL_DRAWN, timeout=120_000)
            everything.append(page.evaluate("performance.now()"))
            browser.close()
    return {
        "bytes": page_path.stat().st_size,
        "plotly_copies": copies,
        "paint_ms": statistics.median(paint),
        "load_ms": statistics.median(load),
        "first_figure_ms": statistics.median(first),
        "all_figures_ms": statistics.median(everything),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--code", action="append", type=Path, help="analysis checkout(s) to compare (default .)"
    )
    parser.add_argument("-n", type=int, default=200, help="bot participants (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="page loads per report (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = build_export(Path(tmp), args.n)
        print(
            "| code | report.html | plotly.js copies | text painted | load event | first figure | all figures |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for i, code in enumerate(args.code or [Path(".")]):
            page = write_report(code, export, Path(tmp) / f"report{i}")
            m = measure(page, args.repeat)
            print(
                f"| {code} | {m['bytes'] / 1e6:.2f} MB | {m['plotly_copies']} | {m['paint_ms'] / 1000:.2f} s | "
                f"{m['load_ms'] / 1000:.2f} s | {m['first_figure_ms'] / 1000:.2f} s | "
                f"{m['all_figures_ms'] / 1000:.2f} s |"
            )


if __name__ == "__main__":
    main()
