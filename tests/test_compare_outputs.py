"""scripts/compare_outputs.py: its comparison finds one changed byte and names the file, its normalization rules
forgive only what they name, and the whole run (HEAD against the working tree, one protocol) agrees with itself."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_outputs.py"


def _load():
    spec = importlib.util.spec_from_file_location("compare_outputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


compare_outputs = _load()

STUDY_CSV = (
    "protocol_id,version,exported_at,labels\n"
    'demo,1.0.0,{at},"{{""conditions"": {{""a"": ""A""}}}}"\n'  # a quoted field, as the export writes
)
EVENTS_CSV = "at,participant_id,kind,step\n{at},,register,\n2025-01-01T00:00:00.000Z,P00001,consent,consent\n"
PLOTLY_HTML = '<div id="{uid}" class="plotly-graph-div"></div><script>Plotly.newPlot("{uid}", [])</script>\n'
SVG = '<svg><defs id="defs-{fig}"/><g class="trace scatter trace{trace}" clip-path="url(#clip{fig}xy)"/></svg>\n'


def write_run(
    root: Path,
    *,
    at: str = "2026-12-07T01:43:32.039Z",
    uid: str = "8e1dbbec-efed-4439-a9ba-036146f5d7ea",
    fig: str = "18fffe",
    trace: str = "03761a",
) -> Path:
    """A run folder shaped like the script's: an export, a report with a plotly figure, a binary image."""
    files = {
        "demo/between/export/study.csv": STUDY_CSV.format(at=at),
        "demo/between/export/events.csv": EVENTS_CSV.format(at=at),
        "demo/between/results/figures/flow.html": PLOTLY_HTML.format(uid=uid),
        "demo/between/results/figures/flow.svg": SVG.format(fig=fig, trace=trace),
        "demo/between/results/results.json": '{"constructs": {"trust": {"omega": 0.5, "n": 12}}}\n',
        "demo/between/results/report.md": "# Report\n\nω = .50\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
    (root / "demo/demo-bundle/cases").mkdir(parents=True)
    (root / "demo/demo-bundle/cases/c01.png").write_bytes(bytes(range(256)))
    (root / "demo/between/study.db").write_bytes(b"SQLite format 3\0" + bytes(8))
    return root


def compare(before: Path, after: Path, *allow: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dirs", str(before), str(after), *(f"--allow={a}" for a in allow)],
        capture_output=True,
        text=True,
    )
    return done.returncode, done.stdout + done.stderr


def test_identical_runs_compare_equal(tmp_path):
    code, out = compare(write_run(tmp_path / "a"), write_run(tmp_path / "b"))
    assert code == 0, out
    assert "7 files: 7 identical, 0 allowed, 0 not" in out  # the database is not compared


def test_one_changed_byte_fails_and_names_the_file(tmp_path):
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    image = after / "demo/demo-bundle/cases/c01.png"
    data = bytearray(image.read_bytes())
    data[100] ^= 1
    image.write_bytes(bytes(data))
    code, out = compare(before, after)
    assert code == 1
    assert "different    demo/demo-bundle/cases/c01.png" in out
    assert "binary: 256 B" in out


def test_a_json_difference_is_shown_by_key_and_the_allow_list_forgives_it(tmp_path):
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    (after / "demo/between/results/results.json").write_text('{"constructs": {"trust": {"n": 12, "k": 2}}}\n')
    code, out = compare(before, after)
    assert code == 1
    assert "- $.constructs.trust.omega: 0.5" in out and "+ $.constructs.trust.k: 2" in out
    code, out = compare(before, after, "*/results/results.json")
    assert code == 0, out
    assert "allowed      demo/between/results/results.json" in out


def test_a_text_difference_is_shown_as_a_unified_diff(tmp_path):
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    (after / "demo/between/results/report.md").write_text("# Report\n\nω = .51\n", encoding="utf-8")
    code, out = compare(before, after)
    assert code == 1
    assert "-ω = .50\n+ω = .51" in out


def test_a_file_on_one_side_only_fails(tmp_path):
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    (before / "demo/between/results/tables.tex").write_text("\\begin{table}\n")
    code, out = compare(before, after)
    assert code == 1
    assert "only before  demo/between/results/tables.tex" in out


def test_the_rules_forgive_clocks_and_random_figure_ids(tmp_path):
    before = write_run(tmp_path / "a")
    after = write_run(
        tmp_path / "b",
        at="2026-12-08T09:00:00.000Z",
        uid="24ee7749-1587-4f35-9634-74b682eb9f2c",
        fig="810888",
        trace="b0de96",
    )
    code, out = compare(before, after)
    assert code == 0, out


def test_the_clock_rules_keep_the_bots_simulated_clock(tmp_path):
    """events-register-at masks only `register` events: a bot's event time that moves is a difference."""
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    events = after / "demo/between/export/events.csv"
    events.write_text(events.read_text().replace("2025-01-01T00:00:00.000Z", "2025-01-01T00:00:01.000Z"))
    code, out = compare(before, after)
    assert code == 1
    assert "different    demo/between/export/events.csv" in out


def test_the_path_rule_names_the_run_folder(tmp_path):
    before, after = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    for root in (before, after):
        (root / "demo/between/results/report.md").write_text(f"read from {root}/demo/between.yaml\n")
    results = compare_outputs.compare_runs(compare_outputs.Side(before), compare_outputs.Side(after))
    assert {r.status for r in results} == {"identical"}
    assert compare_outputs.Side(before).normalized("demo/between/results/report.md") == (
        b"read from <run>/demo/between.yaml\n"
    )


def test_every_rule_is_listed_in_the_docstring():
    listed = compare_outputs.__doc__
    assert all(f"``{rule.name}``" in listed for rule in compare_outputs.RULES)
    assert "``run-paths``" in listed


@pytest.mark.slow
def test_head_and_the_working_tree_produce_the_same_files(tmp_path):
    """The whole run on one protocol: HEAD in a temporary worktree against this checkout as it is."""
    runs = tmp_path / "runs"
    args = [
        "--before",
        "HEAD",
        "--after",
        "WORKTREE",
        "--only",
        "demo/between",
        "--no-static",
        "--keep",
        str(runs),
    ]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    produced = {
        p.relative_to(tmp_path / "runs" / "after").as_posix()
        for p in (tmp_path / "runs" / "after").rglob("*")
    }
    for expected in (
        "demo/demo-bundle/manifest.json",
        "demo/between/prereg.md",
        "demo/between/export/responses.csv",
        "demo/between/results/results.json",
        "demo/between/results/report.md",
        "demo/between/results/figures/flow.html",
    ):
        assert expected in produced
