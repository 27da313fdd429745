"""The planned tests and their power, shared by the preregistration and the analysis.

One home for what both state about power: the α each confirmatory test is planned at (:func:`planned_test`,
the one α-split rule), the exact power of the participant-mean t-test (:func:`t_test_power`,
:func:`required_sample`, :func:`minimum_effect`; checked against R's ``power.t.test`` in
tests/data/r/power_t_test.R), and the crossed mixed model with the power that knows about cases.

Cases (skin photos) are a sample of the photos a claim is about, so the primary analysis of per-case items is a
linear mixed model with crossed random effects for participants and cases; its power depends on the number of
participants *and* of cases (Westfall, Kenny & Judd 2014, "Statistical power and optimal design in experiments
in which samples of participants respond to samples of stimuli", JEP: General 143:2020–2045). The
preregistration (``study.prereg``) states the plan and the analysis (``analysis``) runs it; both read this module,
which imports only SciPy, so the study layer never imports the analysis and the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize, stats

SIMPLIFICATION_RULE = (
    "The maximal model is fitted first: random intercepts and random condition slopes (one per non-baseline "
    "condition) with their correlations, for participants (within-participant designs; between designs: "
    "participant intercepts only) and for cases. A fit is singular when a variance is estimated at zero or a "
    "correlation at ±1 (lme4's isSingular, tolerance 1e-4), and it has not converged when the optimiser stops "
    "with a gradient above 0.002. While the fit is singular or has not converged, the model is simplified "
    "one step at a time and refitted after each step: (1) drop the correlations between the random effects "
    "of cases (lme4's `||`: they rest on the fewest levels, the cases), then those of participants; "
    "(2) drop the random slope with the smallest estimated SD in the last fit (in residual SDs, rounded to "
    "4 decimals, so slopes estimated at zero tie), one slope per step, then the next: the slope that "
    "contributes least to the standard error of the condition effect, so removing it changes the inference "
    "least (Matuschek et al. 2017; Bates et al. 2015); ties go participant slopes before case slopes "
    "(case × condition variation is what makes the sample of cases matter, so it is kept longest), later "
    "conditions before earlier ones; (3) the random intercepts of participants and cases are never dropped "
    "— that would treat the sampled cases (or participants) as fixed —, and the intercept-only model is "
    "reported even if singular. The model finally fitted and every step taken are reported."
)
"""The deterministic simplification rule of the mixed model (Barr et al. 2013: keep it maximal; Matuschek et al.
2017: simplify when the data cannot support it): the preregistration states it and
:func:`analysis.mixed.structure.simplify` runs it."""


def planned_formula(design: str, *, position: bool = False) -> str:
    """lme4 syntax of the maximal model for a per-case item: within designs vary the condition effect over
    participants and over cases; between designs over cases only (each participant sees one condition)."""
    fixed = "y ~ condition" + (" + position" if position else "")
    participant = "(1 + condition | participant)" if design == "within" else "(1 | participant)"
    return f"{fixed} + {participant} + (1 + condition | case)"


def random_effects_text(design: str) -> str:
    """What the planned model treats as random, in words."""
    slopes = (
        "participants' and cases' own condition effects (random slopes)"
        if design == "within"
        else "cases' own condition effects (random slopes; each participant sees one condition)"
    )
    return f"participants and cases (crossed random intercepts) and {slopes}"


# --- the planned test: α split over the confirmatory family, sidedness -------------------------------------
DIFFERENCE_SIDES = {"greater": "one-sided", "less": "one-sided", "two_sided": "two-sided"}
"""Hypothesis directions the power analysis plans for, with their test's sidedness (equivalence and
non-inferiority hypotheses are TOST tests against a margin: the power analysis does not cover them)."""


@dataclass(frozen=True)
class PlannedTest:
    """The test a power analysis plans for: ``alpha`` per test after the split, the ``declared`` α it was split
    from, the ``family`` size it was split over (1: no split) and what the family is (``family_of``:
    ``hypotheses`` or ``comparisons with the baseline``), the ``correction`` and ``sided``."""

    alpha: float
    declared: float
    family: int
    family_of: str
    correction: str
    sided: str


def planned_test(
    alphas: Sequence[float],
    directions: Sequence[str],
    correction: str,
    k: int,
    *,
    alpha: float = 0.05,
) -> PlannedTest:
    """The one α-split rule of the preregistration and the report: Bonferroni over the confirmatory family.

    The confirmatory family is what the analysis corrects together to decide the study's claims. When the
    protocol declares hypotheses (``alphas`` and ``directions``, one each), the family is those hypotheses —
    :func:`analysis.plan.confirmatory_tests` adjusts exactly them with the protocol's ``correction`` — whatever
    the number of conditions k: one hypothesis comparing two of k = 3 arms is tested at its α, unadjusted,
    so splitting α over the k − 1 comparisons with the baseline would plan for a test the study never runs
    (and ask for too many participants), while two hypotheses on two arms (trust and satisfaction) are
    Holm-adjusted over two tests, which a k − 1 split (= 1) would miss (too few). Without declared hypotheses
    the report's family is the k − 1 comparisons of each condition with the baseline, Holm-adjusted (and the
    simulated power curve counts a hit the same way), so α is split over those. Under ``holm`` or
    ``bonferroni`` the per-test α is the declared α (the smallest, if they differ) ÷ the family size:
    Bonferroni's α, which is also Holm's first and strictest step, so each test's planned power is a lower
    bound; under ``none`` each hypothesis is its own family and keeps its α.

    Sidedness: one-sided when every difference hypothesis declares a direction, else (or without difference
    hypotheses) two-sided.
    """
    if len(alphas) != len(directions):
        raise ValueError(f"one α per hypothesis: {len(alphas)} alphas for {len(directions)} directions")
    if correction not in ("holm", "bonferroni", "none"):
        raise ValueError(f"correction must be 'holm', 'bonferroni' or 'none', got {correction!r}")
    if alphas:
        declared, family_of = min(alphas), "hypotheses"
        family = len(alphas) if correction != "none" else 1
    else:
        declared, family_of, family, correction = (
            alpha,
            "comparisons with the baseline",
            max(k - 1, 1),
            "holm",
        )
    sides = {DIFFERENCE_SIDES[d] for d in directions if d in DIFFERENCE_SIDES}
    sided = "one-sided" if sides == {"one-sided"} else "two-sided"
    return PlannedTest(declared / family, declared, family, family_of, correction, sided)


# --- power of the participant-mean t-test -------------------------------------------------------------------
def t_test_power(n: float, effect: float, design: str, *, alpha: float, sided: str, k: int = 2) -> float:
    """Exact power (noncentral t, as R's ``power.t.test(strict = TRUE)`` and G*Power) of the comparison of one
    condition with the baseline for standardized ``effect``, with ``n`` participants in all.

    ``within``: the paired t-test of ``n`` participants (d_z, df n − 1); ``between``: the two-sample t-test
    of two of the k balanced arms, n/k participants each (d, df 2n/k − 2; Welch's test has the same power
    under equal variances). ``n`` may be fractional (the exact n solved for)."""
    _check_design_sided(design, sided)
    if design == "within":
        df, ncp = n - 1, effect * math.sqrt(n)
    else:
        per_arm = n / k
        df, ncp = 2 * per_arm - 2, effect * math.sqrt(per_arm / 2)
    return _t_power(ncp, df, alpha, sided)


def _t_power(ncp: float, df: float, alpha: float, sided: str) -> float:
    """Power of a t test with noncentrality ``ncp`` and ``df`` at ``alpha``: the noncentral t's mass beyond
    the critical value(s) — one tail (the effect's direction) or both."""
    crit = stats.t.ppf(1 - alpha, df) if sided == "one-sided" else stats.t.ppf(1 - alpha / 2, df)
    power = float(
        stats.nct.sf(crit, df, ncp) + (0 if sided == "one-sided" else stats.nct.cdf(-crit, df, ncp))
    )
    if not math.isfinite(power):  # SciPy's noncentral t gives NaN far in its tails, where power is ≈ 0 or 1
        power = float(stats.norm.sf(crit - abs(ncp)))
    return power


@dataclass(frozen=True)
class RequiredSample:
    """Participants needed: ``exact`` (continuous; per arm for between designs, pairs for within),
    ``per_group`` (rounded up) and ``total`` (between: k arms of ``per_group``)."""

    exact: float
    per_group: int
    total: int


def required_sample(
    effect: float, design: str, *, alpha: float, power: float, sided: str, k: int = 2
) -> RequiredSample:
    """Smallest sample whose :func:`t_test_power` reaches ``power`` (at least 2 per group)."""
    _check_design_sided(design, sided)
    if effect <= 0:
        raise ValueError(f"effect must be > 0, got {effect}")
    arms = 1 if design == "within" else k

    def shortfall(per_group: float) -> float:
        return t_test_power(per_group * arms, effect, design, alpha=alpha, sided=sided, k=k) - power

    if shortfall(2) >= 0:
        exact = 2.0
    elif shortfall(1e7) < 0:
        raise ValueError(f"effect {effect} needs more than 10 million participants per group")
    else:
        exact = float(optimize.brentq(shortfall, 2, 1e7, xtol=1e-10, rtol=1e-14))
    per_group = max(2, math.ceil(exact - 1e-9))
    if shortfall(per_group) < 0:  # the root's last digits fell just below an integer
        per_group += 1
    return RequiredSample(exact, per_group, per_group * arms)


def minimum_effect(n: float, design: str, *, alpha: float, power: float, sided: str, k: int = 2) -> float:
    """Smallest standardized effect (d_z within, d between) whose :func:`t_test_power` with ``n``
    participants in all reaches ``power``: the sensitivity of the achieved sample."""
    _check_design_sided(design, sided)
    if n < (2 if design == "within" else 2 * k):
        raise ValueError(f"needs at least {2 if design == 'within' else 2 * k} participants, got {n}")
    return float(
        optimize.brentq(
            lambda d: t_test_power(n, d, design, alpha=alpha, sided=sided, k=k) - power,
            1e-9,
            100,
            xtol=1e-12,
        )
    )


def _check_design_sided(design: str, sided: str) -> None:
    if design not in ("within", "between"):
        raise ValueError(f"design must be 'within' or 'between', got {design!r}")
    if sided not in ("one-sided", "two-sided"):
        raise ValueError(f"sided must be 'one-sided' or 'two-sided', got {sided!r}")


# --- power (Westfall, Kenny & Judd 2014) ----------------------------------------------------------------
@dataclass(frozen=True)
class VarianceComponents:
    """SDs (scale points) of the parts of one answer to a per-case item, as the bots draw them and as lme4
    reports them with the baseline as reference (treatment coding, uncorrelated):
    answer = mean + participant + case + (participant × condition + case × condition)·[not baseline] + residual.

    Defaults: a 7-point item with the variation measured on this toolkit's own exports in issue 21 (case SD
    0.6, case × condition SD 0.4) and the bots' defaults (participant SD 1, residual SD 1); participant ×
    condition SD 0.3. Replace them with estimates from a pilot (the report's ``mixed.variance_components``)."""

    participant: float = 1.0
    participant_condition: float = 0.3
    case: float = 0.6
    case_condition: float = 0.4
    residual: float = 1.0

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value < 0:
                raise ValueError(f"variance component {name} must be ≥ 0, got {value}")

    @property
    def total_sd(self) -> float:
        """SD of a single answer: √ of the sum of every variance component — the scale of Westfall, Kenny &
        Judd's standardized effect d (so d · total_sd is the effect in points)."""
        return math.sqrt(sum(v**2 for v in self.__dict__.values()))


@dataclass(frozen=True)
class CasePower:
    """Power of the mixed model's test of one condition vs the baseline: ``ncp`` (noncentrality), ``df``
    (Satterthwaite's, from the expected mean squares), ``se`` of the estimate, ``power``."""

    participants: int
    cases: int
    effect: float
    power: float
    ncp: float
    df: float
    se: float


def case_power(
    effect: float,
    participants: int,
    cases: int,
    design: str,
    components: VarianceComponents | None = None,
    *,
    alpha: float = 0.05,
    sided: str = "two-sided",
    k: int = 2,
) -> CasePower:
    """Power of the crossed mixed model's t test of ``effect`` (scale points, condition − baseline) with
    ``participants`` in all and ``cases`` per participant (Westfall, Kenny & Judd 2014).

    Designs (theirs in brackets): ``within`` — each participant judges every case once, half of the cases in
    each condition, the halves swapped between sequences [counterbalanced]; ``between`` — each participant
    judges every case, all in their one condition [participants within condition]. With ``k`` conditions,
    the comparison of one condition with the baseline: within, cases/k per condition; between, participants/k
    per arm.

    In a balanced design the estimate is the difference of the two conditions' means, whose variance, with
    σ's the :class:`VarianceComponents`,

    - within: σ²_pc/P + σ²_cc/Q + 2k·σ²_e/(PQ);
    - between: k(2σ²_p + σ²_pc)/P + σ²_cc/Q + 2k·σ²_e/(PQ)

    (participants' and cases' intercepts cancel where each appears in both conditions). The t statistic's
    noncentrality is effect / SE; its df is Satterthwaite's for the combination MS_participant + MS_case −
    MS_residual of the design's expected mean squares (the paper's approximation, as the authors' power app
    computes it; with the difference coded ±½): MS_residual = σ²_e, MS_case = σ²_e + (P/k)·σ²_cc/4 and, within,
    MS_participant = σ²_e + (Q/k)·σ²_pc/4 with (P − 2), (Q − 2) and (P − 2)(Q − 2) df; between,
    MS_participant = σ²_e + Q·(σ²_p + σ²_pc/2) with (P − 2), (Q − 1) and (P − 2)(Q − 1) df (k = 2; with k
    conditions P/k and Q/k replace P/2 and Q/2, and P − k replaces P − 2). The participant-mean t-test ignores
    σ²_cc/Q; that term does not shrink with more participants, which is why power levels off unless the
    cases increase.
    """
    _check_design_sided(design, sided)
    if participants < 2 * k or cases < 2 * k:
        raise ValueError(f"needs at least {2 * k} participants and cases, got {participants} and {cases}")
    c = components or VarianceComponents()
    p, q = float(participants), float(cases)
    residual = 2 * k * c.residual**2 / (p * q)
    by_case = c.case_condition**2 / q
    ms_e, ms_q = c.residual**2, c.residual**2 + (p / k) * c.case_condition**2 / 4
    if design == "within":
        by_participant = c.participant_condition**2 / p
        ms_p = c.residual**2 + (q / k) * c.participant_condition**2 / 4
        df_p, df_q = p - k, q - k
    else:
        by_participant = k * (2 * c.participant**2 + c.participant_condition**2) / p
        ms_p = c.residual**2 + q * (c.participant**2 + c.participant_condition**2 / 2)
        df_p, df_q = p - k, q - 1
    variance = by_participant + by_case + residual
    df = (ms_p + ms_q - ms_e) ** 2 / (ms_p**2 / df_p + ms_q**2 / df_q + ms_e**2 / (df_p * df_q))
    se = math.sqrt(variance)
    ncp = effect / se
    return CasePower(participants, cases, effect, _t_power(ncp, df, alpha, sided), ncp, df, se)


def power_grid(
    effect: float,
    design: str,
    participants: tuple[int, ...],
    cases: tuple[int, ...],
    components: VarianceComponents | None = None,
    *,
    alpha: float = 0.05,
    sided: str = "two-sided",
    k: int = 2,
) -> list[CasePower]:
    """:func:`case_power` for every participants × cases pair (cases outer): the "how many cases?" table."""
    return [
        case_power(effect, n, q, design, components, alpha=alpha, sided=sided, k=k)
        for q in cases
        for n in participants
    ]
