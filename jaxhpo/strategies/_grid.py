"""Grid search over a regular grid of the space."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._strategy import Strategy, check_population_size, check_space


@struct.dataclass
class GridSearchState:
    index: jax.Array  # i32[]  index of the next grid point to propose


def grid_search(space, points_per_axis=5, population_size: int | None = None) -> Strategy:
    """Propose every point of ``space.grid(points_per_axis)`` exactly once, in order.

    The grid has ``N`` distinct configurations (see :meth:`jaxhpo.Space.grid`: floats get
    ``points_per_axis`` values including both bounds, ints at most that many distinct values,
    categoricals all choices, inactive conditional parameters merged). Generation ``g`` proposes
    grid points ``g*P .. g*P+P-1``; ``max_generations = ceil(N / P)``. Shapes are fixed, so past
    the end the proposals *wrap around* to the start of the grid: in the last generation,
    when ``P`` does not divide ``N``, the trailing rows repeat the first grid points. The driver
    (:func:`jaxhpo.minimize`) runs ``max_generations`` by default and records those repeats as
    ordinary trials.

    Args:
      space: the search space.
      points_per_axis: an int, or a mapping ``{name: int}`` (names not listed get 5).
      population_size: proposals per ``ask``; default ``N`` (the whole grid in one vmapped
        generation).

    Returns:
      A :class:`jaxhpo.Strategy` with ``max_generations`` set.
    """
    check_space(space)
    grid = jnp.asarray(space.grid(points_per_axis))
    n = grid.shape[0]
    pop = n if population_size is None else check_population_size(population_size)

    def init(key):
        del key
        return GridSearchState(index=jnp.zeros((), jnp.int32))

    def ask(key, state):
        del key
        idx = (state.index + jnp.arange(pop, dtype=jnp.int32)) % n
        return grid[idx], state.replace(index=(state.index + pop) % n)

    def tell(state, x, fitness):
        del x, fitness
        return state

    return Strategy(init, ask, tell, pop, space.dim, "grid_search", math.ceil(n / pop))
