"""``jaxhpo.tune``: multi-fidelity tuning with a scheduler, on a vmapped population or in Python.

Two ways to run, one function (and one run layer, :mod:`jaxhpo._run`, shared with
:func:`jaxhpo.minimize`):

* a **population** (a :class:`jaxhpo.train.Trainer`, or your own training program wrapped by
  :class:`jaxhpo.train.Population`): ``population_size`` slots train in lock-step and are refilled
  as trials stop, pause at a rung or finish (:mod:`jaxhpo._tune_slots`);
* a **Python callable** ``fn(params, trial)`` that calls ``trial.report(step, value)`` and checks
  ``trial.should_stop()`` (:mod:`jaxhpo._tune_python`).

Journal (``journal=path``): every ended trial, with its learning curve, and under PBT every
exploit/explore round are appended to the JSON Lines journal; a population run also checkpoints
its whole state to ``path + ".ckpt"`` (JSON, the journal's encoding, replaced atomically) every
``checkpoint_every`` rounds. ``resume=True`` restarts from the checkpoint and, replaying
deterministically, never records a trial twice.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any

import jax

from jaxhpo import _monitor, _run
from jaxhpo._history import OK, History, Trial, feasible_or_raise
from jaxhpo._hosts import agreed
from jaxhpo._journal import fingerprint, read_json, write_json_atomic
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy
from jaxhpo._tune_python import StopTrial, TrialHandle, replayed_trials, run_python
from jaxhpo._validate import as_key, check_bool, check_int, check_optional_real

__all__ = ["StopTrial", "TrialHandle", "TuneResult", "tune"]


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
      history: every trial; ``fidelity`` = steps trained, ``status`` ``ok`` for trials trained
        to ``max_steps``, ``stopped`` for trials the scheduler ended early.
      space: the search space.
      utilization: busy slot-rounds / all slot-rounds (``None`` for Python objectives).
      rounds: rounds run (populations) or trials run (Python).
      wall_time: seconds of this call.
      trace: ``(seconds, best value)`` each time the best full-budget trial improved.
      curves: ``{trial number: [value per report]}`` in the user's direction (populations: one
        value every ``eval_every`` steps; Python: ``[step, value]`` pairs as reported).
      schedules: PBT only: ``{slot: lineage}`` from :func:`jaxhpo.schedulers.pbt_schedules`.
      stopped_by: ``None``, ``"callback"`` or ``"time_budget"`` (see :func:`tune`).
    """

    history: History
    space: Space
    utilization: float | None
    rounds: int
    wall_time: float
    trace: list = field(default_factory=list)
    curves: dict = field(default_factory=dict, repr=False)
    schedules: dict | None = field(default=None, repr=False)
    stopped_by: str | None = None

    @property
    def best_trial(self) -> Trial:
        """The best trial among those trained to the full budget (status ``ok``) and, with
        ``constraints``, feasible (a ValueError naming the least-violating one if none is)."""
        done = feasible_or_raise([t for t in self.history if t.status == OK],
                                 self.history.constraints)
        if not done:
            failed = [t for t in self.history if t.error]
            why = (f"; {len(failed)} of {len(self.history)} trials failed, the first with "
                   f"{failed[0].error!r}" if failed else "")
            raise ValueError("no trial reached max_steps; raise max_trials or the budget" + why)
        sign = 1.0 if self.history.directions[0] == "minimize" else -1.0
        return min(done, key=lambda t: sign * t.values[0])

    @property
    def best_params(self) -> dict[str, Any]:
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        return self.best_trial.values[0]


def _population(objective, population_size, space=None):
    """A :class:`jaxhpo.train.Population` for a Trainer, a training program or a population
    (``None`` for anything else)."""
    from jaxhpo import train

    if isinstance(objective, train.Population):
        if population_size is not None and population_size != objective.size:
            raise ValueError(f"population_size={population_size} differs from the given "
                             f"Population's size {objective.size}; leave it out")
        return objective
    if isinstance(objective, (train.Trainer, train.TrainingProgram)):
        size = 16 if population_size is None else check_int(population_size,
                                                            "population_size", 1)
        if isinstance(objective, train.Trainer):
            return train.Population(objective, size)
        return train.Population(objective, size, space=space)
    return None


def tune(objective, space: Space, strategy: Strategy, scheduler, *, max_trials: int,
         population_size: int | None = None, eval_every: int | None = None,
         metric: str | None = None, direction: str = "minimize", key=0,
         journal: str | os.PathLike | None = None, resume: bool = False,
         checkpoint_every: int = 1, workers: int = 1, progress: bool | str = True,
         test_split: bool = True, time_budget: float | None = None,
         callbacks=None, executor=None, constraints=None) -> TuneResult:
    """Tune with early stopping / multi-fidelity scheduling; freed slots are refilled.

    Args:
      objective: a :class:`jaxhpo.train.Trainer`, a training program
        (:class:`jaxhpo.train.TrainingProgram`) or a :class:`jaxhpo.train.Population` of one
        (vmapped slots); or a Python callable ``fn(params: dict, trial) -> float`` that calls
        ``trial.report(step, value)`` and checks ``trial.should_stop()``.
      space: the search space (for a Trainer, the one it was built with).
      strategy: proposes new configurations (e.g. ``jaxhpo.strategies.tpe(space, 8)``).
      scheduler: :class:`jaxhpo.schedulers.ASHA`, ``HyperBand``, ``BOHB``, ``PBT``,
        ``MedianStopping``, ``CurveStopping`` or the plain ``Scheduler(max_steps)``; tune works
        on a copy, so one scheduler object can configure several runs.
      max_trials: configurations to start (PBT: the population, ``population_size``).
      population_size: slots trained at once (populations only; default 16).
      eval_every: steps per round / report grid (default: the scheduler's smallest rung).
      metric: the validation metric to optimize (``"loss"``, ``"accuracy"``...).
      direction: ``"minimize"`` or ``"maximize"``.
      key: int seed or PRNG key.
      journal: JSON Lines journal path (a population run checkpoints to ``journal + ".ckpt"``).
      resume: continue the run in ``journal`` (same settings; checked).
      checkpoint_every: rounds between checkpoints (populations).
      workers: Python trials running at once: threads, or (with ``executor``) trials in flight
        on the executor.
      executor: a :class:`concurrent.futures.Executor` (processes, a Dask client's
        ``get_executor()``, threads) that runs Python trials; their ``trial.report`` calls reach
        this process's scheduler live (a ``multiprocessing`` manager on 127.0.0.1), so early
        stopping works as with threads. The objective must be picklable (module level).
      progress: ``True`` (a bar on a terminal, else log lines), ``"bar"``, ``"log"``, ``False``.
      test_split: evaluate finished trials on the test split too (populations).
      time_budget: seconds after which no new round (populations; at least one runs) or trial
        (Python) starts; unfinished trials are recorded as stopped (``None``: run until
        ``max_trials`` have ended).
      callbacks: callables ``cb(event)`` run after every round (populations) or trial (Python)
        with a :class:`jaxhpo.RunEvent`; a callback that raises :class:`jaxhpo.StopRun` ends the
        run cleanly: running trials are recorded as stopped, the journal stays resumable.
      constraints: names of metrics that must be ``<= 0`` (Optuna's convention; NaN or missing
        = violated): a population's validation metrics (recorded as ``val_<name>``, measured
        when the trial leaves its slot), or keys of the dict a Python objective returns (a
        trial that returns no dict, e.g. a stopped one, counts as infeasible). Recorded per
        trial (``Trial.constraints``); ``best_*`` consider feasible trials only; a strategy
        built with ``num_constraints=len(constraints)`` is told them (see
        :func:`jaxhpo.minimize`), one built without runs unconstrained with a warning.

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
    from jaxhpo.schedulers import Scheduler

    _run.check_strategy(space, strategy)
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a jaxhpo.schedulers scheduler (ASHA, HyperBand, "
                        f"BOHB, PBT, MedianStopping, CurveStopping, Scheduler), got "
                        f"{type(scheduler).__name__}")
    max_trials = check_int(max_trials, "max_trials", 1)
    tg = _run.targets(metric, direction, constraints)
    if tg.names is not None and len(tg.names) != 1:
        raise ValueError("tune optimizes one metric; pass metric='name'")
    _run.check_objectives(strategy, _run.targets(None, direction))
    _run.check_constraints(strategy, tg)
    sign = float(tg.sign[0])
    key = as_key(key)
    eval_every = scheduler.default_eval_every() if eval_every is None else eval_every
    eval_every = check_int(eval_every, "eval_every", 1)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", 1)
    check_bool(test_split, "test_split")
    time_budget = check_optional_real(time_budget, "time_budget", 0.0, low_open=True)
    _monitor.check_progress(progress)
    callbacks = _monitor.check_callbacks(callbacks)
    settings = {k: v for k, v in vars(scheduler).items()  # its settings, not patched methods
                if not k.startswith("_") and not callable(v)}
    scheduler = copy.deepcopy(scheduler)
    pop = _population(objective, population_size, space)
    if pop is not None:
        if scheduler.pbt and max_trials != pop.size:
            raise ValueError(f"PBT trains exactly the population: max_trials ({max_trials}) "
                             f"must equal population_size ({pop.size})")
        head = _run.header("tune", space, strategy, "population", metric, tg, key,
                           scheduler=scheduler.name, scheduler_config=settings,
                           max_trials=max_trials, slots=pop.size, eval_every=eval_every)
        lead = jax.process_index() == 0  # under jax.distributed, process 0 writes
        jr, contents = _run.open_journal(journal, check_bool(resume, "resume"), head,
                                         write=lead)
        try:
            return _run_population(pop, space, strategy, scheduler, max_trials, eval_every,
                                   (tg.names or ("loss",))[0], sign, tg, key, test_split,
                                   head, jr, journal, contents, checkpoint_every, progress and lead,
                                   time_budget, callbacks)
        finally:
            if jr is not None:
                jr.close()
    if not callable(objective):
        raise TypeError(f"objective must be a jaxhpo.train.Trainer, a training program, a "
                        f"Population or a callable fn(params, trial), got "
                        f"{type(objective).__name__}")
    kind = _run.objective_kind(objective)
    if kind != "trial" and kind != "jax":  # fn(params): nothing to report
        raise TypeError("tune calls a Python objective as fn(params, trial) and it reports "
                        "with trial.report(step, value); this one takes one argument. Add the "
                        "trial argument, or use jaxhpo.minimize(fn, ...) for fn(params)")
    if not scheduler.python_ok:
        raise ValueError(f"scheduler {scheduler.name!r} pauses and resumes trials, which a "
                         f"Python objective cannot do; use ASHA(mode='stopping'), "
                         f"MedianStopping or CurveStopping, or make it a training program "
                         f"(jaxhpo.train.TrainingProgram, flax_program) or a jaxhpo.train.Trainer")
    workers = check_int(workers, "workers", 1)
    if executor is not None and not isinstance(executor, cf.Executor):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got "
                        f"{type(executor).__name__}")
    head = _run.header("tune", space, strategy, "python", metric, tg, key,
                       scheduler=scheduler.name, scheduler_config=settings,
                       max_trials=max_trials, slots=workers, eval_every=eval_every)
    jr, contents = _run.open_journal(journal, check_bool(resume, "resume"), head)
    try:
        history, curves, trace, wall, stopped_by = run_python(
            objective, space, strategy, scheduler, max_trials, eval_every,
            (tg.names or ("value",))[0], sign, list(tg.directions), key, jr,
            replayed_trials(contents), workers, time_budget, progress, callbacks, executor,
            constraints=tg.constraints)
    finally:
        if jr is not None:
            jr.close()
    return TuneResult(history, space, None, len(history), wall, trace, curves,
                      stopped_by=stopped_by)


def _run_population(pop, space, strategy, scheduler, max_trials, eval_every, metric, sign, tg,
                    key, test_split, head, jr, journal, contents, checkpoint_every, progress,
                    time_budget, callbacks) -> TuneResult:
    from jaxhpo._tune_slots import SlotEngine

    engine = SlotEngine(pop, space, strategy, scheduler, max_trials, eval_every, metric, sign,
                        key, test_split, constraints=tg.constraints)
    ckpt = None if journal is None else os.fspath(journal) + ".ckpt"
    run_id = fingerprint(head)
    if contents is not None and os.path.exists(ckpt):
        doc = read_json(ckpt, "checkpoint")
        if doc.get("run") != run_id:
            raise ValueError(f"checkpoint {ckpt!r} belongs to another run than journal "
                             f"{jr.path!r}; delete it (the run then restarts from the "
                             "journal's trials) or point journal= at its own run")
        engine.load(doc)
    done: dict[int, tuple[Trial, list]] = {
        n: (t, r.get("curve", [])) for n, (t, r) in replayed_trials(contents).items()}
    pbt_written = len(engine.pbt_rounds)  # rounds in a checkpoint were journaled before it
    history = History([f"val_{metric}"], list(tg.directions),
                      constraints=[f"val_{c}" for c in tg.constraints])
    curves = {}
    for n in sorted(done):
        history.append(done[n][0])
        curves[n] = done[n][1]
    bar = _monitor.Monitor(progress, max_trials, len(done), unit="trial", callbacks=callbacks,
                       driver="tune")

    def record(ended) -> bool:
        fresh = [(tr, c) for tr, c in ended if tr.number not in done]
        for tr, c in fresh:
            done[tr.number] = (tr, c)
            history.append(tr)
            curves[tr.number] = c
        if jr is not None and fresh:
            jr.write(*[tr.to_record() | {"type": "trial", "curve": c} for tr, c in fresh])
        return bar.update(history, [tr for tr, _ in fresh], advance=len(fresh), curves=curves)

    def checkpoint():
        if ckpt:
            doc = engine.to_record()  # every process: members may live on other processes
            if jr is not None:
                write_json_atomic(ckpt, {"run": run_id, **doc})

    stopped_by = None
    try:
        while True:
            if time_budget is not None and engine.round > 0 and \
                    agreed(time.time() - engine.t_start > time_budget):
                stopped_by = "time_budget"
            if stopped_by is not None:
                engine.slot[:] = -1  # running trials end as stopped (below)
                engine.scheduler.max_trials = 0
                break
            ended = engine.step()
            if ended is None:
                break
            if agreed(record(ended)):
                stopped_by = "callback"
            if jr is not None and len(engine.pbt_rounds) > pbt_written:
                jr.write(*_pbt_records(engine, pbt_written))
                pbt_written = len(engine.pbt_rounds)
            if engine.round % checkpoint_every == 0:
                checkpoint()
        record(engine.unfinished(done))
        checkpoint()
    finally:
        bar.close()
    history.trials.sort(key=lambda t: t.number)
    schedules = None
    if scheduler.pbt:
        from jaxhpo.schedulers import pbt_schedules

        x0 = engine.pbt_x0 if engine.pbt_x0 is not None else engine.x
        schedules = pbt_schedules(x0, [tuple(r) for r in engine.pbt_rounds])
    util = engine.busy / max(1, engine.round * engine.size)
    return TuneResult(history, space, util, engine.round, time.time() - engine.t_start,
                      engine.trace, curves, schedules, stopped_by)


def _pbt_records(engine, start) -> list[dict]:
    """Journal records of the PBT rounds from ``start`` on (``x0`` rides on round 0)."""
    out = []
    for i in range(start, len(engine.pbt_rounds)):
        r = engine.pbt_rounds[i]
        rec = {"type": "pbt", "round": i, "step": r.step, "src": r.src, "exploit": r.exploit,
               "x": r.x}
        if i == 0:
            rec["x0"] = engine.pbt_x0.tolist()
        out.append(rec)
    return out

