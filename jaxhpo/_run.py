"""The run layer shared by :func:`jaxhpo.minimize`, :func:`jaxhpo.minimize_scan` and
:func:`jaxhpo.tune`: one setup, one key schedule, one journal header and resume check, one
Python-trial evaluator, one buffer-sizing helper. Progress and callbacks live in
:mod:`jaxhpo._monitor`, warm starts in :mod:`jaxhpo._warm`.

Keys: a run's ``key`` is split into ``(k_init, k_run)``; ask number ``g`` uses
``split(fold_in(k_run, g))`` into ``(k_ask, k_eval)``, and member ``i`` of a JAX-native objective
gets ``split(k_eval, population_size)[i]``. Every driver derives keys this way, so the same
settings propose the same trials, and a resumed run re-creates exactly the proposals it lost.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jaxhpo._history import DIVERGED, FAILED, OK, Trial
from jaxhpo._journal import (FORMAT, VERSION, Journal, JournalContents, normalized,
                             read_journal)
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy
from jaxhpo._validate import as_key, check_path

_DIRECTIONS = ("minimize", "maximize")


# ---------------------------------------------------------------------------- objectives
def objective_kind(objective, objective_type: str = "auto") -> str:
    """``"jax"`` for ``fn(key, hparams)``, ``"python"`` for ``fn(params)``, ``"trial"`` for
    ``fn(params, trial)`` (Optuna-style reporting, for :func:`jaxhpo.tune`).

    With ``objective_type="auto"`` the decision is by signature: one required positional
    parameter is a Python objective; two are JAX-native unless the second is named ``trial``.
    """
    if objective_type not in ("auto", "jax", "python"):
        raise ValueError(
            f"objective_type must be 'auto', 'jax' or 'python', got {objective_type!r}")
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    try:
        sig = inspect.signature(objective)
    except (TypeError, ValueError):
        sig = None
    required, star = None, False
    if sig is not None:
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = list(sig.parameters.values())
        required = [p for p in params if p.kind in kinds and p.default is p.empty]
        star = any(p.kind == p.VAR_POSITIONAL for p in params)
        positional = [p for p in params if p.kind in kinds]
    if objective_type != "auto":
        if objective_type == "jax" and required is not None and not star and (
                len(required) > 2 or len(positional) < 2):
            raise TypeError(f"objective_type='jax' needs fn(key, hparams), but the objective "
                            f"takes {sig}; pass objective_type='python' for fn(params)")
        return objective_type
    if required is not None:
        if len(required) == 2:
            return "trial" if required[1].name == "trial" else "jax"
        if len(required) == 1:
            return "python"
    raise TypeError(
        "cannot tell the objective's kind from its signature: a JAX-native objective is "
        "fn(key, hparams), a Python one fn(params); pass objective_type='jax' or 'python'")


@dataclass(frozen=True)
class Targets:
    """The objective metric names (``None``: learned from the first result), directions and
    constraint metric names (feasible when ``<= 0``)."""

    names: tuple[str, ...] | None
    directions: tuple[str, ...]
    constraints: tuple[str, ...] = ()

    @property
    def sign(self) -> np.ndarray:
        """``f32[m]``: +1 to minimize, -1 to maximize."""
        return np.array([1.0 if d == "minimize" else -1.0 for d in self.directions], np.float32)

    def fitness(self, values) -> np.ndarray:
        """``f[n, m]`` values in the user's directions -> minimized ``f32[n]`` / ``f32[n, m]``."""
        f = (np.asarray(values, np.float64) * self.sign).astype(np.float32)
        return f[:, 0] if f.shape[1] == 1 else f

    def resolve(self, keys: Sequence[str], scalar: bool) -> "Targets":
        """Check the objective's outputs ``keys`` against the names; name a scalar output."""
        keys = list(keys)
        if self.names is None:
            # the constraint metrics are not candidates for the objective
            keys = [k for k in keys if k not in self.constraints] or keys
            if scalar or len(keys) == 1:
                if len(self.directions) != 1:
                    raise ValueError(f"direction names {len(self.directions)} objectives but "
                                     f"the objective returns one value")
                return dataclasses.replace(self, names=tuple(keys))
            raise ValueError(
                f"the objective returns several metrics {keys}; name the one to optimize "
                "with metric='name' (or a list of names for multi-objective strategies)")
        missing = [n for n in self.names if n not in keys]
        if missing:
            from jaxhpo._validate import closest

            hint = closest(missing[0], keys)
            raise ValueError(f"metric {missing} not among the objective's outputs {keys}"
                             + (f"; did you mean {hint!r}?" if hint else ""))
        return self

    def check_constraint_outputs(self, keys: Sequence[str]) -> None:
        """A JAX-native objective's outputs (known before any evaluation) must include every
        constraint metric."""
        missing = [c for c in self.constraints if c not in keys]
        if missing:
            from jaxhpo._validate import closest

            hint = closest(missing[0], list(keys))
            raise ValueError(f"constraints {missing} not among the objective's outputs "
                             f"{list(keys)}; return them in the objective's dict"
                             + (f" (did you mean {hint!r}?)" if hint else ""))

    def constraint_values(self, metrics: Mapping[str, float] | None) -> list[float] | None:
        """The constraint values of one trial's ``metrics`` (``NaN``, i.e. infeasible, where
        one is missing); ``None`` for a run without constraints."""
        if not self.constraints:
            return None
        metrics = metrics or {}
        missing = [c for c in self.constraints if c not in metrics]
        if missing and metrics:
            warnings.warn(f"the objective returned no {missing} (outputs {list(metrics)}): the "
                          "trial counts as infeasible; return every constraint in the dict",
                          stacklevel=3)
        return [float(metrics.get(c, math.nan)) for c in self.constraints]


def check_constraint_names(constraints) -> tuple[str, ...]:
    """``constraints`` (``None``, a name or a list of metric names) -> a tuple of names."""
    if constraints is None:
        return ()
    if isinstance(constraints, str):
        constraints = [constraints]
    if not isinstance(constraints, Sequence) or not all(
            isinstance(c, str) and c for c in constraints):
        raise TypeError(f"constraints must be a list of metric names (each feasible when <= "
                        f"0), got {constraints!r}")
    if len(set(constraints)) != len(constraints):
        raise ValueError(f"constraints lists a name twice: {list(constraints)}")
    return tuple(constraints)


def targets(metric, direction, constraints=None) -> Targets:
    """Validate ``metric`` (a name, a list of names or ``None``), ``direction`` and
    ``constraints`` (metric names, feasible when ``<= 0``)."""
    if metric is None:
        names = None
    elif isinstance(metric, str):
        names = (metric,)
    elif isinstance(metric, Sequence) and metric and all(isinstance(m, str) for m in metric):
        names = tuple(metric)
        if len(set(names)) != len(names):
            raise ValueError(f"metric lists a name twice: {list(names)}")
    else:
        raise TypeError(f"metric must be a metric name or a list of names, got {metric!r}")
    dirs = [direction] if isinstance(direction, str) else direction
    if not isinstance(dirs, Sequence) or not dirs:
        raise TypeError(f"direction must be 'minimize', 'maximize' or a list, got {direction!r}")
    for d in dirs:
        if d not in _DIRECTIONS:
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {d!r}")
    n = 1 if names is None else len(names)
    dirs = list(dirs) * n if len(dirs) == 1 and n > 1 else list(dirs)
    if len(dirs) != n:
        raise ValueError(f"direction has {len(dirs)} entries but metric names {n} objectives"
                         + ("; name them with metric=[...]" if names is None else ""))
    return Targets(names, tuple(dirs), check_constraint_names(constraints))


def objective_columns(strategy: Strategy) -> int | None:
    """How many fitness columns ``strategy.tell`` takes, from its recorded settings (``None``
    for a hand-built strategy: unknown)."""
    config = strategy.config or {}
    factory = config.get("factory")
    if factory is None or factory in ("random_search", "quasi_random", "grid_search"):
        return None  # unknown (hand-built), or the strategy ignores fitness
    if factory == "nsga2":
        return int(config["num_objectives"])
    if factory == "ars_augmented":
        return 1 + len(config.get("cost_weights") or ())
    return 1


def check_objectives(strategy: Strategy, tg: Targets) -> None:
    """The metrics named must match what the strategy's ``tell`` takes, before any evaluation."""
    want, m = objective_columns(strategy), len(tg.directions)
    if want is None or m == want or (tg.names is None and m == 1):
        return
    if want == 1:
        raise ValueError(
            f"strategy {strategy.name!r} optimizes one objective but metric names {m} "
            f"({list(tg.names or [])}); pass one metric, or use a multi-objective strategy "
            "such as jaxhpo.strategies.nsga2(space, pop, num_objectives=...)")
    raise ValueError(f"strategy {strategy.name!r} takes {want} objective columns but metric "
                     f"names {m}; pass metric=[...] with {want} names")


def check_constraints(strategy: Strategy, tg: Targets) -> bool:
    """Whether ``strategy.tell`` receives the constraint values (``True`` when it was built
    with ``num_constraints == len(constraints)``).

    A strategy without constraint support (``num_constraints == 0``) runs unconstrained, with a
    warning naming the fix; any other count mismatch is a ValueError before any evaluation.
    """
    k, n = strategy.num_constraints, len(tg.constraints)
    if k == n:
        return k > 0
    if k == 0:
        factory = _factory(strategy)
        if factory is not None and "num_constraints" in _parameters(factory):
            fix = (f"build it with jaxhpo.strategies.{factory.__name__}(..., "
                   f"num_constraints={n}) so it searches the feasible region")
        else:
            fix = ("strategies that use them: " + ", ".join(_constrained_factories())
                   + f" (num_constraints={n})")
        warnings.warn(
            f"strategy {strategy.name!r} does not use constraints: it runs unconstrained "
            f"(constraints {list(tg.constraints)} are still recorded and best_* considers "
            f"feasible trials only); {fix}", stacklevel=3)
        return False
    raise ValueError(
        f"strategy {strategy.name!r} was built with num_constraints={k} but the run names {n} "
        f"constraints ({list(tg.constraints)}); pass constraints=[...] with {k} metric names or "
        f"build the strategy with num_constraints={n}")


def _factory(strategy: Strategy):
    import jaxhpo.strategies as strategies

    name = (strategy.config or {}).get("factory")
    return getattr(strategies, name, None) if name else None


def _parameters(fn) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def _constrained_factories() -> list[str]:
    import jaxhpo.strategies as strategies

    return [n for n in sorted(getattr(strategies, "REGISTRY", {}) or [])
            if "num_constraints" in _parameters(getattr(strategies, n, None))]


class ObjectiveOutputError(TypeError):
    """A Python objective returned something that is not a number: a bug in the objective, so
    it ends the run (with every completed trial journaled) instead of failing trial after
    trial."""


def python_metrics(out, allow_none: bool = False) -> tuple[dict[str, float] | None, bool]:
    """A Python objective's return value -> ``({name: float}, was_scalar)``.

    Numbers only: a ``str``, ``bool``, complex or non-scalar value is an error that names the
    metric and what to return instead.
    """
    if out is None and allow_none:
        return None, True
    items, scalar = (list(out.items()), False) if isinstance(out, Mapping) else (
        [("value", out)], True)
    metrics = {}
    for k, v in items:
        if isinstance(v, (np.ndarray, jax.Array)) and np.size(v) == 1:
            v = np.asarray(v).reshape(()).item() if v.dtype.kind in "biufc" else v
        ok = isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        if not ok:
            what = "the objective's return value" if scalar else f"metric {k!r}"
            raise ObjectiveOutputError(
                f"a Python objective must return a real number or a dict of real numbers; "
                f"{what} is {v!r} ({type(v).__name__})"
                + ("; convert it with float(...)" if isinstance(v, str) else ""))
        metrics[str(k)] = float(v)
    if not metrics:
        raise ObjectiveOutputError("a Python objective returned an empty dict; return "
                                   "{'metric': value}")
    return metrics, scalar


@dataclass
class Outcome:
    """What one Python trial produced: ``metrics`` (``None`` if it failed), or ``error``."""

    metrics: dict[str, float] | None
    scalar: bool
    error: str | None
    wall_time: float
    result: Any = None  # the objective's raw return value (tune: None = use the last report)


def call_python(fn, *args, allow_none: bool = False) -> Outcome:
    """Run one Python trial: its exceptions are failed trials; a result that is not a number
    raises :class:`ObjectiveOutputError`."""
    from jaxhpo._tune_python import StopTrial

    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except StopTrial:
        return Outcome(None, True, "StopTrial", time.perf_counter() - t0)
    except Exception as e:  # a failing trial must not end the run
        return Outcome(None, True, f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    metrics, scalar = python_metrics(out, allow_none)  # a wrong type ends the run (a bug)
    return Outcome(metrics, scalar, None, time.perf_counter() - t0, out)


def make_trial(space: Space, number: int, generation: int, member: int, x, metrics, values,
               *, error: str | None = None, status: str | None = None,
               wall_time: float = 0.0, fidelity=None, constraints=None) -> Trial:
    """A :class:`Trial` record; the status follows the values unless given."""
    params = space.to_params(np.asarray(x))
    if status is None:
        if values is None:
            status = FAILED
        else:
            status = OK if all(math.isfinite(v) for v in values) else DIVERGED
    return Trial(number=number, generation=generation, member=member,
                 x=[float(v) for v in np.asarray(x).ravel()], params=params,
                 inactive=space.inactive_names(params), metrics=dict(metrics or {}),
                 values=None if values is None else [float(v) for v in values], status=status,
                 error=error, wall_time=wall_time, timestamp=time.time(),
                 fidelity=None if fidelity is None else float(fidelity),
                 constraints=None if constraints is None else [float(c) for c in constraints])


# ---------------------------------------------------------------------------- keys, buffers
def run_keys(key) -> tuple[jax.Array, jax.Array]:
    """``(k_init, k_run)`` of a run's ``key``."""
    k_init, k_run = jax.random.split(as_key(key))
    return k_init, k_run


def ask_keys(k_run, g) -> tuple[jax.Array, jax.Array]:
    """``(k_ask, k_eval)`` of ask number ``g``."""
    k_ask, k_eval = jax.random.split(jax.random.fold_in(k_run, g))
    return k_ask, k_eval


def reserve(strategy: Strategy, state, generations: int):
    """Give a model-based strategy's buffer room for ``generations`` told populations.

    The one place buffers are sized: before each ``tell`` (``generations = g + 1``), when a
    journaled state is restored (its size at the time), and once for a whole
    :func:`jaxhpo.minimize_scan` run. ``reserve`` is plain shape logic on a static count, so it
    also works while ``jit`` traces; a buffer that grows retraces ``ask``/``tell`` once (sizes
    double).
    """
    if strategy.reserve is None:
        return state
    return strategy.reserve(state, generations * strategy.population_size)


# ---------------------------------------------------------------------------- setup
def check_strategy(space, strategy) -> None:
    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    if not isinstance(strategy, Strategy):
        raise TypeError(
            f"strategy must be a jaxhpo.Strategy (e.g. jaxhpo.strategies.random_search(space, "
            f"16)), got {type(strategy).__name__}")
    if strategy.num_dims != space.dim:
        raise ValueError(
            f"strategy was built for {strategy.num_dims} dimensions but the space has "
            f"{space.dim}; build the strategy from this space")


def header(driver: str, space: Space, strategy: Strategy, kind: str, metric, tg: Targets,
           key: jax.Array, **extra) -> dict:
    """The journal header: everything a resumed run must share with the original."""
    return {"type": "header", "format": FORMAT, "version": VERSION, "driver": driver,
            "space": space.to_dict(), "strategy": strategy.name,
            "strategy_config": strategy.config,
            "population_size": strategy.population_size, "num_dims": space.dim,
            "metric": metric, "directions": list(tg.directions), "objective_type": kind,
            # only when given, so journals of runs without constraints keep their header
            **({"constraints": list(tg.constraints)} if tg.constraints else {}),
            "key": np.asarray(jax.random.key_data(key)).tolist(),
            **{k: normalized(v) for k, v in extra.items()}}


def open_journal(journal, resume: bool, head: dict, write: bool = True
                 ) -> tuple[Journal | None, JournalContents | None]:
    """Create a journal, or check that the one to resume belongs to this run.

    Returns ``(journal, contents)``: ``contents`` is ``None`` for a new run. A torn last line
    (the crash case) is cut; every other problem is an error or a warning naming the line. The
    file is opened for appending before anything is evaluated, so an unwritable journal fails
    at once. ``write=False`` (the other processes of a ``jax.distributed`` run, where process 0
    writes): the journal is only read, for resume.
    """
    path = check_path(journal, "journal")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    if path is None:
        if resume:
            raise ValueError("resume=True needs journal=path of the run to resume")
        return None, None
    jr = Journal(path)
    if not write:
        return None, (read_journal(path, warn=False) if resume and jr.exists() else None)
    existed = jr.exists()
    if existed and not resume:
        raise ValueError(f"journal {path!r} already holds a run; pass resume=True to continue "
                         f"it or choose a new path")
    jr.open()  # locked from here on: a second process on this journal stops now
    try:
        return _check_resumed(jr, head, existed)
    except BaseException:
        jr.close()
        raise


def _check_resumed(jr: Journal, head: dict, existed: bool):
    path = jr.path
    if not existed:
        jr.write(head)
        return jr, None
    contents = read_journal(path)
    old = contents.header
    if old.get("version") != VERSION:
        raise ValueError(
            f"journal {path!r} was written by an older jaxhpo (journal version "
            f"{old.get('version')}; this jaxhpo resumes version {VERSION}): its trials can still "
            "be read with jaxhpo.plot.read_journal, but resume it with the jaxhpo that wrote it "
            "or start a new journal")
    for k, v in list(head.items()) + [("constraints", head.get("constraints"))]:
        if k == "constraints" and (old.get(k) or None) != (v or None):
            raise ValueError(
                f"cannot resume: the journal's run has constraints {old.get(k) or []} but this "
                f"run {v or []}; resume with the same constraints= or use a new journal")
        added = (sorted(set(v) - set(old.get(k) or {})) if k.endswith("_config")
                 and isinstance(v, dict) and isinstance(old.get(k), dict) else [])
        if added and all(old[k].get(n) == v.get(n) for n in old[k]):
            raise ValueError(
                f"cannot resume: journal {path!r} was written by an earlier jaxhpo whose "
                f"{head.get(k.removesuffix('_config')) or k} had no setting {added}, and its "
                "saved state does not carry what this version keeps for them: resume it with "
                "the jaxhpo that wrote it, or start a new journal (its trials can still be read "
                "with jaxhpo.plot.read_journal, and passed to a new run with warm_start=)")
        if k not in ("type", "version") and old.get(k) != v:
            raise ValueError(
                f"cannot resume: the journal's {k} ({old.get(k)!r}) differs from this run's "
                f"({v!r}); resume with the original settings or use a new journal")
    if contents.torn_at is not None:
        jr.drop_torn_tail(contents.torn_at)
    return jr, contents
