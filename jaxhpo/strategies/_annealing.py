"""Simulated annealing with a batch of independent chains (Kirkpatrick, Gelatt & Vecchi,
"Optimization by Simulated Annealing", Science 1983).

Each of the ``population_size`` chains proposes ``x' = x + N(0, s_t^2)`` (reflected into the
cube) and accepts with the Metropolis probability ``min(1, exp(-(f' - f) / T_t))``. Geometric
cooling ``T_t = T_0 a^t`` and step size ``s_t = s_0 sqrt(T_t / T_0)`` (floored at ``s_min``).
Fitness differences are divided by the chains' fitness spread of the first generation, so
``T_0 = 1`` is sensible whatever the objective's scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import (Strategy, check_population_size, check_real, check_space,
                              sanitize_fitness)
from jaxhpo.strategies._de import reflect

_WORST = float(np.finfo(np.float32).max)


@struct.dataclass
class AnnealingState:
    current: jax.Array  # f32[pop, d]  each chain's state
    fitness: jax.Array  # f32[pop]
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]
    scale: jax.Array  # f32[]          fitness scale from the first generation
    key: jax.Array  # PRNG key for the acceptance test (drawn in ask)
    generation: jax.Array  # i32[]


def simulated_annealing(space, population_size: int = 16, *, t0: float = 1.0,
                        cooling: float = 0.95, step: float = 0.2,
                        min_step: float = 1e-3) -> Strategy:
    """Batched simulated annealing on the unit cube.

    Args:
      space: the search space.
      population_size: independent chains.
      t0: initial temperature (in units of the first generation's fitness spread).
      cooling: geometric cooling factor per generation, in ``(0, 1)``.
      step, min_step: initial and smallest proposal standard deviation (cube units).
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    check_real(t0, "t0", 0.0, low_open=True)
    check_real(cooling, "cooling", 0.0, 1.0, low_open=True, high_open=True)
    check_real(step, "step", 0.0, low_open=True)
    check_real(min_step, "min_step", 0.0, low_open=True)

    def init(key):
        k_x, k_acc = jax.random.split(key)
        return AnnealingState(jax.random.uniform(k_x, (pop, d)), jnp.full((pop,), _WORST, jnp.float32),
                              jnp.full((d,), 0.5, jnp.float32), jnp.float32(_WORST), jnp.float32(1.0),
                              k_acc, jnp.zeros((), jnp.int32))

    def temperature(g):
        return t0 * cooling ** g.astype(jnp.float32)

    def ask(key, state):
        k_step, k_acc = jax.random.split(key)
        s = jnp.maximum(step * jnp.sqrt(temperature(state.generation) / t0), min_step)
        prop = reflect(state.current + s * jax.random.normal(k_step, (pop, d)))
        return jnp.where(state.generation == 0, state.current, prop), state.replace(key=k_acc)

    def tell(state, x, fitness):
        f, _ = sanitize_fitness(fitness)
        first = state.generation == 0
        scale = jnp.where(first, jnp.maximum(jnp.std(f), 1e-12), state.scale)
        delta = (f - state.fitness) / scale
        t = temperature(state.generation)
        accept = first | (jax.random.uniform(state.key, (pop,)) <
                          jnp.exp(-jnp.clip(delta, 0.0, 80.0) / t))
        i = jnp.argmin(f)
        better = f[i] < state.best_fitness
        return state.replace(current=jnp.where(accept[:, None], x, state.current),
                             fitness=jnp.where(accept, f, state.fitness),
                             best_x=jnp.where(better, x[i], state.best_x),
                             best_fitness=jnp.where(better, f[i], state.best_fitness),
                             scale=scale, generation=state.generation + 1)

    return Strategy(init, ask, tell, pop, d, "simulated_annealing")
