"""The Strategy protocol: an immutable record of pure ``init/ask/tell`` functions.

Modelled on ``optax.GradientTransformation``: a factory such as
``jaxhpo.strategies.random_search(space, population_size)`` closes over static configuration
and returns a :class:`Strategy`; the strategy state is a pytree of fixed-shape arrays, so
``ask``/``tell`` compile once and can run under ``jit``, ``vmap`` and ``lax.scan``.

Fitness is *minimized*. ``NaN``/``inf`` fitness marks a failed or diverged trial; every strategy
treats it as the worst value it has seen and keeps its state finite.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

StrategyState = Any


class Strategy(NamedTuple):
    """A search strategy: pure functions plus the static facts a driver needs.

    Attributes:
      init: ``init(key) -> state``.
      ask: ``ask(key, state) -> (x, state)`` with ``x: f32[population_size, num_dims]`` in
        ``[0, 1]``.
      tell: ``tell(state, x, fitness) -> state`` with ``fitness: f32[population_size]`` (or
        ``f32[population_size, m]`` for multi-objective strategies), minimized, NaN/inf allowed.
      population_size: rows returned by each ``ask`` (a static Python int).
      num_dims: the search space's dimension ``d``.
      name: a short identifier recorded in journals.
      max_generations: ``None`` for strategies that can propose forever; otherwise the number
        of generations after which every proposal has been made (e.g. a finite grid).
      reserve: ``None``, or ``reserve(state, n) -> state`` for strategies whose state holds a
        buffer of observations that can grow: returns a state with room for ``n``
        observations (possibly larger arrays, so ``ask``/``tell`` retrace once per growth).
        Drivers call it outside ``jit``: :func:`jaxhpo.minimize` before each ``tell``
        (buffers double, so at most ``log2(n)`` compilations) and :func:`jaxhpo.minimize_scan`
        once for the whole run. Without it, a full buffer keeps its best observations.

    Example:
      >>> strategy = jaxhpo.strategies.random_search(space, population_size=16)
      >>> state = strategy.init(jax.random.key(0))
      >>> x, state = strategy.ask(jax.random.key(1), state)
      >>> state = strategy.tell(state, x, fitness)
    """

    init: Callable[[jax.Array], StrategyState]
    ask: Callable[[jax.Array, StrategyState], tuple[jax.Array, StrategyState]]
    tell: Callable[[StrategyState, jax.Array, jax.Array], StrategyState]
    population_size: int
    num_dims: int
    name: str = "strategy"
    max_generations: int | None = None
    reserve: Callable[[StrategyState, int], StrategyState] | None = None


def check_population_size(population_size, arg: str = "population_size") -> int:
    """Validate a static population size and return it as a Python int."""
    if isinstance(population_size, bool) or not isinstance(population_size, int):
        raise TypeError(f"{arg} must be a positive Python int, got {population_size!r}")
    if population_size < 1:
        raise ValueError(f"{arg} must be >= 1, got {population_size}")
    return population_size


def check_int(value, arg: str, low: int, high: int | None = None) -> int:
    """Validate a static integer setting ``low <= value (<= high)``; returns a Python int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{arg} must be an int {rng}, got {value!r}")
    return int(value)


def check_real(value, arg: str, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False):
    """Validate a real-valued setting: a finite number in ``[low, high]`` (ends open on request).

    JAX arrays pass through unchecked, so a strategy's float settings can be traced (vmapped
    over); Python numbers are returned as ``float``.
    """
    if isinstance(value, jax.Array):
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (
            ")" if high_open or high is None else "]")
        raise ValueError(f"{arg} must be a finite number in {interval}, got {value!r}")
    return float(value)


def check_space(space) -> int:
    """Validate that ``space`` is a :class:`jaxhpo.Space` and return its dimension."""
    from jaxhpo._space import Space

    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    return space.dim


def sanitize_fitness(fitness: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Replace NaN/inf fitness by a finite value worse than every finite one.

    Args:
      fitness: ``f32[pop]`` or ``f32[pop, m]``, minimized.

    Returns:
      ``(clean, ok)``: ``clean`` has the same shape with each non-finite entry replaced, per
      objective column, by ``max(finite) + 1 + |max(finite)|`` (``0`` if a column has no finite
      entry, i.e. every trial is equally bad); ``ok: bool[pop]`` marks rows whose every entry was
      finite.
    """
    f = jnp.asarray(fitness, jnp.float32)
    finite = jnp.isfinite(f)
    big = jnp.max(jnp.where(finite, f, -jnp.inf), axis=0)
    worst = jnp.where(jnp.isfinite(big), big + 1.0 + jnp.abs(big), 0.0)
    clean = jnp.where(finite, f, worst)
    ok = finite if f.ndim == 1 else jnp.all(finite, axis=-1)
    return clean, ok
