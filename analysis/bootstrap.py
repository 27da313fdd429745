"""The percentile bootstrap interval every resampled statistic of the analysis reports.

A resample can leave a statistic undefined (κ of a resample where every rater gave one answer, a share of
an empty cell), so the interval is taken over the finite draws — but only when at least half the replicates
are finite: otherwise the interval would describe an unrepresentative subset of resamples, and it is
reported as undefined (NaN bounds) instead.
"""

from __future__ import annotations

import math

import numpy as np


def percentile_interval(draws: np.ndarray, n_boot: int, confidence: float) -> list[float]:
    """``[low, high]`` percentiles of the finite ``draws`` at ``confidence`` (two-sided), or ``[nan, nan]``
    when fewer than half of the ``n_boot`` replicates are finite (or there are none)."""
    finite = draws[np.isfinite(draws)]
    if n_boot == 0 or len(finite) < n_boot / 2:
        return [math.nan, math.nan]
    tail = 100 * (1 - confidence) / 2
    return [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]
