"""The bot population behind the simulated power curve (study.botpower): export format, sampling, effect model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from formats.contract import RESPONSE_COLUMNS
from study.botpower import (
    EngineBotGenerator,
    construct_items,
    plantable_constructs,
    point_shift,
)
from study.protocol.loading import load_protocol
from tests.factories import example_protocol, write_protocol


@pytest.fixture(scope="module")
def loaded(bundle_dir, tmp_path_factory):
    """Both example protocols on the 6-case test bundle: {design: LoadedProtocol}."""
    directory = tmp_path_factory.mktemp("botpower")
    return {
        design: load_protocol(
            write_protocol(directory, example_protocol(design), bundle_dir, f"{design}.yaml")
        )
        for design in ("within", "between")
    }


@pytest.fixture(scope="module")
def between_bots(loaded):
    generator = EngineBotGenerator(loaded["between"], "trust", pool_size=60)
    generator.prepare([0.5], 10)
    yield generator
    generator.close()


def test_items_per_condition_follow_the_participant_path(loaded):
    # within: 6 cases dealt into 2 sets → 3 trials with one trust item, plus trust_2/trust_3 after the block
    assert construct_items(loaded["within"], "trust") == {"baseline_text": 5.0, "skingen_visual": 5.0}
    # between: all 6 cases in one block, plus the 2 post-block items
    assert construct_items(loaded["between"], "comprehension") == {
        "baseline_text": 8.0,
        "skingen_visual": 8.0,
    }
    # image_usefulness is only asked with the generated images: no baseline, so no effect can be planted
    assert construct_items(loaded["within"], "image_usefulness") == {"skingen_visual": 1.0}
    assert plantable_constructs(loaded["within"]) == [
        "comprehension",
        "explanation_satisfaction",
        "satisfaction",
        "trust",
    ]


def test_point_shift_formula():
    items = {"b": 5.0, "v": 5.0}
    within = point_shift(0.5, "within", items, noise_sd=1.0, person_sd=1.0, baseline="b", compared="v")
    assert within == pytest.approx(0.5 * math.sqrt(2 * (1 + 1 / 12) / 5))
    between = point_shift(0.5, "between", items, noise_sd=1.0, person_sd=0.5, baseline="b", compared="v")
    assert between == pytest.approx(0.5 * math.sqrt(0.25 + (1 + 1 / 12) / 5))
    assert point_shift(0.0, "within", items, 1.0, 1.0, "b", "v") == 0.0


def test_bad_construct_is_refused(loaded):
    with pytest.raises(ValueError, match="image_usefulness"):
        EngineBotGenerator(loaded["within"], "image_usefulness")
    assert EngineBotGenerator(loaded["within"]).construct == "comprehension"  # first plantable, sorted


def test_samples_are_export_frames_balanced_over_arms(between_bots):
    population = between_bots.population(0.5)
    assert list(population.columns) == list(RESPONSE_COLUMNS)
    # text, as analysis.load.from_export hands the export to the analysis
    assert all(pd.api.types.is_string_dtype(population[c]) for c in population.columns)
    n_population = population["participant_id"].nunique()
    assert 0.9 * 60 <= n_population <= 60  # a few bots finish faster than the protocol's minimum duration
    rng = np.random.default_rng(1)
    sample = between_bots(11, 0.5, rng)
    assert list(sample.columns) == list(RESPONSE_COLUMNS)
    per_arm = sample.groupby("arm")["participant_id"].nunique()
    assert per_arm.sum() == 11 and sorted(per_arm) == [5, 6]
    # whole participants, each drawn once: every row of a sampled participant comes along
    ids = sample["participant_id"].unique()
    rows = population[population["participant_id"].isin(ids)]
    assert len(rows) == len(sample)
    assert (
        sample.groupby("participant_id").size().to_dict() == rows.groupby("participant_id").size().to_dict()
    )


def test_population_grows_on_demand(between_bots):
    before = between_bots.population(0.5)["participant_id"].nunique()
    sample = between_bots(70, 0.5, np.random.default_rng(2))  # 35 per arm: more than 60 bots hold
    assert sample["participant_id"].nunique() == 70
    assert between_bots.population(0.5)["participant_id"].nunique() > before
    assert between_bots.describe()["population"]["0.5"] > before
    assert between_bots.population_size(10) == 60  # pool_size given; the default is max(4 n, 200)
