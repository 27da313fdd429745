"""Simulated power from the study engine's bots: planted effects recovered through the full analysis path,
power rising with n, and ``skingen-analysis report --db … --simulate`` choosing the bots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.constructs import primary_result
from analysis.load import build_study_data
from analysis.pipeline import AnalysisConfig, run_analysis
from analysis.power import power_curve
from app.analysis_command import main
from app.sources import bots_of
from db.session import Database
from study.botpower import EngineBotGenerator
from study.engine import StudyEngine
from study.protocol.loading import load_protocol
from study.registry import register
from study.simulate import Policy, simulate
from tests.factories import example_protocol, write_protocol

PLANTED = 0.8


@pytest.fixture(scope="module")
def within_protocol(bundle_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("power-bots")
    return write_protocol(directory, example_protocol("within"), bundle_dir, "within.yaml")


@pytest.fixture(scope="module")
def within_bots(within_protocol):
    """160 within-subject bots with d_z = 0.8 planted on trust."""
    generator = EngineBotGenerator(load_protocol(within_protocol), "trust", pool_size=160, seed=4)
    generator.prepare([PLANTED], 40)
    yield generator
    generator.close()


def _estimate(generator: EngineBotGenerator, frame) -> dict:
    return primary_result(
        frame, generator.design, generator.conditions, generator.compared, generator.construct
    )


def test_planted_effect_is_recovered_from_bot_data(within_bots):
    """The whole bot population through the analysis path: d_z within sampling error (SE ≈ 0.09 here)."""
    population = within_bots.population(PLANTED)
    result = _estimate(within_bots, population)
    assert result["effect"] == pytest.approx(PLANTED, abs=0.25)
    assert result["p"] < 1e-6
    data = build_study_data(population, design="within", baseline=within_bots.baseline)  # export passes as is
    assert data.design == "within" and data.compared == within_bots.compared


def test_bot_power_increases_with_n(within_bots):
    curve = power_curve(
        within_bots, lambda f: _estimate(within_bots, f), (6, 40), (PLANTED,), n_sims=25, seed=1
    )
    power = curve.set_index("n")["power"]
    assert power[40] > power[6] and power[40] >= 0.9  # analytic: .25 at n = 6, > .99 at n = 40
    assert curve.set_index("n").loc[40, "mean_estimate"] == pytest.approx(PLANTED, abs=0.25)


def test_csv_input_and_mismatched_protocol_use_the_likert_generator(within_bots, bundle_dir, tmp_path):
    population = within_bots.population(PLANTED)
    data = build_study_data(population, design="within", baseline=within_bots.baseline)
    config = AnalysisConfig(n_boot=0, simulate=True, sim_sizes=(8,), sim_effects=(0.5,), sim_reps=2)
    simulation = run_analysis(data, config).results["power"]["simulation"]
    assert simulation["generator_kind"] == "likert"
    assert simulation["construct"] == "comprehension"  # the first confirmatory construct, as the analysis
    between = load_protocol(write_protocol(tmp_path, example_protocol("between"), bundle_dir))
    results = run_analysis(data, config, bot_source=bots_of(between)).results
    assert results["power"]["simulation"]["generator_kind"] == "likert"
    assert any("design is 'between'" in w for w in results["warnings"])


def test_report_simulates_with_the_engine_bots(within_protocol, tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    db = Database(url)
    register(db, load_protocol(within_protocol))
    simulate(StudyEngine.open(db), 12, policy=Policy(kind="effect", effects={"trust": 1.0}), progress=False)
    db.dispose()
    out = tmp_path / "report"
    argv = ["report", "--db", url, "--simulate", "--sim-sizes", "10,20", "--sim-effects", "0.5"]
    argv += ["--sim-reps", "20", "--out", str(out), "--no-figures", "--bootstrap", "0", "--quiet"]
    assert main(argv) == 0
    simulation = json.loads((out / "results.json").read_text())["power"]["simulation"]
    assert simulation["generator_kind"] == "engine_bots"
    assert simulation["generator"].startswith("EngineBotGenerator(protocol='skingen_demo_within'")
    details = simulation["generator_details"]
    assert details["construct"] == simulation["construct"] == "comprehension"
    assert details["population"]["0.5"] >= 180  # max(4 × 20, 200) bots, less the few excluded as too fast
    assert [row["n"] for row in simulation["curve"]] == [10, 20]
    assert all(0 <= row["power"] <= 1 and row["n_sims"] == 20 for row in simulation["curve"])
    # the effect the sampled population realized is reported beside the planted one
    realized = details["population_effect"]["0.5"]
    assert realized == pytest.approx(0.5, abs=0.4)
    assert all(row["population_effect"] == realized for row in simulation["curve"])


@pytest.mark.slow
@pytest.mark.parametrize("design", ["within", "between"])
def test_bot_effect_recovery_is_close(design, bundle_dir, tmp_path):
    """1000 bots per effect: moderate planted effects come back within ±0.1 (SE ≈ 0.04–0.07), no effect ≈ 0."""
    loaded = load_protocol(write_protocol(tmp_path, example_protocol(design), bundle_dir))
    generator = EngineBotGenerator(loaded, "trust", pool_size=1000)
    generator.prepare([0.0, 0.5], 250)
    try:
        assert _estimate(generator, generator.population(0.5))["effect"] == pytest.approx(0.5, abs=0.1)
        assert abs(_estimate(generator, generator.population(0.0))["effect"]) < 0.12
        rng = np.random.default_rng(0)
        estimates = [_estimate(generator, generator(60, 0.5, rng))["effect"] for _ in range(30)]
        assert np.mean(estimates) == pytest.approx(0.5, abs=0.12)
    finally:
        generator.close()
