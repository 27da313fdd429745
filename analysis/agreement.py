"""Expert ratings: proportions with Wilson CIs and inter-rater agreement with bootstrap CIs over images.

Agreement coefficients work on a units × categories count matrix (``counts[i, k]`` = raters who put image i
in category k), which handles raters missing on some images and makes the bootstrap over images cheap.
"""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from analysis.bootstrap import percentile_interval
from analysis.load import AnalysisInputError

COEFFICIENTS = (
    "percent_agreement",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha_nominal",
    "krippendorff_alpha_ordinal",
)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> list[float]:
    """Wilson score interval for k successes in n trials (Wilson 1927; Newcombe 1998 method 3)."""
    if n == 0:
        return [math.nan, math.nan]
    lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    return [float(lo), float(hi)]


def category_counts(
    ratings: pd.DataFrame, categories: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Count matrix (images × categories) of one item's ratings, and the sorted categories used."""
    if categories is None:
        categories = np.sort(ratings["value"].unique())
    table = pd.crosstab(ratings["image_id"], ratings["value"]).reindex(columns=categories, fill_value=0)
    return table.to_numpy(dtype=float), np.asarray(categories, dtype=float)


def percent_agreement(counts: np.ndarray) -> float:
    """Mean proportion of agreeing rater pairs per image, over images with at least two ratings."""
    r = counts.sum(axis=1)
    ok = r >= 2
    if not ok.any():
        return math.nan
    pairs = (counts[ok] * (counts[ok] - 1)).sum(axis=1) / (r[ok] * (r[ok] - 1))
    return float(pairs.mean())


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' (1971) κ over the images rated by the full panel (κ needs equal raters per image)."""
    r = counts.sum(axis=1)
    complete = counts[r == r.max()] if len(r) else counts
    if len(complete) < 2 or complete.sum(axis=0).astype(bool).sum() < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(_sm_fleiss_kappa(complete, method="fleiss"))


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's (2008) AC1 for several raters with missing ratings, as irrCAC's ``gwet.ac1.raw``.

    p_a: mean pairwise agreement over images with ≥ 2 ratings; p_e = Σ_k π_k(1 − π_k)/(q − 1) with π_k the
    mean over images of the share of its ratings in category k, q the number of categories.
    """
    q = counts.shape[1]
    r = counts.sum(axis=1)
    rated = r >= 1
    if q < 2 or (r >= 2).sum() == 0:
        return math.nan
    pa = percent_agreement(counts)
    pi = (counts[rated] / r[rated, None]).mean(axis=0)
    pe = (pi * (1 - pi)).sum() / (q - 1)
    return float((pa - pe) / (1 - pe)) if pe < 1 else math.nan


def krippendorff_alpha(counts: np.ndarray, categories: np.ndarray, level: str) -> float:
    """Krippendorff's α (``krippendorff`` package) at level ``nominal``/``ordinal``/``interval``."""
    usable = counts[counts.sum(axis=1) >= 2]
    if len(usable) == 0 or (usable.sum(axis=0) > 0).sum() < 2:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(
            krippendorff.alpha(value_counts=usable, value_domain=categories, level_of_measurement=level)
        )


def agreement_coefficients(counts: np.ndarray, categories: np.ndarray) -> dict[str, float]:
    """All of :data:`COEFFICIENTS` for one count matrix."""
    return {
        "percent_agreement": percent_agreement(counts),
        "fleiss_kappa": fleiss_kappa(counts),
        "gwet_ac1": gwet_ac1(counts),
        "krippendorff_alpha_nominal": krippendorff_alpha(counts, categories, "nominal"),
        "krippendorff_alpha_ordinal": krippendorff_alpha(counts, categories, "ordinal"),
    }


def bootstrap_coefficients(
    counts: np.ndarray,
    categories: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile bootstrap CIs of every coefficient, resampling images (units) with replacement
    (:func:`analysis.bootstrap.percentile_interval`)."""
    draws = np.full((n_boot, len(COEFFICIENTS)), np.nan)
    for b in range(n_boot):
        sample = counts[rng.integers(0, len(counts), len(counts))]
        draws[b] = list(agreement_coefficients(sample, categories).values())
    return {name: percentile_interval(draws[:, j], n_boot, confidence) for j, name in enumerate(COEFFICIENTS)}


def icc_table(ratings: pd.DataFrame) -> pd.DataFrame:
    """The six ICCs of Shrout & Fleiss (1979) / McGraw & Wong (1996) via pingouin (images with all raters).

    Index: pingouin 0.7 type labels ``ICC(1,1), ICC(A,1), ICC(C,1), ICC(1,k), ICC(A,k), ICC(C,k)``;
    columns ``ICC, F, df1, df2, pval`` (pingouin's ``CI95`` is fixed at 95 %: see :func:`icc_intervals`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pg.intraclass_corr(
            data=ratings, targets="image_id", raters="rater_id", ratings="value", nan_policy="omit"
        )
    return table.set_index("Type").drop(columns="CI95")


def icc_intervals(ratings: pd.DataFrame, confidence: float = 0.95) -> dict[str, list[float]]:
    """F-distribution CIs of the six ICCs at ``confidence``, keyed like :func:`icc_table`.

    pingouin's ``intraclass_corr`` only gives 95 % intervals, so the same formulas (Shrout & Fleiss 1979;
    McGraw & Wong 1996; ICC(A,·) with Satterthwaite's df) are written out here at any level, from the
    two-way ANOVA of the images rated by every rater. At 0.95 they equal pingouin's ``CI95`` (tested).
    """
    wide = ratings.pivot_table(index="image_id", columns="rater_id", values="value", aggfunc="first").dropna()
    x = wide.to_numpy(dtype=float)
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    df_rows, df_err = n - 1, (n - 1) * (k - 1)
    msb, msj, mse = ss_rows / df_rows, ss_cols / (k - 1), ss_err / df_err
    msw = (ss_cols + ss_err) / (n * (k - 1))
    q = 1 - (1 - confidence) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f1, f3 = msb / msw, msb / mse
        f1l, f1u = f1 / stats.f.ppf(q, df_rows, n * (k - 1)), f1 * stats.f.ppf(q, n * (k - 1), df_rows)
        f3l, f3u = f3 / stats.f.ppf(q, df_rows, df_err), f3 * stats.f.ppf(q, df_err, df_rows)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        fj = msj / mse
        vn = df_err * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df_rows * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        f2u, f2l = stats.f.ppf(q, df_rows, v), stats.f.ppf(q, v, df_rows)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)
    bounds = {
        "ICC(1,1)": ((f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        "ICC(A,1)": (l2, u2),
        "ICC(C,1)": ((f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        "ICC(1,k)": (1 - 1 / f1l, 1 - 1 / f1u),
        "ICC(A,k)": (l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        "ICC(C,k)": (1 - 1 / f3l, 1 - 1 / f3u),
    }
    return {kind: [float(lo), float(hi)] for kind, (lo, hi) in bounds.items()}


def positive_mask(
    values: pd.Series, threshold: float | None, scale_max: float | None = None
) -> tuple[pd.Series, str, str]:
    """Which ratings count as positive: 1 for binary items, ≥ threshold otherwise.

    The default threshold is the top two points of the scale (``scale_max`` − 1, else the highest rating
    given). Returns ``(mask, kind, rule)`` with kind ``binary``/``ordinal`` and a readable rule.
    """
    if set(values.unique()) <= {0.0, 1.0}:
        return values == 1, "binary", "value = 1"
    top = values.max() if scale_max is None or math.isnan(scale_max) else scale_max
    cut = top - 1 if threshold is None else threshold
    return values >= cut, "ordinal", f"value ≥ {cut:g}"


def proportion_record(mask: pd.Series, confidence: float = 0.95) -> dict:
    """``{k, n, proportion, ci}`` of a boolean series, with the Wilson interval."""
    k, n = int(mask.sum()), len(mask)
    return {"k": k, "n": n, "proportion": k / n if n else math.nan, "ci": wilson_interval(k, n, confidence)}


def item_agreement(
    ratings: pd.DataFrame,
    *,
    threshold: float | None = None,
    n_boot: int = 1000,
    rng: np.random.Generator | None = None,
    confidence: float = 0.95,
) -> dict:
    """Everything reported for one rated item: proportions positive, agreement coefficients, CIs, ICCs.

    ``ratings`` holds one item's rows (``rater_id, image_id, value`` and optional ``skin_condition``,
    ``image_kind``; each gives ``proportion_positive_by_<column>``). Coefficient
    keys are those of :data:`COEFFICIENTS` (scalars), with their bootstrap CIs under ``ci``; ICCs (numeric,
    non-binary items only) under ``icc.<type>`` with CIs under ``icc_ci.<type>``.
    """
    if ratings.empty:
        raise AnalysisInputError("ratings: an item has no ratings")
    rng = rng or np.random.default_rng(0)
    scale_max = float(ratings["scale_max"].max()) if "scale_max" in ratings.columns else None
    positive, kind, rule = positive_mask(ratings["value"], threshold, scale_max)
    counts, categories = category_counts(ratings)
    record = {
        "type": kind,
        "positive_rule": rule,
        "n_images": int(ratings["image_id"].nunique()),
        "n_raters": int(ratings["rater_id"].nunique()),
        "n_ratings": len(ratings),
        "categories": categories.tolist(),
        "prevalence": float(positive.mean()),
    }
    overall = proportion_record(positive, confidence)
    record["proportion_positive"] = overall["proportion"]
    record["proportion_positive_ci"] = overall["ci"]
    if "skin_condition" in ratings.columns and (ratings["skin_condition"] != "").any():
        record["proportion_positive_by_skin_condition"] = {
            str(cond): proportion_record(positive[ratings["skin_condition"] == cond], confidence)
            for cond in sorted(ratings["skin_condition"].unique())
            if cond != ""
        }
    if "image_kind" in ratings.columns and (ratings["image_kind"] != "").any():
        # generated vs retrieved real references vs case photos, all rated blind in one pool
        record["proportion_positive_by_image_kind"] = {
            str(kind): proportion_record(positive[ratings["image_kind"] == kind], confidence)
            for kind in sorted(ratings["image_kind"].unique())
            if kind != ""
        }
    record.update(agreement_coefficients(counts, categories))
    record["fleiss_kappa_n_images"] = int((counts.sum(axis=1) == counts.sum(axis=1).max()).sum())
    record["ci"] = bootstrap_coefficients(counts, categories, n_boot, rng, confidence) if n_boot else {}
    record["icc"], record["icc_ci"] = None, None
    if kind == "ordinal" and record["n_raters"] >= 2:
        try:
            table = icc_table(ratings)
        except (AssertionError, ValueError):  # too few complete images for an ANOVA
            table = None
        if table is not None:
            record["icc"] = {str(t): float(row["ICC"]) for t, row in table.iterrows()}
            record["icc_ci"] = icc_intervals(ratings, confidence)
    return record
