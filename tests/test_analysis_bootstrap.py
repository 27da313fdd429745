"""The one percentile-bootstrap rule (analysis.bootstrap) and that both resampling blocks follow it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.agreement import bootstrap_coefficients
from analysis.bootstrap import percentile_interval


def test_interval_over_finite_draws_only_when_half_are_finite():
    draws = np.arange(1.0, 101.0)  # R: quantile(1:100, c(.025, .975)) = 3.475, 97.525
    assert percentile_interval(draws, 100, 0.95) == pytest.approx([3.475, 97.525])
    draws[50:] = np.nan  # 50 of 100 finite: over 1..50, R: quantile(1:50, …) = 2.225, 48.775
    assert percentile_interval(draws, 100, 0.95) == pytest.approx([2.225, 48.775])
    draws[49] = np.inf  # 49 of 100 finite: undefined
    assert all(math.isnan(b) for b in percentile_interval(draws, 100, 0.95))
    assert all(math.isnan(b) for b in percentile_interval(np.empty(0), 0, 0.95))


def test_agreement_interval_is_undefined_when_no_resample_defines_the_statistic():
    """One image that every rater calls 0: each resample is that image, so Fleiss' κ (0/0) is undefined in
    all of them and its interval is NaN, while percent agreement (1 in every resample) keeps its interval."""
    counts = np.array([[3.0, 0.0]])
    ci = bootstrap_coefficients(counts, np.array([0.0, 1.0]), 40, np.random.default_rng(0), 0.95)
    assert all(math.isnan(b) for b in ci["fleiss_kappa"])
    assert ci["percent_agreement"] == pytest.approx([1.0, 1.0])
