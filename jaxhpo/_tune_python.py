""":func:`jaxhpo.tune` on a Python objective ``fn(params, trial)``: the scheduler decides on
every ``trial.report``, trials run one after another or ``workers`` at a time in threads (then
ASHA's stopping rule is genuinely asynchronous: each report is decided on arrival).

Resume replays the journaled trials' reports through the scheduler in the original order, so
it reaches the same decisions without evaluating them again.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.managers import BaseManager
from dataclasses import dataclass, field

import jax
import numpy as np

from jaxhpo import _monitor, _run
from jaxhpo._history import FAILED, OK, STOPPED, History, Trial
from jaxhpo._proposer import Proposer
from jaxhpo.schedulers import Decision


class StopTrial(Exception):
    """Raise from a Python objective after ``trial.should_stop()`` to end it as stopped."""


class TrialHandle:
    """What a Python objective receives as ``trial``: report intermediate values, ask whether
    to stop. ``params`` and ``number`` identify the trial."""

    def __init__(self, run, number, params):
        self._run, self.number, self.params = run, number, params
        self._stop = False
        self.reports: list[tuple[int, float]] = []

    def report(self, step: int, value: float) -> None:
        """Report the metric (in the user's direction) after ``step`` training steps.

        ``step`` is a positive int that grows from report to report; ``value`` a real number.
        (Optuna's ``trial.report(value, step)`` takes them the other way round.)
        """
        swapped = " (jaxhpo's order is trial.report(step, value); Optuna's is (value, step))"
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an int number of training steps, got {step!r}"
                            + swapped)
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}" + swapped)
        if isinstance(value, (bool, np.bool_, str)) or not isinstance(
                value, (int, float, np.integer, np.floating, np.ndarray, jax.Array)):
            raise TypeError(f"value must be a real number, got {value!r}")
        if self.reports and step <= self.reports[-1][0]:
            raise ValueError(f"step must grow from report to report: got {step} after "
                             f"{self.reports[-1][0]}" + swapped)
        value = float(value)
        self.reports.append((int(step), value))
        self._stop = self._stop or self._run.report(self.number, int(step), value)

    def should_stop(self) -> bool:
        """True once the scheduler decided to stop this trial: return (or raise
        :class:`jaxhpo.StopTrial`) as soon as possible."""
        return self._stop


@dataclass
class PythonRun:
    """The shared state of a Python-objective run (guarded by ``lock``)."""

    scheduler: object
    sign: float
    proposer: Proposer
    lock: threading.Lock = field(default_factory=threading.Lock)
    x: dict = field(default_factory=dict)  # trial number -> f32[d]

    def report(self, number, step, value) -> bool:
        with self.lock:
            v = self.sign * value if math.isfinite(value) else math.nan
            a = self.scheduler.report([number], [step], [v], [self.x[number]])[0]
            return a in (Decision.STOP, Decision.PAUSE)


def run_python(fn, space, strategy, scheduler, max_trials, eval_every, metric, sign, dirs, key,
               jr, prior, workers, time_budget, progress, callbacks=(), executor=None,
               constraints=()):
    """Run ``fn(params, trial)`` trials; returns ``(history, curves, trace, wall_time,
    stopped_by)``. ``constraints``: metric names read from the dict the objective returns
    (NaN, i.e. violated, when it returns none)."""
    by_member = {(tr.generation, tr.member): (tr, rec.get("curve", []))
                 for tr, rec in prior.values()}
    k_strat, k_run = jax.random.split(key)
    proposer = Proposer(strategy, k_strat)
    scheduler.start(max_trials, eval_every, space, workers)
    run = PythonRun(scheduler, sign, proposer)
    history = History([metric], dirs, constraints=list(constraints))
    curves, trace = {}, []
    t_start = time.time()
    counters = {"next": 0, "best": math.inf, "failed": 0, "stopped_by": None}
    bar = _monitor.Monitor(progress, max_trials, 0, unit="trial", callbacks=callbacks,
                       driver="tune")

    def record(tr, curve):
        history.append(tr)
        curves[tr.number] = curve
        if tr.status == OK and tr.feasible and sign * tr.values[0] < counters["best"]:
            counters["best"] = sign * tr.values[0]
            trace.append((time.time() - t_start, tr.values[0]))
        v = sign * tr.values[0] if tr.values is not None else math.nan
        proposer.result(tr.generation, tr.member, v, tr.constraints)
        if tr.status == FAILED:
            counters["failed"] += 1
            if counters["failed"] == 1:
                warnings.warn(f"trial {tr.number} failed: {tr.error}", stacklevel=4)
        if bar.update(history, [tr], failed=counters["failed"], curves=curves):
            counters["stopped_by"] = "callback"

    def take():
        """The next trial under the lock: ``(number, x, generation, member)``, ``None`` when
        the run is over; a journaled trial is replayed here instead of run again."""
        while True:
            with run.lock:
                if time_budget is not None and time.time() - t_start > time_budget:
                    counters["stopped_by"] = "time_budget"
                if counters["stopped_by"] is not None:
                    return None
                n = counters["next"]
                if scheduler.next_job(jax.random.fold_in(k_run, n), n) is None:
                    return None
                counters["next"] += 1
                x, g, m = proposer.next()
                run.x[n] = np.asarray(x, np.float32)
                old = by_member.get((g, m))
                if old is None:
                    return n, x, g, m
                tr, curve = old
                for s, v in curve:
                    v = sign * v if v is not None and math.isfinite(v) else math.nan
                    scheduler.report([n], [s], [v], [x])
                tr.number = n
                record(tr, curve)

    def finish(job, out, reports, stopped):
        """Record a trial that ran (here or on the executor)."""
        n, x, g, m = job
        status, error, value = OK, out.error, None
        if out.error == "StopTrial" or stopped:
            status, error = STOPPED, None
        if out.error is not None and status != STOPPED:
            status = FAILED
        elif out.metrics is not None:
            value = out.metrics.get(metric, next(iter(out.metrics.values())))
        if status == STOPPED or (value is None and status == OK):
            value = reports[-1][1] if reports else None
            if status == OK and value is None:
                status, error = FAILED, "the objective returned None and reported nothing"
        steps = reports[-1][0] if reports else 0
        cons = None
        if constraints:  # from the returned dict; none returned (stopped, None): violated
            cons = [(out.metrics or {}).get(c, math.nan) for c in constraints]
        tr = _run.make_trial(space, n, g, m, x,
                             {metric: value if value is not None else math.nan,
                              **dict(zip(constraints, cons or []))},
                             None if status == FAILED or value is None else [value],
                             error=error, status=status if status != OK else None,
                             wall_time=out.wall_time, fidelity=steps, constraints=cons)
        curve = [[s, v] for s, v in reports]
        with run.lock:
            record(tr, curve)
            if jr is not None:
                jr.write(tr.to_record() | {"type": "trial", "curve": curve})

    def work():
        while (job := take()) is not None:
            h = TrialHandle(run, job[0], space.to_params(job[1]))
            out = _run.call_python(fn, dict(h.params), h, allow_none=True)
            finish(job, out, h.reports, h.should_stop())

    try:
        if executor is not None:
            _on_executor(executor, workers, fn, space, run, take, finish)
        elif workers == 1:
            work()
        else:
            with ThreadPoolExecutor(workers) as ex:
                for f in [ex.submit(work) for _ in range(workers)]:
                    f.result()
    finally:
        bar.close()
    history.trials.sort(key=lambda t: t.number)
    return history, curves, trace, time.time() - t_start, counters["stopped_by"]


# ---------------------------------------------------------------------------- executors
class _ReportClient(BaseManager):
    """A worker's connection to the driver's scheduler (see :func:`_on_executor`)."""


_ReportClient.register("reports")


def remote_trial(fn, params, number, address, authkey):
    """Run one trial in an executor's worker; its reports reach the driver's scheduler live
    through a manager connection, so the scheduler can stop it mid-way."""
    client = _ReportClient(address=address, authkey=authkey)
    client.connect()
    handle = TrialHandle(client.reports(), number, params)
    out = _run.call_python(fn, dict(params), handle, allow_none=True)
    return out, handle.reports, handle.should_stop()


def _on_executor(executor, in_flight, fn, space, run, take, finish):
    """Keep ``in_flight`` trials running on ``executor``; record each as it completes.

    The driver serves its scheduler over a ``multiprocessing`` manager on 127.0.0.1 (a random
    port and authentication key), which is how a worker process, or a Dask worker on this
    host, reports ``trial.report(step, value)`` and learns ``should_stop()`` while it runs.
    """
    import secrets

    server_type = type("_ReportServer", (BaseManager,), {})
    server_type.register("reports", callable=lambda: run)
    authkey = secrets.token_bytes(16)
    server = server_type(address=("127.0.0.1", 0), authkey=authkey).get_server()
    def serve():
        try:
            server.serve_forever()
        except SystemExit:  # how a manager server ends, meant for a process of its own
            pass

    threading.Thread(target=serve, daemon=True).start()
    running = {}
    try:
        while True:
            while len(running) < in_flight and (job := take()) is not None:
                params = space.to_params(job[1])
                running[executor.submit(remote_trial, fn, params, job[0], server.address,
                                        authkey)] = job
            if not running:
                return
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for f in done:
                job = running.pop(f)
                try:
                    out, reports, stopped = f.result()
                except _run.ObjectiveOutputError:
                    raise
                except Exception as e:  # the worker died or could not run the trial
                    out, reports, stopped = _run.Outcome(
                        None, True, f"{type(e).__name__}: {e} (in the executor)", 0.0), [], \
                        False
                finish(job, out, reports, stopped)
    finally:
        server.stop_event.set()
        server.listener.close()


def replayed_trials(contents) -> dict:
    """``{number: (Trial, record)}`` of a journal's trials (the last record of each)."""
    out = {}
    for r in contents.of_type("trial") if contents is not None else []:
        out[r["number"]] = (Trial.from_record(r), r)
    return out
