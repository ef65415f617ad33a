"""Differential evolution (Storn & Price, "Differential Evolution – A Simple and Efficient
Heuristic for Global Optimization over Continuous Spaces", J. Global Optim. 1997).

Variants ``rand/1/bin`` (Eq. 1 of the paper: ``v = x_r1 + F (x_r2 - x_r3)``) and
``current-to-best/1/bin`` (``v = x_i + F (x_best - x_i) + F (x_r1 - x_r2)``), binomial
crossover with rate ``CR`` and one guaranteed mutant coordinate, greedy one-to-one selection.
The first generation proposes the initial population; each later ``ask`` proposes one trial
vector per member. Trials leaving the cube are reflected back inside.
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
class DEState:
    population: jax.Array  # f32[pop, d]  current members
    fitness: jax.Array  # f32[pop]        their (sanitized) fitness
    generation: jax.Array  # i32[]        0 until the initial population has been told


def distinct_others(key, pop: int, k: int) -> jax.Array:
    """``i32[pop, k]``: for each row ``i``, ``k`` distinct indices in ``[0, pop)`` other than i.

    O(pop * k^2): the j-th pick is uniform over the ``pop - 1 - j`` indices not yet excluded,
    drawn as an offset and shifted past the excluded ones in increasing order.
    """
    u = jax.random.randint(key, (pop, k), 0, pop - 1 - jnp.arange(k))
    excluded = jnp.arange(pop)[:, None]  # sorted per row
    picks = []
    for j in range(k):
        idx = u[:, j]
        for e in range(excluded.shape[1]):
            idx = idx + (idx >= excluded[:, e])
        picks.append(idx)
        excluded = jnp.sort(jnp.concatenate([excluded, idx[:, None]], axis=1), axis=1)
    return jnp.stack(picks, axis=1)


def reflect(x):
    """Reflect coordinates outside ``[0, 1]`` back inside (then clip for far excursions)."""
    x = jnp.where(x < 0, -x, x)
    x = jnp.where(x > 1, 2 - x, x)
    return jnp.clip(x, 0.0, 1.0)


def differential_evolution(space, population_size: int = 32, *, mutation: float = 0.8,
                           crossover: float = 0.9, variant: str = "rand/1") -> Strategy:
    """Differential evolution on the unit cube.

    Args:
      space: the search space.
      population_size: members (>= 4).
      mutation: the differential weight ``F``.
      crossover: the binomial crossover rate ``CR``.
      variant: ``"rand/1"`` or ``"current-to-best/1"``.
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    if pop < 4:
        raise ValueError(f"population_size must be >= 4 for differential evolution, got {pop}")
    if variant not in ("rand/1", "current-to-best/1"):
        raise ValueError(f"variant must be 'rand/1' or 'current-to-best/1', got {variant!r}")
    check_real(mutation, "mutation", 0.0, 2.0, low_open=True)  # F in (0, 2] (Storn & Price)
    check_real(crossover, "crossover", 0.0, 1.0)

    def init(key):
        return DEState(jax.random.uniform(key, (pop, d)), jnp.full((pop,), _WORST, jnp.float32),
                       jnp.zeros((), jnp.int32))

    def ask(key, state):
        k_idx, k_cr, k_j = jax.random.split(key, 3)
        x = state.population
        r = distinct_others(k_idx, pop, 3)
        if variant == "rand/1":
            v = x[r[:, 0]] + mutation * (x[r[:, 1]] - x[r[:, 2]])
        else:
            best = x[jnp.argmin(state.fitness)]
            v = x + mutation * (best - x) + mutation * (x[r[:, 0]] - x[r[:, 1]])
        take = jax.random.uniform(k_cr, (pop, d)) < crossover
        take = take | (jnp.arange(d) == jax.random.randint(k_j, (pop, 1), 0, d))
        trial = reflect(jnp.where(take, v, x))
        return jnp.where(state.generation == 0, x, trial), state

    def tell(state, x, fitness):
        f, _ = sanitize_fitness(fitness)
        better = f <= state.fitness
        return DEState(jnp.where(better[:, None], x, state.population),
                       jnp.where(better, f, state.fitness), state.generation + 1)

    return Strategy(init, ask, tell, pop, d, f"differential_evolution({variant})")
