"""The dashboard's analysis report, built once per state of the data: the Analysis page shows it and the
Downloads page's "Download all" zip carries its ``report.html`` and ``results.json``.

Both pages ask :func:`current_report`, which runs :func:`analysis.report.build_report` with the settings of
``skingen-analysis report`` (its defaults, the registered protocol's bots) on the de-identified export — so the
zip's numbers are the page's — and keeps the latest report per study version with a fingerprint of the data it
was built from: a page asking again for unchanged data gets that report instead of a second computation (the
zip's download runs on a thread of its own, without the page's session, so the cache is the process's).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from study.engine import StudyEngine
from study.export import export_frames, export_zip

if TYPE_CHECKING:
    from analysis.load import StudyData
    from analysis.report import Report

ANALYSIS_EXTRA = "The analysis needs the `analysis` extra: `pip install 'skingen-study[analysis]'`."
SKIPPED_FILE = "report-not-included.txt"
"""In the zip instead of the report when none can be built: why (no data yet, no analysis extra)."""


@dataclass(frozen=True)
class DashboardReport:
    """The report of the data as it is now, or why there is none (``problem``, a sentence for the page)."""

    data: StudyData | None = None
    report: Report | None = None
    problem: str = ""

    def files(self) -> dict[str, bytes]:
        """What the "Download all" zip adds: ``report.html`` and ``results.json`` (the bytes
        ``skingen-analysis report`` writes), or :data:`SKIPPED_FILE` saying why there is no report."""
        if self.report is None:
            return {SKIPPED_FILE: f"No analysis report in this download. {self.problem}\n".encode()}
        from analysis.render import results_json

        return {
            "report.html": self.report.html().encode("utf-8"),
            "results.json": results_json(self.report.results).encode("utf-8"),
        }


_LOCK = (
    threading.Lock()
)  # one computation at a time: a second request for the same data waits for the first's
_LATEST: dict[tuple[str, int], tuple[str, DashboardReport]] = {}


def current_report(engine: StudyEngine) -> DashboardReport:
    """The analysis report of ``engine``'s study version as its data are now (see the module's docstring)."""
    frames = export_frames(engine.db, version_id=engine.version_id)
    key, stamp = (engine.db.url, engine.version_id), fingerprint(frames)
    with _LOCK:
        cached = _LATEST.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        built = _build(engine, frames)
        _LATEST[key] = (stamp, built)
        return built


def zip_with_report(engine: StudyEngine, files: dict[str, bytes]) -> bytes:
    """The "Download all" zip: an export's ``files`` and the current report's (:meth:`DashboardReport.files`)."""
    return export_zip({**files, **current_report(engine).files()})


def fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    """A digest of an export's tables (names and CSV text) but the moment of the export (``exported_at``):
    equal exactly when the data are. (A status that time changes — active becoming dropped out — does
    change it: the report of that moment differs.)"""
    digest = hashlib.sha256()
    for name in sorted(frames):
        text = frames[name].drop(columns=["exported_at"], errors="ignore").to_csv(index=False)
        digest.update(name.encode("utf-8") + b"\0" + text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _build(engine: StudyEngine, frames: dict[str, pd.DataFrame]) -> DashboardReport:
    try:
        from analysis.config import AnalysisConfig
        from analysis.load import AnalysisInputError, from_export
        from analysis.report import build_report
        from app.sources import bots_of
    except ImportError:
        return DashboardReport(problem=ANALYSIS_EXTRA)
    try:  # the engine's own database and study, through the export contract (as Downloads)
        data = from_export(frames)
        report = build_report(data, AnalysisConfig(), bot_source=bots_of(engine.loaded))
    except AnalysisInputError as exc:
        return DashboardReport(problem=f"The analysis cannot run on these data yet: {exc}")
    return DashboardReport(data, report)
