"""The Strategy protocol: an immutable record of pure ``init/ask/tell`` functions.

Modelled on ``optax.GradientTransformation``: a factory such as
``jaxhpo.strategies.random_search(space, population_size)`` closes over static configuration
and returns a :class:`Strategy`; the strategy state is a pytree of fixed-shape arrays, so
``ask``/``tell`` compile once and can run under ``jit``, ``vmap`` and ``lax.scan``.

Fitness is *minimized*. ``NaN``/``inf`` fitness marks a failed or diverged trial; every strategy
treats it as the worst value it has seen and keeps its state finite.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

# The argument checks live in jaxhpo._validate; re-exported here for the strategies' imports.
from jaxhpo._validate import (check_int, check_population_size, check_real,  # noqa: E402,F401
                              check_space)

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
        It is shape logic on a static count, so it also runs while ``jit`` traces. The run
        layer sizes every buffer through one helper (``jaxhpo._run.reserve``): before each
        ``tell`` in :func:`jaxhpo.minimize` and the ``tune`` proposer (buffers double, so at
        most ``log2(n)`` compilations), when a journaled state is restored, and once, inside
        the traced run, for :func:`jaxhpo.minimize_scan`. Without it, a full buffer keeps its
        best observations.
      config: the factory's settings (``{"factory": name, argument: value, ...}``), recorded by
        :func:`recorded_settings` for every factory in :mod:`jaxhpo.strategies`; journals store
        it and ``resume`` refuses a run whose strategy settings differ. ``None`` for a
        hand-built Strategy (then only ``name`` is compared).
      num_constraints: ``k > 0`` for a strategy built to handle ``k`` constraints (a factory
        argument ``num_constraints=k``): its ``tell`` then takes a fourth argument
        ``constraints: f32[population_size, k]``; a trial is feasible when every value is
        ``<= 0`` (Optuna's convention) and a NaN constraint value counts as violated. ``0``:
        ``tell`` takes three arguments and the drivers still keep infeasible trials out of
        ``best_*``.

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
    config: dict | None = None
    num_constraints: int = 0


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


def recorded_settings(factory: Callable[..., Strategy]) -> Callable[..., Strategy]:
    """Wrap a strategy factory so the Strategy it returns carries its settings in ``config``.

    Every argument but ``space`` is recorded, defaults included, in the journal encoding (a
    value it cannot encode, e.g. a function, is recorded by its type or qualified name).
    """
    import functools
    import inspect

    from jaxhpo._journal import normalized

    sig = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args, **kwargs) -> Strategy:
        strategy = factory(*args, **kwargs)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:  # the factory accepted it, so this cannot happen; record nothing
            return strategy
        bound.apply_defaults()
        strategy = strategy._replace(tell=_checked_tell(strategy))
        config = {"factory": factory.__name__}
        for name, value in bound.arguments.items():
            if name == "space":
                continue
            try:
                config[name] = normalized(value)
            except (TypeError, ValueError):
                config[name] = "<" + getattr(value, "__qualname__",
                                             type(value).__qualname__) + ">"
        return strategy._replace(config=config)

    return make


def _checked_tell(strategy: Strategy):
    """``strategy.tell`` with its arguments' shapes checked (shapes are static, so this costs
    nothing under ``jit``): a wrong shape is a ValueError naming the argument, not a
    broadcasting error from deep inside the strategy."""
    tell, pop, d = strategy.tell, strategy.population_size, strategy.num_dims
    k = strategy.num_constraints

    def checked(state, x, fitness, constraints=None):
        if (constraints is None) != (k == 0):
            raise ValueError(
                f"{strategy.name}.tell: " + (
                    f"this strategy was built with num_constraints={k}: pass "
                    f"constraints=f32[{pop}, {k}] (feasible when <= 0)" if k else
                    "this strategy was built without constraints (num_constraints=0): build it "
                    "with num_constraints=k to pass constraint values"))
        if constraints is not None and tuple(jnp.shape(constraints)) != (pop, k):
            raise ValueError(f"{strategy.name}.tell: constraints must be f32[{pop}, {k}], got "
                             f"shape {tuple(jnp.shape(constraints))}")
        if tuple(jnp.shape(x)) != (pop, d):
            raise ValueError(f"{strategy.name}.tell: x must be f32[{pop}, {d}] (what ask "
                             f"returned), got shape {tuple(jnp.shape(x))}")
        shape = tuple(jnp.shape(fitness))
        if shape[:1] != (pop,) or len(shape) > 2:
            raise ValueError(f"{strategy.name}.tell: fitness must be f32[{pop}] (one value per "
                             f"member; f32[{pop}, m] for several objectives), got shape {shape}")
        if constraints is None:
            return tell(state, x, fitness)
        return tell(state, x, fitness, constraints)

    return checked
