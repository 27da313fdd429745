"""Laplace approximation for GLMMs with crossed random intercepts, as lme4's ``glmer`` (nAGQ = 1) and
ordinal's ``clmm`` (default) compute it.

The model: η = Xβ + Σ_r σ_r u_r[g_r(i)], u ~ N(0, I), rows with a family log-likelihood ℓᵢ(ηᵢ) and weights.
For given (β, σ, family parameters) the random effects' mode û maximises ℓ(u) − ½|u|² (Newton steps with
step halving, converged to machine precision so that the gradient below is exact to rounding), and

    log L ≈ ℓ(û) − ½|û|² − ½ log det H,   H = I + ΛZ'WZΛ,  W = diag(−∂²ℓᵢ/∂ηᵢ²).

Structure, so that 2,000 participants × 20 cases cost a fraction of a second per evaluation: the factor
with the most levels (participants) is the "big" block of H, which is diagonal because each row has one
participant; the other factors (cases, case × condition: tens to hundreds of levels) form a small dense
block. H is solved and its determinant taken through the Schur complement M = S − B'D⁻¹B of the big
diagonal block D, never a dense (P + m)² matrix.

The outer problem maximises log L over (family parameters, β, σ) by BFGS on its exact gradient
(:meth:`LaplaceObjective.value_and_gradient`: the implicit-function derivative of û and the derivative of
log det H through the leverages zᵢ'H⁻¹zᵢ, all from the same blocks), then Newton steps on a Hessian from
central differences of that gradient until the Newton decrement vanishes; its inverse gives the covariance
of β (as clmm's and glmer's default ``vcov``, both numerical Hessians of the same Laplace likelihood). SDs
are optimised on their own scale: the approximate likelihood is even in each σ, so a component whose best
value is 0 reaches it without a bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import linalg, optimize
from threadpoolctl import threadpool_limits

from analysis.mixed.families import RowDerivatives
from analysis.mixed.result import MixedModelError

#: An SD below this is a boundary (singular) fit, as lme4's ``isSingular`` tolerance on θ = σ.
SINGULAR_SD = 1e-4
#: Newton decrement (expected log-likelihood gain of one more step) at which the fit counts as converged.
CONVERGED_DECREMENT = 1e-6


class Family(Protocol):
    n_extra: int

    def start(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray: ...

    def derivatives(
        self, eta: np.ndarray, y: np.ndarray, weights: np.ndarray, extra: np.ndarray, full: bool = False
    ) -> RowDerivatives: ...


@dataclass(frozen=True)
class GlmmData:
    """Rows of the model: response codes, weights (counts of identical rows), fixed design, grouping factors
    (name, integer codes 0..L−1 per row)."""

    y: np.ndarray
    weights: np.ndarray
    design: np.ndarray
    factors: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class LaplaceFit:
    """Estimates on the model's scale; ``cov_beta`` from the inverse Hessian of the Laplace log-likelihood."""

    extra: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    sds: dict[str, float]
    loglik: float
    converged: bool
    decrement: float
    gradient_max: float


class RandomIntercepts:
    """Index arrays for the blocks of H, built once per data set (see the module docstring).

    The random-effects vector u is laid out as [big factor's levels, then the small factors' levels];
    ``slots[r]`` maps each row to its level of factor r in that layout."""

    def __init__(self, factors: tuple[tuple[str, np.ndarray], ...]) -> None:
        sizes = [int(codes.max()) + 1 for _, codes in factors]
        self.names = tuple(name for name, _ in factors)
        self.big = int(np.argmax(sizes))
        self.small = [r for r in range(len(factors)) if r != self.big]
        self.n_big = sizes[self.big]
        offsets = np.cumsum([0] + [sizes[r] for r in self.small])
        self.m = int(offsets[-1])
        self.size = self.n_big + self.m
        self.big_codes = factors[self.big][1]
        self.small_codes = [offsets[j] + factors[r][1] for j, r in enumerate(self.small)]
        self.cross_codes = [self.big_codes * self.m + codes for codes in self.small_codes]
        self.pair_codes = [[a * self.m + b for b in self.small_codes] for a in self.small_codes]
        self.slots: list[np.ndarray] = [np.empty(0, dtype=int)] * len(factors)
        self.blocks: list[slice] = [slice(0)] * len(factors)
        self.slots[self.big], self.blocks[self.big] = self.big_codes, slice(0, self.n_big)
        for j, r in enumerate(self.small):
            self.slots[r] = self.n_big + self.small_codes[j]
            self.blocks[r] = slice(self.n_big + offsets[j], self.n_big + offsets[j + 1])

    def z_times(self, u: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """ZΛu: each row's random effects, scaled by the SDs."""
        return sum(sigma[r] * u[slot] for r, slot in enumerate(self.slots))

    def zt_times(self, values: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """ΛZ'x: per-row values summed into each level, scaled by the SDs."""
        return sum(sigma[r] * self.block_sum(r, values) for r in range(len(self.slots)))

    def block_sum(self, r: int, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.slots[r], values, self.size)

    def factorise(self, curvature: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        """H's diagonal block D, the off-diagonal block B (P × m) and the Cholesky factor of the Schur
        complement M (None when there is no small block)."""
        sb = sigma[self.big]
        diag = 1 + sb * sb * np.bincount(self.big_codes, curvature, self.n_big)
        if not self.m:
            return diag, np.zeros((self.n_big, 0)), None
        cross = np.zeros(self.n_big * self.m)
        small = np.zeros(self.m * self.m)
        for j, r in enumerate(self.small):
            cross += sb * sigma[r] * np.bincount(self.cross_codes[j], curvature, self.n_big * self.m)
            for k, s in enumerate(self.small):
                small += sigma[r] * sigma[s] * np.bincount(self.pair_codes[j][k], curvature, self.m * self.m)
        cross = cross.reshape(self.n_big, self.m)
        schur = np.eye(self.m) + small.reshape(self.m, self.m) - (cross / diag[:, None]).T @ cross
        return diag, cross, linalg.cho_factor(schur)

    def solve(self, factors: tuple, rhs: np.ndarray) -> np.ndarray:
        """H⁻¹ rhs for a vector or a matrix of columns."""
        diag, cross, chol = factors
        scale = diag if rhs.ndim == 1 else diag[:, None]
        top, bottom = rhs[: self.n_big], rhs[self.n_big :]
        if chol is None:
            return top / scale
        x_small = linalg.cho_solve(chol, bottom - cross.T @ (top / scale))
        return np.concatenate([(top - cross @ x_small) / scale, x_small])

    @staticmethod
    def logdet(factors: tuple) -> float:
        diag, _, chol = factors
        small = 0.0 if chol is None else 2 * float(np.log(np.diag(chol[0])).sum())
        return float(np.log(diag).sum()) + small

    def leverage(self, factors: tuple, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q, diag H⁻¹) with qᵢ = z̃ᵢ'H⁻¹z̃ᵢ, z̃ᵢ row i of ZΛ: tr(H⁻¹ Σᵢ aᵢz̃ᵢz̃ᵢ') = Σᵢ aᵢqᵢ, the derivative of
        log det H when the curvature moves. From the blocks of H⁻¹: D⁻¹ + GM⁻¹G' (G = D⁻¹B), −GM⁻¹, M⁻¹."""
        diag, cross, chol = factors
        sb = sigma[self.big]
        if chol is None:
            inv_big = 1 / diag
            return sb * sb * inv_big[self.big_codes], inv_big
        gain = cross / diag[:, None]
        inv_small = linalg.cho_solve(chol, np.eye(self.m))
        gain_inv = gain @ inv_small
        inv_big = 1 / diag + np.einsum("pk,pk->p", gain_inv, gain)
        q = sb * sb * inv_big[self.big_codes]
        gain_flat, small_flat = gain_inv.ravel(), inv_small.ravel()
        for j, r in enumerate(self.small):
            q = q - 2 * sb * sigma[r] * gain_flat[self.cross_codes[j]]
            for k, s in enumerate(self.small):
                q = q + sigma[r] * sigma[s] * small_flat[self.pair_codes[j][k]]
        return q, np.concatenate([inv_big, np.diag(inv_small)])


class LaplaceObjective:
    """−log L(params) and its gradient, params = (family extra, β, σ); remembers the last mode to start the
    next inner solve from it."""

    def __init__(self, family: Family, data: GlmmData) -> None:
        self.family, self.data = family, data
        self.re = RandomIntercepts(data.factors)
        self.n_extra, self.n_beta = family.n_extra, data.design.shape[1]
        self.n_sigma = len(data.factors)
        self.u = np.zeros(self.re.size)

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = self.n_extra, self.n_extra + self.n_beta
        return params[:a], params[a:b], params[b:]

    def _rows(self, eta0, sigma, extra, u, full: bool = False) -> RowDerivatives:
        eta = eta0 + self.re.z_times(u, sigma)
        return self.family.derivatives(eta, self.data.y, self.data.weights, extra, full)

    def _mode(self, extra, beta, sigma, full: bool) -> tuple[np.ndarray, tuple, RowDerivatives]:
        """Newton steps with step halving on ℓ(u) − ½|u|²; returns û, the factorised H and the rows there."""
        eta0 = self.data.design @ beta
        u = self.u.copy()
        rows = self._rows(eta0, sigma, extra, u)
        value = rows.loglik - 0.5 * float(u @ u)
        for _ in range(200):
            factors = self.re.factorise(rows.curvature, sigma)
            step = self.re.solve(factors, self.re.zt_times(rows.score, sigma) - u)
            scale = 1.0
            while True:
                new = u + scale * step
                new_rows = self._rows(eta0, sigma, extra, new)
                new_value = new_rows.loglik - 0.5 * float(new @ new)
                if new_value >= value - 1e-12 * abs(value) or scale < 1e-10:
                    break
                scale /= 2
            u, rows, value = new, new_rows, new_value
            # Newton converges quadratically: after a step of 1e-8 the mode is exact to rounding, so the
            # determinant (first order in û) is smooth in the parameters.
            if scale * float(np.abs(step).max(initial=0.0)) < 1e-8:
                break
        if np.all(np.isfinite(u)):
            self.u = u
        if full:
            rows = self._rows(eta0, sigma, extra, u, full=True)
        return u, self.re.factorise(rows.curvature, sigma), rows

    def __call__(self, params: np.ndarray) -> float:
        return self.value_and_gradient(params, gradient=False)[0]

    def value_and_gradient(self, params: np.ndarray, gradient: bool = True) -> tuple[float, np.ndarray]:
        """−log L and its exact gradient. With û the mode, dL/dφ = ∂ℓ/∂φ|û − ½ d log det H/dφ, and
        d log det H/dφ = Σᵢ qᵢ dWᵢ/dφ (+ 2/σ_r Σ_{j∈r}(1 − H⁻¹ⱼⱼ) for σ_r, which also scales ZΛ), where
        dWᵢ/dφ = ∂Wᵢ/∂ηᵢ · dη̂ᵢ/dφ + ∂Wᵢ/∂φ and dû/dφ = H⁻¹ ∂(∇ᵤ)/∂φ (implicit function theorem): one solve
        with H per parameter."""
        extra, beta, sigma = self.split(params)
        try:
            u, factors, rows = self._mode(extra, beta, sigma, gradient)
        except (linalg.LinAlgError, FloatingPointError):
            return math.inf, np.zeros_like(params)
        if not np.all(np.isfinite(u)):
            return math.inf, np.zeros_like(params)
        value = rows.loglik - 0.5 * float(u @ u) - 0.5 * self.re.logdet(factors)
        if not gradient:
            return -value, np.zeros_like(params)
        re, design = self.re, self.data.design
        q, inv_diag = re.leverage(factors, sigma)
        slope = q * rows.curvature_slope
        # per parameter: ∂ℓ/∂φ at fixed u, ∂(∇ᵤ)/∂φ, ∂η/∂φ at fixed u, ∂W/∂φ at fixed η, the σ trace term
        partial, rhs, direct_eta, direct_w, trace = [], [], [], [], []
        for j in range(self.n_extra):
            partial.append(rows.loglik_extra[:, j].sum())
            rhs.append(re.zt_times(rows.score_extra[:, j], sigma))
            direct_eta.append(None)
            direct_w.append(rows.curvature_extra[:, j])
            trace.append(0.0)
        for j in range(self.n_beta):
            x = design[:, j]
            partial.append(rows.score @ x)
            rhs.append(-re.zt_times(rows.curvature * x, sigma))
            direct_eta.append(x)
            direct_w.append(None)
            trace.append(0.0)
        for r in range(self.n_sigma):
            v = u[re.slots[r]]
            partial.append(rows.score @ v)
            rhs.append(re.block_sum(r, rows.score) - re.zt_times(rows.curvature * v, sigma))
            direct_eta.append(v)
            direct_w.append(None)
            free = 1 - inv_diag[re.blocks[r]]
            trace.append(0.0 if sigma[r] == 0 else 2 * float(free.sum()) / sigma[r])
        du = re.solve(factors, np.column_stack(rhs))
        grad = np.zeros(len(params))
        for j in range(len(params)):
            deta = re.z_times(du[:, j], sigma)
            if direct_eta[j] is not None:
                deta = deta + direct_eta[j]
            dlogdet = slope @ deta + trace[j]
            if direct_w[j] is not None:
                dlogdet += q @ direct_w[j]
            grad[j] = partial[j] - 0.5 * dlogdet
        return -value, -grad


def _hessian(objective: LaplaceObjective, x: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Central differences of the analytic gradient (2p gradients), symmetrised; zero outside ``free``."""
    idx = np.flatnonzero(free)
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    hess = np.zeros((len(x), len(x)))
    for j in idx:
        e = np.zeros_like(x)
        e[j] = h[j]
        hess[:, j] = (objective.value_and_gradient(x + e)[1] - objective.value_and_gradient(x - e)[1]) / (
            2 * h[j]
        )
    hess = (hess + hess.T) / 2
    mask = np.outer(free, free)
    return np.where(mask, hess, 0.0)


def fit_laplace(family: Family, data: GlmmData) -> LaplaceFit:
    """Maximise the Laplace log-likelihood; see the module docstring for the method.

    BLAS runs single-threaded here: the dense blocks are at most a few hundred wide, and a threaded BLAS's
    spin-waiting made a 40 × 40 solve 30 ms instead of 0.1 ms on a loaded two-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_laplace(family, data)


def _fit_laplace(family: Family, data: GlmmData) -> LaplaceFit:
    objective = LaplaceObjective(family, data)
    extra0 = family.start(data.y, data.weights)
    beta0 = np.zeros(objective.n_beta)
    n_sigma = objective.n_sigma
    total = float(data.weights.sum())
    all_free = np.ones(len(extra0) + len(beta0) + n_sigma, dtype=bool)

    # 1. Fixed effects without random effects (σ = 0), then everything from σ = 1 (lme4's start, θ = 1).
    fixed_free = all_free.copy()
    fixed_free[-n_sigma:] = False
    x = np.concatenate([extra0, beta0, np.zeros(n_sigma)])
    x = _bfgs(objective, x, fixed_free, total)
    x[-n_sigma:] = 1.0
    x = _bfgs(objective, x, all_free, total)

    # 2. Components at the boundary are set to exactly 0 when that costs no likelihood (as a bound would).
    free = all_free.copy()
    for r in range(n_sigma):
        j = len(x) - n_sigma + r
        if abs(x[j]) < 1e-2:
            trial = x.copy()
            trial[j] = 0.0
            if objective(trial) <= objective(x) + 1e-9:
                x, free[j] = trial, False

    # 3. Newton steps on the numerical Hessian until the decrement vanishes; its inverse is the covariance.
    x, hess, decrement = _newton(objective, x, free)
    grad = objective.value_and_gradient(x)[1][free]
    extra, beta, sigma = objective.split(x)
    sub = hess[np.ix_(free, free)]
    if not np.all(np.linalg.eigvalsh(sub) > 0):
        raise MixedModelError(
            "the approximate likelihood is flat or curved upwards at its maximum (Hessian not positive "
            "definite): a fixed effect or an SD is not identified by these data"
        )
    cov = np.linalg.inv(sub)
    beta_idx = np.arange(len(extra), len(extra) + len(beta))
    free_pos = {j: i for i, j in enumerate(np.flatnonzero(free))}
    pick = [free_pos[j] for j in beta_idx]
    return LaplaceFit(
        extra=extra,
        beta=beta,
        cov_beta=cov[np.ix_(pick, pick)],
        sds={name: abs(float(s)) for name, s in zip(objective.re.names, sigma, strict=True)},
        loglik=-objective(x),
        converged=decrement < CONVERGED_DECREMENT,
        decrement=decrement,
        gradient_max=float(np.abs(grad).max()),
    )


def _bfgs(objective: LaplaceObjective, x: np.ndarray, free: np.ndarray, total: float) -> np.ndarray:
    """BFGS on the mean −log L over the free coordinates (the mean keeps the tolerance independent of n)."""
    idx = np.flatnonzero(free)

    def embed(z: np.ndarray) -> np.ndarray:
        full = x.copy()
        full[idx] = z
        return full

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective.value_and_gradient(embed(z))
        return value / total, grad[idx] / total

    res = optimize.minimize(fun, x[idx], jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 1000})
    return embed(res.x)


def _newton(
    objective: LaplaceObjective, x: np.ndarray, free: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Newton polish: returns the point, the Hessian of −log L there and the last Newton decrement."""
    idx = np.flatnonzero(free)
    hess = _hessian(objective, x, free)
    decrement = math.inf
    for _ in range(6):
        value, grad = objective.value_and_gradient(x)
        grad = grad[idx]
        try:
            step = -np.linalg.solve(hess[np.ix_(idx, idx)], grad)
        except np.linalg.LinAlgError:
            break
        decrement = abs(float(grad @ step)) / 2
        if decrement < 1e-12:
            break
        scale = 1.0
        while objective(trial := _moved(x, idx, scale * step)) > value:
            scale /= 2
            if scale < 1e-6:  # no ascent along the Newton direction: as far as the numbers go
                return x, hess, decrement
        x = trial
        if np.abs(scale * step).max() > 1e-4:  # moved far enough for the curvature to change
            hess = _hessian(objective, x, free)
    return x, hess, decrement


def _moved(x: np.ndarray, idx: np.ndarray, step: np.ndarray) -> np.ndarray:
    trial = x.copy()
    trial[idx] += step
    return trial
