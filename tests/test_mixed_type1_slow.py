"""The primary test keeps its α when cases vary (slow: 70 crossed mixed-model fits, ≈ 60 s on 2 CPU cores)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import paired_ttest
from analysis.mixed.linear import fit_linear
from analysis.power import simulate_trials
from formats.planning import VarianceComponents

CONDITIONS = ("baseline", "visual")
STUDIES, BOUND = 70, 10  # fail when 10 or more of 70 null studies reject at α = .05


@pytest.mark.slow
def test_the_mixed_test_holds_alpha_where_the_participant_mean_test_does_not():
    """70 null studies (within design, 80 participants × 10 cases, case × condition SD 0.4, the bench's other
    components): the test fails when the mixed model rejects in 10 or more (rate ≥ .14).

    Binomial reasoning: a valid test (rate ≤ .065, the crossed model's rate in this cell in issue 21's 200
    studies; bench/bench_mixed_type1.py measures it) rejects ≥ 10 of 70 with probability ≤ .015
    (P(X ≥ 10 | n = 70, p = .065)). The participant-mean paired t-test — the toolkit's test before the mixed
    models — rejects ≈ .25 of such studies (1000 simulated at this size: .251; its rate grows with the
    participants: .16 at 40), and stays below 10 of 70 with probability .010 (P(X ≤ 9 | n = 70, p = .25)): the
    bound separates a correct test from it, and the same studies must show that (the second assertion), so
    the test can fail."""
    components = VarianceComponents(
        participant=1, participant_condition=0.2, case=0.6, case_condition=0.4, residual=1
    )
    rng = np.random.default_rng(2012)
    mixed = participant_mean = 0
    for _ in range(STUDIES):
        trials = simulate_trials("within", 80, 10, 0.0, components, rng, conditions=CONDITIONS)
        fit = fit_linear(trials, design="within", conditions=CONDITIONS)
        mixed += fit.contrasts["visual - baseline"].p < 0.05
        means = trials.groupby(["participant", "condition"])["y"].mean().unstack()
        participant_mean += paired_ttest(means["visual"].to_numpy(), means["baseline"].to_numpy())["p"] < 0.05
    assert mixed < BOUND, f"mixed model rejected {mixed} of {STUDIES} null studies"
    assert participant_mean >= BOUND, f"participant-mean t-test rejected only {participant_mean} of {STUDIES}"
