"""The linear mixed model for per-case items: participants and cases crossed, both random.

``y ~ condition [+ position] + (1 + condition | participant) + (1 + condition | case)`` (within designs;
between designs: ``(1 | participant)``), fitted by REML with Satterthwaite's df — lmerTest's model, in
Python (:mod:`analysis.mixed.reml`) or in R (:mod:`analysis.mixed.r_backend`). When the maximal model is
singular or does not converge it is simplified by :data:`~analysis.mixed.structure.SIMPLIFICATION_RULE`, one
implementation for both backends, and the model actually fitted is named in the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy

from analysis import __version__
from analysis.mixed import r_backend
from analysis.mixed.checks import check_frame
from analysis.mixed.inference import (
    LinearStep,
    fixed_names,
    omnibus_rows,
    pairwise_rows,
    t_tests,
)
from analysis.mixed.reml import RandomTerm, RemlFit, RemlProblem, fit_reml, satterthwaite_df, satterthwaite_f
from analysis.mixed.result import MixedFit, MixedModelError
from analysis.mixed.structure import (
    GROUPS,
    INTERCEPT,
    SIMPLIFICATION_RULE,
    RandomStructure,
    component_name,
    formula,
    maximal,
    simplify,
)

__all__ = ["BACKENDS", "SIMPLIFICATION_RULE", "fit_linear"]

BACKENDS = ("python", "r", "auto")
PYTHON_BACKEND = f"python (analysis.mixed {__version__}; numpy {np.__version__}, scipy {scipy.__version__})"


def fit_linear(
    frame: pd.DataFrame,
    *,
    design: str,
    conditions: Sequence[str],
    confidence: float = 0.95,
    backend: str = "python",
    position: bool = False,
) -> MixedFit:
    """Fit the crossed linear mixed model of ``y`` on ``condition`` (treatment coding, ``conditions[0]`` the
    baseline), simplifying by the preregistered rule when the maximal model is singular or does not converge.

    Parameters
    ----------
    frame : one row per observation: ``y``, ``participant``, ``case``, ``condition`` (and ``position``, the
        1-based trial position, when ``position`` is true). Several items per case may be several rows.
    design : ``"within"`` (each participant sees several conditions: random condition slopes for
        participants) or ``"between"`` (participant intercepts only).
    conditions : the conditions in order, the baseline first (k ≥ 2).
    confidence : level of the CIs.
    backend : ``"python"`` (default: the same numbers on every machine), ``"r"`` (lmerTest through Rscript;
        :class:`MixedModelError` when R or a package is missing) or ``"auto"`` (R when available, else Python).
    position : add the trial position as a fixed covariate (learning over cases), reported as a term.

    Returns
    -------
    MixedFit with ``terms`` (each condition dummy, ``position``), ``contrasts`` (every pair ``"b - a"``), an
    F ``omnibus`` of all condition terms when k > 2, Satterthwaite df (or the conservative fallback of
    :func:`~analysis.mixed.inference.conservative_df`, named in ``df_method``), variance components as SDs.
    """
    # 1. check inputs
    if backend not in BACKENDS:
        raise MixedModelError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not 0 < confidence < 1:
        raise MixedModelError(f"confidence must lie in (0, 1), got {confidence}")
    conditions = [str(c) for c in conditions]
    data = check_frame(frame, design=design, conditions=conditions, position=position)
    use_r = backend == "r" or (backend == "auto" and r_backend.available())
    # 2. fit the maximal model, then simplify while it is singular or has not converged
    structure, steps = maximal(design, conditions), []
    while True:
        step = (r_backend.gaussian_step if use_r else _python_step)(
            data, structure, conditions=conditions, confidence=confidence, position=position
        )
        if step.converged and not step.singular:
            break
        following = simplify(structure, step.slope_sds, conditions)
        if following is None:
            break
        structure = following[0]
        steps.append(
            f"{following[1]} ({'singular' if step.converged else 'did not converge'}: {step.formula})"
        )
    # 3. the model kept, as the result every fitter returns
    if not step.terms:
        raise MixedModelError(f"the model could not be fitted: {'; '.join(step.notes)}")
    notes = step.notes
    if step.singular or not step.converged:
        problem = "is singular (a variance at zero)" if step.converged else "did not converge"
        notes += (f"the random-intercept floor of the simplification rule {problem}; reported as fitted",)
    return MixedFit(
        family="gaussian",
        formula=step.formula,
        backend=step.backend,
        df_method=step.df_method,
        terms=step.terms,
        contrasts=step.contrasts,
        variance_components=step.variance_components,
        correlations=step.correlations,
        singular=step.singular,
        converged=step.converged,
        n_obs=len(data),
        n_participants=data["participant"].nunique(),
        n_cases=data["case"].nunique(),
        confidence=confidence,
        omnibus=step.omnibus,
        simplified=tuple(steps),
        notes=notes,
        log_likelihood=step.log_likelihood,
    )


def fixed_design(
    data: pd.DataFrame, conditions: Sequence[str], *, position: bool
) -> tuple[np.ndarray, list[str]]:
    """X with treatment coding, columns named by :func:`~analysis.mixed.inference.fixed_names`."""
    columns = [np.ones(len(data))] + [(data["condition"] == c).to_numpy(float) for c in conditions[1:]]
    if position:
        columns.append(data["position"].to_numpy(float))
    return np.column_stack(columns), fixed_names(conditions, position=position)


def _random_term(data: pd.DataFrame, group: str, structure: RandomStructure) -> RandomTerm:
    columns = structure.columns(group)
    codes, levels = pd.factorize(data[group], sort=True)
    z = np.column_stack(
        [np.ones(len(data)) if c == INTERCEPT else (data["condition"] == c).to_numpy(float) for c in columns]
    )
    blocks = tuple(tuple(columns.index(c) for c in block) for block in structure.blocks(group))
    return RandomTerm(group, columns, codes, len(levels), z, blocks)


def _components(fit: RemlFit, conditions: Sequence[str]) -> tuple[dict, dict, dict]:
    """(variance components as SDs, correlations, slope SDs by (group, level)) of a Python fit."""
    sds, correlations, slopes = {}, {}, {}
    for index, term in enumerate(fit.problem.terms):
        cov = fit.covariance(index)
        sd = np.sqrt(np.diag(cov))
        names = [component_name(term.group, c, conditions) for c in term.columns]
        for name, column, value in zip(names, term.columns, sd, strict=True):
            sds[name] = float(value)
            if column != INTERCEPT:
                slopes[(term.group, column)] = float(value)
        for block in term.blocks:
            for i, a in enumerate(block):
                for b in block[i + 1 :]:
                    r = cov[a, b] / (sd[a] * sd[b]) if sd[a] * sd[b] > 0 else float("nan")
                    correlations[f"{names[a]} ~ {names[b]}"] = float(r)
    sds["residual"] = fit.sigma
    return sds, correlations, {s: v / sds["residual"] for s, v in slopes.items()}


def _python_step(
    data: pd.DataFrame,
    structure: RandomStructure,
    *,
    conditions: Sequence[str],
    confidence: float,
    position: bool,
) -> LinearStep:
    """Fit one candidate structure by REML in Python, with Satterthwaite (or the fallback) df."""
    model = formula(structure, conditions, position=position)
    x, names = fixed_design(data, conditions, position=position)
    terms = sorted((_random_term(data, g, structure) for g in GROUPS), key=lambda t: -t.n_levels)
    try:
        fit = fit_reml(RemlProblem(x, data["y"].to_numpy(float), terms))
    except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
        unknown = {(g, c): 0.0 for g in GROUPS for c in structure.columns(g) if c != INTERCEPT}
        return LinearStep(model, PYTHON_BACKEND, False, False, unknown, {}, {}, {}, {}, None, "", (str(exc),))
    sds, correlations, slopes = _components(fit, conditions)
    coefficients = {name: np.eye(len(names))[i] for i, name in enumerate(names) if name != "(Intercept)"}
    pairs = pairwise_rows(names, conditions)
    rows = {
        name: (float(row @ fit.beta), float(np.sqrt(row @ fit.vcov @ row)), satterthwaite_df(fit, row))
        for name, row in {**coefficients, **pairs}.items()
    }
    omnibus = satterthwaite_f(fit, omnibus_rows(names, conditions)) if len(conditions) > 2 else None
    tests, omnibus_test, df_method, notes = t_tests(
        rows,
        omnibus,
        n_participants=data["participant"].nunique(),
        n_cases=data["case"].nunique(),
        n_conditions=len(conditions),
        confidence=confidence,
    )
    return LinearStep(
        formula=model,
        backend=PYTHON_BACKEND,
        singular=fit.singular,
        converged=fit.converged,
        slope_sds=slopes,
        variance_components=sds,
        correlations=correlations,
        terms={name: tests[name] for name in coefficients},
        contrasts={name: tests[name] for name in pairs},
        omnibus=omnibus_test,
        df_method=df_method,
        notes=notes,
        log_likelihood=-fit.deviance / 2,
    )
