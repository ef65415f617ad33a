"""CMA-ES with active (negative) weights, after N. Hansen, "The CMA Evolution Strategy: A
Tutorial", arXiv:1604.00772 (2016). Equation numbers below refer to that tutorial.

Search happens in the unit cube: proposals are sampled around the mean, clipped to ``[0, 1]``
for evaluation, and the distance to the box is added to the fitness as a quadratic penalty, so
the distribution is pulled back inside (a simple form of the boundary handling discussed in the
tutorial's appendix). The eigendecomposition of ``C`` is amortized: it is recomputed every
``ceil(1 / (10 d (c1 + c_mu)))`` generations (Sect. B.2).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import Strategy, check_population_size, check_space, sanitize_fitness


@struct.dataclass
class CMAESState:
    mean: jax.Array  # f32[d]
    sigma: jax.Array  # f32[]     step size
    cov: jax.Array  # f32[d, d]   C
    eig_vecs: jax.Array  # f32[d, d]   B (columns)
    eig_vals: jax.Array  # f32[d]      D (square roots of C's eigenvalues)
    p_sigma: jax.Array  # f32[d]     conjugate evolution path
    p_c: jax.Array  # f32[d]         evolution path of C
    y: jax.Array  # f32[pop, d]      last proposals' steps (x - m) / sigma, before clipping
    generation: jax.Array  # i32[]
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]


def cma_es_constants(d: int, pop: int) -> dict:
    """Default strategy parameters (Table 1 and Eqs. (49)-(58))."""
    mu = pop // 2
    w_prime = np.log((pop + 1) / 2) - np.log(np.arange(1, pop + 1))  # Eq. (49)
    pos, neg = w_prime[:mu], w_prime[mu:]
    mu_eff = pos.sum() ** 2 / (pos**2).sum()
    mu_eff_neg = neg.sum() ** 2 / (neg**2).sum() if neg.size and neg.sum() != 0 else 0.0
    alpha_cov = 2.0
    c1 = alpha_cov / ((d + 1.3) ** 2 + mu_eff)  # Eq. (57)
    c_mu = min(1 - c1, alpha_cov * (mu_eff - 2 + 1 / mu_eff)
               / ((d + 2) ** 2 + alpha_cov * mu_eff / 2))  # Eq. (58)
    alpha_mu_neg = 1 + c1 / c_mu if c_mu > 0 else 1.0  # Eq. (50)
    alpha_mueff_neg = 1 + 2 * mu_eff_neg / (mu_eff + 2)  # Eq. (51)
    alpha_posdef_neg = (1 - c1 - c_mu) / (d * c_mu) if c_mu > 0 else 1.0  # Eq. (52)
    neg_scale = min(alpha_mu_neg, alpha_mueff_neg, alpha_posdef_neg) / max(
        np.abs(neg[neg < 0]).sum(), 1e-12)
    weights = np.where(w_prime >= 0, w_prime / pos[pos > 0].sum(), w_prime * neg_scale)  # (53)
    c_sigma = (mu_eff + 2) / (d + mu_eff + 5)  # Eq. (55)
    d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (d + 1)) - 1) + c_sigma
    c_c = (4 + mu_eff / d) / (d + 4 + 2 * mu_eff / d)  # Eq. (56)
    chi_n = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))  # E||N(0, I)||
    eig_every = max(1, math.ceil(1 / (10 * d * (c1 + c_mu))))
    return dict(mu=mu, weights=weights.astype(np.float32), mu_eff=mu_eff, c1=c1, c_mu=c_mu,
                c_sigma=c_sigma, d_sigma=d_sigma, c_c=c_c, chi_n=chi_n, eig_every=eig_every)


def penalized_fitness(state, x, fitness, penalty: float) -> jax.Array:
    """NaN/inf-safe fitness plus ``penalty`` times the squared distance from each unclipped
    proposal ``mean + sigma * y`` to its clipped, evaluated version ``x``."""
    f, _ = sanitize_fitness(fitness)
    raw = state.mean + state.sigma * state.y
    return f + penalty * jnp.sum((raw - x) ** 2, axis=-1)


def check_cma_args(space, population_size, sigma0, mean0) -> tuple[int, int, np.ndarray]:
    """Validate CMA-ES arguments; returns ``(d, population_size, mean0)`` with defaults."""
    d = check_space(space)
    pop = check_population_size(population_size if population_size is not None
                                else 4 + int(3 * math.log(d)))
    if pop < 2:
        raise ValueError(f"population_size must be >= 2 for CMA-ES, got {pop}")
    if not (isinstance(sigma0, (int, float)) and sigma0 > 0):
        raise ValueError(f"sigma0 must be a positive number, got {sigma0!r}")
    m0 = np.full(d, 0.5, np.float32) if mean0 is None else np.asarray(mean0, np.float32)
    if m0.shape != (d,) or not np.all((m0 >= 0) & (m0 <= 1)):
        raise ValueError(f"mean0 must be f32[{d}] inside [0, 1], got {mean0!r}")
    return d, pop, m0


def cma_es(space, population_size: int | None = None, *, sigma0: float = 0.3,
           mean0=None, penalty: float = 1e3) -> Strategy:
    """CMA-ES (Hansen 2016) on the unit cube, with active covariance update.

    Args:
      space: the search space (categorical and integer coordinates are searched as
        continuous coordinates of their bins).
      population_size: lambda; default ``4 + floor(3 ln d)`` (Table 1).
      sigma0: initial step size in cube units.
      mean0: initial mean ``f32[d]`` in the cube (default: the centre).
      penalty: weight of the squared distance from a proposal to the cube, added to its
        fitness so the search stays inside.

    Returns:
      A :class:`jaxhpo.Strategy`; ``state.best_x`` holds the best point told so far.

    References:
      N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, 2016.
    """
    d, pop, m0 = check_cma_args(space, population_size, sigma0, mean0)
    k = cma_es_constants(d, pop)
    w = jnp.asarray(k["weights"])
    c1, c_mu, c_s, d_s, c_c = k["c1"], k["c_mu"], k["c_sigma"], k["d_sigma"], k["c_c"]
    mu_eff, chi_n = k["mu_eff"], k["chi_n"]

    def init(key):
        del key
        eye = jnp.eye(d, dtype=jnp.float32)
        return CMAESState(jnp.asarray(m0), jnp.float32(sigma0), eye, eye, jnp.ones(d),
                          jnp.zeros(d), jnp.zeros(d), jnp.zeros((pop, d)),
                          jnp.zeros((), jnp.int32), jnp.asarray(m0),
                          jnp.float32(np.finfo(np.float32).max))

    def ask(key, state):
        z = jax.random.normal(key, (pop, d))
        y = (z * state.eig_vals) @ state.eig_vecs.T  # y ~ N(0, C), Eq. (38)-(39)
        x = state.mean + state.sigma * y
        return jnp.clip(x, 0.0, 1.0), state.replace(y=y)

    def tell(state, x, fitness):
        f = penalized_fitness(state, x, fitness, penalty)
        order = jnp.argsort(f)
        y = state.y[order]  # y_{i:lambda}
        y_w = jnp.sum(w[: k["mu"], None] * y[: k["mu"]], axis=0)  # Eq. (41)
        mean = state.mean + state.sigma * y_w  # Eq. (42), c_m = 1
        b, dd = state.eig_vecs, state.eig_vals  # C^{-1/2} v = B D^{-1} B^T v: O(d^2), no d^3
        p_sigma = (1 - c_s) * state.p_sigma + math.sqrt(c_s * (2 - c_s) * mu_eff) * (
            b @ ((b.T @ y_w) / dd))  # Eq. (43)
        norm_ps = jnp.linalg.norm(p_sigma)
        sigma = state.sigma * jnp.exp(c_s / d_s * (norm_ps / chi_n - 1))  # Eq. (44)
        g = state.generation + 1
        h_sigma = (norm_ps / jnp.sqrt(1 - (1 - c_s) ** (2 * g)) <
                   (1.4 + 2 / (d + 1)) * chi_n).astype(jnp.float32)
        p_c = (1 - c_c) * state.p_c + h_sigma * math.sqrt(c_c * (2 - c_c) * mu_eff) * y_w  # (45)
        # Active update: negative weights rescaled by d / ||C^{-1/2} y||^2, Eq. (46)
        norm2 = jnp.sum(((y @ b) / dd) ** 2, axis=-1)
        w_o = jnp.where(w >= 0, w, w * d / jnp.maximum(norm2, 1e-12))
        delta_h = (1 - h_sigma) * c_c * (2 - c_c)
        rank_mu = (w_o[:, None] * y).T @ y
        cov = ((1 + c1 * delta_h - c1 - c_mu * jnp.sum(w)) * state.cov
               + c1 * jnp.outer(p_c, p_c) + c_mu * rank_mu)  # Eq. (47)
        cov = (cov + cov.T) / 2

        def decompose(c):
            vals, vecs = jnp.linalg.eigh(c)
            return vecs, jnp.sqrt(jnp.maximum(vals, 1e-20))

        eig_vecs, eig_vals = jax.lax.cond(g % k["eig_every"] == 0, decompose,
                                          lambda c: (state.eig_vecs, state.eig_vals), cov)
        # Keep the state finite and sigma in a sane range whatever the fitness was.
        ok = (jnp.all(jnp.isfinite(cov)) & jnp.isfinite(sigma) & jnp.all(jnp.isfinite(mean))
              & jnp.all(jnp.isfinite(eig_vals)))
        sigma = jnp.clip(sigma, 1e-12, 1e3)
        i = jnp.argmin(f)
        better = f[i] < state.best_fitness
        new = state.replace(mean=mean, sigma=sigma, cov=cov, eig_vecs=eig_vecs,
                            eig_vals=eig_vals, p_sigma=p_sigma, p_c=p_c, generation=g,
                            best_x=jnp.where(better, x[i], state.best_x),
                            best_fitness=jnp.where(better, f[i], state.best_fitness))
        fallback = state.replace(generation=g)
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, fallback)

    return Strategy(init, ask, tell, pop, d, "cma_es")
