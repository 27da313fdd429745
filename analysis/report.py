"""The report, whoever asks for it: the numbers, the figures and the files, from loaded study data.

``skingen-analysis report`` and the researcher dashboard's Analysis page both call :func:`build_report` with
one :class:`~analysis.config.AnalysisConfig` — the command's flag defaults are its field defaults — and the
study engine's bots when the protocol is known, so the dashboard's intervals are the report's. Writing the
files (:meth:`Report.write`) and the self-contained page the dashboard offers (:meth:`Report.html`) draw the
same document.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from analysis.config import AnalysisConfig
from analysis.document import document
from analysis.figures import build_figures, write_figures
from analysis.load import StudyData
from analysis.pipeline import Analysis, run_analysis
from analysis.render import render_html, write_reports
from analysis.simulation import BotSource


@dataclass
class Report:
    """One analysis and the figures drawn from it."""

    analysis: Analysis
    figures: dict[str, go.Figure]

    @property
    def results(self) -> dict:
        """``results.json``."""
        return self.analysis.results

    def write(self, out_dir: Path, *, static: bool = True) -> None:
        """``results.json``, ``report.md``, ``tables.tex``, ``report.html`` and ``figures/`` into ``out_dir``;
        a static (PNG/SVG) export that cannot run becomes a warning in the results, not an error."""
        self.results["warnings"] += write_figures(self.figures, out_dir / "figures", static=static)
        write_reports(self.results, self.figures, out_dir)

    def html(self) -> str:
        """``report.html``: the report with every figure, one self-contained page."""
        return render_html(document(self.results), self.figures)


def build_report(
    data: StudyData,
    config: AnalysisConfig,
    *,
    bot_source: BotSource | None = None,
    figures: bool = True,
    progress: bool = False,
) -> Report:
    """Every statistic of ``data`` (:func:`analysis.pipeline.run_analysis`) and, unless ``figures`` is False,
    every figure. ``bot_source``: the study engine's bots (given by the caller when the protocol is known),
    which run the simulated power curve; ``progress`` shows a bar on stderr."""
    analysis = run_analysis(data, config, progress=progress, bot_source=bot_source)
    return Report(analysis, build_figures(analysis) if figures else {})
