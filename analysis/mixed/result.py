"""What every mixed-model fit returns, whichever family and backend produced it.

Cases (skin photos) are a sample of the photos a claim is about, as participants are a sample of people; the
models here treat both as random (Judd, Westfall & Kenny 2012; Barr et al. 2013). The fitters
(:mod:`analysis.mixed.linear`, :mod:`analysis.mixed.laplace`, the R backend) all return a :class:`MixedFit`, so
the pipeline, the report and ``results.json`` read one shape.

Input frames share one long layout, one row per observation:
``y`` (float; an integer level for ordinal models; 0/1 for logistic models), ``participant``, ``case``,
``condition`` (str), and optionally ``position`` (1-based trial position) and ``ai_wrong`` (0/1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


class MixedModelError(ValueError):
    """The data cannot support the requested model (one case, one participant per arm, no variation…).

    The message names what is missing; the pipeline turns it into a note in the report, never a crash."""


@dataclass(frozen=True)
class MixedTerm:
    """One fixed effect or contrast: estimate on the model's scale (points; log-odds), its test and CI.

    ``df`` is None for z / χ² tests (asymptotic); ``statistic`` is t when ``df`` is given, else z."""

    name: str
    estimate: float
    se: float
    df: float | None
    statistic: float
    p: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class MixedFit:
    """A fitted model, named as it was fitted.

    - ``family``: ``"gaussian"`` | ``"cumulative_logit"`` | ``"binomial"``.
    - ``formula``: lme4/ordinal syntax of the model actually fitted (after simplification).
    - ``backend``: e.g. ``"python (analysis.mixed)"`` or ``"R 4.2.2: lme4 1.1-31, lmerTest 3.1-3"``.
    - ``df_method``: ``"Satterthwaite"``, ``"Kenward-Roger"``, ``"z (asymptotic)"`` or a conservative rule,
      stated in words.
    - ``terms``: every fixed effect but the intercept/thresholds, keyed as in ``formula``
      (``condition[skingen_visual]``, ``ai_wrong``, ``condition[skingen_visual]:ai_wrong``, ``position``).
    - ``contrasts``: condition differences, ``"b - a"`` for every pair (b after a in the conditions' order,
      so each non-baseline condition vs the baseline is included); logistic models with ``ai_wrong`` key them
      ``"b - a | ai_wrong=0"`` and ``"… | ai_wrong=1"``.
    - ``omnibus``: the test of all condition terms at once (k > 2): ``{test, statistic, df1, df2, p}``
      (``df2`` None for χ²).
    - ``variance_components``: SDs by name: ``participant``, ``participant:condition``, ``case``,
      ``case:condition``, ``residual`` (gaussian only) — those in the model. A linear model with k > 2
      conditions has one slope per non-baseline condition: ``case:condition[level]``.
    - ``correlations``: correlations between random effects of one grouping factor, keyed
      ``"case ~ case:condition"`` (empty when the model has none).
    - ``simplified``: the simplification steps taken, in order (empty when the maximal model fitted).
    - ``log_likelihood``: the maximised (restricted, for REML fits; Laplace-approximated, for GLMMs)
      log-likelihood, as R's ``logLik``; None where a backend does not give it.
    """

    family: str
    formula: str
    backend: str
    df_method: str
    terms: dict[str, MixedTerm]
    contrasts: dict[str, MixedTerm]
    variance_components: dict[str, float]
    singular: bool
    converged: bool
    n_obs: int
    n_participants: int
    n_cases: int
    confidence: float
    omnibus: dict | None = None
    simplified: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    correlations: dict[str, float] = field(default_factory=dict)
    log_likelihood: float | None = None

    def to_record(self) -> dict:
        """The JSON-ready ``mixed`` block of ``results.json``."""
        return asdict(self)
