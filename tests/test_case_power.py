"""Power that knows about cases (formats.planning.case_power, Westfall, Kenny & Judd 2014) against simulations
with known truth: R's lmerTest on data drawn from the variance components, and the variance of the estimate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from formats.planning import VarianceComponents, case_power, planned_formula, power_grid

R_SIMULATION = json.loads((Path(__file__).parent / "data" / "r" / "case_power.json").read_text())


@pytest.mark.parametrize("cell", R_SIMULATION["cells"], ids=lambda c: f"{c['design']}-{c['P']}x{c['Q']}")
def test_analytic_power_matches_lmertest_simulations(cell):
    """tests/data/r/case_power.R fits lmerTest (Satterthwaite) to 400 simulated studies per cell; the analytic
    power must lie within 3 binomial SEs (+ .02 for the df approximation) of the simulated share p < .05."""
    components = VarianceComponents(**R_SIMULATION["components"])
    analytic = case_power(cell["effect"], cell["P"], cell["Q"], cell["design"], components).power
    simulated = cell["power"]
    se = math.sqrt(simulated * (1 - simulated) / cell["reps"])
    assert abs(analytic - simulated) < 3 * se + 0.02, (analytic, simulated)


@pytest.mark.parametrize("design", ["within", "between"])
def test_the_standard_error_is_the_spread_of_the_estimate(design):
    """Known truth: draw 4000 studies from the components (counterbalanced within; one condition per participant
    between) and compare the SD of the difference of condition means with the formula's SE."""
    rng = np.random.default_rng(1)
    c = VarianceComponents(
        participant=1.0, participant_condition=0.5, case=0.6, case_condition=0.4, residual=1
    )
    participants, cases, reps = 24, 8, 4000
    part = np.repeat(np.arange(participants), cases)
    case = np.tile(np.arange(cases), participants)
    if design == "within":
        visual = ((case < cases // 2) ^ (part % 2 == 0)).astype(float)
    else:
        visual = (part % 2 == 0).astype(float)
    estimates = np.empty(reps)
    for r in range(reps):
        u, s = (
            rng.normal(0, c.participant, participants),
            rng.normal(0, c.participant_condition, participants),
        )
        a, b = rng.normal(0, c.case, cases), rng.normal(0, c.case_condition, cases)
        y = u[part] + a[case] + visual * (s[part] + b[case]) + rng.normal(0, c.residual, len(part))
        estimates[r] = y[visual == 1].mean() - y[visual == 0].mean()
    se = case_power(0.3, participants, cases, design, c).se
    assert estimates.std() == pytest.approx(se, rel=0.05)  # SE of an SD from 4000 draws: ≈ 1.1 %


def test_more_participants_level_off_more_cases_do_not():
    """The paper's point: with case × condition variance, power approaches a ceiling below 1 as participants
    grow with the cases fixed; more cases raise it."""
    ceiling = case_power(0.35, 100_000, 6, "within").power
    assert case_power(0.35, 1000, 6, "within").power < ceiling < 0.5
    assert case_power(0.35, 40, 20, "within").power > ceiling
    grid = power_grid(0.35, "within", (20, 40), (6, 10))
    assert [(r.participants, r.cases) for r in grid] == [(20, 6), (40, 6), (20, 10), (40, 10)]
    assert all(a.power < b.power for a, b in zip(grid[:2], grid[2:], strict=True))


def test_without_case_variation_the_mixed_test_is_the_paired_t_test():
    """Zero case components: within, the variance is the paired t-test's (σ²_pc + 4σ²_e/Q)/P."""
    c = VarianceComponents(participant_condition=0.5, case=0.0, case_condition=0.0, residual=1.0)
    result = case_power(0.3, 50, 10, "within", c)
    assert result.se == pytest.approx(math.sqrt((0.25 + 4 / 10) / 50))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="design must be"):
        case_power(0.3, 20, 10, "crossed")
    with pytest.raises(ValueError, match="at least 4 participants and cases"):
        case_power(0.3, 20, 3, "within")
    with pytest.raises(ValueError, match="case_condition must be ≥ 0"):
        VarianceComponents(case_condition=-1)
    assert planned_formula("between") == "y ~ condition + (1 | participant) + (1 + condition | case)"


def test_power_stays_a_number_far_in_the_noncentral_tails():
    """SciPy's noncentral t returns NaN for large noncentrality; power there is 1 (results.json had null)."""
    result = case_power(0.85, 240, 40, "within")
    assert result.ncp > 12 and result.power == pytest.approx(1.0)
