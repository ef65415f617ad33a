"""``jaxhpo.tune``: multi-fidelity tuning with a scheduler, on the vmapped engine or in Python.

Two ways to run, one function:

* **A** :class:`jaxhpo.train.Trainer`: ``population_size`` slots train in lock-step, one round
  (``eval_every`` steps, one compiled call) at a time. After each round the scheduler turns the
  slots' validation metrics into actions; a stopped, paused or finished trial frees its slot,
  which is refilled at once with the scheduler's next job: a new configuration (from the search
  strategy, or BOHB's densities) or a paused trial promoted to a higher rung (its weights and
  optimizer state are parked on the host and put back). PBT copies members with
  ``Population.gather``. Slot utilization = busy slot-rounds / all slot-rounds.
* **A Python callable** ``fn(params, trial)``: it trains however it likes and calls
  ``trial.report(step, value)``; ``trial.should_stop()`` says when the scheduler stopped it
  (Optuna's ``report``/``should_prune`` pattern). ``workers > 1`` runs trials in a thread pool;
  ASHA (stopping mode) is then genuinely asynchronous: every report is decided on arrival.

The search strategy sees whole batches: a batch of ``strategy.population_size`` configurations
is asked when the queue is empty and told, in order, once every one of its trials has left its
slot for the first time (stopped, paused at a rung, or done), with the value it had then: a
model-based strategy learns from low-fidelity results, as ASHA+BO systems do, instead of
waiting for trials that may never be promoted.

Journal (``journal=path``): every ended trial (and, under PBT, every exploit/explore round) is
appended to a JSON Lines file, and the whole run
state (slots' weights, parked trials, scheduler, strategy, bookkeeping) is checkpointed to
``path + ".ckpt"`` (atomically) every ``checkpoint_every`` rounds; ``resume=True`` restarts from
the checkpoint and, replaying deterministically, never records a trial twice.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._driver import _Progress, _targets, as_key
from jaxhpo._history import DIVERGED, FAILED, OK, STOPPED, History, Trial
from jaxhpo._journal import (FORMAT, VERSION, Journal, check_journal, decode_state,
                             encode_state)
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy
from jaxhpo.schedulers import _policies as P


class StopTrial(Exception):
    """Raise from a Python objective after ``trial.should_stop()`` to end it as stopped."""


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
      history: every trial; ``fidelity`` = steps trained, ``status`` ``ok`` for trials trained
        to ``max_steps``, ``stopped`` for trials the scheduler ended early.
      space: the search space.
      utilization: busy slot-rounds / all slot-rounds (``None`` for Python objectives).
      rounds: rounds run (Trainer) or trials run (Python).
      wall_time: seconds of this call.
      trace: ``(seconds, best value)`` each time the best full-budget trial improved.
      curves: ``{trial number: [value per report]}`` in the user's direction (Trainer: one
        value every ``eval_every`` steps; Python: ``[step, value]`` pairs as reported).
      schedules: PBT only: ``{slot: lineage}`` from :func:`jaxhpo.schedulers.pbt_lineage`.
    """

    history: History
    space: Space
    utilization: float | None
    rounds: int
    wall_time: float
    trace: list = field(default_factory=list)
    curves: dict = field(default_factory=dict, repr=False)
    schedules: dict | None = field(default=None, repr=False)

    @property
    def best_trial(self) -> Trial:
        """The best trial among those trained to the full budget (status ``ok``)."""
        done = [t for t in self.history if t.status == OK]
        if not done:
            raise ValueError("no trial reached max_steps; raise max_trials or the budget")
        sign = 1.0 if self.history.directions[0] == "minimize" else -1.0
        return min(done, key=lambda t: sign * t.values[0])

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return self.best_trial.values[0]


class _Proposer:
    """Steady-state adapter: hands out one configuration at a time from batched asks, tells
    each batch (in order) when all of its trials have ended."""

    def __init__(self, strategy: Strategy, key):
        self.strategy = strategy
        k_init, self.k_run = jax.random.split(key)
        self.state = strategy.init(k_init)
        self._ask, self._tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
        self.gen, self.told, self.queue, self.pending = 0, 0, [], {}

    def next(self):
        if not self.queue:
            x, self.state = self._ask(jax.random.fold_in(self.k_run, self.gen), self.state)
            n = self.strategy.population_size
            self.pending[self.gen] = [np.asarray(x), np.full(n, np.nan, np.float32), set(range(n))]
            self.queue = [(self.gen, i) for i in range(n)]
            self.gen += 1
        g, i = self.queue.pop(0)
        return self.pending[g][0][i], g, i

    def result(self, g, i, value):
        if g not in self.pending:
            return
        self.pending[g][1][i] = value
        self.pending[g][2].discard(i)
        while self.told in self.pending and not self.pending[self.told][2]:
            x, f, _ = self.pending.pop(self.told)
            if self.strategy.reserve is not None:
                self.state = self.strategy.reserve(self.state,
                                                   (self.told + 1) * len(f))
            self.state = self._tell(self.state, jnp.asarray(x), jnp.asarray(f))
            self.told += 1

    def dump(self):
        return {"gen": self.gen, "told": self.told, "queue": list(self.queue),
                "pending": {g: [v[0], v[1], sorted(v[2])] for g, v in self.pending.items()},
                "state": encode_state(self.state)}

    def load(self, d):
        self.gen, self.told, self.queue = d["gen"], d["told"], [tuple(q) for q in d["queue"]]
        self.pending = {g: [v[0], v[1], set(v[2])] for g, v in d["pending"].items()}
        template = self.state
        if self.strategy.reserve is not None:
            template = self.strategy.reserve(template, self.told * self.strategy.population_size)
        self.state = decode_state(d["state"], template)


def _check(space, strategy, scheduler, max_trials):
    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a jaxhpo.Strategy (e.g. "
                        f"jaxhpo.strategies.random_search(space, 8)), got "
                        f"{type(strategy).__name__}")
    if strategy.num_dims != space.dim:
        raise ValueError(f"strategy was built for {strategy.num_dims} dimensions but the space "
                         f"has {space.dim}; build the strategy from this space")
    if not isinstance(scheduler, P.Scheduler):
        raise TypeError(f"scheduler must be a jaxhpo.schedulers scheduler (ASHA, HyperBand, "
                        f"BOHB, PBT, MedianStopping, CurveStopping, Scheduler), got "
                        f"{type(scheduler).__name__}")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"max_trials must be a positive int, got {max_trials!r}")


def tune(objective, space: Space, strategy: Strategy, scheduler, *, max_trials: int,
         population_size: int | None = None, eval_every: int | None = None,
         metric: str | None = None, direction: str = "minimize", key=0,
         journal: str | os.PathLike | None = None, resume: bool = False,
         checkpoint_every: int = 1, workers: int = 1, progress: bool = True,
         test_split: bool = True, time_budget: float | None = None) -> TuneResult:
    """Tune with early stopping / multi-fidelity scheduling; freed slots are refilled.

    Args:
      objective: a :class:`jaxhpo.train.Trainer` (vmapped slots) or a Python callable
        ``fn(params: dict, trial) -> float`` that calls ``trial.report(step, value)`` and
        checks ``trial.should_stop()``.
      space: the search space (for a Trainer, the one it was built with).
      strategy: proposes new configurations (e.g. ``jaxhpo.strategies.tpe(space, 8)``).
      scheduler: :class:`jaxhpo.schedulers.ASHA`, ``HyperBand``, ``BOHB``, ``PBT``,
        ``MedianStopping``, ``CurveStopping`` or the plain ``Scheduler(max_steps)``.
      max_trials: configurations to start (PBT: the population, ``population_size``).
      population_size: slots trained at once (Trainer only; default 16).
      eval_every: steps per round / report grid (default: the scheduler's smallest rung).
      metric: the Trainer's validation metric to optimize (``"loss"``, ``"accuracy"``).
      direction: ``"minimize"`` or ``"maximize"``.
      key: int seed or PRNG key.
      journal: JSON Lines journal path (checkpoint in ``journal + ".ckpt"``).
      resume: continue the run in ``journal``.
      checkpoint_every: rounds between checkpoints (Trainer).
      workers: threads running Python trials at once.
      progress: rich progress bar (TTY only).
      test_split: evaluate finished trials on the test split too (Trainer).
      time_budget: seconds after which no new round (Trainer; at least one runs) or trial
        (Python) starts; unfinished trials are recorded as stopped (``None``: run until
        ``max_trials`` have ended).

    Returns:
      a :class:`TuneResult`.

    Example:
      >>> trainer = jaxhpo.train.Trainer(jaxhpo.train.mlp(10), jaxhpo.train.mnist1d(),
      ...                                space=space)
      >>> res = jaxhpo.tune(trainer, space, jaxhpo.strategies.tpe(space, 8),
      ...                   jaxhpo.schedulers.ASHA(min_steps=100, max_steps=2700),
      ...                   max_trials=200, population_size=16, metric="accuracy",
      ...                   direction="maximize")
      >>> res.best_params, res.utilization
    """
    from jaxhpo.train import Trainer

    _check(space, strategy, scheduler, max_trials)
    names, dirs = _targets(metric, direction)
    if names is not None and len(names) != 1:
        raise ValueError("tune optimizes one metric; pass metric='name'")
    sign = 1.0 if dirs[0] == "minimize" else -1.0
    key = as_key(key)
    if eval_every is None:
        eval_every = scheduler.default_eval_every()
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive int, got {eval_every!r}")
    check_journal(journal)
    for name, v in (("resume", resume), ("progress", progress), ("test_split", test_split)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} must be True or False, got {v!r}")
    if resume and journal is None:
        raise ValueError("resume=True needs journal=path of the run to resume")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or \
            checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive int (rounds), got "
                         f"{checkpoint_every!r}")
    if time_budget is not None and not (isinstance(time_budget, (int, float))
                                        and not isinstance(time_budget, bool)
                                        and math.isfinite(time_budget) and time_budget > 0):
        raise ValueError(f"time_budget must be None or seconds > 0, got {time_budget!r}")
    if isinstance(objective, Trainer):
        if population_size is None:
            population_size = 16
        if isinstance(population_size, bool) or not isinstance(population_size, int) or \
                population_size < 1:
            raise ValueError(f"population_size must be a positive int, got {population_size!r}")
        if scheduler.pbt and max_trials != population_size:
            raise ValueError(f"PBT trains exactly the population: max_trials "
                             f"({max_trials}) must equal population_size ({population_size})")
        run = _SlotRun(objective, space, strategy, scheduler, population_size, max_trials,
                       eval_every, names[0] if names else "loss", sign, dirs, key, test_split)
        return run.go(journal, resume, checkpoint_every, progress, time_budget)
    if not callable(objective):
        raise TypeError(f"objective must be a jaxhpo.train.Trainer or a callable fn(params, "
                        f"trial), got {type(objective).__name__}")
    if not scheduler.python_ok:
        raise ValueError(f"scheduler {scheduler.name!r} pauses and resumes trials, which a "
                         f"Python objective cannot do; use ASHA(mode='stopping'), "
                         f"MedianStopping or CurveStopping, or a jaxhpo.train.Trainer")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return _run_python(objective, space, strategy, scheduler, max_trials, eval_every,
                       names[0] if names else "value", sign, dirs, key, journal, resume,
                       workers, time_budget)


def _header(space, strategy, scheduler, kind, max_trials, population_size, dirs, key):
    return {"type": "header", "format": FORMAT, "version": VERSION, "driver": "tune",
            "objective_type": kind, "space": space.to_dict(), "strategy": strategy.name,
            "batch": strategy.population_size, "scheduler": scheduler.name,
            "max_trials": max_trials, "population_size": population_size, "directions": dirs,
            "key": np.asarray(jax.random.key_data(key)).tolist()}


def _open_journal(journal, resume, header):
    """``(Journal, {number: Trial})``; checks a resumed journal belongs to this run."""
    if journal is None:
        return None, {}
    jr = Journal(journal)
    if jr.exists() and not resume:
        raise ValueError(f"journal {jr.path!r} already holds a run; pass resume=True to "
                         f"continue it or choose a new path")
    records = jr.read() if resume else []
    if not records:
        jr.write(header)
        return jr, {}
    head = records[0]
    for k, v in header.items():
        if k != "type" and head.get(k) != v:
            raise ValueError(f"cannot resume: the journal's {k} ({head.get(k)!r}) differs "
                             f"from this run's ({v!r}); use the original settings")
    done = {}
    for r in records[1:]:
        if r.get("type") == "trial":
            done[r["number"]] = (Trial.from_record(r), r.get("curve", []))
    return jr, done


def _trial(space, number, info, metrics, value, status, fidelity):
    params = space.to_params(info["x"])
    v = None if value is None else float(value)
    if v is not None and not math.isfinite(v):
        status = DIVERGED
    return Trial(number=number, generation=info["gen"], member=info["member"],
                 x=[float(a) for a in info["x"]], params=params,
                 inactive=space.inactive_names(params), metrics=metrics,
                 values=None if v is None else [v], status=status,
                 wall_time=time.time() - info["t0"], timestamp=time.time(),
                 fidelity=float(fidelity))


def _is_key(a):
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _raw(tree):
    return jax.tree.map(lambda a: jax.random.key_data(a) if _is_key(a) else a, tree)


class _SlotRun:
    """The slot engine's run state; everything but the compiled functions is checkpointed."""

    def __init__(self, trainer, space, strategy, scheduler, size, max_trials, eval_every,
                 metric, sign, dirs, key, test_split):
        from jaxhpo.train import Population

        self.space, self.scheduler, self.size = space, scheduler, size
        self.max_trials, self.eval_every, self.metric, self.sign = (max_trials, eval_every,
                                                                    metric, sign)
        self.dirs, self.key, self.test_split = dirs, key, test_split
        self.strategy = strategy
        self.pop = Population(trainer, size)
        k_strat, self.k_pop, self.k_run = jax.random.split(key, 3)
        self.proposer = _Proposer(strategy, k_strat)
        scheduler.start(max_trials, eval_every, space, size)
        d = space.dim
        self.slot = np.full(size, -1, np.int64)
        self.x = np.full((size, d), 0.5, np.float32)
        self.trials: dict[int, dict] = {}
        self.parked: dict[int, Any] = {}
        self.round = self.next_id = self.busy = 0
        self.trace = []
        self.best = math.inf
        self.pbt_events: list = []
        self.pbt_x0 = None
        # Every member is created by ``pop.replace`` when its slot is first filled; the
        # initial state only fixes shapes (zeros), which saves compiling ``pop.init``.
        shapes = jax.eval_shape(self.pop.init, self.k_pop, space.decode(jnp.asarray(self.x)))
        zero = lambda s: (jax.random.wrap_key_data(jnp.zeros(s.shape + (2,), jnp.uint32))
                          if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key)
                          else jnp.zeros(s.shape, s.dtype))
        self.state = self.pop.place(jax.tree.map(zero, shapes))
        self._put = jax.jit(self._put_impl)

    # ------------------------------------------------------------------ member parking
    def _put_impl(self, state, rows, mask):
        def pick(old, new):
            if _is_key(old):
                new = jax.random.wrap_key_data(new, impl=jax.random.key_impl(old))
            m = mask.reshape((-1,) + (1,) * (old.ndim - 1))
            return jnp.where(m, new, old)
        return jax.tree.map(pick, state, rows)

    def _park(self, slots):
        host = jax.device_get(_raw(self.state))
        for i in slots:
            self.parked[int(self.slot[i])] = jax.tree.map(lambda a: np.array(a[i]), host)

    def _unpark(self, moves):
        host = jax.device_get(_raw(self.state))
        rows = jax.tree.map(np.array, host)
        mask = np.zeros(self.size, bool)
        for i, t in moves.items():
            member = self.parked.pop(t)
            jax.tree.map(lambda r, m: r.__setitem__(i, m), rows, member)
            mask[i] = True
        self.state = self._put(self.state, self.pop.place(rows), self.pop.place(mask))

    # ------------------------------------------------------------------ one round
    def _fill(self, key):
        k_job, k_init, k_prop = jax.random.split(key, 3)
        fresh = np.zeros(self.size, bool)
        moves = {}
        free = np.flatnonzero(self.slot < 0)
        self.scheduler.prepare(len(free))
        for j, i in enumerate(free):
            job = self.scheduler.next_job(jax.random.fold_in(k_job, j), self.next_id)
            if job is None:
                break
            if job.trial < 0:
                t = self.next_id
                self.next_id += 1
                x = self.scheduler.propose(jax.random.fold_in(k_prop, j), self.space.dim)
                g = m = -1
                if x is None:
                    x, g, m = self.proposer.next()
                self.trials[t] = {"x": np.asarray(x, np.float32), "gen": g, "member": m,
                                  "steps": 0, "curve": [], "t0": time.time()}
                fresh[i] = True
            else:
                t = job.trial
                moves[i] = t
            self.slot[i] = t
            self.x[i] = self.trials[t]["x"]
        hp = self.space.decode(jnp.asarray(self.x))
        if fresh.any():
            self.state = self.pop.replace(self.state, fresh, k_init, hp)
        if moves:
            self._unpark(moves)
        return hp

    def _end(self, t, status, metrics, done_list):
        info = self.trials[t]
        curve = info["curve"]
        value = curve[-1] if curve else None
        m = {f"val_{self.metric}": value if value is not None else math.nan, **metrics}
        tr = _trial(self.space, t, info, m, value, status, info["steps"])
        done_list.append((tr, [float(v) for v in curve]))
        self._tell(info)

    def _tell(self, info):
        """Give the strategy a trial's value the first time it leaves its slot (stopped,
        paused at a rung or done): model-based strategies then learn from every rung."""
        if info["gen"] >= 0 and not info.get("told"):
            info["told"] = True
            v = info["curve"][-1] if info["curve"] else math.nan
            self.proposer.result(info["gen"], info["member"], self.sign * v)

    def step(self):
        key = jax.random.fold_in(self.k_run, self.round)
        k_fill, k_pbt = jax.random.split(key)
        hp = self._fill(k_fill)
        active = np.flatnonzero(self.slot >= 0)
        if active.size == 0:
            return None
        self.state, curve = self.pop.train(self.state, hp, steps=self.eval_every,
                                           eval_every=self.eval_every)
        raw = np.asarray(curve[self.metric])[:, -1].astype(np.float64)
        self.busy += active.size
        self.round += 1
        trials = [int(self.slot[i]) for i in active]
        for i, t in zip(active, trials):
            self.trials[t]["steps"] += self.eval_every
            self.trials[t]["curve"].append(float(raw[i]))
        steps = [self.trials[t]["steps"] for t in trials]
        values = [self.sign * raw[i] for i in active]
        actions = self.scheduler.report(trials, steps, values, [self.x[i] for i in active])
        if self.scheduler.pbt and active.size == self.size and all(a == P.CONTINUE
                                                                     for a in actions):
            self._pbt(k_pbt, steps[0], raw)
        ended = []
        finished = [i for i, a in zip(active, actions) if a == P.DONE]
        test = {}
        if finished and self.test_split:
            test = jax.device_get(self.pop.evaluate(self.state, hp, "test"))
        for i, t, a in zip(active, trials, actions):
            if a == P.DONE:
                m = {f"test_{k}": float(v[i]) for k, v in test.items()
                     if k in ("loss", "accuracy")}
                self._end(t, OK, m, ended)
                v = self.trials[t]["curve"][-1]
                if math.isfinite(v) and self.sign * v < self.best:
                    self.best = self.sign * v
                    self.trace.append((time.time() - self.t_start, v))
            elif a == P.STOPPED:
                self._end(t, STOPPED, {}, ended)
        paused = [i for i, a in zip(active, actions) if a == P.PAUSE]
        if paused:
            self._park(paused)
            for i in paused:
                self._tell(self.trials[int(self.slot[i])])
        for t in self.scheduler.take_dropped():
            self.parked.pop(t, None)
            self._end(t, STOPPED, {}, ended)
        for i, a in zip(active, actions):
            if a != P.CONTINUE:
                self.slot[i] = -1
        return ended

    def _pbt(self, key, s, raw):
        sched = self.scheduler
        if s % sched.interval or s >= sched.max_steps:
            return
        if self.pbt_x0 is None:
            self.pbt_x0 = self.x.copy()
        values = self.sign * raw
        src, ex, new_x = sched.exploit(key, values, self.x, self.space)
        if ex.any():
            self.state = self.pop.gather(self.state, src)
            for i in np.flatnonzero(ex):
                t, u = int(self.slot[i]), int(self.slot[src[i]])
                self.trials[t]["curve"] = list(self.trials[u]["curve"])
                self.trials[t]["x"] = np.asarray(new_x[i], np.float32)
            self.x = np.asarray(new_x, np.float32)
        self.pbt_events.append((s, src.tolist(), ex.tolist(), self.x.tolist()))

    # ------------------------------------------------------------------ checkpoints
    _SAVED = ("slot", "x", "trials", "parked", "round", "next_id", "busy", "trace", "best",
              "pbt_events", "pbt_x0", "scheduler")

    def _save(self, path):
        blob = {k: getattr(self, k) for k in self._SAVED}
        blob["proposer"] = self.proposer.dump()
        blob["state"] = jax.device_get(jax.tree.leaves(_raw(self.state)))
        blob["elapsed"] = time.time() - self.t_start
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(blob, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _load(self, path):
        with open(path, "rb") as f:
            blob = pickle.load(f)
        for k in self._SAVED:
            setattr(self, k, blob[k])
        self.proposer.load(blob["proposer"])
        leaves, treedef = jax.tree.flatten(self.state)
        new = [jax.random.wrap_key_data(jnp.asarray(v), impl=jax.random.key_impl(o))
               if _is_key(o) else jnp.asarray(v) for o, v in zip(leaves, blob["state"])]
        self.state = self.pop.place(jax.tree.unflatten(treedef, new))
        self.t_start -= blob["elapsed"]

    # ------------------------------------------------------------------ the loop
    def go(self, journal, resume, checkpoint_every, progress, time_budget=None):
        header = _header(self.space, self.strategy, self.scheduler, "trainer", self.max_trials,
                         self.size, self.dirs, self.key)
        jr, done = _open_journal(journal, resume, header)
        ckpt = None if journal is None else os.fspath(journal) + ".ckpt"
        self.t_start = time.time()
        if resume and ckpt and os.path.exists(ckpt):
            self._load(ckpt)
        pbt_written = len(self.pbt_events)  # those in a checkpoint were journaled before it
        history = History([f"val_{self.metric}"], self.dirs)
        curves = {}
        for n in sorted(done):
            history.append(done[n][0])
            curves[n] = done[n][1]
        bar = _Progress(progress, self.max_trials, len(done))
        try:
            while True:
                if time_budget is not None and self.round > 0 and \
                        time.time() - self.t_start > time_budget:
                    self.slot[:] = -1  # running trials end as stopped (below)
                    self.scheduler.max_trials = 0
                    break
                ended = self.step()
                if ended is None:
                    break
                fresh = [(tr, c) for tr, c in ended if tr.number not in done]
                for tr, c in fresh:
                    done[tr.number] = (tr, c)
                    history.append(tr)
                    curves[tr.number] = c
                    bar.update(history)
                if jr is not None and fresh:
                    jr.write(*[tr.to_record() | {"type": "trial", "curve": c}
                               for tr, c in fresh])
                if jr is not None and len(self.pbt_events) > pbt_written:
                    jr.write(*self._pbt_records(pbt_written))
                    pbt_written = len(self.pbt_events)
                if ckpt and self.round % checkpoint_every == 0:
                    self._save(ckpt)
            rest = []
            for t in [t for t in self.trials if t not in done]:  # paused or cut off
                self.parked.pop(t, None)
                self._end(t, STOPPED, {}, rest)
            for tr, c in rest:
                done[tr.number] = (tr, c)
                history.append(tr)
                curves[tr.number] = c
            if jr is not None and rest:
                jr.write(*[tr.to_record() | {"type": "trial", "curve": c} for tr, c in rest])
            if ckpt:
                self._save(ckpt)
        finally:
            bar.close()
            if jr is not None:
                jr.close()
        history.trials.sort(key=lambda t: t.number)
        schedules = None
        if self.scheduler.pbt:
            schedules = self._schedules()
        util = self.busy / max(1, self.round * self.size)
        return TuneResult(history, self.space, util, self.round, time.time() - self.t_start,
                          self.trace, curves, schedules)

    def _schedules(self):
        from jaxhpo.schedulers import pbt_schedules

        x0 = self.pbt_x0 if self.pbt_x0 is not None else self.x
        return pbt_schedules(x0, self.pbt_events)

    def _pbt_records(self, start):
        """Journal records of the PBT rounds from ``start`` on (``x0`` rides on round 0)."""
        out = []
        for i in range(start, len(self.pbt_events)):
            step, src, ex, x = self.pbt_events[i]
            rec = {"type": "pbt", "round": i, "step": int(step), "src": src, "exploit": ex,
                   "x": x}
            if i == 0:
                rec["x0"] = np.asarray(self.pbt_x0).tolist()
            out.append(rec)
        return out


# ---------------------------------------------------------------------------- Python objectives
class TrialHandle:
    """What a Python objective receives as ``trial``: report intermediate values, ask whether
    to stop. ``params`` and ``number`` identify the trial."""

    def __init__(self, run, number, params):
        self._run, self.number, self.params = run, number, params
        self._stop = False
        self.reports: list[tuple[int, float]] = []

    def report(self, step: int, value: float) -> None:
        """Report the metric (in the user's direction) after ``step`` training steps."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"step must be a positive int, got {step!r}")
        value = float(value)
        self.reports.append((int(step), value))
        self._stop = self._stop or self._run.report(self.number, int(step), value)

    def should_stop(self) -> bool:
        """True once the scheduler decided to stop this trial: return (or raise
        :class:`jaxhpo.StopTrial`) as soon as possible."""
        return self._stop


class _PythonRun:
    def __init__(self, scheduler, sign, proposer):
        self.lock = threading.Lock()
        self.scheduler, self.sign, self.proposer = scheduler, sign, proposer
        self.x: dict[int, np.ndarray] = {}
        self.done_steps: dict[int, int] = {}

    def report(self, number, step, value):
        with self.lock:
            v = self.sign * value if math.isfinite(value) else math.nan
            a = self.scheduler.report([number], [step], [v], [self.x[number]])[0]
            if a == P.DONE:
                self.done_steps[number] = step
            return a in (P.STOPPED, P.PAUSE)


def _run_python(fn, space, strategy, scheduler, max_trials, eval_every, metric, sign, dirs, key,
                journal, resume, workers, time_budget):
    header = _header(space, strategy, scheduler, "python", max_trials, workers, dirs, key)
    jr, prior = _open_journal(journal, resume, header)
    by_slot = {(tr.generation, tr.member): (tr, c) for tr, c in prior.values()}
    k_strat, k_run = jax.random.split(key)
    proposer = _Proposer(strategy, k_strat)
    scheduler.start(max_trials, eval_every, space, workers)
    run = _PythonRun(scheduler, sign, proposer)
    history = History([metric], dirs)
    curves, trace = {}, []
    t_start = time.time()
    state = {"next": 0, "best": math.inf}

    def record(tr, curve):
        history.append(tr)
        curves[tr.number] = curve
        if tr.status == OK and sign * tr.values[0] < state["best"]:
            state["best"] = sign * tr.values[0]
            trace.append((time.time() - t_start, tr.values[0]))
        if tr.values is not None:
            proposer.result(tr.generation, tr.member, sign * tr.values[0])
        else:
            proposer.result(tr.generation, tr.member, math.nan)

    def take():
        """Next job under the lock: (number, x, gen, member, replayed trial or None)."""
        with run.lock:
            if time_budget is not None and time.time() - t_start > time_budget:
                return None
            job = scheduler.next_job(jax.random.fold_in(k_run, state["next"]), state["next"])
            if job is None:
                return None
            n = state["next"]
            state["next"] += 1
            x, g, m = proposer.next()
            run.x[n] = np.asarray(x, np.float32)
            old = by_slot.get((g, m))
            if old is not None:  # resumed: replay its reports, don't run it again
                tr, c = old
                for s_, v in c:
                    v = sign * v if v is not None and math.isfinite(v) else math.nan
                    scheduler.report([n], [s_], [v], [x])
                tr.number = n
                record(tr, c)
                return n, None, g, m, True
            return n, x, g, m, False

    def work():
        while True:
            job = take()
            if job is None:
                return
            n, x, g, m, replayed = job
            if replayed:
                continue
            params = space.to_params(x)
            h = TrialHandle(run, n, params)
            info = {"x": x, "gen": g, "member": m, "t0": time.time()}
            status, error = OK, None
            try:
                out = fn(dict(params), h)
                value = None if out is None else float(out)
            except StopTrial:
                value, status = None, STOPPED
            except Exception as e:  # a failing trial must not end the run
                value, status, error = None, FAILED, f"{type(e).__name__}: {e}"
            if h.should_stop():
                status = STOPPED
            if status == STOPPED or value is None and status == OK:
                value = h.reports[-1][1] if h.reports else None
                if status == OK and value is None:
                    status, error = FAILED, "the objective returned None and reported nothing"
            steps = h.reports[-1][0] if h.reports else 0
            with run.lock:
                tr = _trial(space, n, info, {metric: value if value is not None else math.nan},
                            value if status != FAILED else None, status, steps)
                tr.error = error
                c = [[s_, v] for s_, v in h.reports]
                record(tr, c)
                if jr is not None:
                    jr.write(tr.to_record() | {"type": "trial", "curve": c})

    try:
        if workers == 1:
            work()
        else:
            with ThreadPoolExecutor(workers) as ex:
                for f in [ex.submit(work) for _ in range(workers)]:
                    f.result()
    finally:
        if jr is not None:
            jr.close()
    history.trials.sort(key=lambda t: t.number)
    return TuneResult(history, space, None, len(history), time.time() - t_start, trace, curves)
