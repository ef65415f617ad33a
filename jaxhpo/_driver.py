"""``minimize`` (a generation at a time: journal, resume, Python or JAX objectives, executors)
and ``minimize_scan`` (every generation of a JAX-native objective inside one ``lax.scan``).

Both are faces of the run layer in :mod:`jaxhpo._run` (setup, keys, journal header, Python
evaluator, buffer sizing), so the same settings produce the same trials in either.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import pickle
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo import _monitor, _run, _warm
from jaxhpo._history import FAILED, OK, History, Trial
from jaxhpo._journal import decode_state, encode_state
from jaxhpo._hosts import to_host
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy
from jaxhpo._validate import (as_key, check_bool, check_int, check_optional_int,
                              check_optional_real)

# Kept importable from here for code written against earlier releases.
objective_kind = _run.objective_kind


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
      stopped_by: ``None`` when every generation ran, else ``"callback"`` (a callback raised
        :class:`jaxhpo.StopRun`) or ``"time_budget"``; the journal can be resumed either way.
    """

    history: History
    state: Any
    space: Space
    arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)
    stopped_by: str | None = None

    @property
    def best_trial(self) -> Trial:
        """The best completed trial (single objective); with ``constraints``, the best feasible
        one (a ValueError naming the least-violating trial when none is feasible)."""
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
        """The Pareto-optimal completed (and feasible) trials (multi-objective runs)."""
        return self.history.best_trials()


def _check_generations(strategy: Strategy, num_generations) -> int:
    if num_generations is None:
        if strategy.max_generations is None:
            raise ValueError(f"num_generations is required for strategy {strategy.name!r}")
        return strategy.max_generations
    return check_int(num_generations, "num_generations", 1)


# ---------------------------------------------------------------------------- JAX objectives
def _member_fn(objective, space, static: dict | None = None):
    """One member's metrics ``{name: f32[]}`` from ``objective(key, hparams)``; the static
    hyperparameters in ``static`` reach it as plain Python values."""
    def one(key, x):
        hp = space.decode(x)
        if static:
            hp.update(static)
        out = objective(key, hp)
        items = out.items() if isinstance(out, Mapping) else [("value", out)]
        metrics = {}
        for k, v in items:
            dtype = getattr(v, "dtype", None)
            if isinstance(v, (str, bytes, bool)) or v is None or (
                    dtype is None and not isinstance(v, (int, float))) or (
                    dtype is not None and (jnp.issubdtype(dtype, jnp.complexfloating)
                                           or jnp.issubdtype(dtype, jnp.bool_))):
                what = "its return value" if not isinstance(out, Mapping) else f"metric {k!r}"
                raise TypeError(
                    f"a JAX-native objective must return a real scalar (or a dict of real "
                    f"scalars) per member; {what} is {v!r}; return e.g. jnp.float32(...)")
            metrics[str(k)] = jnp.asarray(v, jnp.float32)
        return metrics
    return one


class _JaxEvaluator:
    """A JAX-native objective vmapped over the population: one jitted program, or one per group
    of equal static hyperparameters (:mod:`jaxhpo._groups`, compiled programs cached by static
    values and bucketed group size). Tracer errors are explained in terms of
    hyperparameters."""

    def __init__(self, objective, space, pop, tg: _run.Targets):
        from jaxhpo._groups import CompileCache

        self.objective, self.space, self.pop = objective, space, pop
        self.cache = CompileCache()
        x0 = np.zeros((1, space.dim), np.float32)
        static = space.static_params(x0[0]) if space.static_names else {}
        shapes = self._traced(lambda: jax.eval_shape(
            jax.vmap(_member_fn(objective, space, static)),
            jax.random.split(jax.random.key(0), pop), jnp.zeros((pop, space.dim))), static)
        for k, s in shapes.items():
            if s.shape != (pop,):
                raise ValueError(
                    f"a JAX-native objective must return a scalar (or a dict of scalars) per "
                    f"member; metric {k!r} has per-member shape {s.shape[1:]}")
        self.targets = tg.resolve(list(shapes), scalar=list(shapes) == ["value"])
        tg.check_constraint_outputs(list(shapes))

    def _traced(self, fn, static):
        """``fn()``, with a tracer error re-raised as a TypeError naming the hyperparameter."""
        from jaxhpo._groups import explain_tracer_error, is_tracer_error

        try:
            return fn()
        except Exception as e:
            if not is_tracer_error(e):
                raise
            from jaxhpo._groups import _python_value

            x0 = jnp.zeros((self.space.dim,), jnp.float32)
            row = self.space.decode(x0)

            def probe(names):
                concrete = dict(static)
                for n in names:
                    concrete[n] = _python_value(self.space, n, np.asarray(row[n]).item())
                try:
                    jax.eval_shape(_member_fn(self.objective, self.space, concrete),
                                   jax.random.key(0), x0)
                    return True
                except Exception:
                    return False

            raise explain_tracer_error(e, self.space, list(self.space.names), probe,
                                       where="the objective") from e

    def __call__(self, keys, x) -> dict[str, np.ndarray]:
        """``{name: f[P]}`` for keys ``key[P]`` and cube points ``x: f32[P, d]``."""
        from jaxhpo._groups import group_rows

        if not self.space.static_names and jax.process_count() > 1:
            return self._across_processes(keys, x)
        if not self.space.static_names:
            fn = self.cache(("all", self.pop), lambda: jax.vmap(
                _member_fn(self.objective, self.space)))
            keys, xs = population_sharded(keys, x)
            return jax.device_get(self._traced(lambda: fn(keys, xs), {}))
        x_np = np.asarray(x)
        out = {}
        for g in group_rows(self.space, x_np):
            fn = self.cache((g.static, g.bucket), lambda: jax.vmap(
                _member_fn(self.objective, self.space, g.params)))
            idx = g.padded
            res = jax.device_get(self._traced(lambda: fn(keys[idx], x[idx]), g.params))
            for k, v in res.items():
                out.setdefault(k, np.full(len(x_np), np.nan, np.float32))[g.rows] = \
                    np.asarray(v)[:len(g.rows)]
        return out


    def _across_processes(self, keys, x) -> dict[str, np.ndarray]:
        """Under ``jax.distributed`` (every process runs the same driver loop with the same
        keys, so all hold the same ``x``): the population is sharded over every process's
        devices, each process evaluates its own members, and the results are gathered."""
        from jaxhpo._hosts import put

        devices = jax.devices()
        fn = self.cache(("processes", self.pop), lambda: jax.vmap(
            _member_fn(self.objective, self.space)))
        data = (keys, np.asarray(x, np.float32))
        if self.pop % len(devices):  # not divisible: every process evaluates everything
            return jax.device_get(self._traced(lambda: fn(*data), {}))
        mesh = jax.sharding.Mesh(np.array(devices), ("pop",))
        args = put(data, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("pop")))
        return to_host(self._traced(lambda: fn(*args), {}))


class _ProgramEvaluator:
    """A training program (or a Trainer) at a fixed budget: every member of a generation is
    initialized with its own key, trained ``steps`` steps and evaluated on the validation split
    (one compiled program per group of equal static hyperparameters, by the Population)."""

    def __init__(self, objective, space, pop, steps):
        from jaxhpo import train

        self.steps = check_int(steps, "steps", 1)
        if isinstance(objective, train.Trainer):
            self.pop = train.Population(objective, pop)
        else:
            self.pop = train.Population(objective, pop, space=space)
        self.space = space

    def __call__(self, key, x) -> dict[str, np.ndarray]:
        hp = self.space.decode(x)
        state = self.pop.init(key, hp)
        _, curves = self.pop.train(state, hp, self.steps, eval_every=self.steps)
        return {k: np.asarray(v)[:, -1] for k, v in to_host(curves).items()}


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


def batch_trials(space, generation, x, metrics, names, wall_time,
                 tg: _run.Targets | None = None) -> list[Trial]:
    """Trials of one vmapped generation from ``x f32[P, d]`` and ``metrics {name: f[P]}``
    (with their constraint values when ``tg`` names constraints)."""
    x = np.asarray(x)
    out = []
    for i in range(x.shape[0]):
        m = {k: float(np.asarray(v)[i]) for k, v in metrics.items()}
        out.append(_run.make_trial(space, generation * x.shape[0] + i, generation, i, x[i], m,
                                   [m[n] for n in names], wall_time=wall_time,
                                   constraints=None if tg is None else
                                   tg.constraint_values(m)))
    return out


def constraint_matrix(trials, k: int) -> jax.Array:
    """``f32[P, k]`` constraint values of a generation's trials for ``strategy.tell`` (as
    returned, feasible when ``<= 0``; NaN, i.e. violated, for a trial without values)."""
    return jnp.asarray(np.array([t.constraints if t.constraints is not None else [np.nan] * k
                                 for t in trials], np.float32).reshape(len(trials), k))


# ---------------------------------------------------------------------------- resume
@dataclass
class _Resumed:
    """What a journal gives a resumed ``minimize``: trials by ``(generation, member)``, the
    generation to start at and the strategy state after the one before it."""

    done: dict
    start: int = 0
    state: Any = None


def _restore(contents, strategy, template, pop, path, offset=0) -> _Resumed:
    done = {}
    for r in contents.of_type("trial"):
        t = Trial.from_record(r)
        if not (0 <= t.member < pop) or t.number != t.generation * pop + t.member:
            raise ValueError(f"journal {path!r}: trial {t.number} does not fit a population of "
                             f"{pop}; the journal belongs to another run")
        done[(t.generation, t.member)] = t
    states = {r["generation"]: r for r in contents.of_type("state")}
    out = _Resumed(done)
    # The newest state whose generations all have their trials: a state record that outlived
    # trial records (a damaged journal) must not silently drop them, so resume before it.
    dropped = []
    for g in sorted(states, reverse=True):
        missing = [(gg, i) for gg in range(g + 1) for i in range(pop) if (gg, i) not in done]
        if not missing:
            out.start, out.state = g + 1, decode_state(
                states[g]["leaves"], _run.reserve(strategy, template, offset + g + 1))
            break
        dropped.append(g)
    if dropped:
        lost = sorted({gg * pop + i for g in dropped[:1] for gg in range(g + 1)
                       for i in range(pop) if (gg, i) not in done})
        warnings.warn(f"journal {path!r}: the strategy state after generation {dropped[0]} is "
                      f"there but trials {lost[:8]} are not; resuming from generation "
                      f"{out.start} and evaluating only what is missing", stacklevel=3)
    if out.state is None:
        out.state = template
    return out


# ---------------------------------------------------------------------------- minimize
def minimize(objective: Callable, space: Space, strategy: Strategy, *,
             num_generations: int | None = None, key=0, direction="minimize", metric=None,
             objective_type: str = "auto", journal: str | os.PathLike | None = None,
             resume: bool = False, progress: bool | str = True,
             max_failures: int | None = None,
             executor: cf.Executor | None = None, callbacks=None,
             time_budget: float | None = None, initial_params=None,
             warm_start=None, steps: int | None = None, constraints=None) -> Result:
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
      resume: continue the run recorded in ``journal`` (same objective, space, strategy with the
        same settings, and key): completed trials are reused, never evaluated again; the
        strategy state is restored bit-exactly.
      progress: ``True`` (a rich bar on a terminal, else one log line per generation on the
        ``jaxhpo`` logger), ``"bar"``, ``"log"`` or ``False``.
      max_failures: raise :class:`TooManyFailures` once more Python trials than this have
        failed (``None``: no limit; every failure is recorded with its message either way).
      executor: a :class:`concurrent.futures.Executor` (threads, processes, a Dask client's
        ``get_executor()``...) that evaluates a Python objective's generation in parallel;
        results are journaled as they arrive. A process or cluster executor needs a picklable
        objective (a module-level function).
      callbacks: callables ``cb(event)`` run after every generation with a
        :class:`jaxhpo.RunEvent` (the generation's trials and the history so far); a callback
        that raises :class:`jaxhpo.StopRun` ends the run cleanly after that generation.
      time_budget: seconds after which no new generation starts (at least one runs).
      initial_params: configurations to evaluate first (a list of dicts; a missing parameter
        takes its ``default=``): they replace the first proposals, and the strategy is told
        them like any other trial.
      warm_start: earlier trials on the same space (a ``History``, a result, or a journal path)
        told to the strategy before the first ``ask``: model-based strategies learn from all of
        them, evolution strategies start from the best population.
      steps: with a training program (:class:`jaxhpo.train.TrainingProgram`, a ``Trainer``)
        as the objective: the steps every member trains before its validation metrics are its
        result (``tune`` adds early stopping and PBT).
      constraints: names of metrics the objective returns (in its dict) that must be ``<= 0``
        (Optuna's convention), e.g. ``["memory_gb_over"]`` for ``memory_gb - 16``. A trial is
        feasible when every value is ``<= 0``; a NaN or missing value is a violation. The
        values are recorded per trial (``Trial.constraints``, the journal), ``best_*`` and the
        Pareto front consider feasible trials only, and a strategy built with
        ``num_constraints=len(constraints)`` (``nsga2``, ``gp_bo``, ``tpe``) is told them
        (``tell(state, x, fitness, constraints)``, not negated by ``direction``); one built
        without runs unconstrained, with a warning.

    Returns:
      A :class:`Result` with ``best_params``, ``best_value``, ``best_trials`` and ``history``.
      With constraints and no feasible trial, ``best_trial``/``best_params``/``best_value``
      raise a ValueError naming the least-violating trial (as Optuna's ``study.best_trial``).

    Example:
      >>> space = jaxhpo.Space({"x": jaxhpo.Float(-2.0, 2.0)})
      >>> res = jaxhpo.minimize(lambda key, hp: (hp["x"] - 1.0) ** 2, space,
      ...                       jaxhpo.strategies.random_search(space, 32), num_generations=5)
      >>> res.best_params   # {'x': 1.0...}
    """
    _run.check_strategy(space, strategy)
    num_generations = _check_generations(strategy, num_generations)
    max_failures = check_optional_int(max_failures, "max_failures", 0)
    kind = "program" if _is_program(objective) else _run.objective_kind(objective,
                                                                          objective_type)
    if kind == "program" and steps is None:
        raise ValueError("a training program in minimize trains every member a fixed budget: "
                         "pass steps=N (or use jaxhpo.tune for early stopping)")
    if kind != "program" and steps is not None:
        raise TypeError("steps= is the training budget of a training program "
                        "(jaxhpo.train.TrainingProgram or Trainer); this objective is a function")
    if kind == "trial":
        raise TypeError("the objective takes (params, trial): objectives that report "
                        "intermediate values run under jaxhpo.tune(objective, space, strategy, "
                        "scheduler, ...); minimize calls fn(params) or fn(key, hparams)")
    if executor is not None:
        if not isinstance(executor, cf.Executor):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got "
                            f"{type(executor).__name__}")
        if kind != "python":
            raise ValueError("executor= is for Python objectives fn(params); a JAX-native "
                             "objective is vmapped over the population (and sharded over "
                             "devices) instead")
        if isinstance(executor, cf.ProcessPoolExecutor):
            try:
                pickle.dumps(objective)
            except Exception as e:
                raise TypeError(f"objective cannot be sent to worker processes ({e}); define "
                                "it at module level (not a lambda or a nested function)") \
                    from None
    tg = _run.targets(metric, direction, constraints)
    _run.check_objectives(strategy, tg)
    tell_constraints = _run.check_constraints(strategy, tg)
    key = as_key(key)
    callbacks = _monitor.check_callbacks(callbacks)
    time_budget = check_optional_real(time_budget, "time_budget", 0.0, low_open=True)
    _monitor.check_progress(progress)

    pop = strategy.population_size
    init_x = _warm.initial_points(space, initial_params)
    seed_x, seed_f = _warm.warm_start_data(space, warm_start, tg)
    seed_c = _warm.warm_start_constraints(space, warm_start, tg)
    offset = _warm.seed_chunks(strategy, len(seed_x))  # populations told before generation 0
    k_init, k_run = _run.run_keys(key)
    state = _warm.seed(strategy, strategy.init(k_init), seed_x, seed_f,
                       seed_c if tell_constraints else None)
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    evaluate = None
    if kind == "jax":
        evaluate = _JaxEvaluator(objective, space, pop, tg)
        tg = evaluate.targets
    elif kind == "program":
        evaluate = _ProgramEvaluator(objective, space, pop, steps)
    head = _run.header("minimize", space, strategy, kind, metric, tg, key,
                       initial_params=init_x, warm_start=_warm.digest(
                           seed_x, seed_f, *([seed_c] if tg.constraints else [])))
    jr, contents = _run.open_journal(journal, check_bool(resume, "resume"), head,
                                     write=jax.process_index() == 0)
    if jax.process_index() != 0:
        progress = False  # process 0 reports (and writes the journal)
    jpath = None if journal is None else os.fspath(journal)
    res = _Resumed({})
    if contents is not None:
        res = _restore(contents, strategy, state, pop, jpath, offset)
        state = res.state
        held = max([g for g, _ in res.done] + [res.start - 1]) + 1
        if held > num_generations:
            raise ValueError(f"num_generations={num_generations} is smaller than the "
                             f"{held} generations the journal {jpath!r} already holds; pass "
                             f"num_generations >= {held}")
    done = res.done
    if tg.names is None and kind in ("python", "program"):
        # A resumed run learns a Python objective's metric names from the journal.
        for t in sorted(done.values(), key=lambda t: t.number):
            if t.values is not None:
                tg = tg.resolve(list(t.metrics), list(t.metrics) == ["value"])
                break
    history = History(list(tg.names or []), list(tg.directions),
                      constraints=list(tg.constraints))
    for t in sorted(done.values(), key=lambda t: t.number):
        if t.generation < res.start:
            history.append(t)
    failures = [sum(t.status == FAILED for t in history)]
    bar = _monitor.Monitor(progress, num_generations, res.start, callbacks=callbacks)
    stopped_by = None
    try:
        for g in range(res.start, num_generations):
            if time_budget is not None and g > res.start and bar.elapsed() > time_budget:
                stopped_by = "time_budget"
                break
            k_ask, k_eval = _run.ask_keys(k_run, g)
            x, state = ask(k_ask, state)
            x_np = np.asarray(x)
            if x_np.shape != (pop, space.dim):
                raise ValueError(f"strategy.ask returned shape {x_np.shape}, expected "
                                 f"{(pop, space.dim)}")
            given = init_x[g * pop:(g + 1) * pop]  # initial_params replace the first proposals
            if len(given):
                x_np = x_np.copy()
                x_np[:len(given)] = given
                x = jnp.asarray(x_np)
            for (gg, i), t in done.items():
                if gg == g and not np.allclose(t.x, x_np[i], atol=1e-6):
                    raise ValueError(
                        f"journal {jpath!r}: trial {t.number} was proposed at a different "
                        "point; resume with the same key, strategy and settings as the "
                        "original run")
            have = [done.get((g, i)) for i in range(pop)]
            if kind in ("jax", "program"):
                if all(t is not None for t in have):  # journaled before its state record
                    trials, fresh = have, []
                else:
                    t0 = time.perf_counter()
                    if kind == "jax":
                        metrics = evaluate(jax.random.split(k_eval, pop), x)
                    else:
                        metrics = evaluate(k_eval, x)
                        tg = tg.resolve(list(metrics), False)
                        if not history.objectives:
                            history.objectives = list(tg.names)
                    new = batch_trials(space, g, x_np, metrics, tg.names,
                                       time.perf_counter() - t0, tg)
                    trials = [t if t is not None else n for t, n in zip(have, new)]
                    fresh = [n for t, n in zip(have, new) if t is None]
            else:
                trials, fresh, tg = _python_generation(
                    objective, space, g, x_np, have, tg, jr, executor, failures, max_failures,
                    history)
            for t in trials:
                history.append(t)
            if not history.objectives:  # every trial so far failed: names still unknown
                values = np.full((pop, len(tg.directions)), np.nan)
            else:
                values = np.array([t.values if t.status == OK else
                                   [np.nan] * len(tg.directions) for t in trials], np.float64)
            state = _run.reserve(strategy, state, offset + g + 1)
            if tell_constraints:
                state = tell(state, x, jnp.asarray(tg.fitness(values)),
                             constraint_matrix(trials, len(tg.constraints)))
            else:
                state = tell(state, x, jnp.asarray(tg.fitness(values)))
            if jr is not None:  # JAX trials and the state in one append
                jr.write(*[t.to_record() | {"type": "trial"} for t in
                           (fresh if kind != "python" else [])],
                         {"type": "state", "generation": g, "leaves": encode_state(state)})
            if bar.update(history, trials, failed=failures[0]):
                stopped_by = "callback"
                break
    finally:
        bar.close()
        if jr is not None:
            jr.close()
    if not history.objectives:
        history.objectives = list(tg.names) if tg.names else ["value"]
    return Result(history=history, state=state, space=space, stopped_by=stopped_by)


def _is_program(objective) -> bool:
    from jaxhpo import train

    return isinstance(objective, (train.TrainingProgram, train.Trainer))


def _python_generation(objective, space, g, x_np, have, tg, jr, executor, failures,
                       max_failures, history):
    """Evaluate the generation's missing Python trials (in order, or on ``executor`` as they
    complete), journaling each at once. Returns ``(trials, fresh, targets)``."""
    pop = len(have)
    todo = [i for i in range(pop) if have[i] is None]
    params = {i: space.to_params(x_np[i]) for i in todo}
    trials = list(have)
    if executor is None:
        outcomes = ((i, _run.call_python(objective, dict(params[i]))) for i in todo)
    else:
        futures = {executor.submit(_run.call_python, objective, dict(params[i])): i
                   for i in todo}
        outcomes = ((futures[f], _outcome(f)) for f in cf.as_completed(futures))
    for i, out in outcomes:
        values = None
        if out.metrics is not None:
            tg = tg.resolve(list(out.metrics), out.scalar)
            values = [out.metrics[n] for n in tg.names]
            if not history.objectives:
                history.objectives = list(tg.names)
        t = _run.make_trial(space, g * pop + i, g, i, x_np[i], out.metrics, values,
                            error=out.error, wall_time=out.wall_time,
                            constraints=None if out.metrics is None else
                            tg.constraint_values(out.metrics))
        trials[i] = t
        if jr is not None:
            jr.write(t.to_record() | {"type": "trial"})
        if t.status == FAILED:
            failures[0] += 1
            if failures[0] == 1:
                warnings.warn(f"trial {t.number} failed: {t.error}", stacklevel=3)
            if max_failures is not None and failures[0] > max_failures:
                raise TooManyFailures(
                    f"{failures[0]} trials failed (max_failures={max_failures}); last error: "
                    f"{t.error}. Completed trials are kept in the journal; fix the objective "
                    "and resume.")
    return trials, [trials[i] for i in todo], tg


def _outcome(future) -> _run.Outcome:
    """A future's Outcome; a worker that died or could not run the trial is a failed trial."""
    try:
        return future.result()
    except _run.ObjectiveOutputError:
        raise
    except Exception as e:
        return _run.Outcome(None, True, f"{type(e).__name__}: {e} (in the executor)", 0.0)


# ---------------------------------------------------------------------------- minimize_scan
def minimize_scan(objective: Callable, space: Space, strategy: Strategy, *,
                  num_generations: int | None = None, key=0, direction="minimize",
                  metric=None, constraints=None) -> Result:
    """Run every generation of a JAX-native objective inside one jitted ``lax.scan``.

    Same arguments and key derivation as :func:`minimize` (so the same trials), but the whole
    loop is one XLA program: no per-generation dispatch, no journal, no progress bar.
    ``constraints`` (metric names, feasible when ``<= 0``) work as in :func:`minimize`: a
    strategy built with ``num_constraints=len(constraints)`` is told ``f32[pop, k]`` inside the
    scan, and ``best_*`` consider feasible trials only.

    Returns:
      A :class:`Result` whose ``arrays`` hold ``x: f32[G, P, d]`` and every metric
      ``f32[G, P]``; ``history`` is built from them.
    """
    _run.check_strategy(space, strategy)
    num_generations = _check_generations(strategy, num_generations)
    try:
        kind = _run.objective_kind(objective)
    except TypeError:  # signature not conclusive (e.g. *args): trust the caller
        kind = "jax"
    if kind != "jax":
        raise TypeError("minimize_scan needs a JAX-native objective fn(key, hparams); use "
                        "minimize for Python callables fn(params)")
    if space.static_names:
        raise ValueError(f"minimize_scan runs one traced program, but {list(space.static_names)} "
                         "are static hyperparameters (one program per value); use minimize")
    tg = _run.targets(metric, direction, constraints)
    _run.check_objectives(strategy, tg)
    tell_constraints = _run.check_constraints(strategy, tg)
    key = as_key(key)
    pop = strategy.population_size
    tg = _JaxEvaluator(objective, space, pop, tg).targets
    one = _member_fn(objective, space)
    sign = jnp.asarray(tg.sign)
    k_init, k_run = _run.run_keys(key)

    def generation(state, g):
        k_ask, k_eval = _run.ask_keys(k_run, g)
        x, state = strategy.ask(k_ask, state)
        metrics = jax.vmap(one)(jax.random.split(k_eval, pop), x)
        f = jnp.stack([metrics[n] for n in tg.names], -1) * sign
        f = f[:, 0] if len(tg.names) == 1 else f
        if tell_constraints:
            state = strategy.tell(state, x, f,
                                  jnp.stack([metrics[c] for c in tg.constraints], -1))
        else:
            state = strategy.tell(state, x, f)
        return state, (x, metrics)

    @jax.jit
    def run(k):
        state = _run.reserve(strategy, strategy.init(k), num_generations)
        return jax.lax.scan(generation, state, jnp.arange(num_generations))

    t0 = time.perf_counter()
    state, (xs, metrics) = jax.block_until_ready(run(k_init))
    wall = (time.perf_counter() - t0) / num_generations
    xs, metrics = np.asarray(xs), jax.device_get(metrics)
    history = History(list(tg.names), list(tg.directions), constraints=list(tg.constraints))
    for g in range(num_generations):
        for t in batch_trials(space, g, xs[g], {k: v[g] for k, v in metrics.items()},
                              tg.names, wall, tg):
            history.append(t)
    return Result(history=history, state=state, space=space,
                  arrays={"x": xs, **{k: np.asarray(v) for k, v in metrics.items()}})
