"""The analysis holds no study knowledge in its code: condition ids come from the data, never from the analysis'
code. (That it imports nothing of the study engine is import-linter's layers contract, tests/test_structure.py.)"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from tests.analysis_data import BASELINE, VISUAL, write_study

ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"


def test_no_condition_ids_and_no_dead_import_fallbacks_in_analysis():
    for path in sorted(ANALYSIS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        assert not constants & {"baseline_text", "skingen_visual"}, path.name
        for handler in (n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)):
            caught = ast.unparse(handler.type) if handler.type is not None else ""
            assert "ImportError" not in caught, f"{path.name}: lazy import fallback at line {handler.lineno}"


def test_csv_input_without_baseline_names_the_flags(tmp_path, capsys):
    from app.analysis_command import main

    paths = write_study(tmp_path / "csv", n=10)
    out = tmp_path / "out"
    assert main(["report", "--responses", str(paths["responses"]), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--baseline" in err and "--export" in err
    assert not out.exists()


def test_report_from_an_export_folder_reads_the_design_from_study_csv(tmp_path):
    import json

    import pandas as pd

    from app.analysis_command import main

    folder = tmp_path / "export"
    write_study(folder, n=10, design="within")
    pd.DataFrame(
        [{"protocol_id": "demo", "design": "within", "baseline": BASELINE, "visual": VISUAL}]
    ).to_csv(folder / "study.csv", index=False)
    out = tmp_path / "out"
    argv = [
        "report",
        "--export",
        str(folder),
        "--out",
        str(out),
        "--quiet",
        "--no-figures",
        "--bootstrap",
        "0",
    ]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (results["design"], results["conditions"]) == ("within", [BASELINE, VISUAL])
    assert results["exclusions_applied"] and results["ratings"]
    assert not any("inferred" in w for w in results["warnings"])


def test_export_folder_without_study_csv_needs_baseline(tmp_path, capsys):
    from app.analysis_command import main

    folder = tmp_path / "export"
    write_study(folder, n=10)
    assert main(["report", "--export", str(folder), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_from_export_builds_the_input_from_contract_frames():
    from analysis.load import from_export
    from tests.analysis_data import make_study

    responses, participants, ratings = make_study(n=8)
    study = __import__("pandas").DataFrame([{"design": "within", "baseline": BASELINE, "visual": VISUAL}])
    data = from_export(
        {"responses": responses, "participants": participants, "ratings": ratings, "study": study}
    )
    assert (data.design, data.baseline, data.compared) == ("within", BASELINE, VISUAL)
    with pytest.raises(Exception, match="--baseline"):
        from_export({"responses": responses})


def test_run_analysis_reads_as_its_numbered_steps():
    from analysis import pipeline

    source = inspect.getsource(pipeline.run_analysis)
    assert "set_description" not in source and ".update(" not in source
    assert [name for name, _ in pipeline.STEPS] == [
        "exclusions",
        "scoring",
        "constructs",
        "multiplicity",
        "hypotheses",
        "instruments",
        "trust calibration",
        "reliance",
        "engagement",
        "ratings",
        "interactions",
        "power",
        "preregistration",
        "reporting standards",
    ]
