"""The R twin of every mixed model: lmerTest for the linear model, ordinal's clmm, lme4's glmer.

Used when a researcher asks for R (``backend="r"``) and by the tests that hold the Python fitters to R.
Each fit writes the frame to a temporary CSV and a JSON spec (family, formula, contrast weights), runs
``Rscript fit_mixed.R`` (shipped beside this module) and reads JSON back. R makes no modelling decision:
the formula, the contrasts and the simplification rule of the linear model come from Python, so both backends
fit the same sequence of models.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.mixed import laplace
from analysis.mixed.inference import (
    LinearStep,
    coefficient_name,
    fixed_names,
    omnibus_rows,
    pairwise_rows,
    t_tests,
    wald_term,
)
from analysis.mixed.result import MixedFit, MixedModelError, MixedTerm
from analysis.mixed.structure import INTERCEPT, RandomStructure, component_name, formula

SCRIPT = Path(__file__).with_name("fit_mixed.R")
PACKAGES = {  # R package → what installs it (Debian / CRAN)
    "jsonlite": "r-cran-jsonlite",
    "lme4": "r-cran-lme4",
    "lmerTest": "r-cran-lmertest",
    "ordinal": "r-cran-ordinal",
}
OMNIBUS_TEST = "Wald chi2 of all condition terms"
TIMEOUT_S = 3600  # a 160,000-row lmer with slopes takes minutes, not hours


def available() -> bool:
    """Whether ``Rscript`` is on the PATH (packages are checked when a fit runs)."""
    return shutil.which("Rscript") is not None


def run_r(spec: dict, data: pd.DataFrame) -> dict:
    """Run fit_mixed.R on ``data`` with ``spec`` (its ``data`` path is filled in); the parsed JSON result.

    :class:`MixedModelError` names the missing program or package and how to install it, or quotes R's
    error."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise MixedModelError(
            "backend 'r' needs Rscript on the PATH: install R (Debian: apt-get install r-base-core "
            + " ".join(PACKAGES.values())
            + ") or use backend='python'"
        )
    with tempfile.TemporaryDirectory(prefix="skingen-mixed-") as tmp:
        folder = Path(tmp)
        data.to_csv(folder / "data.csv", index=False)
        (folder / "spec.json").write_text(json.dumps({**spec, "data": str(folder / "data.csv")}))
        done = subprocess.run(
            [rscript, "--vanilla", str(SCRIPT), str(folder / "spec.json"), str(folder / "out.json")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        if done.returncode != 0:
            missing = re.search(r"there is no package called .(\w+).", done.stderr)
            if missing:
                package = missing.group(1)
                raise MixedModelError(
                    f"backend 'r' needs the R package {package}: apt-get install "
                    f"{PACKAGES.get(package, 'r-cran-' + package.lower())} (or install.packages('{package}'))"
                )
            raise MixedModelError(f"R could not fit {spec['formula']}: {done.stderr.strip()[-1500:]}")
        return json.loads((folder / "out.json").read_text())


def _backend(result: dict) -> str:
    versions = result["versions"]
    packages = ", ".join(f"{name} {version}" for name, version in versions.items() if name != "R")
    return f"R {versions['R']}: {packages}"


def _r_name(name: str) -> str:
    """R's name of a fixed effect: ``condition[b]`` → ``conditionb``, ``condition[b]:ai_wrong`` →
    ``conditionb:ai_wrong``."""
    return re.sub(r"condition\[(.*?)\]", r"condition\1", name)


def _check_names(result: dict, names: Sequence[str]) -> None:
    expected = [_r_name(n) for n in names]
    if result["coefficients"]["names"] != expected:
        raise MixedModelError(
            f"R's fixed effects {result['coefficients']['names']} are not the expected {expected}"
        )


def _column(var: str, conditions: Sequence[str]) -> str:
    """A random-effect column of the structure from R's name for it."""
    if var == "(Intercept)":
        return INTERCEPT
    for level in conditions[1:]:
        if var in (f"condition{level}", f'dummy(condition, "{level}")'):
            return level
    raise MixedModelError(f"unexpected random effect {var!r} in R's output")


def _components(result: dict, conditions: Sequence[str]) -> tuple[dict, dict, dict]:
    """(SDs, correlations, slope SDs) from R's ``as.data.frame(VarCorr(m))`` rows."""
    sds, correlations, slopes = {}, {}, {}
    for row in result["varcorr"]:
        group = re.sub(r"\.\d+$", "", row["grp"])  # lme4 names split terms case, case.1, …
        if group == "Residual":
            sds["residual"] = row["sdcor"]
            continue
        first = _column(row["var1"], conditions)
        name = component_name(group, first, conditions)
        if row["var2"] is None:
            sds[name] = row["sdcor"]
            if first != INTERCEPT:
                slopes[(group, first)] = row["sdcor"]
        else:
            other = component_name(group, _column(row["var2"], conditions), conditions)
            correlations[f"{name} ~ {other}"] = row["sdcor"]
    return sds, correlations, {s: v / sds["residual"] for s, v in slopes.items()}


def gaussian_step(
    data: pd.DataFrame,
    structure: RandomStructure,
    *,
    conditions: Sequence[str],
    confidence: float,
    position: bool,
) -> LinearStep:
    """One candidate of the linear model fitted by ``lmerTest::lmer`` (REML, Satterthwaite via ``contest``)."""
    names = fixed_names(conditions, position=position)
    pairs = pairwise_rows(names, conditions)
    model = formula(structure, conditions, position=position)
    spec = {
        "family": "gaussian",
        "formula": model,
        "levels": list(conditions),
        "contrasts": {name: row.tolist() for name, row in pairs.items()},
        "omnibus": omnibus_rows(names, conditions).tolist() if len(conditions) > 2 else None,
    }
    result = run_r(spec, data)
    _check_names(result, names)
    coef = result["coefficients"]
    rows = {
        name: (coef["estimate"][i], coef["se"][i], coef["df"][i])
        for i, name in enumerate(names)
        if name != "(Intercept)"
    }
    rows |= {name: (c["estimate"], c["se"], c["df"]) for name, c in result["contrasts"].items()}
    omnibus = result.get("omnibus")
    tests, omnibus_test, df_method, notes = t_tests(
        rows,
        (omnibus["statistic"], omnibus["df1"], omnibus["df2"]) if omnibus else None,
        n_participants=data["participant"].nunique(),
        n_cases=data["case"].nunique(),
        n_conditions=len(conditions),
        confidence=confidence,
    )
    sds, correlations, slopes = _components(result, conditions)
    return LinearStep(
        formula=model,
        backend=_backend(result),
        singular=bool(result["singular"]),
        converged=bool(result["converged"]),
        slope_sds=slopes,
        variance_components=sds,
        correlations=correlations,
        terms={name: tests[name] for name in names if name != "(Intercept)"},
        contrasts={name: tests[name] for name in pairs},
        omnibus=omnibus_test,
        df_method=df_method,
        notes=notes + tuple(f"R: {m}" for m in result["messages"]),
        log_likelihood=result["loglik"],
    )


def _z_fit(
    result: dict,
    frame: pd.DataFrame,
    *,
    family: str,
    model: str,
    names: list[str],
    conditions,
    confidence: float,
    random_terms: tuple[str, ...],
) -> MixedFit:
    """Wald z tests, contrasts and the χ² omnibus of an R Laplace fit, shaped as the Python twin's
    (:mod:`analysis.mixed.laplace`): same term and contrast keys, same omnibus terms."""
    _check_names(result, names)
    beta, vcov = np.array(result["coefficients"]["estimate"]), np.array(result["vcov"])

    def z(name: str, row: np.ndarray) -> MixedTerm:
        return wald_term(name, float(row @ beta), float(np.sqrt(row @ vcov @ row)), None, confidence)

    unit = np.eye(len(names))
    if any(n.endswith(":ai_wrong") for n in names):
        contrasts = {}
        for wrong in (0, 1):  # the condition difference when the AI is wrong adds the interactions
            for name, row in pairwise_rows(names, conditions).items():
                shifted = row.copy()
                for i, n in enumerate(names):
                    if n.endswith(":ai_wrong"):
                        shifted[i] = wrong * row[names.index(n.removesuffix(":ai_wrong"))]
                contrasts[f"{name} | ai_wrong={wrong}"] = shifted
    else:
        contrasts = pairwise_rows(names, conditions)
    record = None
    if len(conditions) > 2:
        rows = unit[[i for i, n in enumerate(names) if n.startswith("condition[")]]
        chi2 = float(rows @ beta @ np.linalg.solve(rows @ vcov @ rows.T, rows @ beta))
        record = {
            "test": OMNIBUS_TEST
            + (" (main effects and × ai_wrong)" if len(rows) > len(conditions) - 1 else ""),
            "statistic": chi2,
            "df1": float(len(rows)),
            "df2": None,
            "p": float(stats.chi2.sf(chi2, len(rows))),
        }
    components = {row["grp"]: row["sdcor"] for row in result["varcorr"]}
    return MixedFit(
        family=family,
        formula=model,
        backend=_backend(result),
        df_method="z (asymptotic Wald, as clmm and glmer report; Laplace approximation)",
        terms={name: z(name, unit[i]) for i, name in enumerate(names)},
        contrasts={name: z(name, row) for name, row in contrasts.items()},
        variance_components={name: components[name] for name in random_terms},
        singular=bool(result["singular"]),
        converged=bool(result["converged"]),
        n_obs=len(frame),
        n_participants=frame["participant"].nunique(),
        n_cases=frame["case"].nunique(),
        confidence=confidence,
        omnibus=record,
        simplified=() if "case:condition" in random_terms else (laplace.NESTED_STEP,),
        notes=tuple(f"R: {m}" for m in result["messages"]),
        log_likelihood=result["loglik"],
    )


# Copied from the checks at the top of analysis.mixed.laplace.fit_ordinal / fit_logistic, so both backends
# reject the same data with the same message (tests/test_mixed_r.py::test_twins_reject_the_same_frames).
def _ordinal_frame(frame: pd.DataFrame, conditions: list[str], confidence: float) -> pd.DataFrame:
    checked = laplace._check_frame(frame, conditions, confidence, ("y",))
    if checked["y"].nunique() < 2:
        raise MixedModelError(f"ordinal model: every answer is {checked['y'].iloc[0]:g}; nothing to model")
    laplace._check_ordinal_overlap(checked, conditions)
    return checked


def _logistic_frame(
    frame: pd.DataFrame, conditions: list[str], confidence: float, *, ai_wrong: bool
) -> pd.DataFrame:
    checked = laplace._check_frame(frame, conditions, confidence, ("y", "ai_wrong") if ai_wrong else ("y",))
    y = checked["y"].to_numpy(dtype=float)
    if not np.isin(y, (0.0, 1.0)).all():
        bad = checked.index[~np.isin(y, (0.0, 1.0))][0]
        raise MixedModelError(f"logistic model: y must be 0 or 1, row {bad} has {checked.at[bad, 'y']!r}")
    wrong = laplace._check_ai_wrong(checked) if ai_wrong else np.zeros(len(checked))
    cells = [(c, w) for c in conditions for w in ((0, 1) if ai_wrong else (0,))]
    laplace._check_separation(checked, y, wrong, cells, ai_wrong)
    return checked


def fit_ordinal_r(frame: pd.DataFrame, *, conditions: Sequence[str], confidence: float = 0.95) -> MixedFit:
    """The R twin of :func:`analysis.mixed.laplace.fit_ordinal`: ``ordinal::clmm`` with its formula
    (:func:`~analysis.mixed.laplace.ordinal_formula` of the frame's random terms), logit link, Laplace; the
    same input checks."""
    conditions = [str(c) for c in conditions]
    frame = _ordinal_frame(frame, conditions, confidence)
    terms = laplace.random_terms(frame)
    model = laplace.ordinal_formula(terms)
    result = run_r({"family": "cumulative_logit", "formula": model, "levels": conditions}, frame)
    names = [coefficient_name(c) for c in conditions[1:]]
    return _z_fit(
        result,
        frame,
        family="cumulative_logit",
        model=model,
        names=names,
        conditions=conditions,
        confidence=confidence,
        random_terms=terms,
    )


def fit_logistic_r(
    frame: pd.DataFrame, *, conditions: Sequence[str], confidence: float = 0.95, ai_wrong: bool = True
) -> MixedFit:
    """The R twin of :func:`analysis.mixed.laplace.fit_logistic`: ``lme4::glmer(…, binomial)`` with
    :func:`~analysis.mixed.laplace.logistic_formula`; contrasts ``"b - a | ai_wrong=0/1"`` with ``ai_wrong``."""
    conditions = [str(c) for c in conditions]
    frame = _logistic_frame(frame, conditions, confidence, ai_wrong=ai_wrong)
    terms = laplace.random_terms(frame)
    model = laplace.logistic_formula(ai_wrong, terms)
    result = run_r({"family": "binomial", "formula": model, "levels": conditions}, frame)
    mains = [coefficient_name(c) for c in conditions[1:]]
    names = [*mains, "ai_wrong", *(f"{m}:ai_wrong" for m in mains)] if ai_wrong else mains
    return _z_fit(
        result,
        frame,
        family="binomial",
        model=model,
        names=names,
        conditions=conditions,
        confidence=confidence,
        random_terms=terms,
    )
