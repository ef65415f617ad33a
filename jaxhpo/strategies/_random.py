"""Random search (Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._space import Space
from jaxhpo._strategy import Strategy, check_population_size, check_space


@struct.dataclass
class RandomSearchState:
    generation: jax.Array  # i32[]


def random_search(space: Space, population_size: int) -> Strategy:
    """Independent uniform proposals over the unit cube.

    Args:
      space: the search space (only its dimension is used).
      population_size: proposals per ``ask``.

    Returns:
      A :class:`jaxhpo.Strategy`; ``tell`` only counts generations.

    Example:
      >>> s = jaxhpo.strategies.random_search(space, 64)
      >>> x, state = s.ask(jax.random.key(1), s.init(jax.random.key(0)))   # f32[64, d]
    """
    pop = check_population_size(population_size)
    d = check_space(space)

    def init(key):
        del key
        return RandomSearchState(generation=jnp.zeros((), jnp.int32))

    def ask(key, state):
        return jax.random.uniform(key, (pop, d), jnp.float32), state

    def tell(state, x, fitness):
        del x, fitness
        return state.replace(generation=state.generation + 1)

    return Strategy(init, ask, tell, pop, d, "random_search")
