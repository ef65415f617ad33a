"""The driver: glue between a Space, a Strategy and an objective, with a journal.

``minimize`` is the one place with Python control flow, I/O and progress bars; ``minimize_scan``
runs every generation of a JAX-native objective inside one ``lax.scan``.

Keys: ``key`` is split once into ``(k_init, k_run)``; generation ``g`` uses
``split(fold_in(k_run, g))`` into ``(k_ask, k_eval)`` and member ``i`` of a JAX-native objective
gets ``split(k_eval, population_size)[i]``. Both drivers derive keys identically, so they
produce the same trials, and a resumed run re-creates exactly the proposals it lost.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._history import DIVERGED, FAILED, OK, History, Trial
from jaxhpo._journal import (FORMAT, VERSION, Journal, check_journal, decode_state,
                             encode_state)
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy

_DIRECTIONS = ("minimize", "maximize")


class TooManyFailures(RuntimeError):
    """Raised when more trials failed than ``max_failures`` allows."""


@dataclass
class Result:
    """What a run returns.

    Attributes:
      history: every trial (:class:`jaxhpo.History`).
      state: the strategy state after the last ``tell``.
      space: the search space.
      arrays: for :func:`minimize_scan`, the raw arrays ``{"x": f32[G, P, d], "<metric>":
        f32[G, P], ...}``; ``None`` for :func:`minimize`.
    """

    history: History
    state: Any
    space: Space
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def best_trial(self) -> Trial:
        """The best completed trial (single objective)."""
        return self.history.best_trial()

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's parameters as a plain dict."""
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        """The best trial's objective value, in the user's direction."""
        return self.best_trial.value

    @property
    def best_trials(self) -> list[Trial]:
        """The Pareto-optimal completed trials (multi-objective runs)."""
        return self.history.best_trials()


# ---------------------------------------------------------------------------- argument checks
def as_key(key) -> jax.Array:
    """An int seed, a typed PRNG key or a raw ``uint32[2]`` key -> typed PRNG key."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    raise TypeError(
        f"key must be an int seed or a single JAX PRNG key (jax.random.key(0)), got {key!r}"
    )


def objective_kind(objective, objective_type: str = "auto") -> str:
    """Tell JAX-native ``fn(key, hparams)`` from Python ``fn(params)`` objectives.

    With ``objective_type="auto"`` the decision is by signature: two required positional
    parameters mean JAX-native, one means a Python callable. Pass ``"jax"`` or ``"python"`` to
    force either (e.g. for callables whose signature cannot be inspected).
    """
    if objective_type not in ("auto", "jax", "python"):
        raise ValueError(
            f"objective_type must be 'auto', 'jax' or 'python', got {objective_type!r}"
        )
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if objective_type != "auto":
        return objective_type
    try:
        sig = inspect.signature(objective)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = [p for p in sig.parameters.values()
                    if p.kind in kinds and p.default is inspect.Parameter.empty]
        if len(required) == 2:
            return "jax"
        if len(required) == 1:
            return "python"
    raise TypeError(
        "cannot tell the objective's kind from its signature: a JAX-native objective is "
        "fn(key, hparams), a Python one fn(params); pass objective_type='jax' or 'python'"
    )


def _targets(metric, direction) -> tuple[list[str] | None, list[str]]:
    if metric is None:
        names = None
    elif isinstance(metric, str):
        names = [metric]
    elif isinstance(metric, Sequence) and metric and all(isinstance(m, str) for m in metric):
        names = list(metric)
        if len(set(names)) != len(names):
            raise ValueError(f"metric lists a name twice: {names}")
    else:
        raise TypeError(f"metric must be a metric name or a list of names, got {metric!r}")
    dirs = [direction] if isinstance(direction, str) else direction
    if not isinstance(dirs, Sequence) or not dirs:
        raise TypeError(f"direction must be 'minimize', 'maximize' or a list, got {direction!r}")
    dirs = list(dirs)
    for d in dirs:
        if d not in _DIRECTIONS:
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {d!r}")
    n = 1 if names is None else len(names)
    if len(dirs) == 1 and n > 1:
        dirs = dirs * n
    if len(dirs) != n:
        raise ValueError(f"direction has {len(dirs)} entries but metric names {n} objectives")
    return names, dirs


def _resolve_names(names: list[str] | None, keys: Sequence[str], scalar: bool) -> list[str]:
    if names is None:
        if scalar or len(keys) == 1:
            return list(keys)
        raise ValueError(
            f"the objective returns several metrics {list(keys)}; name the one to optimize "
            "with metric='name' (or a list of names for multi-objective strategies)"
        )
    missing = [n for n in names if n not in keys]
    if missing:
        raise ValueError(f"metric {missing} not among the objective's outputs {list(keys)}")
    return names


def _check_common(space, strategy, num_generations, max_failures) -> int:
    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    if not isinstance(strategy, Strategy):
        raise TypeError(
            f"strategy must be a jaxhpo.Strategy (e.g. jaxhpo.strategies.random_search(space, "
            f"16)), got {type(strategy).__name__}"
        )
    if strategy.num_dims != space.dim:
        raise ValueError(
            f"strategy was built for {strategy.num_dims} dimensions but the space has "
            f"{space.dim}; build the strategy from this space"
        )
    if num_generations is None:
        if strategy.max_generations is None:
            raise ValueError(f"num_generations is required for strategy {strategy.name!r}")
        num_generations = strategy.max_generations
    if isinstance(num_generations, bool) or not isinstance(num_generations, (int, np.integer)):
        raise TypeError(f"num_generations must be an int, got {num_generations!r}")
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    if max_failures is not None and (
            isinstance(max_failures, bool) or not isinstance(max_failures, int)
            or max_failures < 0):
        raise ValueError(f"max_failures must be None or an int >= 0, got {max_failures!r}")
    return int(num_generations)


# ---------------------------------------------------------------------------- evaluation
def _member_fn(objective, space):
    def one(key, x):
        out = objective(key, space.decode(x))
        if isinstance(out, Mapping):
            return {str(k): jnp.asarray(v, jnp.float32) for k, v in out.items()}
        return {"value": jnp.asarray(out, jnp.float32)}
    return one


def _jax_output_names(one, space, pop, names):
    keys = jax.random.split(jax.random.key(0), pop)
    shapes = jax.eval_shape(jax.vmap(one), keys, jnp.zeros((pop, space.dim), jnp.float32))
    for k, s in shapes.items():
        if s.shape != (pop,):
            raise ValueError(
                f"a JAX-native objective must return a scalar (or a dict of scalars) per "
                f"member; metric {k!r} has per-member shape {s.shape[1:]}"
            )
    return _resolve_names(names, list(shapes), scalar=list(shapes) == ["value"])


def population_sharded(*arrays):
    """Shard arrays along their leading (population) axis over every device when there are
    several that divide it; otherwise return them unchanged."""
    devices = jax.devices()
    n = arrays[0].shape[0]
    if len(devices) < 2 or n % len(devices):
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices), ("pop",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("pop"))
    return tuple(jax.device_put(a, spec) for a in arrays)


def _fitness(values: np.ndarray, dirs: list[str]) -> np.ndarray:
    """``f[pop, m]`` user-oriented values -> minimized fitness ``f32[pop]``/``f32[pop, m]``."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in dirs], np.float32)
    f = (values * sign).astype(np.float32)
    return f[:, 0] if f.shape[1] == 1 else f


def batch_trials(space, generation, x, metrics, names, wall_time) -> list[Trial]:
    """Trials of one vmapped generation from ``x f32[P, d]`` and ``metrics {name: f[P]}``."""
    x = np.asarray(x)
    params = space.to_params_list(x)
    now = time.time()
    trials = []
    for i, p in enumerate(params):
        m = {k: float(np.asarray(v)[i]) for k, v in metrics.items()}
        vals = [m[n] for n in names]
        ok = all(math.isfinite(v) for v in vals)
        trials.append(Trial(
            number=generation * x.shape[0] + i, generation=generation, member=i,
            x=[float(v) for v in x[i]], params=p, inactive=space.inactive_names(p), metrics=m,
            values=vals, status=OK if ok else DIVERGED, wall_time=wall_time, timestamp=now))
    return trials


def _to_metrics(out) -> tuple[dict[str, float], bool]:
    """A Python objective's return value -> ({name: float}, was_scalar)."""
    if isinstance(out, Mapping):
        items, scalar = list(out.items()), False
    else:
        items, scalar = [("value", out)], True
    metrics = {}
    for k, v in items:
        try:
            metrics[str(k)] = float(np.asarray(v).reshape(()))
        except (TypeError, ValueError):
            raise TypeError(
                f"a Python objective must return a number or a dict of numbers; metric "
                f"{k!r} is {v!r}"
            ) from None
    return metrics, scalar


class _Progress:
    """A rich progress bar with best-so-far, or nothing when disabled / not a TTY / in CI."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.bar = None
        if enabled and sys.stderr.isatty() and not os.environ.get("CI"):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            from rich.progress import TimeElapsedColumn
            self.bar = Progress(TextColumn("[bold]jaxhpo"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
                                transient=False)
            self.task = self.bar.add_task("gen", total=total, completed=start, best="-")
            self.bar.start()

    def update(self, history: History):
        if self.bar is None:
            return
        best = "-"
        if len(history.objectives) == 1 and history.completed():
            best = f"{history.best_trial().value:.6g}"
        self.bar.update(self.task, advance=1, best=best)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------------- minimize
def minimize(objective: Callable, space: Space, strategy: Strategy, *,
             num_generations: int | None = None, key=0, direction="minimize", metric=None,
             objective_type: str = "auto", journal: str | os.PathLike | None = None,
             resume: bool = False, progress: bool = True,
             max_failures: int | None = None) -> Result:
    """Optimize ``objective`` over ``space`` with ``strategy``, one population per generation.

    Args:
      objective: either JAX-native ``fn(key, hparams) -> scalar | {metric: scalar}``, where
        ``hparams`` is ``space.decode`` of one member (categoricals as int32 indices), jit-compiled
        once and vmapped over the population; or a Python callable ``fn(params: dict) -> float |
        dict``, called once per trial with plain values; exceptions mark the trial failed.
      space: the search space.
      strategy: a :class:`jaxhpo.Strategy` built for ``space``.
      num_generations: generations to run (default: ``strategy.max_generations``, e.g. a grid).
      key: int seed or JAX PRNG key.
      direction: ``"minimize"``/``"maximize"``, or one per metric.
      metric: the metric(s) to optimize when the objective returns a dict; several names give a
        multi-objective fitness ``f32[pop, m]``.
      objective_type: ``"auto"`` (by signature: two positional parameters = JAX-native, one =
        Python), ``"jax"`` or ``"python"``.
      journal: path of a JSON Lines journal; each Python trial and each vmapped generation is
        appended and fsynced as it completes.
      resume: continue the run recorded in ``journal`` (same objective, space, strategy and key):
        completed trials are reused, the strategy state is restored bit-exactly.
      progress: show a rich progress bar with the best value (only on a TTY and outside CI).
      max_failures: raise :class:`TooManyFailures` once more Python trials than this have
        failed (``None``: no limit; every failure is recorded with its message either way).

    Returns:
      A :class:`Result` with ``best_params``, ``best_value``, ``best_trials`` and ``history``.

    Example:
      >>> space = jaxhpo.Space({"x": jaxhpo.Float(-2.0, 2.0)})
      >>> res = jaxhpo.minimize(lambda key, hp: (hp["x"] - 1.0) ** 2, space,
      ...                       jaxhpo.strategies.random_search(space, 32), num_generations=5)
      >>> res.best_params   # {'x': 1.0...}
    """
    num_generations = _check_common(space, strategy, num_generations, max_failures)
    kind = objective_kind(objective, objective_type)
    names, dirs = _targets(metric, direction)
    key = as_key(key)
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    check_journal(journal)
    if resume and journal is None:
        raise ValueError("resume=True needs journal=path of the run to resume")

    pop = strategy.population_size
    k_init, k_run = jax.random.split(key)
    state = strategy.init(k_init)
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    one = jitted = None
    if kind == "jax":
        one = _member_fn(objective, space)
        names = _jax_output_names(one, space, pop, names)
        jitted = jax.jit(jax.vmap(one))

    header = {"type": "header", "format": FORMAT, "version": VERSION,
              "space": space.to_dict(), "strategy": strategy.name, "population_size": pop,
              "num_dims": space.dim, "metric": metric, "directions": dirs,
              "objective_type": kind,
              "key": np.asarray(jax.random.key_data(key)).tolist()}
    jr = Journal(journal) if journal is not None else None
    done: dict[tuple[int, int], Trial] = {}
    start = 0
    if jr is not None:
        if jr.exists() and not resume:
            raise ValueError(
                f"journal {jr.path!r} already holds a run; pass resume=True to continue it or "
                "choose a new path"
            )
        records = jr.read() if resume else []
        if records:
            state, start, done = _restore(records, header, state, strategy)
        else:
            jr.write(header)

    if names is None and kind == "python":
        # A Python objective's metric names come from its first successful trial. A resumed
        # run learns them from the journal: a generation replayed entirely from it (killed
        # before its state record) would otherwise be told all-NaN fitness.
        for t in sorted(done.values(), key=lambda t: t.number):
            if t.values is not None:
                names = _resolve_names(None, list(t.metrics), list(t.metrics) == ["value"])
                break
    history = History(list(names) if names else [], dirs)
    for t in sorted(done.values(), key=lambda t: t.number):
        if t.generation < start:
            history.append(t)
    failures = sum(t.status == FAILED for t in history)
    bar = _Progress(progress, num_generations, start)
    try:
        for g in range(start, num_generations):
            k_ask, k_eval = jax.random.split(jax.random.fold_in(k_run, g))
            x, state = ask(k_ask, state)
            x_np = np.asarray(x)
            if x_np.shape != (pop, space.dim):
                raise ValueError(f"strategy.ask returned shape {x_np.shape}, expected "
                                 f"{(pop, space.dim)}")
            for (gg, i), t in done.items():
                if gg == g and not np.allclose(t.x, x_np[i], atol=1e-6):
                    raise ValueError(
                        f"journal {jr.path!r}: trial {t.number} was proposed at a different "
                        "point; resume with the same key, strategy and settings as the "
                        "original run")
            if kind == "jax":
                t0 = time.perf_counter()
                keys, xs = population_sharded(jax.random.split(k_eval, pop), x)
                metrics = jax.device_get(jitted(keys, xs))
                new = batch_trials(space, g, x_np, metrics, names, time.perf_counter() - t0)
                trials = [done.get((g, i), t) for i, t in enumerate(new)]
                fresh = [t for i, t in enumerate(trials) if (g, i) not in done]
                if jr is not None and fresh:
                    jr.write(*[t.to_record() | {"type": "trial"} for t in fresh])
            else:
                trials = []
                for i, params in enumerate(space.to_params_list(x_np)):
                    if (g, i) in done:
                        trials.append(done[(g, i)])
                        continue
                    t, names = _run_python(objective, space, params, x_np[i], g, i, pop, names)
                    trials.append(t)
                    if not history.objectives and names:
                        history.objectives = list(names)
                    if jr is not None:
                        jr.write(t.to_record() | {"type": "trial"})
                    if t.status == FAILED:
                        failures += 1
                        if failures == 1:
                            warnings.warn(f"trial {t.number} failed: {t.error}", stacklevel=2)
                        if max_failures is not None and failures > max_failures:
                            raise TooManyFailures(
                                f"{failures} trials failed (max_failures={max_failures}); "
                                f"last error: {t.error}. Completed trials are kept in the "
                                "journal; fix the objective and resume.")
            for t in trials:
                history.append(t)
            if not history.objectives:  # every trial so far failed: names still unknown
                values = np.full((pop, len(dirs)), np.nan)
            else:
                values = np.array([t.values if t.status == OK else [np.nan] * len(dirs)
                                   for t in trials], np.float64)
            if strategy.reserve is not None:  # grow observation buffers outside jit
                state = strategy.reserve(state, (g + 1) * pop)
            state = tell(state, x, jnp.asarray(_fitness(values, dirs)))
            if jr is not None:
                jr.write({"type": "state", "generation": g, "leaves": encode_state(state)})
            bar.update(history)
    finally:
        bar.close()
        if jr is not None:
            jr.close()
    if not history.objectives:
        history.objectives = list(names) if names else ["value"]
    return Result(history=history, state=state, space=space)


def _run_python(objective, space, params, x_row, g, i, pop, names):
    t0 = time.perf_counter()
    try:
        out = objective(dict(params))
        error = None
    except Exception as e:  # a failing trial must not end the run
        out, error = None, f"{type(e).__name__}: {e}"
    wall = time.perf_counter() - t0
    common = dict(number=g * pop + i, generation=g, member=i, x=[float(v) for v in x_row],
                  params=params, inactive=space.inactive_names(params), wall_time=wall,
                  timestamp=time.time())
    if error is not None:
        return Trial(metrics={}, values=None, status=FAILED, error=error, **common), names
    metrics, scalar = _to_metrics(out)
    names = _resolve_names(names, list(metrics), scalar)
    vals = [metrics[n] for n in names]
    status = OK if all(math.isfinite(v) for v in vals) else DIVERGED
    return Trial(metrics=metrics, values=vals, status=status, **common), names


def _restore(records, header, template_state, strategy):
    head = records[0]
    if head.get("type") != "header" or head.get("format") != FORMAT:
        raise ValueError("the journal does not start with a jaxhpo header; is it a journal?")
    for k in ("space", "strategy", "population_size", "num_dims", "metric", "directions",
              "objective_type", "key"):
        if head.get(k) != header[k]:
            raise ValueError(
                f"cannot resume: the journal's {k} ({head.get(k)!r}) differs from this run's "
                f"({header[k]!r}); resume with the original settings or use a new journal"
            )
    done, state, start = {}, template_state, 0
    for r in records[1:]:
        if r.get("type") == "trial":
            t = Trial.from_record(r)
            done[(t.generation, t.member)] = t
        elif r.get("type") == "state":
            template = template_state
            if strategy.reserve is not None:  # the saved state had grown to this size
                template = strategy.reserve(template, (r["generation"] + 1) * header[
                    "population_size"])
            state = decode_state(r["leaves"], template)
            start = r["generation"] + 1
    return state, start, done


# ---------------------------------------------------------------------------- minimize_scan
def minimize_scan(objective: Callable, space: Space, strategy: Strategy, *,
                  num_generations: int | None = None, key=0, direction="minimize",
                  metric=None) -> Result:
    """Run every generation of a JAX-native objective inside one jitted ``lax.scan``.

    Same arguments and key derivation as :func:`minimize` (so the same trials), but the whole
    loop is one XLA program: no per-generation dispatch, no journal, no progress bar.

    Returns:
      A :class:`Result` whose ``arrays`` hold ``x: f32[G, P, d]`` and every metric
      ``f32[G, P]``; ``history`` is built from them.
    """
    num_generations = _check_common(space, strategy, num_generations, None)
    try:
        kind = objective_kind(objective)
    except TypeError:  # signature not conclusive (e.g. *args): trust the caller
        kind = objective_kind(objective, "jax")
    if kind != "jax":
        raise TypeError(
            "minimize_scan needs a JAX-native objective fn(key, hparams); use minimize for "
            "Python callables fn(params)"
        )
    names, dirs = _targets(metric, direction)
    key = as_key(key)
    pop = strategy.population_size
    one = _member_fn(objective, space)
    names = _jax_output_names(one, space, pop, names)
    sign = jnp.array([1.0 if d == "minimize" else -1.0 for d in dirs], jnp.float32)
    k_init, k_run = jax.random.split(key)

    def generation(state, g):
        k_ask, k_eval = jax.random.split(jax.random.fold_in(k_run, g))
        x, state = strategy.ask(k_ask, state)
        metrics = jax.vmap(one)(jax.random.split(k_eval, pop), x)
        f = jnp.stack([metrics[n] for n in names], -1) * sign
        state = strategy.tell(state, x, f[:, 0] if len(names) == 1 else f)
        return state, (x, metrics)

    @jax.jit
    def run(k):
        state = strategy.init(k)
        if strategy.reserve is not None:  # room for every observation of the run, up front
            state = strategy.reserve(state, num_generations * pop)
        return jax.lax.scan(generation, state, jnp.arange(num_generations))

    t0 = time.perf_counter()
    state, (xs, metrics) = jax.block_until_ready(run(k_init))
    wall = (time.perf_counter() - t0) / num_generations
    xs, metrics = np.asarray(xs), jax.device_get(metrics)
    history = History(list(names), dirs)
    for g in range(num_generations):
        for t in batch_trials(space, g, xs[g], {k: v[g] for k, v in metrics.items()},
                              names, wall):
            history.append(t)
    return Result(history=history, state=state, space=space,
                  arrays={"x": xs, **{k: np.asarray(v) for k, v in metrics.items()}})
