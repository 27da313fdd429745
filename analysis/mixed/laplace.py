"""The ordinal and the logistic mixed model, with participants and cases crossed, fitted by Laplace.

Twins of R's ``ordinal::clmm`` and ``lme4::glmer`` (nAGQ = 1), whose formulas — :func:`ordinal_formula`,
:func:`logistic_formula` with :func:`random_terms` of the frame — the R backend runs verbatim on the same
frame (with participant, case and condition as factors, so that ``case:condition`` is their interaction).
Both report Wald z tests: that is what clmm and glmer print, and no small-sample df is established for these
likelihoods; ``df_method`` says so.

Why (1 | case:condition) in both: a case may move answers differently under each condition (one photo's
reference images help, another's mislead). Left out, that variation is attributed to the condition effect and
the type-I error grows with the number of participants (Judd, Westfall & Kenny 2012) — the reason for this
package. With the AI's correctness as a case attribute, ``condition * ai_wrong`` asks whether explanations
change agreement (or accuracy) differently when the AI is wrong: over-reliance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.mixed.families import BernoulliLogit, CumulativeLogit
from analysis.mixed.laplace_engine import SINGULAR_SD, GlmmData, LaplaceFit, fit_laplace
from analysis.mixed.result import MixedFit, MixedModelError, MixedTerm

BACKEND = "python (analysis.mixed.laplace)"
DF_METHOD = "z (asymptotic Wald, as clmm and glmer report; Laplace approximation)"
RANDOM_TERMS = ("participant", "case", "case:condition")
NESTED_STEP = (
    "(1 | case:condition) dropped: every case appears under one condition only, so it is the case term"
)


def _formula(fixed: str, random_terms: tuple[str, ...]) -> str:
    return f"y ~ {fixed} + " + " + ".join(f"(1 | {term})" for term in random_terms)


def ordinal_formula(random_terms: tuple[str, ...] = RANDOM_TERMS) -> str:
    """The ordinal model's formula (lme4/ordinal syntax; R needs case and condition as factors)."""
    return _formula("condition", random_terms)


def logistic_formula(ai_wrong: bool, random_terms: tuple[str, ...] = RANDOM_TERMS) -> str:
    """The fixed part with or without the AI-wrong interaction; random part as the ordinal model's."""
    return _formula("condition * ai_wrong" if ai_wrong else "condition", random_terms)


ORDINAL_FORMULA = ordinal_formula()


def random_terms(frame: pd.DataFrame) -> tuple[str, ...]:
    """All three terms, unless each case is shown under one condition only: then case:condition has exactly
    the case's levels, the two SDs are not separately identified, and the case term alone is fitted."""
    nested = frame.groupby("case")["condition"].nunique().max() == 1
    return RANDOM_TERMS[:2] if nested else RANDOM_TERMS


def fit_ordinal(
    frame: pd.DataFrame, *, conditions: list[str] | tuple[str, ...], confidence: float = 0.95
) -> MixedFit:
    """Cumulative logit mixed model ``ORDINAL_FORMULA``: P(Y ≤ k) = logit⁻¹(θ_k − η), so a positive
    ``condition[b]`` means higher answers under b than under the baseline ``conditions[0]``.

    The answer levels are the values observed (as R's ``factor(y)``). Raises :class:`MixedModelError` when
    the data cannot support the model (see :func:`check_ordinal_frame`), e.g. a condition's answers separated
    from the others' (its effect would be infinite)."""
    frame = check_ordinal_frame(frame, conditions, confidence)
    levels, y = np.unique(frame["y"].to_numpy(dtype=float), return_inverse=True)
    cond = _condition_codes(frame, conditions)
    design = np.eye(len(conditions))[cond][:, 1:]
    names = [f"condition[{c}]" for c in conditions[1:]]
    terms = random_terms(frame)
    fit, data = _fit(CumulativeLogit(len(levels)), frame, y, design, cond, terms)
    contrasts = _pairwise(conditions, lambda c: _indicator(names, c), "")
    formula = ordinal_formula(terms)
    return _assemble(fit, frame, conditions, names, contrasts, "cumulative_logit", formula, confidence, data)


def fit_logistic(
    frame: pd.DataFrame,
    *,
    conditions: list[str] | tuple[str, ...],
    confidence: float = 0.95,
    ai_wrong: bool = True,
) -> MixedFit:
    """Logistic mixed model ``logistic_formula(ai_wrong)`` for 0/1 answers (correct diagnosis, agreement).

    With ``ai_wrong`` the condition effect is estimated separately for cases where the AI was right
    (``ai_wrong=0``) and wrong (``=1``): contrasts ``"b - a | ai_wrong=0"`` and ``"b - a | ai_wrong=1"``; the
    interaction term ``condition[b]:ai_wrong`` tests whether they differ. Every condition × AI-correctness
    cell needs both outcomes, else its effect is infinite (separation) and the error names the cell."""
    frame = check_logistic_frame(frame, conditions, confidence, ai_wrong)
    y = frame["y"].to_numpy(dtype=float)
    wrong = frame["ai_wrong"].to_numpy(dtype=float) if ai_wrong else np.zeros(len(frame))
    cond = _condition_codes(frame, conditions)
    one_hot = np.eye(len(conditions))[cond][:, 1:]
    names = [f"condition[{c}]" for c in conditions[1:]]
    if ai_wrong:
        design = np.column_stack([np.ones(len(frame)), one_hot, wrong, one_hot * wrong[:, None]])
        names = ["(Intercept)", *names, "ai_wrong", *[f"{n}:ai_wrong" for n in names]]
    else:
        design = np.column_stack([np.ones(len(frame)), one_hot])
        names = ["(Intercept)", *names]
    terms = random_terms(frame)
    fit, data = _fit(BernoulliLogit(), frame, y.astype(int), design, cond, terms, wrong)
    if ai_wrong:
        contrasts = {}
        for w in (0, 1):
            contrasts |= _pairwise(
                conditions,
                lambda c, w=w: _indicator(names, c) + w * _indicator(names, c, ":ai_wrong"),
                f" | ai_wrong={w}",
            )
    else:
        contrasts = _pairwise(conditions, lambda c: _indicator(names, c), "")
    formula = logistic_formula(ai_wrong, terms)
    return _assemble(fit, frame, conditions, names, contrasts, "binomial", formula, confidence, data)


# ---- input checks ------------------------------------------------------------------------------------


def check_ordinal_frame(frame: pd.DataFrame, conditions, confidence: float) -> pd.DataFrame:
    """Everything :func:`fit_ordinal` requires of its data, for every backend: the checked frame (columns
    participant, case, condition, y; y numeric), or :class:`MixedModelError` naming the problem."""
    frame = _check_frame(frame, conditions, confidence, ("y",))
    levels = np.unique(frame["y"])
    if len(levels) < 2:
        raise MixedModelError(f"ordinal model: every answer is {levels[0]:g}; nothing to model")
    _check_ordinal_overlap(frame, conditions)
    return frame


def check_logistic_frame(frame: pd.DataFrame, conditions, confidence: float, ai_wrong: bool) -> pd.DataFrame:
    """Everything :func:`fit_logistic` requires of its data, for every backend: y and ai_wrong 0/1, both
    outcomes in every condition (× AI correctness) cell; the checked frame, or :class:`MixedModelError`."""
    required = ("y", "ai_wrong") if ai_wrong else ("y",)
    frame = _check_frame(frame, conditions, confidence, required)
    y = frame["y"].to_numpy(dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        bad = frame.index[~np.isin(y, (0.0, 1.0))][0]
        raise MixedModelError(f"logistic model: y must be 0 or 1, row {bad} has {frame.at[bad, 'y']!r}")
    if ai_wrong:
        wrong = _check_ai_wrong(frame)
        cells = [(c, w) for c in conditions for w in (0, 1)]
    else:
        wrong = np.zeros(len(frame))
        cells = [(c, 0) for c in conditions]
    _check_separation(frame, y, wrong, cells, ai_wrong)
    return frame


def _check_frame(
    frame: pd.DataFrame, conditions, confidence: float, response: tuple[str, ...]
) -> pd.DataFrame:
    """Columns present and complete; every condition present, none unknown; ≥ 2 cases; ≥ 2 participants in
    every condition (a random participant effect needs replication within an arm)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    conditions = list(conditions)
    if len(conditions) < 2 or len(set(conditions)) != len(conditions):
        raise MixedModelError(f"conditions must name at least two distinct conditions, got {conditions!r}")
    columns = ("participant", "case", "condition", *response)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MixedModelError(f"the frame lacks column(s) {missing}")
    frame = frame.loc[:, list(columns)].reset_index(drop=True)
    for column in columns:
        if frame[column].isna().any():
            raise MixedModelError(f"column {column!r} is empty in row {int(frame[column].isna().idxmax())}")
    for column in ("y", "ai_wrong"):
        if column in frame.columns:
            numeric = pd.to_numeric(frame[column], errors="coerce")
            if numeric.isna().any():
                row = int(numeric.isna().idxmax())
                raise MixedModelError(
                    f"column {column!r} is not a number in row {row}: {frame.at[row, column]!r}"
                )
            frame[column] = numeric
    frame["condition"] = frame["condition"].astype(str)
    unknown = sorted(set(frame["condition"]) - set(conditions))
    if unknown:
        raise MixedModelError(f"condition(s) {unknown} are not among {conditions}")
    per_arm = frame.groupby("condition")["participant"].nunique().reindex(conditions, fill_value=0)
    if (per_arm == 0).any():
        raise MixedModelError(f"condition {per_arm.index[per_arm == 0][0]!r} has no answers")
    if (per_arm < 2).any():
        arm = per_arm.index[per_arm < 2][0]
        raise MixedModelError(f"condition {arm!r} has a single participant; a participant effect needs two")
    if frame["case"].nunique() < 2:
        raise MixedModelError(
            f"only one case ({frame['case'].iloc[0]!r}): case variance needs at least two cases"
        )
    return frame


def _check_ordinal_overlap(frame: pd.DataFrame, conditions) -> None:
    """Quasi-complete separation of a cumulative logit with a factor: the conditions split into a lower and
    an upper group whose answers meet at most at one level. Then some difference is infinite."""
    span = frame.groupby("condition")["y"].agg(["min", "max"]).reindex(conditions)
    for level in np.unique(frame["y"]):
        lower, upper = span["max"] <= level, span["min"] >= level
        if (lower | upper).all() and (lower & ~upper).any() and (upper & ~lower).any():
            low, high = list(span.index[lower & ~upper]), list(span.index[upper & ~lower])
            raise MixedModelError(
                f"ordinal model: answers under {low} never exceed {level:g} and under {high} never fall "
                f"below it (separation): the condition effect is infinite"
            )


def _check_ai_wrong(frame: pd.DataFrame) -> np.ndarray:
    wrong = frame["ai_wrong"].to_numpy(dtype=float)
    if not np.isin(wrong, (0.0, 1.0)).all():
        raise MixedModelError("ai_wrong must be 0 or 1")
    if len(np.unique(wrong)) < 2:
        raise MixedModelError(f"ai_wrong is {int(wrong[0])} for every case: the interaction cannot be fitted")
    return wrong


def _check_separation(frame: pd.DataFrame, y: np.ndarray, wrong: np.ndarray, cells, ai_wrong: bool) -> None:
    if len(np.unique(y)) < 2:
        raise MixedModelError(f"logistic model: every answer is {int(y[0])}; nothing to model")
    for condition, w in cells:
        rows = (frame["condition"].to_numpy() == condition) & (wrong == w)
        where = f"condition {condition!r}" + (f", ai_wrong={w}" if ai_wrong else "")
        if not rows.any():
            raise MixedModelError(f"logistic model: no answers in {where}")
        if len(np.unique(y[rows])) < 2:
            raise MixedModelError(
                f"logistic model: every answer in {where} is {int(y[rows][0])} (perfect separation): "
                "its effect is infinite"
            )


# ---- fitting and the result ------------------------------------------------------------------------------


def _condition_codes(frame: pd.DataFrame, conditions) -> np.ndarray:
    return pd.Categorical(frame["condition"], categories=list(conditions)).codes.astype(int)


def _fit(
    family,
    frame: pd.DataFrame,
    y: np.ndarray,
    design: np.ndarray,
    cond: np.ndarray,
    random_terms: tuple[str, ...],
    wrong: np.ndarray | None = None,
) -> tuple[LaplaceFit, GlmmData]:
    """Identical rows (same answer, participant, case, condition) enter once with a count as weight: a
    participant's several items on one case cost one row per distinct answer."""
    participant = pd.factorize(frame["participant"])[0]
    case = pd.factorize(frame["case"])[0]
    keys = np.column_stack([y, participant, case, cond] + ([] if wrong is None else [wrong.astype(int)]))
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    codes = {
        "participant": participant[first],
        "case": case[first],
        "case:condition": pd.factorize(case[first] * (cond.max() + 1) + cond[first])[0],
    }
    data = GlmmData(
        y=y[first],
        weights=counts.astype(float),
        design=design[first],
        factors=tuple((term, codes[term]) for term in random_terms),
    )
    return fit_laplace(family, data), data


def _indicator(names: list[str], condition: str, suffix: str = "") -> np.ndarray:
    """Coefficient vector picking ``condition[c]{suffix}`` (zero for the baseline, which has no term)."""
    vec = np.zeros(len(names))
    name = f"condition[{condition}]{suffix}"
    if name in names:
        vec[names.index(name)] = 1.0
    return vec


def _pairwise(conditions, vector, label: str) -> dict[str, np.ndarray]:
    """``"b - a"`` for every pair, b after a in the conditions' order (baseline first)."""
    return {f"{b} - {a}{label}": vector(b) - vector(a) for a, b in itertools.combinations(conditions, 2)}


def _wald(name: str, vector: np.ndarray, beta: np.ndarray, cov: np.ndarray, zcrit: float) -> MixedTerm:
    estimate = float(vector @ beta)
    se = math.sqrt(float(vector @ cov @ vector))
    z = estimate / se
    return MixedTerm(
        name=name,
        estimate=estimate,
        se=se,
        df=None,
        statistic=z,
        p=float(2 * stats.norm.sf(abs(z))),
        ci=(estimate - zcrit * se, estimate + zcrit * se),
    )


def _assemble(
    fit: LaplaceFit,
    frame: pd.DataFrame,
    conditions,
    names: list[str],
    contrasts: dict[str, np.ndarray],
    family: str,
    formula: str,
    confidence: float,
    data: GlmmData,
) -> MixedFit:
    zcrit = float(stats.norm.ppf(0.5 + confidence / 2))
    eye = np.eye(len(names))
    terms = {
        n: _wald(n, eye[i], fit.beta, fit.cov_beta, zcrit) for i, n in enumerate(names) if n != "(Intercept)"
    }
    omnibus = None
    if len(conditions) > 2:
        idx = [i for i, n in enumerate(names) if n.startswith("condition[")]
        beta, cov = fit.beta[idx], fit.cov_beta[np.ix_(idx, idx)]
        chi2 = float(beta @ np.linalg.solve(cov, beta))
        with_interaction = any(n.endswith(":ai_wrong") for n in names)
        omnibus = {
            "test": "Wald chi2 of all condition terms"
            + (" (main effects and × ai_wrong)" if with_interaction else ""),
            "statistic": chi2,
            "df1": float(len(idx)),
            "df2": None,
            "p": float(stats.chi2.sf(chi2, len(idx))),
        }
    singular = [name for name, sd in fit.sds.items() if sd < SINGULAR_SD]
    notes = [f"Laplace approximation; {len(data.y)} distinct rows of {len(frame)} answers"]
    if singular:
        notes.append(f"singular fit: SD of {', '.join(singular)} estimated as 0")
    if not fit.converged:
        notes.append(
            f"not converged: Newton decrement {fit.decrement:.2g}, max |gradient| {fit.gradient_max:.2g}"
        )
    return MixedFit(
        family=family,
        formula=formula,
        backend=BACKEND,
        df_method=DF_METHOD,
        terms=terms,
        contrasts={n: _wald(n, v, fit.beta, fit.cov_beta, zcrit) for n, v in contrasts.items()},
        variance_components=dict(fit.sds),
        singular=bool(singular),
        converged=fit.converged,
        n_obs=len(frame),
        n_participants=int(frame["participant"].nunique()),
        n_cases=int(frame["case"].nunique()),
        confidence=confidence,
        omnibus=omnibus,
        simplified=() if "case:condition" in fit.sds else (NESTED_STEP,),
        notes=tuple(notes),
        log_likelihood=fit.loglik,
    )
