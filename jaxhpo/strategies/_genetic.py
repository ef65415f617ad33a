"""A genetic algorithm for mixed spaces: tournament selection, type-aware crossover and
mutation, (mu + lambda) survival (elitist).

Parents are chosen by binary tournaments (Goldberg & Deb, "A Comparative Analysis of Selection
Schemes Used in Genetic Algorithms", FOGA 1991). Children mix their parents coordinate-wise:
continuous genes by blend crossover BLX-alpha (Eshelman & Schaffer 1993), integer and
categorical genes by uniform crossover. Mutation respects each gene's kind (from the Space's
kind metadata): Gaussian for floats, a step of one or more bins for ints, a uniformly resampled
choice for categoricals. The next population is the best ``population_size`` of parents and
children together, so the best member is never lost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._space import CATEGORICAL, FLOAT, INT
from jaxhpo._strategy import (Strategy, check_int, check_population_size, check_real,
                              check_space, sanitize_fitness)

_WORST = float(np.finfo(np.float32).max)


@struct.dataclass
class GeneticState:
    population: jax.Array  # f32[pop, d]
    fitness: jax.Array  # f32[pop]
    generation: jax.Array  # i32[]


def genetic_algorithm(space, population_size: int = 32, *, mutation_rate: float | None = None,
                      mutation_scale: float = 0.1, blend: float = 0.5,
                      tournament: int = 2) -> Strategy:
    """Elitist genetic algorithm on the unit cube, aware of int and categorical genes.

    Args:
      space: the search space (its ``kinds`` and ``num_choices`` drive crossover/mutation).
      population_size: members and children per generation.
      mutation_rate: per-gene mutation probability (default ``1 / d``).
      mutation_scale: standard deviation of float mutations (cube units).
      blend: BLX-alpha's alpha for float genes.
      tournament: tournament size for parent selection.
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    if pop < 2:
        raise ValueError(f"population_size must be >= 2, got {pop}")
    rate = 1.0 / d if mutation_rate is None else mutation_rate
    check_real(rate, "mutation_rate", 0.0, 1.0)
    check_real(mutation_scale, "mutation_scale", 0.0, low_open=True)
    check_real(blend, "blend", 0.0)
    check_int(tournament, "tournament", 1, pop)
    kinds = jnp.asarray(space.kinds)
    bins = jnp.maximum(jnp.asarray(space.num_choices, jnp.float32), 1.0)

    def init(key):
        return GeneticState(jax.random.uniform(key, (pop, d)), jnp.full((pop,), _WORST, jnp.float32),
                            jnp.zeros((), jnp.int32))

    def select(key, fitness):
        cand = jax.random.randint(key, (pop, tournament), 0, pop)
        return jnp.take_along_axis(cand, jnp.argmin(fitness[cand], axis=1)[:, None], 1)[:, 0]

    def ask(key, state):
        k1, k2, k_mix, k_blx, k_mut, k_g, k_step, k_size, k_cat = jax.random.split(key, 9)
        a = state.population[select(k1, state.fitness)]
        b = state.population[select(k2, state.fitness)]
        lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
        span = hi - lo
        blx = jax.random.uniform(k_blx, (pop, d), minval=lo - blend * span,
                                 maxval=hi + blend * span)
        uniform = jnp.where(jax.random.bernoulli(k_mix, 0.5, (pop, d)), a, b)
        child = jnp.where(kinds == FLOAT, blx, uniform)
        mutate = jax.random.bernoulli(k_mut, rate, (pop, d))
        gauss = child + mutation_scale * jax.random.normal(k_g, (pop, d))
        steps = jnp.where(jax.random.bernoulli(k_step, 0.5, (pop, d)), 1.0, -1.0)
        int_step = child + steps * (1.0 + jnp.floor(jnp.abs(jax.random.normal(k_size, (pop, d))))
                                    ) / bins
        resample = jax.random.uniform(k_cat, (pop, d))
        mutated = jnp.select([kinds == FLOAT, kinds == INT, kinds == CATEGORICAL],
                             [gauss, int_step, resample])
        child = jnp.clip(jnp.where(mutate, mutated, child), 0.0, 1.0)
        return jnp.where(state.generation == 0, state.population, child), state

    def tell(state, x, fitness):
        f, _ = sanitize_fitness(fitness)
        first = state.generation == 0
        all_x = jnp.concatenate([state.population, x])
        all_f = jnp.concatenate([jnp.where(first, _WORST, state.fitness), f])
        keep = jnp.argsort(all_f)[:pop]
        return GeneticState(all_x[keep], all_f[keep], state.generation + 1)

    return Strategy(init, ask, tell, pop, d, "genetic_algorithm")
