"""A report that goes into a paper unedited: the demo protocols run through bots, raters, export and the report,
and no condition or item id appears where a reader looks (report.md, tables.tex, figure titles, axes and
legends); the labels and anchors are there instead. Ids stay in results.json and in hover text."""

from __future__ import annotations

import random
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from analysis.figures import build_figures
from analysis.load import load_export
from analysis.pipeline import AnalysisConfig, run_analysis
from app.analysis_command import main as analysis_main
from app.study_command import main as study_main
from study.protocol.loading import load_protocol
from study.rating import RatingPanel
from tests.factories import make_bundle

IDENTIFIER = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)+")
"""Ids a reader would notice: snake_case. Single-word ids (``relevant``, ``expertise``) are ordinary words
that the labels themselves contain ("clinically relevant"), so no text check can tell them apart."""


def _rate_all(url: str, protocol_path: Path) -> None:
    """Every rater of the panel rates every image with random answers."""
    from db.session import Database

    db = Database(url)
    panel = RatingPanel(db, load_protocol(protocol_path))
    rng = random.Random(5)
    for index in range(panel.rating.raters):
        rater, _ = panel.add_rater(f"Rater {index}")
        while (task := panel.next_task(rater.id)) is not None:
            answers = {}
            for item in panel.rating.items:
                codes = list(item.value_labels())
                answers[item.id] = rng.choice(codes) if codes else ""
            panel.submit(rater.id, task.image.image_id, answers)
    db.dispose()


def _ids(protocol_path: Path) -> set[str]:
    protocol = load_protocol(protocol_path).protocol
    ids = {c.id for c in protocol.conditions} | set(protocol.items())
    ids |= {i.id for i in (protocol.rating.items if protocol.rating else ())}
    return {i for i in ids if IDENTIFIER.fullmatch(i)}


def _figure_texts(fig) -> list[str]:
    """What a reader sees of a figure: title, axis titles, category labels on the axes, legend entries."""
    layout = fig.layout
    texts = [layout.title.text or ""]
    for axis in (layout.xaxis, layout.yaxis):
        texts.append(axis.title.text or "")
    for trace in fig.data:
        texts.append(str(trace.name or ""))
        for values in (getattr(trace, "x", None), getattr(trace, "y", None)):
            if values is not None and len(values) and isinstance(values[0], str):
                texts += [str(v) for v in values]
    texts += [a.text for a in layout.annotations]
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("design", ["between", "within"])
def test_demo_protocol_report_shows_labels_never_ids(design, tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    protocol_path = demo / f"{design}.yaml"
    shutil.copy(Path(str(resources.files("app.demo") / f"{design}.yaml")), protocol_path)
    make_bundle(demo / "demo-bundle")
    url = f"sqlite:///{tmp_path}/study.db"
    assert study_main(["init", "--db", url, "--protocol", str(protocol_path)]) == 0
    bots = ["simulate", "--db", url, "-n", "24", "--seed", "2", "--quiet", "--effect", "trust=1"]
    assert study_main(bots) == 0
    _rate_all(url, protocol_path)
    export = tmp_path / "export"
    assert study_main(["export", "--db", url, "--out", str(export)]) == 0
    out = tmp_path / "report"
    argv = [
        "report",
        "--export",
        str(export),
        "--out",
        str(out),
        "--quiet",
        "--no-static",
        "--bootstrap",
        "20",
    ]
    assert analysis_main(argv) == 0

    ids = _ids(protocol_path)
    assert {"baseline_text", "skingen_visual", "trust_1", "show_patient"} <= ids
    report, tables = (out / "report.md").read_text(), (out / "tables.tex").read_text()
    tables_plain = tables.replace("\\_", "_")
    analysis = run_analysis(load_export(export), AnalysisConfig(n_boot=0))
    figures = build_figures(analysis)
    seen = {
        "report.md": report,
        "tables.tex": tables_plain,
        **{f"figure {name}": "\n".join(_figure_texts(fig)) for name, fig in figures.items()},
    }
    leaks = {
        where: sorted(i for i in ids if re.search(rf"(?<![\w]){i}(?![\w])", text))
        for where, text in seen.items()
    }
    assert {where: found for where, found in leaks.items() if found} == {}

    # the check finds ids where there are no labels (an export written before study.csv had them)
    from dataclasses import replace

    from analysis.document import document
    from analysis.labels import Labels
    from analysis.render import render_markdown

    bare = run_analysis(replace(load_export(export), labels=Labels()), AnalysisConfig(n_boot=0))
    assert {"baseline_text", "skingen_visual"} <= {
        i for i in ids if i in render_markdown(document(bare.results))
    }

    # the labels are there instead, and the ids stay in results.json
    assert "Text and generated reference images" in report and "Text and generated reference images" in tables
    likert = "\n".join(_figure_texts(figures["likert_trust"]))
    assert "I trust the AI's diagnosis for this case." in likert and "Strongly agree" in likert
    assert '"skingen_visual"' in (out / "results.json").read_text()
    baseline = report[report.index("## Baseline characteristics by arm") :]
    assert "| Which best describes your background in medicine? | Layperson |" in baseline
    assert "| Randomization stratum | Clinician |" in baseline and "| Your age group | 18–29 |" in baseline
