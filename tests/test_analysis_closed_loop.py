"""Experts against the closed loop: κ against statsmodels and scikit-learn, the statistics and their
image-level bootstrap against a computation written here, and the path rating → export → report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from analysis.closed_loop import closed_loop_agreement, kappa_2x2
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from app.analysis_command import main as analysis_main
from formats.contract import RATING_COLUMNS
from study.export import export_frames, write_export
from study.rating import RatingPanel


def _ratings(seed: int = 0, n_images: int = 24, raters: int = 3, item: str = "relevant") -> pd.DataFrame:
    """Images whose check passes for the first two thirds; experts say relevant more often when it passes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_images):
        correct = int(i < 2 * n_images // 3)
        for r in range(raters):
            relevant = int(rng.random() < (0.8 if correct else 0.3))
            condition = ("psoriasis", "eczema")[i % 2]
            rows.append((f"D{r}", f"img{i:02d}", item, relevant, condition, correct))
    columns = ["rater_id", "image_id", "item", "value", "skin_condition", "closed_loop_correct"]
    return pd.DataFrame(rows, columns=columns)


def _by_hand(frame: pd.DataFrame) -> dict[str, float]:
    relevant, correct = frame["value"] == 1, frame["closed_loop_correct"] == 1
    return {
        "agreement": float((relevant == correct).mean()),
        "relevant_if_correct": float(relevant[correct].mean()),
        "relevant_if_wrong": float(relevant[~correct].mean()),
    }


@pytest.mark.parametrize("seed", range(5))
def test_kappa_matches_statsmodels_and_sklearn(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    expert, check = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    table = [[((expert == e) & (check == c)).sum() for c in (1, 0)] for e in (1, 0)]
    ours = kappa_2x2(np.ravel(table))[0]
    assert ours == pytest.approx(cohens_kappa(np.array(table)).kappa)
    assert ours == pytest.approx(metrics.cohen_kappa_score(expert, check))


def test_statistics_and_bootstrap_over_images() -> None:
    ratings = _ratings()
    record = closed_loop_agreement(
        ratings, "relevant", n_boot=200, rng=np.random.default_rng(3), confidence=0.9
    )
    expected = _by_hand(ratings)
    for key, value in expected.items():
        assert record[key] == pytest.approx(value)
    assert record["difference"] == pytest.approx(
        expected["relevant_if_correct"] - expected["relevant_if_wrong"]
    )
    assert record["n_images"] == 24 and record["n_ratings"] == 72 and sum(record["table"].values()) == 72
    # the bootstrap draws images (all of an image's ratings together), computed here with the same draws
    images = sorted(ratings["image_id"].unique())
    draws = np.random.default_rng(3).integers(0, len(images), (200, len(images)))
    replicates = [
        _by_hand(pd.concat([ratings[ratings["image_id"] == images[j]] for j in draw]))["agreement"]
        for draw in draws
    ]
    assert record["agreement_ci"] == pytest.approx(list(np.percentile(replicates, [5, 95])))
    assert record["agreement_ci"][0] < record["agreement"] < record["agreement_ci"][1]
    assert record["kappa"] > 0 and record["difference"] > 0  # the planted relation is found
    assert set(record["by_skin_condition"]) == {"eczema", "psoriasis"}
    assert "90 % CI" in record["text"] and "agreed with the closed-loop check" in record["text"]


def test_likert_item_counts_top_two_points_and_skips_without_checks() -> None:
    ratings = _ratings(item="useful")
    ratings["value"] = ratings["value"] * 4 + 1  # 1 or 5 on a 1–5 scale
    ratings["scale_max"] = 5
    record = closed_loop_agreement(ratings, "useful", n_boot=0)
    assert record["relevant_rule"] == "value ≥ 4" and record["agreement_ci"][0] != record["agreement_ci"][0]
    assert record["agreement"] == pytest.approx(
        _by_hand(ratings.assign(value=(ratings["value"] >= 4) * 1))["agreement"]
    )
    assert "no ratings of the relevance item 'other'" in closed_loop_agreement(ratings, "other")["skipped"]
    unchecked = ratings.assign(closed_loop_correct=np.nan)
    assert "--evaluate" in closed_loop_agreement(unchecked, "useful")["skipped"]


def test_pipeline_takes_the_item_from_the_export_or_the_flag() -> None:
    ratings = _ratings().astype(str)
    data = build_study_data(None, None, ratings)
    assert run_analysis(data, AnalysisConfig(n_boot=20)).results["closed_loop_agreement"] is None  # no item
    chosen = run_analysis(data, AnalysisConfig(n_boot=20, relevance_item="relevant")).results
    assert chosen["closed_loop_agreement"]["agreement"] == pytest.approx(_by_hand(_ratings())["agreement"])


def test_from_ratings_to_report(tmp_path, protocol_file, make_engine) -> None:
    from tests.factories import make_bundle

    bundle = make_bundle(tmp_path / "checked", closed_loop=True)
    engine = make_engine(
        protocol_file(cases__bundle=str(bundle))
    )  # the demo protocol: relevance_item relevant
    panel = RatingPanel(engine.db, engine.loaded)
    for name in ("a", "b", "c", "d"):
        rater, _ = panel.add_rater(name)
        task = panel.next_task(rater.id)
        while task is not None:  # relevant exactly when the check passed (reference 0 of each case)
            relevant = int(task.image.image_id.endswith(".r0"))
            task = panel.submit(
                rater.id, task.image.image_id, {"relevant": relevant, "realism": 3, "show_patient": 0}
            )
    frames = export_frames(engine.db)
    ratings = frames["ratings"]
    assert (
        list(ratings.columns) == list(RATING_COLUMNS) and frames["study"]["relevance_item"][0] == "relevant"
    )
    references = ratings[ratings["image_id"].str.contains(r"\.r")]
    assert set(references["closed_loop_correct"]) == {0, 1}
    assert (references["closed_loop_correct"] == references["image_id"].str.endswith(".r0")).all()
    assert set(ratings.loc[ratings["image_id"].str.endswith(".photo"), "closed_loop_correct"]) == {""}
    write_export(frames, tmp_path / "export")
    out = tmp_path / "report"
    assert analysis_main(["report", "--export", str(tmp_path / "export"), "--out", str(out), "--bootstrap", "50",
                          "--no-static", "--quiet"]) == 0  # fmt: skip
    record = json.loads((out / "results.json").read_text())["closed_loop_agreement"]
    assert (
        record["item"] == "relevant" and record["agreement"] == 1.0 and record["kappa"] == pytest.approx(1.0)
    )
    assert "Experts and the closed-loop check" in (out / "report.md").read_text()
    assert (out / "figures" / "closed_loop.html").is_file()
