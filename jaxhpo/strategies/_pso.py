"""Particle swarm optimization (Kennedy & Eberhart, "Particle Swarm Optimization", ICNN 1995)
with the inertia weight of Shi & Eberhart (1998) and the constriction-equivalent defaults
``w = 0.7298, c1 = c2 = 1.49618`` of Clerc & Kennedy (IEEE TEC 2002).

``v <- w v + c1 r1 (p_best - x) + c2 r2 (g_best - x)``; ``x <- x + v``, clipped to the cube
with the velocity component that hit the wall zeroed. Velocities are clamped to ``v_max``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import (Strategy, check_population_size, check_real, check_space,
                              sanitize_fitness)

_WORST = float(np.finfo(np.float32).max)


@struct.dataclass
class PSOState:
    position: jax.Array  # f32[pop, d]
    velocity: jax.Array  # f32[pop, d]
    best_position: jax.Array  # f32[pop, d]  personal bests
    best_fitness: jax.Array  # f32[pop]
    generation: jax.Array  # i32[]


def particle_swarm(space, population_size: int = 32, *, inertia: float = 0.7298,
                   cognitive: float = 1.49618, social: float = 1.49618,
                   v_max: float = 0.2) -> Strategy:
    """Global-best particle swarm on the unit cube.

    Args:
      space: the search space.
      population_size: particles.
      inertia, cognitive, social: ``w``, ``c1``, ``c2``.
      v_max: per-coordinate speed limit (cube units per generation).
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    check_real(inertia, "inertia")
    check_real(cognitive, "cognitive", 0.0)
    check_real(social, "social", 0.0)
    check_real(v_max, "v_max", 0.0, low_open=True)

    def init(key):
        k_x, k_v = jax.random.split(key)
        x = jax.random.uniform(k_x, (pop, d))
        v = jax.random.uniform(k_v, (pop, d), minval=-v_max, maxval=v_max)
        return PSOState(x, v, x, jnp.full((pop,), _WORST, jnp.float32), jnp.zeros((), jnp.int32))

    def ask(key, state):
        r1, r2 = jax.random.uniform(key, (2, pop, d))
        g_best = state.best_position[jnp.argmin(state.best_fitness)]
        v = (inertia * state.velocity + cognitive * r1 * (state.best_position - state.position)
             + social * r2 * (g_best - state.position))
        v = jnp.clip(v, -v_max, v_max)
        moved = state.position + v
        x = jnp.clip(moved, 0.0, 1.0)
        v = jnp.where(moved == x, v, 0.0)
        first = state.generation == 0
        return (jnp.where(first, state.position, x),
                state.replace(position=jnp.where(first, state.position, x),
                              velocity=jnp.where(first, state.velocity, v)))

    def tell(state, x, fitness):
        f, _ = sanitize_fitness(fitness)
        better = f < state.best_fitness
        return state.replace(best_position=jnp.where(better[:, None], x, state.best_position),
                             best_fitness=jnp.where(better, f, state.best_fitness),
                             generation=state.generation + 1)

    return Strategy(init, ask, tell, pop, d, "particle_swarm")
