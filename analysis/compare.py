"""Two-sample comparisons of construct scores with effect sizes and CIs, and the ordinal and period models.

Every difference is first sample − second (``compared`` − ``baseline``: the later condition minus the earlier
one in the protocol's order, baseline first). Each test returns a flat record (``dict``) whose keys are listed
in its docstring; :mod:`analysis.multiarm` pairs them and :mod:`analysis.constructs` nests them into the
``constructs.<name>`` block of ``results.json``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analysis.load import AnalysisInputError


def _ncp_interval(t: float, df: float, confidence: float) -> tuple[float, float]:
    """CI of the noncentrality of a t statistic by inverting the noncentral t (Steiger & Fouladi 1997)."""
    tail = (1 - confidence) / 2
    width = 10 * math.sqrt(1 + t * t / (2 * df)) + 1  # ~ 5 standard errors of the noncentrality

    def cdf(ncp: float) -> float:  # far tails of scipy's noncentral t can be NaN: use their limits
        prob = stats.nct.cdf(t, df, ncp)
        return (1.0 if ncp < t else 0.0) if math.isnan(prob) else float(prob)

    lo = optimize.brentq(lambda ncp: (1 - cdf(ncp)) - tail, t - width, t + width)
    hi = optimize.brentq(lambda ncp: cdf(ncp) - tail, t - width, t + width)
    return lo, hi


def _check_samples(x: np.ndarray, name: str, minimum: int = 2) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < minimum or not np.isfinite(x).all():
        raise AnalysisInputError(f"{name} needs at least {minimum} finite values, got {len(x)}")
    return x


def paired_ttest(compared: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> dict:
    """Paired t-test of compared − baseline with d_z and its exact (noncentral t) CI.

    Keys: ``test, statistic, df, p, mean_diff, ci, effect_size{name='d_z', value, ci}, n``.
    ``d_z`` = mean difference / SD of differences (Cohen 1988; Lakens 2013); not pingouin's d_av.
    """
    compared, baseline = _check_samples(compared, "compared"), _check_samples(baseline, "baseline")
    if len(compared) != len(baseline):
        raise AnalysisInputError("paired test needs equal-length samples")
    diff = compared - baseline
    n = len(diff)
    sd = diff.std(ddof=1)
    res = stats.ttest_rel(compared, baseline)
    ci = res.confidence_interval(confidence)
    d_z = diff.mean() / sd if sd > 0 else math.nan
    d_ci = (
        [v / math.sqrt(n) for v in _ncp_interval(res.statistic, n - 1, confidence)]
        if sd > 0
        else [math.nan] * 2
    )
    return {
        "test": "paired t-test",
        "statistic": float(res.statistic),
        "df": float(n - 1),
        "p": float(res.pvalue),
        "mean_diff": float(diff.mean()),
        "ci": [float(ci.low), float(ci.high)],
        "effect_size": {"name": "d_z", "value": float(d_z), "ci": [float(d_ci[0]), float(d_ci[1])]},
        "n": n,
    }


def welch_ttest(compared: np.ndarray, baseline: np.ndarray, confidence: float = 0.95) -> dict:
    """Welch's t-test with Hedges' g (pooled SD, exact small-sample correction) and its noncentral-t CI.

    Keys: ``test, statistic, df, p, mean_diff, ci, effect_size{name='hedges_g', value, ci}, n``.
    """
    compared, baseline = _check_samples(compared, "compared"), _check_samples(baseline, "baseline")
    n1, n2 = len(compared), len(baseline)
    res = stats.ttest_ind(compared, baseline, equal_var=False)
    ci = res.confidence_interval(confidence)
    df_pooled = n1 + n2 - 2
    sp = math.sqrt(((n1 - 1) * compared.var(ddof=1) + (n2 - 1) * baseline.var(ddof=1)) / df_pooled)
    j = math.exp(special.gammaln(df_pooled / 2) - special.gammaln((df_pooled - 1) / 2)) / math.sqrt(
        df_pooled / 2
    )
    mean_diff = compared.mean() - baseline.mean()
    if sp > 0:
        d = mean_diff / sp
        scale = math.sqrt(n1 * n2 / (n1 + n2))
        lo, hi = _ncp_interval(d * scale, df_pooled, confidence)
        g, g_ci = j * d, [j * lo / scale, j * hi / scale]
    else:
        g, g_ci = math.nan, [math.nan, math.nan]
    return {
        "test": "Welch t-test",
        "statistic": float(res.statistic),
        "df": float(res.df),
        "p": float(res.pvalue),
        "mean_diff": float(mean_diff),
        "ci": [float(ci.low), float(ci.high)],
        "effect_size": {"name": "hedges_g", "value": float(g), "ci": [float(g_ci[0]), float(g_ci[1])]},
        "n": n1 + n2,
    }


ALTERNATIVES = {"two_sided": "two-sided", "greater": "greater", "less": "less"}
"""The toolkit's alternatives (as in ``hypotheses:``; ``greater``: compared higher) → SciPy's names."""


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {sorted(ALTERNATIVES)}, got {alternative!r}")
    return ALTERNATIVES[alternative]


def _normal_tail(z: float, alternative: str) -> float:
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(2 * min(stats.norm.cdf(z), stats.norm.sf(z)))


def signed_rank_normal_p(nonzero: np.ndarray, t_plus: float, alternative: str = "two_sided") -> float:
    """R's normal approximation of the signed-rank p (``wilcox.test``, stats 4.2): tie-corrected variance
    n(n+1)(2n+1)/24 − Σ(t³ − t)/48 and a continuity correction of ½ towards the null — in the direction of
    the test for one-sided alternatives (SciPy has no one-sided correction of its own; its p differed from
    R's by 1 % at p ≈ 4e-16)."""
    n = len(nonzero)
    _, ties = np.unique(stats.rankdata(np.abs(nonzero)), return_counts=True)
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - float((ties**3 - ties).sum()) / 48)
    centred = t_plus - n * (n + 1) / 4
    correction = {"two_sided": 0.5 * np.sign(centred), "greater": 0.5, "less": -0.5}[alternative]
    return _normal_tail((centred - correction) / sigma, alternative)


def wilcoxon_test(compared: np.ndarray, baseline: np.ndarray, alternative: str = "two_sided") -> dict:
    """Wilcoxon signed-rank test (zero differences dropped, as R's ``wilcox.test``) with rank-biserial r.

    Keys: ``test, statistic`` (V: sum of ranks of positive compared − baseline differences, as R reports),
    ``p, effect_size{name='rank_biserial', value}, n`` (non-zero differences).
    r = (T+ − T−)/(T+ + T−) (Kerby 2014). ``alternative``: ``two_sided``, ``greater`` (compared higher), ``less``.
    The p-value follows R's rule: exact for n < 50 when there are neither ties nor zero differences, else the
    normal approximation with tie and continuity corrections (:func:`signed_rank_normal_p`); checked against
    R (tests/data/r/wilcoxon.R).
    """
    scipy_alternative = _check_alternative(alternative)
    diff = _check_samples(compared, "compared") - _check_samples(baseline, "baseline")
    nonzero = diff[diff != 0]
    if len(nonzero) == 0:
        return {
            "test": "Wilcoxon signed-rank",
            "statistic": 0.0,
            "p": 1.0,
            "effect_size": {"name": "rank_biserial", "value": 0.0},
            "n": 0,
        }
    ranks = stats.rankdata(np.abs(nonzero))
    t_plus, t_minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    has_ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    if len(nonzero) < 50 and not has_ties and len(nonzero) == len(diff):  # R's wilcox.test rule
        p = float(stats.wilcoxon(nonzero, alternative=scipy_alternative, method="exact").pvalue)
    else:
        p = signed_rank_normal_p(nonzero, float(t_plus), alternative)
    return {
        "test": "Wilcoxon signed-rank",
        "statistic": float(t_plus),
        "p": p,
        "effect_size": {"name": "rank_biserial", "value": float((t_plus - t_minus) / (t_plus + t_minus))},
        "n": len(nonzero),
    }


def mann_whitney_test(compared: np.ndarray, baseline: np.ndarray, alternative: str = "two_sided") -> dict:
    """Mann–Whitney U test of compared vs baseline with rank-biserial r = 2U/(n₁n₂) − 1 (Wendt 1972).

    Keys: ``test, statistic`` (U of the compared sample, R's W for ``wilcox.test(compared, baseline)``),
    ``p, effect_size{name='rank_biserial', value}, n``. Exact without ties when both samples are < 50, else
    normal approximation with tie and continuity corrections, as R (checked: tests/data/r/wilcoxon.R).
    """
    scipy_alternative = _check_alternative(alternative)
    compared, baseline = _check_samples(compared, "compared", 1), _check_samples(baseline, "baseline", 1)
    has_ties = len(np.unique(np.concatenate([compared, baseline]))) < len(compared) + len(baseline)
    exact = len(compared) < 50 and len(baseline) < 50 and not has_ties  # R's wilcox.test rule
    res = stats.mannwhitneyu(
        compared,
        baseline,
        alternative=scipy_alternative,
        use_continuity=True,
        method="exact" if exact else "asymptotic",
    )
    u = float(res.statistic)
    return {
        "test": "Mann-Whitney U",
        "statistic": u,
        "p": float(res.pvalue),
        "effect_size": {"name": "rank_biserial", "value": 2 * u / (len(compared) * len(baseline)) - 1},
        "n": len(compared) + len(baseline),
    }


def holm(pvalues: list[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values (NaN entries stay NaN and do not count towards m).

    Written out because statsmodels' ``multipletests`` runs a full garbage collection per call, which
    dominates the simulated power curve; the test suite checks both agree.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return out.tolist()


def relative_change_pct(mean_visual: float, mean_baseline: float) -> float | None:
    """(M_visual − M_baseline) / M_baseline × 100; undefined (None) when the baseline mean is 0."""
    return None if mean_baseline == 0 else 100 * (mean_visual - mean_baseline) / mean_baseline


def pomp(mean: float, scale_min: float, scale_max: float) -> float | None:
    """Percent of maximum possible (Cohen et al. 1999): where ``mean`` lies on the scale, 0–100."""
    return None if scale_max <= scale_min else 100 * (mean - scale_min) / (scale_max - scale_min)


def _cell_derivatives(
    params: np.ndarray, n_levels: int, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log P(level | group) of a proportional-odds logit, P(Y ≤ k | g) = expit(θ_k − β_g) with β_0 = 0, and
    its gradient and Hessian in the parameters (θ, β₁…): arrays (G·K,), (G·K, P) and (G·K, P, P), cell
    (g, k) at row g·K + k.

    Each cell's probability is F(a) − F(b) with a = θ_k − β_g and b = θ_{k−1} − β_g linear in the parameters,
    so the derivatives follow from those in (a, b) by the chain rule (F logistic, f = F(1 − F), f' = f(1 − 2F)).
    """
    n_par = n_levels - 1 + n_groups - 1
    jac_a, jac_b = np.zeros((n_groups, n_levels, n_par)), np.zeros((n_groups, n_levels, n_par))
    for k in range(n_levels):
        if k < n_levels - 1:
            jac_a[:, k, k] = 1.0
        if k > 0:
            jac_b[:, k, k - 1] = 1.0
    for g in range(1, n_groups):
        jac_a[g, :, n_levels - 2 + g] = jac_b[g, :, n_levels - 2 + g] = -1.0
    cuts = np.concatenate([[-np.inf], params[: n_levels - 1], [np.inf]])
    eta = np.concatenate([[0.0], params[n_levels - 1 :]])
    a, b = cuts[None, 1:] - eta[:, None], cuts[None, :-1] - eta[:, None]
    fa, fb = special.expit(a), special.expit(b)
    da, db = fa * (1 - fa), fb * (1 - fb)
    prob = np.where(b > 0, special.expit(-b) - special.expit(-a), fa - fb)  # upper tails keep the digits
    prob = np.clip(prob, 1e-300, None)
    ga, gb = da / prob, -db / prob  # ∂ log p / ∂a, ∂b
    haa = da * (1 - 2 * fa) / prob - ga**2
    hbb = -db * (1 - 2 * fb) / prob - gb**2
    hab = -ga * gb
    grad = ga[..., None] * jac_a + gb[..., None] * jac_b
    hess = (
        haa[..., None, None] * jac_a[..., :, None] * jac_a[..., None, :]
        + hbb[..., None, None] * jac_b[..., :, None] * jac_b[..., None, :]
        + hab[..., None, None]
        * (jac_a[..., :, None] * jac_b[..., None, :] + jac_b[..., :, None] * jac_a[..., None, :])
    )
    return np.log(prob).ravel(), grad.reshape(-1, n_par), hess.reshape(-1, n_par, n_par)


def _ordinal_newton(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Maximum likelihood of the proportional-odds logit on a G × K count table by Newton's method.

    The log-likelihood is concave in (θ, β) (Pratt 1981), so Newton steps with step halving (keeping the
    thresholds increasing) reach the maximum; it stops when the Newton decrement — the gain one more step
    would bring — is below 1e-20 of the likelihood's scale, far below what any reported digit needs. A
    quasi-Newton optimiser stopped at its default gradient tolerance left z wrong in the fourth decimal.
    Returns the parameters, the Hessian there and whether it converged."""
    n_groups, k = counts.shape
    flat = counts.ravel()
    cum = np.cumsum(counts.sum(axis=0))[:-1] / counts.sum()
    params = np.concatenate([special.logit(np.clip(cum, 1e-3, 1 - 1e-3)), np.zeros(n_groups - 1)])

    def loglik(p: np.ndarray) -> float:
        return float(flat @ _cell_derivatives(p, k, n_groups)[0])

    value = loglik(params)
    for _ in range(100):
        _, cell_grad, cell_hess = _cell_derivatives(params, k, n_groups)
        grad, hess = flat @ cell_grad, np.einsum("c,cij->ij", flat, cell_hess)
        step = -np.linalg.solve(hess, grad)
        decrement = float(grad @ step)  # g′(−H)⁻¹g ≥ 0: twice the gain of the step
        if decrement < 1e-20 * max(1.0, abs(value)):
            return params, hess, True
        scale = 1.0
        while scale > 1e-12:
            trial = params + scale * step
            if np.all(np.diff(trial[: k - 1]) > 0) and (new := loglik(trial)) >= value:
                params, value = trial, new
                break
            scale /= 2
        else:
            break
    _, _, cell_hess = _cell_derivatives(params, k, n_groups)
    return params, np.einsum("c,cij->ij", flat, cell_hess), False


def cumulative_logit(
    values: np.ndarray, group: np.ndarray, cluster: np.ndarray, confidence: float = 0.95
) -> dict:
    """Proportional-odds (cumulative logit) model ``value ~ condition`` with cluster-robust SEs.

    ``group`` codes the condition: 0 the baseline, 1..G−1 the others (a boolean "compared" for two arms).
    The likelihood depends on the data only through the G × K table of counts, so the fit costs the same for
    any n; it is maximised by Newton's method with the analytic gradient and Hessian (R's ``clm`` gives the
    same estimates to 1e-6; tested). The sandwich variance sums each cluster's (participant's) score, which
    accounts for repeated answers of one participant (GEE independence working model, no random effects),
    with the small-sample factor G/(G − 1) of the number of clusters. Keys: ``model``, ``terms`` (one record
    per group 1..G−1, in code order: ``log_odds, se, z, p, ci, odds_ratio, odds_ratio_ci``; ``log_odds`` > 0:
    that group answers higher than the baseline), ``wald`` {statistic, df, p} (all condition terms at once;
    for two groups the term's z², with its p), ``n_obs, n_clusters, n_levels, converged``.
    """
    values = np.asarray(values, dtype=float)
    group = np.asarray(group, dtype=int)
    levels, level_idx = np.unique(values, return_inverse=True)
    k, n_groups = len(levels), int(group.max()) + 1
    if k < 2 or len(np.unique(group)) < n_groups or n_groups < 2:
        raise AnalysisInputError("ordinal model needs every condition and at least two answer levels")
    cells = group * k + level_idx
    counts = np.bincount(cells, minlength=n_groups * k).reshape(n_groups, k)
    params, hess, converged = _ordinal_newton(counts)
    cell_scores = _cell_derivatives(params, k, n_groups)[1]  # (G·k cells, parameters)
    _, cluster_idx = np.unique(np.asarray(cluster), return_inverse=True)
    n_clusters = int(cluster_idx.max()) + 1
    per_cluster = np.bincount(
        cluster_idx * n_groups * k + cells, minlength=n_clusters * n_groups * k
    ).reshape(n_clusters, n_groups * k)
    scores = per_cluster @ cell_scores
    bread = np.linalg.inv(-hess)
    cov = bread @ (scores.T @ scores) @ bread * n_clusters / max(n_clusters - 1, 1)
    zcrit = stats.norm.ppf(0.5 + confidence / 2)
    terms = [
        _wald_term(float(params[i]), float(math.sqrt(cov[i, i])), zcrit) for i in range(k - 1, len(params))
    ]
    fit_info = {"n_obs": len(values), "n_clusters": n_clusters, "n_levels": k, "converged": converged}
    model = "proportional-odds logit, cluster-robust SE by participant"
    beta, vcov = params[k - 1 :], cov[k - 1 :, k - 1 :]
    wald = float(beta @ np.linalg.solve(vcov, beta))
    df = n_groups - 1
    return {
        "model": model,
        "terms": terms,
        "wald": {"statistic": wald, "df": float(df), "p": float(stats.chi2.sf(wald, df))},
        **fit_info,
    }


def _wald_term(beta: float, se: float, zcrit: float) -> dict:
    z = beta / se
    ci = [beta - zcrit * se, beta + zcrit * se]
    return {
        "log_odds": beta,
        "se": se,
        "z": z,
        "p": float(2 * stats.norm.sf(abs(z))),
        "ci": ci,
        "odds_ratio": math.exp(beta),
        "odds_ratio_ci": [math.exp(ci[0]), math.exp(ci[1])],
    }


def period_effect(
    scores: pd.DataFrame, baseline: str, compared: str, confidence: float = 0.95
) -> dict | None:
    """Condition × period in a 2 × 2 crossover (Jones & Kenward 2014, §2.3), from one construct's scores.

    Participants are grouped by which condition came first; the compared − baseline differences are compared
    between the two orders with Welch's t. Half their difference is the period effect (later − earlier period,
    averaged over conditions); their average is the period-adjusted condition effect. Returns None when the
    data have no periods or only one order. Keys: ``test, statistic, df, p, period_diff, period_diff_ci,
    adjusted_mean_diff, n_compared_first, n_baseline_first``.
    """
    if "period" not in scores.columns or scores["period"].isna().all():
        return None
    wide = scores.pivot(index="participant_id", columns="condition", values=["score", "period"]).dropna()
    if wide.empty:
        return None
    diff = wide[("score", compared)] - wide[("score", baseline)]
    compared_first = wide[("period", compared)] < wide[("period", baseline)]
    first, second = diff[compared_first].to_numpy(), diff[~compared_first].to_numpy()
    if len(first) < 2 or len(second) < 2:
        return None
    res = stats.ttest_ind(second, first, equal_var=False)
    ci = res.confidence_interval(confidence)
    return {
        "test": "Welch t-test of differences between orders (condition × period)",
        "statistic": float(res.statistic),
        "df": float(res.df),
        "p": float(res.pvalue),
        "period_diff": float((second.mean() - first.mean()) / 2),
        "period_diff_ci": [float(ci.low / 2), float(ci.high / 2)],
        "adjusted_mean_diff": float((second.mean() + first.mean()) / 2),
        "n_compared_first": len(first),
        "n_baseline_first": len(second),
    }
