"""Input validation: one clear error naming the problem, and no partial output."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.load import AnalysisInputError, build_study_data
from app.analysis_command import main
from app.sources import load_db
from tests.analysis_data import BASELINE, VISUAL, make_study


@pytest.fixture(scope="module")
def study():
    return make_study(n=12, seed=5)


def test_valid_input_infers_design_and_visual(study):
    responses, participants, ratings = study
    data = build_study_data(responses, participants, ratings, baseline=BASELINE)
    assert (data.design, data.baseline, data.compared) == ("within", BASELINE, VISUAL)
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
        build_study_data(mutate(study[0].copy()), design="within", baseline=BASELINE)


def test_unknown_baseline_and_ambiguous_conditions(study):
    responses = study[0]
    with pytest.raises(AnalysisInputError, match="baseline condition 'placebo' is not in the responses"):
        build_study_data(responses, design="within", baseline="placebo")
    three = responses.copy()
    three.loc[three.index[:10], "condition"] = "heatmap"
    with pytest.raises(AnalysisInputError, match="--compared"):
        build_study_data(three, design="within", baseline=BASELINE)
    data = build_study_data(three, design="within", compared=VISUAL, baseline=BASELINE)
    assert "heatmap" not in set(data.responses["condition"])
    assert any("ignored" in w for w in data.warnings)


def test_between_design_rejects_participant_with_both_conditions(study):
    with pytest.raises(AnalysisInputError, match="have both conditions"):
        build_study_data(study[0], design="between", baseline=BASELINE)
    with pytest.raises(AnalysisInputError, match="--design must be"):
        build_study_data(study[0], design="crossover", baseline=BASELINE)


def test_ratings_and_participants_validation(study):
    _, participants, ratings = study
    with pytest.raises(AnalysisInputError, match="ratings: column 'value' must be numeric"):
        build_study_data(None, ratings=ratings.assign(value="good"))
    with pytest.raises(AnalysisInputError, match="more than once"):
        build_study_data(None, ratings=pd.concat([ratings, ratings.iloc[:1]]))
    with pytest.raises(AnalysisInputError, match="'excluded' must be 0 or 1"):
        build_study_data(study[0], participants.assign(excluded="2"), design="within", baseline=BASELINE)


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


def test_load_db_reads_the_real_study_database(protocol_file, make_engine):
    """--db exports through the engine; design and baseline come from the protocol registered there."""
    from study.rating import RatingPanel
    from study.simulate import Policy, simulate

    engine = make_engine(protocol_file("within"))
    simulate(engine, 16, seed=4, policy=Policy(kind="effect", effects={"trust": 1.0}), progress=False)
    panel = RatingPanel(engine.db, engine.loaded)
    for name in ("a", "b"):
        rater, _ = panel.add_rater(name)
        task = panel.next_task(rater.id)
        while task is not None:
            task = panel.submit(
                rater.id, task.image.image_id, {"relevant": 1, "realism": 4, "show_patient": 0}
            )
    data = load_db(engine.db.url)
    assert (data.design, data.baseline) == ("within", "baseline_text")
    assert data.participants is not None and len(data.participants) == 16
    assert data.ratings is not None and set(data.ratings["item"]) == {"relevant", "realism", "show_patient"}
