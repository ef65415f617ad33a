"""CMA-ES with active (negative) weights, after N. Hansen, "The CMA Evolution Strategy: A
Tutorial", arXiv:1604.00772 (2016). Equation numbers below refer to that tutorial.

Search happens in the unit cube: proposals are sampled around the mean, clipped to ``[0, 1]``
for evaluation, and the distance to the box is added to the fitness as a quadratic penalty, so
the distribution is pulled back inside (a simple form of the boundary handling discussed in the
tutorial's appendix). The eigendecomposition of ``C`` is amortized: it is recomputed every
``ceil(1 / (10 d (c1 + c_mu)))`` generations (Sect. B.2).

The generation update is :func:`cma_update`, a function of the state, the ranked fitness and the
population-size-dependent constants passed as arrays (:class:`CMAParams`), so the restart
wrapper (:mod:`jaxhpo.strategies._cma_restarts`) runs the same update with constants selected by
a traced population level.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import (Strategy, check_population_size, check_real, check_space,
                              sanitize_fitness)


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


class CMAParams(NamedTuple):
    """The constants of one population size as arrays (a row of a table of them).

    ``weights`` may be longer than lambda, padded with zeros, so that tables for several
    population sizes stack; the fitness of a padding row must then be ``+inf`` (ranked last).
    """

    weights: np.ndarray  # f32[pop]    Eq. (53), zero beyond lambda
    ps_coef: np.ndarray  # f32[]       sqrt(c_sigma (2 - c_sigma) mu_eff), Eq. (43)
    ps_decay: np.ndarray  # f32[]      1 - c_sigma
    damp: np.ndarray  # f32[]          c_sigma / d_sigma, Eq. (44)
    pc_coef: np.ndarray  # f32[]       sqrt(c_c (2 - c_c) mu_eff), Eq. (45)
    pc_decay: np.ndarray  # f32[]      1 - c_c
    c1: np.ndarray  # f32[]
    c_mu: np.ndarray  # f32[]
    delta_h: np.ndarray  # f32[]       c_c (2 - c_c), the rank-one correction when h_sigma = 0
    eig_every: np.ndarray  # i32[]


def cma_params(d: int, pop: int, pad_to: int | None = None) -> CMAParams:
    """:class:`CMAParams` for dimension ``d`` and population size ``pop`` (padded to
    ``pad_to`` weights), computed in float64 and stored as float32."""
    k = cma_es_constants(d, pop)
    w = np.zeros(pad_to or pop, np.float32)
    w[:pop] = k["weights"]
    c_s, c_c, mu_eff = k["c_sigma"], k["c_c"], k["mu_eff"]
    f = np.float32
    return CMAParams(w, f(math.sqrt(c_s * (2 - c_s) * mu_eff)), f(1 - c_s),
                     f(c_s / k["d_sigma"]), f(math.sqrt(c_c * (2 - c_c) * mu_eff)), f(1 - c_c),
                     f(k["c1"]), f(k["c_mu"]), f(c_c * (2 - c_c)), np.int32(k["eig_every"]))


def cma_update(state: CMAESState, f: jax.Array, p: CMAParams) -> tuple[CMAESState, jax.Array]:
    """One CMA-ES generation: mean, step size, evolution paths, covariance, eigenbasis.

    Args:
      state: the distribution; ``state.y: f32[pop, d]`` holds the steps that were evaluated.
      f: ``f32[pop]`` finite fitness of those steps (``+inf`` for padding rows).
      p: the constants of the population size (``p.weights: f32[pop]``).

    Returns:
      ``(state, ok)``: the updated state (``generation`` incremented; everything else left
      unchanged when the update produced a non-finite value) and ``ok: bool[]``.
    """
    d = state.mean.shape[0]
    chi_n = math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2))  # E||N(0, I)||
    w = p.weights
    y = state.y[jnp.argsort(f)]  # y_{i:lambda}
    y_w = jnp.maximum(w, 0.0) @ y  # Eq. (41): the mu positive weights
    mean = state.mean + state.sigma * y_w  # Eq. (42), c_m = 1
    b, dd = state.eig_vecs, state.eig_vals  # C^{-1/2} v = B D^{-1} B^T v: O(d^2), no d^3
    p_sigma = p.ps_decay * state.p_sigma + p.ps_coef * (b @ ((b.T @ y_w) / dd))  # Eq. (43)
    norm_ps = jnp.linalg.norm(p_sigma)
    sigma = state.sigma * jnp.exp(p.damp * (norm_ps / chi_n - 1))  # Eq. (44)
    g = state.generation + 1
    h_sigma = (norm_ps / jnp.sqrt(1 - p.ps_decay ** (2 * g)) <
               (1.4 + 2 / (d + 1)) * chi_n).astype(jnp.float32)
    p_c = p.pc_decay * state.p_c + h_sigma * p.pc_coef * y_w  # Eq. (45)
    # Active update: negative weights rescaled by d / ||C^{-1/2} y||^2, Eq. (46)
    norm2 = jnp.sum(((y @ b) / dd) ** 2, axis=-1)
    w_o = jnp.where(w >= 0, w, w * d / jnp.maximum(norm2, 1e-12))
    rank_mu = (w_o[:, None] * y).T @ y
    cov = ((1 + p.c1 * (1 - h_sigma) * p.delta_h - p.c1 - p.c_mu * jnp.sum(w)) * state.cov
           + p.c1 * jnp.outer(p_c, p_c) + p.c_mu * rank_mu)  # Eq. (47)
    cov = (cov + cov.T) / 2

    def decompose(c):
        vals, vecs = jnp.linalg.eigh(c)
        return vecs, jnp.sqrt(jnp.maximum(vals, 1e-20))

    eig_vecs, eig_vals = jax.lax.cond(g % p.eig_every == 0, decompose,
                                      lambda c: (state.eig_vecs, state.eig_vals), cov)
    # Keep the state finite and sigma in a sane range whatever the fitness was.
    ok = (jnp.all(jnp.isfinite(cov)) & jnp.isfinite(sigma) & jnp.all(jnp.isfinite(mean))
          & jnp.all(jnp.isfinite(eig_vals)))
    new = state.replace(mean=mean, sigma=jnp.clip(sigma, 1e-12, 1e3), cov=cov,
                        eig_vecs=eig_vecs, eig_vals=eig_vals, p_sigma=p_sigma, p_c=p_c,
                        generation=g)
    fallback = state.replace(generation=g)
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, fallback), ok


def box_penalty(state, x, penalty: float) -> jax.Array:
    """``penalty`` times the squared distance from each unclipped proposal
    ``mean + sigma * y`` to its clipped, evaluated version ``x``: ``f32[pop]``."""
    raw = state.mean + state.sigma * state.y
    return penalty * jnp.sum((raw - x) ** 2, axis=-1)


def penalized_fitness(state, x, fitness, penalty: float) -> jax.Array:
    """NaN/inf-safe fitness plus the :func:`box_penalty`."""
    f, _ = sanitize_fitness(fitness)
    return f + box_penalty(state, x, penalty)


def update_best(state, x, f):
    """``state`` with ``best_x``/``best_fitness`` updated from proposals ``x`` with fitness
    ``f`` (finite, penalized)."""
    i = jnp.argmin(f)
    better = f[i] < state.best_fitness
    return state.replace(best_x=jnp.where(better, x[i], state.best_x),
                         best_fitness=jnp.where(better, f[i], state.best_fitness))


def check_cma_args(space, population_size, sigma0, mean0,
                   penalty=0.0) -> tuple[int, int, np.ndarray]:
    """Validate CMA-ES arguments; returns ``(d, population_size, mean0)`` with defaults."""
    check_real(penalty, "penalty", 0.0)
    d = check_space(space)
    pop = check_population_size(population_size if population_size is not None
                                else 4 + int(3 * math.log(d)))
    if pop < 2:
        raise ValueError(f"population_size must be >= 2 for CMA-ES, got {pop}")
    check_real(sigma0, "sigma0", 0.0, low_open=True)
    try:
        m0 = np.full(d, 0.5, np.float32) if mean0 is None else np.asarray(mean0, np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"mean0 must be f32[{d}] inside [0, 1], got {mean0!r}") from None
    if m0.shape != (d,) or not np.all((m0 >= 0) & (m0 <= 1)):
        raise ValueError(f"mean0 must be f32[{d}] inside [0, 1], got {mean0!r}")
    return d, pop, m0

def init_cma_state(m0, sigma0: float, pop: int) -> CMAESState:
    """The initial distribution: mean ``m0``, step size ``sigma0``, ``C = I``."""
    d = m0.shape[0]
    eye = jnp.eye(d, dtype=jnp.float32)
    return CMAESState(jnp.asarray(m0), jnp.float32(sigma0), eye, eye, jnp.ones(d),
                      jnp.zeros(d), jnp.zeros(d), jnp.zeros((pop, d)),
                      jnp.zeros((), jnp.int32), jnp.asarray(m0),
                      jnp.float32(np.finfo(np.float32).max))


def sample_steps(key, state: CMAESState, n: int) -> jax.Array:
    """``n`` steps ``y ~ N(0, C)`` as ``B D z``, Eqs. (38)-(39): ``f32[n, d]``."""
    z = jax.random.normal(key, (n, state.mean.shape[0]))
    return (z * state.eig_vals) @ state.eig_vecs.T


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

    Example:
      >>> s = jaxhpo.strategies.cma_es(space)            # restarts: cma_es_restarts
      >>> x, state = s.ask(jax.random.key(1), s.init(jax.random.key(0)))

    References:
      N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, 2016.
    """
    d, pop, m0 = check_cma_args(space, population_size, sigma0, mean0, penalty)
    params = cma_params(d, pop)

    def init(key):
        del key
        return init_cma_state(m0, sigma0, pop)

    def ask(key, state):
        y = sample_steps(key, state, pop)
        x = state.mean + state.sigma * y
        return jnp.clip(x, 0.0, 1.0), state.replace(y=y)

    def tell(state, x, fitness):
        f = penalized_fitness(state, x, fitness, penalty)
        new, _ = cma_update(state, f, params)
        return update_best(new, x, f)

    return Strategy(init, ask, tell, pop, d, "cma_es")
