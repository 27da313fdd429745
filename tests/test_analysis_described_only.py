"""A construct asked under one condition only (e.g. "the generated pictures helped me", shown with the
pictures) is described within that condition, not reported as an untested comparison of empty samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.document import document
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.render import render_markdown
from tests.analysis_data import BASELINE, VISUAL, make_study


def _with_visual_only_item(responses: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shown = responses.loc[responses["condition"] == VISUAL, ["participant_id", "arm", "sequence", "period"]]
    shown = shown.drop_duplicates("participant_id")
    extra = shown.assign(
        condition=VISUAL,
        item="images_helpful",
        construct="image_usefulness",
        value=rng.integers(3, 8, len(shown)).astype(str),
        reverse_coded="0",
        scale_min="1",
        scale_max="7",
        attention_check="0",
    )
    return pd.concat([responses, extra], ignore_index=True).fillna("")


@pytest.mark.parametrize("design", ["within", "between"])
def test_a_construct_of_one_condition_is_described_there(design):
    responses, participants, _ = make_study(n=30, design=design, seed=4)
    responses = _with_visual_only_item(responses)
    data = build_study_data(responses, participants, design=design, baseline=BASELINE)
    results = run_analysis(data, AnalysisConfig(n_boot=20)).results
    block = results["constructs"]["image_usefulness"]
    asked = responses[(responses["item"] == "images_helpful")]
    kept = asked[
        asked["participant_id"].isin(participants.loc[participants["excluded"] == "0", "participant_id"])
    ]
    assert set(block["descriptives"]) == {VISUAL}
    assert block["descriptives"][VISUAL]["n"] == len(kept)
    assert block["descriptives"][VISUAL]["mean"] == pytest.approx(kept["value"].astype(float).mean())
    assert block["described_only"].startswith(f"asked under {VISUAL} only")
    assert "omnibus" not in block and "skipped" not in block
    assert (
        results["constructs"]["trust"]["omnibus"]["parametric"]["p_holm"] is not None
    )  # the others are still tested
    text = render_markdown(document(results))
    assert "Not tested" not in text
    assert f"image_usefulness, {VISUAL} (*M* = " in text
