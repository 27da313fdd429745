"""Project rule: the analysis package never imports torch, directly or indirectly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_analysis_does_not_import_torch():
    code = (
        "import sys, app.analysis_command, analysis.pipeline, analysis.figures, analysis.apa, analysis.document, "
        "analysis.render, analysis.simulation, app.sources; "
        "sys.exit(int(any(m == 'torch' or m.startswith('torch.') for m in sys.modules)))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], check=False, cwd=Path(__file__).parents[1]).returncode
        == 0
    )
