"""Input validation: one clear error naming the problem, and no partial output."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

from analysis.cli import main
from analysis.load import AnalysisInputError, build_study_data, load_db
from tests.analysis_data import BASELINE, VISUAL, make_study


@pytest.fixture(scope="module")
def study():
    return make_study(n=12, seed=5)


def test_valid_input_infers_design_and_visual(study):
    responses, participants, ratings = study
    data = build_study_data(responses, participants, ratings)
    assert (data.design, data.baseline, data.visual) == ("within", BASELINE, VISUAL)
    assert any("inferred 'within'" in w for w in data.warnings)
    # free text (empty construct) is kept but carries no number
    assert data.responses.loc[data.responses["item"] == "free_comment", "value"].isna().all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.drop(columns="construct"), "missing required column(s) 'construct'"),
        (
            lambda r: r.assign(value=r["value"].where(r["item"] != "trust_2", "agree")),
            "'value' must be numeric",
        ),
        (lambda r: r.assign(value=r["value"].where(r["item"] != "trust_2", "")), "item 'trust_2'"),
    ],
)
def test_malformed_responses_raise_one_clear_error(study, mutate, message):
    with pytest.raises(AnalysisInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_study_data(mutate(study[0].copy()), design="within")


def test_unknown_baseline_and_ambiguous_conditions(study):
    responses = study[0]
    with pytest.raises(AnalysisInputError, match="baseline condition 'placebo' is not in the responses"):
        build_study_data(responses, design="within", baseline="placebo")
    three = responses.copy()
    three.loc[three.index[:10], "condition"] = "heatmap"
    with pytest.raises(AnalysisInputError, match="--visual"):
        build_study_data(three, design="within")
    data = build_study_data(three, design="within", visual=VISUAL)
    assert "heatmap" not in set(data.responses["condition"])
    assert any("ignored" in w for w in data.warnings)


def test_between_design_rejects_participant_with_both_conditions(study):
    with pytest.raises(AnalysisInputError, match="have both conditions"):
        build_study_data(study[0], design="between")
    with pytest.raises(AnalysisInputError, match="--design must be"):
        build_study_data(study[0], design="crossover")


def test_ratings_and_participants_validation(study):
    _, participants, ratings = study
    with pytest.raises(AnalysisInputError, match="ratings: column 'value' must be numeric"):
        build_study_data(None, ratings=ratings.assign(value="good"))
    with pytest.raises(AnalysisInputError, match="more than once"):
        build_study_data(None, ratings=pd.concat([ratings, ratings.iloc[:1]]))
    with pytest.raises(AnalysisInputError, match="'excluded' must be 0 or 1"):
        build_study_data(study[0], participants.assign(excluded="2"), design="within")


def test_cli_error_exits_2_and_writes_nothing(tmp_path, study, capsys):
    responses = study[0].copy()
    responses.loc[responses.index[3], "value"] = "n/a"
    path = tmp_path / "responses.csv"
    responses.to_csv(path, index=False)
    out = tmp_path / "out"
    assert main(["report", "--responses", str(path), "--design", "within", "--out", str(out), "--quiet"]) == 2
    assert "must be numeric" in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["responses.csv"]  # no temp folder left behind


def test_cli_refuses_non_empty_out_and_bad_flags(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["report", "--responses", "x.csv", "--out", str(out)]) == 2
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["report", "--out", str(tmp_path / "o2")]) == 2
    assert "no input" in capsys.readouterr().err
    assert main(["report", "--design", "sideways", "--out", str(tmp_path / "o3")]) == 2


def test_load_db_uses_study_export_contract(monkeypatch, study):
    """--db goes through study.export.export_frames(db_url, protocol_path) (the engine's contract)."""
    responses, participants, ratings = study
    calls = []

    def export_frames(db_url: str, protocol_path: str | None = None) -> dict[str, pd.DataFrame]:
        calls.append((db_url, protocol_path))
        numeric = responses.copy()
        numeric["period"] = pd.to_numeric(numeric["period"], errors="coerce")  # typed like a real DB export
        return {"responses": numeric, "participants": participants, "ratings": ratings}

    fake = types.ModuleType("study.export")
    fake.export_frames = export_frames
    monkeypatch.setitem(sys.modules, "study.export", fake)
    data = load_db("sqlite:///study.db", design="within")
    assert calls == [("sqlite:///study.db", None)]
    assert data.design == "within" and data.ratings is not None and data.participants is not None


def test_real_study_export_signature():
    export = pytest.importorskip("study.export")
    import inspect

    assert list(inspect.signature(export.export_frames).parameters)[:2] == ["db_url", "protocol_path"]
