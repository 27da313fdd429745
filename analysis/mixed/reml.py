"""Profiled REML for linear mixed models with one or more grouping factors, as lme4 fits them.

The formulation is lme4's (Bates, Mächler, Bolker & Walker 2015, *J. Stat. Softw.* 67(1), sections 3.2–3.6):
random effects b = Λ_θ u with u ~ N(0, σ²I), Λ_θ block diagonal with one lower-triangular factor per grouping
factor; the Cholesky factor of the augmented system ``[Λ'Z'ZΛ + I, Λ'Z'X, Λ'Z'y; …, X'X, X'y; …, y'y]`` gives
log|L_θ|², R_X and the penalised residual r² at once, and σ² and β are profiled out, so the optimiser sees θ
only. The blocked form is MixedModels.jl's: the grouping factor with the most levels (participants) is the
first block and is block diagonal — one small q×q Cholesky per level, batched in NumPy —; every other factor
(cases) goes into a small dense block, reached through a Schur complement. Work per deviance evaluation is
linear in the number of participants and never touches an n×n matrix, and the data enter only through
cross-products computed once, so 160,000 rows cost what their ~40,000 distinct design rows cost.

Satterthwaite's degrees of freedom follow lmerTest (Kuznetsova, Brockhoff & Christensen 2017, *J. Stat.
Softw.* 82(13)): the asymptotic covariance of (θ, σ) is twice the (Moore–Penrose) inverse of the Hessian of
the REML deviance in (θ, σ), and the gradient of L·Var(β̂)·L' in (θ, σ) is taken numerically.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, sparse
from statsmodels.tools.numdiff import approx_fprime, approx_hess3
from threadpoolctl import threadpool_limits

CONVERGENCE_TOL = 2e-3  # lme4's check.conv.grad tolerance
SINGULAR_TOL = 1e-4  # lme4's isSingular(tol = 1e-4): a relative-factor diagonal below it is a boundary fit
_HESSIAN_TOL = 1e-8  # lmerTest: Hessian eigenvalues at or below it are dropped from the generalised inverse


@dataclass(frozen=True)
class RandomTerm:
    """The random effects of one grouping factor: ``(cols | group)``, possibly split into uncorrelated blocks.

    ``blocks`` partitions the columns of ``z`` into correlated groups; ``((0, 1),)`` is lme4's ``(1 + x | g)``,
    ``((0,), (1,))`` its ``(1 + x || g)``. ``codes`` gives each row's level (0 … ``n_levels`` − 1).
    """

    group: str
    columns: tuple[str, ...]
    codes: np.ndarray
    n_levels: int
    z: np.ndarray
    blocks: tuple[tuple[int, ...], ...]

    @property
    def q(self) -> int:
        return len(self.columns)

    @property
    def n_theta(self) -> int:
        return sum(len(b) * (len(b) + 1) // 2 for b in self.blocks)

    def _positions(self) -> list[tuple[int, int, bool]]:
        """(row, column, on the diagonal) of each θ element: lower triangles, column-major, as lme4 orders θ."""
        out = []
        for block in self.blocks:
            for j, col in enumerate(block):
                out.extend((row, col, i == j) for i, row in enumerate(block) if i >= j)
        return out

    def lower_bounds(self) -> np.ndarray:
        return np.array([0.0 if diag else -np.inf for _, _, diag in self._positions()])

    def start(self) -> np.ndarray:
        """lme4's starting value: the identity factor."""
        return np.array([1.0 if diag else 0.0 for _, _, diag in self._positions()])

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """The q×q relative covariance factor T (Σ = σ² T T')."""
        t = np.zeros((self.q, self.q))
        for value, (row, col, _) in zip(theta, self._positions(), strict=True):
            t[row, col] = value
        return t

    def diagonal(self, theta: np.ndarray) -> np.ndarray:
        return np.array([v for v, (_, _, diag) in zip(theta, self._positions(), strict=True) if diag])


def _indicator(term: RandomTerm) -> sparse.csr_matrix:
    """Z of one term: n × (levels · q), level-major (level l holds columns l·q … l·q + q − 1)."""
    n = len(term.codes)
    rows = np.repeat(np.arange(n), term.q)
    cols = (term.codes[:, None] * term.q + np.arange(term.q)).ravel()
    return sparse.csr_matrix((term.z.ravel(), (rows, cols)), shape=(n, term.n_levels * term.q))


def _times_transposed(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a[:, i, :] @ w[i].T`` for every level i, as q² elementwise passes over (rows, levels) arrays: for
    q ≤ 5 it made a 2,000-participant deviance evaluation 3× faster than einsum did."""
    out = np.zeros_like(a)
    for b in range(a.shape[2]):
        for c in range(a.shape[2]):
            out[:, :, b] += a[:, :, c] * w[:, b, c]
    return out


@dataclass(frozen=True)
class DevianceParts:
    """Everything one θ gives: the pieces of the REML deviance and the GLS estimate of β."""

    ld_l2: float  # log |L_θ|²
    ld_rx2: float  # log |R_X|²
    r2: float  # penalised residual sum of squares
    beta: np.ndarray
    rx_inv: np.ndarray  # R_X⁻¹: Var(β̂) = σ² R_X⁻¹ R_X⁻ᵀ


class RemlProblem:
    """A linear mixed model's data as the cross-products the profiled REML deviance needs.

    ``terms[0]`` should be the grouping factor with the most levels (it is the block-diagonal block).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, terms: Sequence[RandomTerm]) -> None:
        self.x, self.terms = np.asarray(x, dtype=float), tuple(terms)
        self.n, self.p = self.x.shape
        xy = np.column_stack([self.x, np.asarray(y, dtype=float)])
        first, rest = self.terms[0], self.terms[1:]
        z1 = _indicator(first)
        # block 1 (diagonal): per-level q×q cross-products of the first term's columns
        self._c11 = np.empty((first.n_levels, first.q, first.q))
        for a in range(first.q):
            for b in range(first.q):
                weights = first.z[:, a] * first.z[:, b]
                self._c11[:, a, b] = np.bincount(first.codes, weights=weights, minlength=first.n_levels)
        self._c1xy = np.asarray(z1.T @ xy).reshape(first.n_levels, first.q, -1)
        self._cxyxy = xy.T @ xy
        self._dense_sizes = [t.n_levels * t.q for t in rest]
        if rest:
            zd = sparse.hstack([_indicator(t) for t in rest]).tocsr()
            self._cdd = (zd.T @ zd).toarray()
            self._cd1 = (zd.T @ z1).toarray().reshape(zd.shape[1], first.n_levels, first.q)
            self._cdxy = np.asarray(zd.T @ xy)

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    def split(self, theta: np.ndarray) -> list[np.ndarray]:
        """θ cut into one vector per term."""
        edges = np.cumsum([0] + [t.n_theta for t in self.terms])
        return [theta[a:b] for a, b in itertools.pairwise(edges)]

    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([t.lower_bounds() for t in self.terms])

    def start(self) -> np.ndarray:
        return np.concatenate([t.start() for t in self.terms])

    def evaluate(self, theta: np.ndarray) -> DevianceParts:
        """Blocked Cholesky of the augmented system at θ (MixedModels.jl's update! for two blocks).

        NumPy's LAPACK only: SciPy's threaded OpenBLAS took ~15 ms per tiny triangular solve on a busy
        2-core machine, 1000× NumPy's time, and this runs a few thousand times per fit."""
        parts = self.split(np.asarray(theta, dtype=float))
        t1 = self.terms[0].factor(parts[0])
        # 1. the block-diagonal block: L11 = chol(T'C T + I), per level
        l11 = np.linalg.cholesky(t1.T @ self._c11 @ t1 + np.eye(t1.shape[0]))
        w = np.linalg.inv(l11)  # batched inverse of small triangular factors
        a31 = self._c1xy.transpose(2, 0, 1) @ t1  # (p+1, levels, q): [X y]' Z1 Λ1
        l31 = _times_transposed(a31, w).reshape(a31.shape[0], -1)
        ld_l2 = 2 * np.log(np.diagonal(l11, axis1=1, axis2=2)).sum()
        s33 = self._cxyxy - l31 @ l31.T
        # 2. the dense block (other grouping factors) through the Schur complement onto it
        if self._dense_sizes:
            lam = linalg.block_diag(
                *[
                    np.kron(np.eye(t.n_levels), t.factor(p))
                    for t, p in zip(self.terms[1:], parts[1:], strict=True)
                ]
            )
            a21 = (lam.T @ (self._cd1 @ t1).reshape(lam.shape[0], -1)).reshape(self._cd1.shape)
            l21 = _times_transposed(a21, w).reshape(lam.shape[0], -1)
            s22 = lam.T @ self._cdd @ lam + np.eye(lam.shape[0]) - l21 @ l21.T
            l22 = np.linalg.cholesky(s22)
            s32 = (self._cdxy.T @ lam) - l31 @ l21.T
            l32 = np.linalg.solve(l22, s32.T).T
            ld_l2 += 2 * np.log(np.diag(l22)).sum()
            s33 = s33 - l32 @ l32.T
        # 3. the fixed effects and the response: chol of what is left is [[R_X', 0], [c', r]]
        l33 = np.linalg.cholesky(s33)
        rx = l33[: self.p, : self.p].T
        rx_inv = np.linalg.inv(rx)
        beta = rx_inv @ l33[self.p, : self.p]
        return DevianceParts(
            ld_l2=float(ld_l2),
            ld_rx2=float(2 * np.log(np.abs(np.diag(rx))).sum()),
            r2=float(l33[self.p, self.p] ** 2),
            beta=beta,
            rx_inv=rx_inv,
        )

    def deviance(self, theta: np.ndarray) -> float:
        """The profiled REML criterion (lme4's ``REMLcrit``), σ² profiled out."""
        ev = self.evaluate(theta)
        dof = self.n - self.p
        return ev.ld_l2 + ev.ld_rx2 + dof * (1 + math.log(2 * math.pi * ev.r2 / dof))

    def deviance_varpar(self, varpar: np.ndarray) -> float:
        """REML deviance in (θ, σ), σ not profiled: lmerTest's ``devfun_vp``, whose Hessian gives Var(θ, σ)."""
        ev = self.evaluate(varpar[:-1])
        s2 = varpar[-1] ** 2
        return ev.ld_l2 + ev.ld_rx2 + ev.r2 / s2 + (self.n - self.p) * math.log(2 * math.pi * s2)

    def covbeta_varpar(self, varpar: np.ndarray) -> np.ndarray:
        """Var(β̂) as a function of (θ, σ): σ² R_X⁻¹ R_X⁻ᵀ (lmerTest's ``get_covbeta``), flattened."""
        ev = self.evaluate(varpar[:-1])
        return (varpar[-1] ** 2 * ev.rx_inv @ ev.rx_inv.T).ravel()


@dataclass(frozen=True)
class RemlFit:
    """A REML fit: θ, σ, β and Var(β̂); ``varpar_cov`` and ``covbeta_jacobian`` feed Satterthwaite's df.

    ``varpar_cov`` is None when the Hessian of the deviance could not be formed (no df can be computed then).
    """

    problem: RemlProblem
    theta: np.ndarray
    sigma: float
    beta: np.ndarray
    vcov: np.ndarray
    deviance: float
    converged: bool
    singular: bool
    message: str
    varpar_cov: np.ndarray | None
    covbeta_jacobian: np.ndarray | None  # (n_varpar, p, p)

    def covariance(self, term_index: int) -> np.ndarray:
        """Σ of one grouping factor's random effects (σ² T T')."""
        term = self.problem.terms[term_index]
        t = term.factor(self.problem.split(self.theta)[term_index])
        return self.sigma**2 * t @ t.T


def _minimise(problem: RemlProblem, start: np.ndarray) -> optimize.OptimizeResult:
    """Bounded L-BFGS-B on the profiled deviance (θ's diagonal ≥ 0, as lme4 bounds it)."""
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in problem.lower_bounds()]
    try:
        return optimize.minimize(
            problem.deviance,
            start,
            method="L-BFGS-B",
            jac="3-point",
            bounds=bounds,
            options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000},
        )
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        raise FloatingPointError(f"the REML deviance could not be evaluated: {exc}") from exc


def _converged(problem: RemlProblem, theta: np.ndarray) -> bool:
    """lme4's gradient check (``check.conv.grad``, tolerance 0.002): the smaller of the gradient and the
    gradient scaled by the Cholesky factor of the Hessian, per component, must stay below the tolerance.

    The scaled gradient is the Newton step in the Hessian's metric: with 2,000 participants the deviance is
    ~500,000 and its raw gradient at the optimum ~0.01 from rounding alone, while the scaled one is ~10⁻⁵.
    Components at a bound whose gradient pushes outward do not count (the optimum is on the bound)."""
    gradient = approx_fprime(theta, problem.deviance, centered=True)
    free = ~((theta <= problem.lower_bounds() + 1e-10) & (gradient > 0))
    gradient = gradient[free]
    if not np.isfinite(gradient).all():
        return False
    if np.max(np.abs(gradient), initial=0.0) < CONVERGENCE_TOL:
        return True
    hessian = approx_hess3(theta, problem.deviance)[np.ix_(free, free)]
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(hessian).T, gradient)
    except np.linalg.LinAlgError:  # not positive definite: not a minimum in the free directions
        return False
    return bool(np.max(np.minimum(np.abs(scaled), np.abs(gradient))) < CONVERGENCE_TOL)


def fit_reml(problem: RemlProblem) -> RemlFit:
    """:func:`_fit_reml` on one BLAS thread: the matrices are small (2×2 per participant, ~80×80 for cases),
    and threads waiting on each other made each evaluation 18× slower on a busy 2-core machine."""
    with threadpool_limits(1):
        return _fit_reml(problem)


def _fit_reml(problem: RemlProblem) -> RemlFit:
    """Minimise the profiled REML deviance over θ (L-BFGS-B, bounded as lme4 bounds θ), then the df pieces.

    Converged means the deviance is finite there and lme4's gradient check passes (:func:`_converged`),
    at the first optimum or after one restart from it.
    """
    res = _minimise(problem, problem.start())
    theta = np.where(np.abs(res.x) < 1e-12, 0.0, res.x)
    converged = bool(np.isfinite(res.fun)) and _converged(problem, theta)
    if not converged:  # restart once from the point reached, as the R backend does (lme4's ?convergence)
        res = _minimise(problem, theta)
        theta = np.where(np.abs(res.x) < 1e-12, 0.0, res.x)
        converged = bool(np.isfinite(res.fun)) and _converged(problem, theta)
    ev = problem.evaluate(theta)
    sigma = math.sqrt(ev.r2 / (problem.n - problem.p))
    diagonal = np.concatenate(
        [t.diagonal(p) for t, p in zip(problem.terms, problem.split(theta), strict=True)]
    )
    varpar = np.append(theta, sigma)
    varpar_cov, jacobian = _satterthwaite_pieces(problem, varpar)
    return RemlFit(
        problem=problem,
        theta=theta,
        sigma=sigma,
        beta=ev.beta,
        vcov=sigma**2 * ev.rx_inv @ ev.rx_inv.T,
        deviance=float(problem.deviance(theta)),
        converged=converged,
        singular=bool((np.abs(diagonal) < SINGULAR_TOL).any()),
        message=str(res.message),
        varpar_cov=varpar_cov,
        covbeta_jacobian=jacobian,
    )


def _satterthwaite_pieces(
    problem: RemlProblem, varpar: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Var(θ, σ) = 2·H⁻ (H the Hessian of the deviance in (θ, σ); generalised inverse over eigenvalues
    above 10⁻⁸, as lmerTest) and the Jacobian of Var(β̂) in (θ, σ). (None, None) when either is not finite."""
    try:
        hessian = approx_hess3(varpar, problem.deviance_varpar)
        jac = approx_fprime(varpar, problem.covbeta_varpar, centered=True)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None, None
    if not (np.isfinite(hessian).all() and np.isfinite(jac).all()):
        return None, None
    values, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    keep = values > _HESSIAN_TOL
    h_inv = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return 2 * h_inv, jac.T.reshape(len(varpar), problem.p, problem.p)


def satterthwaite_df(fit: RemlFit, contrast: np.ndarray) -> float:
    """Satterthwaite's df of one contrast l'β: 2 (l'Vl)² / (∇ᵀ A ∇), ∇ the gradient of l'V(θ,σ)l.

    NaN when the pieces are missing or the denominator is not positive (the caller falls back and says so)."""
    if fit.varpar_cov is None or fit.covbeta_jacobian is None:
        return math.nan
    var = float(contrast @ fit.vcov @ contrast)
    grad = np.einsum("i,kij,j->k", contrast, fit.covbeta_jacobian, contrast)
    denom = float(grad @ fit.varpar_cov @ grad)
    return 2 * var**2 / denom if denom > 0 and var > 0 else math.nan


def satterthwaite_f(fit: RemlFit, contrasts: np.ndarray) -> tuple[float, float, float]:
    """lmerTest's multi-df F test of L β = 0 (``contestMD``): (F, numerator df, denominator df).

    L V L' is rotated to its eigenvectors; each rotated contrast gets its own Satterthwaite ν_m, and the
    denominator df matches E = Σ ν_m/(ν_m − 2) (Fai & Cornelius 1996): 2E/(E − q), or 2 when any ν_m ≤ 2."""
    vl = contrasts @ fit.vcov @ contrasts.T
    values, vectors = np.linalg.eigh(vl)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(np.finfo(float).eps ** 0.5 * values[0], 0)
    rotated = vectors[:, keep].T @ contrasts
    q = int(keep.sum())
    f_value = float(((rotated @ fit.beta) ** 2 / values[keep]).sum() / q)
    nu = np.array([satterthwaite_df(fit, row) for row in rotated])
    if not np.isfinite(nu).all():
        return f_value, float(q), math.nan
    if q == 1 or np.all(np.abs(np.diff(nu)) < 1e-8):
        return f_value, float(q), float(nu.mean())
    if (nu <= 2).any():
        return f_value, float(q), 2.0
    e = float((nu / (nu - 2)).sum())
    return f_value, float(q), 2 * e / (e - q)
