"""Warm starts: configurations to evaluate first, and earlier trials told to a strategy before
its first ``ask`` (a ``History``, a run result, a journal, or an Optuna study read back).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import jax
import numpy as np

from jaxhpo._history import History
from jaxhpo._journal import read_journal
from jaxhpo._run import Targets, reserve
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy


def initial_points(space: Space, initial_params) -> np.ndarray:
    """``initial_params`` (a list of dicts, possibly partial) -> cube points ``f32[k, d]``.

    A missing parameter takes its ``default=`` from the space; inactive conditional parameters
    may be left out. Invalid entries raise before anything is evaluated, naming the entry.
    """
    if initial_params is None:
        return np.zeros((0, space.dim), np.float32)
    if isinstance(initial_params, Mapping) or not isinstance(initial_params, Sequence):
        raise TypeError("initial_params must be a list of dicts {name: value}, got "
                        f"{type(initial_params).__name__}")
    rows = []
    for i, given in enumerate(initial_params):
        if not isinstance(given, Mapping):
            raise TypeError(f"initial_params[{i}] must be a dict {{name: value}}, got "
                            f"{given!r}")
        filled = {n: space[n].default for n in space.names
                  if n not in given and space[n].default is not None}
        filled.update(given)
        try:
            rows.append(space.encode(filled))
        except (TypeError, ValueError) as e:
            raise ValueError(f"initial_params[{i}]: {e}; give every active parameter or set "
                             "its default= in the Space") from None
    return np.asarray(rows, np.float32).reshape(len(rows), space.dim)


def warm_start_data(space: Space, source, tg: Targets) -> tuple[np.ndarray, np.ndarray]:
    """Earlier trials to seed a strategy: ``(x f32[n, d], fitness f32[n] | f32[n, m])``.

    ``source``: a :class:`jaxhpo.History`, a result with a ``history`` (``Result``,
    ``TuneResult``), a journal path, or ``None``. Trials are re-encoded with this ``space`` (so
    they must fit it) and their values oriented by this run's directions; failed and diverged
    trials are left out.
    """
    if source is None:
        return np.zeros((0, space.dim), np.float32), np.zeros((0,), np.float32)
    done = _usable(source, tg)
    m = len(tg.directions)
    try:
        x = np.stack([space.encode(t.params) for t in done]) if done else np.zeros(
            (0, space.dim))
    except (TypeError, ValueError) as e:
        raise ValueError(f"warm_start: an earlier trial does not fit this space ({e}); seed "
                         "from a run on the same space") from None
    values = np.array([t.values for t in done], np.float64).reshape(len(done), m)
    return x.astype(np.float32), tg.fitness(values) if len(done) else np.zeros(
        (0,) if m == 1 else (0, m), np.float32)


def warm_start_constraints(space: Space, source, tg: Targets) -> np.ndarray:
    """``f32[n, k]`` constraint values of the trials :func:`warm_start_data` returns (same
    order), read by name from each trial's metrics (``NaN``, i.e. violated, where missing)."""
    k = len(tg.constraints)
    if source is None or not k:
        return np.zeros((0, k), np.float32)
    rows = [[t.metrics.get(c, math.nan) for c in tg.constraints] for t in _usable(source, tg)]
    return np.asarray(rows, np.float32).reshape(len(rows), k)


def _usable(source, tg: Targets) -> list:
    """The completed trials of a warm-start ``source`` with finite values for this run."""
    if isinstance(source, (str, os.PathLike)):
        from jaxhpo._journal import trials_by_number

        history = [t for t, _ in trials_by_number(read_journal(source)).values()]
    elif isinstance(source, History):
        history = list(source)
    elif isinstance(getattr(source, "history", None), History):
        history = list(source.history)
    else:
        raise TypeError(f"warm_start must be a History, a run result or a journal path, got "
                        f"{type(source).__name__}")
    done = [t for t in history if t.values is not None and t.status in ("ok", "stopped")
            and all(math.isfinite(v) for v in t.values)]
    return [t for t in done if len(t.values) == len(tg.directions)]


def digest(*arrays) -> str | None:
    """A short hash of arrays (``None`` when all are empty): the journal header's record of
    warm-start data, compared on resume."""
    if all(np.size(a) == 0 for a in arrays):
        return None
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


_MODEL_BASED = ("tpe", "gp_bo")  # strategies that learn from every told trial


def seed_chunks(strategy: Strategy, n: int) -> int:
    """How many populations :func:`seed` tells for ``n`` earlier trials (buffers are sized
    with this offset for the rest of the run)."""
    if n == 0:
        return 0
    model = strategy.reserve is not None or (strategy.config or {}).get(
        "factory") in _MODEL_BASED
    return -(-n // strategy.population_size) if model else 1


def seed(strategy: Strategy, state, x: np.ndarray, fitness: np.ndarray,
         constraints: np.ndarray | None = None):
    """Tell a fresh strategy state earlier trials, in populations of its size.

    Model-based strategies (an observation buffer: GP-BO, TPE) are told every trial, best
    last; the others (evolution strategies) are told the best population once, which moves
    their search distribution to it. A last partial population is filled with copies of the
    best trials. With ``constraints f32[n, k]`` (for a strategy built with
    ``num_constraints=k``) they are told too, and infeasible trials rank below feasible ones.
    """
    pop, chunks = strategy.population_size, seed_chunks(strategy, len(x))
    if chunks == 0:
        return state
    score = fitness if fitness.ndim == 1 else fitness.sum(-1)
    if constraints is not None:
        feasible = np.all(np.asarray(constraints) <= 0, axis=-1)  # NaN: infeasible
        score = np.where(feasible, score, np.inf)
    order = np.argsort(-score, kind="stable")[-chunks * pop:]  # worst first, best last
    pad = np.resize(order[::-1], chunks * pop - len(order))  # copies of the best
    idx = np.concatenate([pad, order]).astype(np.int64)
    tell = jax.jit(strategy.tell)
    for c in range(chunks):
        rows = idx[c * pop:(c + 1) * pop]
        state = reserve(strategy, state, c + 1)
        if constraints is None:
            state = tell(state, jax.numpy.asarray(x[rows]), jax.numpy.asarray(fitness[rows]))
        else:
            state = tell(state, jax.numpy.asarray(x[rows]), jax.numpy.asarray(fitness[rows]),
                         jax.numpy.asarray(constraints[rows]))
    return state
