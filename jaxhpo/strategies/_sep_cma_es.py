"""sep-CMA-ES: CMA-ES with a diagonal covariance, linear time and space in the dimension
(R. Ros and N. Hansen, "A Simple Modification in CMA-ES Achieving Linear Time and Space
Complexity", PPSN 2008).

The updates are those of :mod:`jaxhpo.strategies._cma_es` restricted to the diagonal of ``C``,
with the learning rates ``c1`` and ``c_mu`` multiplied by ``(d + 2) / 3`` (Sect. 2 of the paper)
since only ``d`` entries are learned. No eigendecomposition is needed. Positive recombination
weights only. Same unit-cube boundary handling as ``cma_es``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import Strategy
from jaxhpo.strategies._cma_es import check_cma_args, cma_es_constants, penalized_fitness


@struct.dataclass
class SepCMAESState:
    mean: jax.Array  # f32[d]
    sigma: jax.Array  # f32[]
    diag: jax.Array  # f32[d]     diagonal of C
    p_sigma: jax.Array  # f32[d]
    p_c: jax.Array  # f32[d]
    y: jax.Array  # f32[pop, d]   last proposals' steps (x - m) / sigma, before clipping
    generation: jax.Array  # i32[]
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]


def sep_cma_es(space, population_size: int | None = None, *, sigma0: float = 0.3,
               mean0=None, penalty: float = 1e3) -> Strategy:
    """Separable (diagonal) CMA-ES on the unit cube, for high dimensions.

    Args: as :func:`jaxhpo.strategies.cma_es`.

    References:
      R. Ros and N. Hansen, PPSN 2008.
    """
    d, pop, m0 = check_cma_args(space, population_size, sigma0, mean0, penalty)
    k = cma_es_constants(d, pop)
    mu = k["mu"]
    w = jnp.asarray(k["weights"][:mu])
    scale = (d + 2) / 3
    c1 = min(1.0, k["c1"] * scale)
    c_mu = min(1.0 - c1, k["c_mu"] * scale)
    c_s, d_s, c_c = k["c_sigma"], k["d_sigma"], k["c_c"]
    mu_eff, chi_n = k["mu_eff"], k["chi_n"]

    def init(key):
        del key
        return SepCMAESState(jnp.asarray(m0), jnp.float32(sigma0), jnp.ones(d, jnp.float32),
                             jnp.zeros(d), jnp.zeros(d), jnp.zeros((pop, d)),
                             jnp.zeros((), jnp.int32), jnp.asarray(m0),
                             jnp.float32(np.finfo(np.float32).max))

    def ask(key, state):
        y = jax.random.normal(key, (pop, d)) * jnp.sqrt(state.diag)
        x = state.mean + state.sigma * y
        return jnp.clip(x, 0.0, 1.0), state.replace(y=y)

    def tell(state, x, fitness):
        f = penalized_fitness(state, x, fitness, penalty)
        y = state.y[jnp.argsort(f)][:mu]
        y_w = w @ y
        mean = state.mean + state.sigma * y_w
        p_sigma = (1 - c_s) * state.p_sigma + math.sqrt(c_s * (2 - c_s) * mu_eff) * (
            y_w / jnp.sqrt(state.diag))
        norm_ps = jnp.linalg.norm(p_sigma)
        sigma = jnp.clip(state.sigma * jnp.exp(c_s / d_s * (norm_ps / chi_n - 1)), 1e-12, 1e3)
        g = state.generation + 1
        h = (norm_ps / jnp.sqrt(1 - (1 - c_s) ** (2 * g)) <
             (1.4 + 2 / (d + 1)) * chi_n).astype(jnp.float32)
        p_c = (1 - c_c) * state.p_c + h * math.sqrt(c_c * (2 - c_c) * mu_eff) * y_w
        diag = ((1 - c1 - c_mu + c1 * (1 - h) * c_c * (2 - c_c)) * state.diag
                + c1 * p_c**2 + c_mu * (w @ (y**2)))
        i = jnp.argmin(f)
        better = f[i] < state.best_fitness
        ok = jnp.isfinite(sigma) & jnp.all(jnp.isfinite(diag)) & jnp.all(diag > 0)
        new = state.replace(mean=mean, sigma=sigma, diag=diag, p_sigma=p_sigma, p_c=p_c,
                            generation=g, best_x=jnp.where(better, x[i], state.best_x),
                            best_fitness=jnp.where(better, f[i], state.best_fitness))
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state.replace(generation=g))

    return Strategy(init, ask, tell, pop, d, "sep_cma_es")
