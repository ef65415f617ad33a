"""The slot engine of :func:`jaxhpo.tune`: ``size`` slots of a vmapped population train in
lock-step, one round (``eval_every`` steps, one compiled call) at a time.

After each round the scheduler turns the slots' validation metrics into decisions; a stopped,
paused or finished trial frees its slot, which is refilled at once with the scheduler's next
job: a new configuration (from the strategy through :class:`jaxhpo._proposer.Proposer`, or
BOHB's densities) or a paused trial promoted to a higher rung (its member state was parked on
the host and is put back). PBT copies members with ``Population.gather``. Slot utilization =
busy slot-rounds / all slot-rounds.

The engine only calls the population's ``init``/``train``/``evaluate``/``gather``/``replace``/
``take``/``put``/``place``, so it runs any training program the population wraps. Its whole
state (members, parked trials, scheduler, proposer, bookkeeping) is checkpointed as one JSON
document in the journal encoding (:mod:`jaxhpo._journal`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._hosts import to_host
from jaxhpo._history import OK, STOPPED, Trial
from jaxhpo._journal import decode, decode_state, encode, encode_state
from jaxhpo._proposer import Proposer
from jaxhpo._run import make_trial
from jaxhpo.schedulers import Decision
from jaxhpo.train import Member


@dataclass
class SlotTrial:
    """A trial of the slot engine while it lives (running, paused or ended)."""

    x: np.ndarray  # f32[d] unit-cube point (PBT's explore moves it)
    generation: int  # the proposer's batch (-1: proposed by the scheduler, e.g. BOHB)
    member: int  # its row in that batch
    steps: int = 0  # optimizer steps trained
    curve: list = field(default_factory=list)  # the metric after every round, as measured
    t0: float = 0.0  # when it started (Unix time)
    told: bool = False  # whether the strategy has its value
    segments: list = field(default_factory=list)  # [slot, start, end, how]: Trial.segments
    cons: list | None = None  # the constraint metrics after the last round (tune(constraints=))


class PBTRound(NamedTuple):
    """One PBT exploit/explore round: slot ``i`` took member ``src[i]``'s state where
    ``exploit[i]``; ``x`` are every slot's unit-cube hyperparameters after it."""

    step: int
    src: list
    exploit: list
    x: list


class SlotEngine:
    """The run state of a population tuned by a scheduler (see the module docstring)."""

    def __init__(self, population, space, strategy, scheduler, max_trials, eval_every, metric,
                 sign, key, test_split, constraints=()):
        self.space, self.scheduler, self.pop = space, scheduler, population
        self.constraints = tuple(constraints)  # validation metrics, feasible when <= 0
        self.size = population.size
        self.max_trials, self.eval_every, self.metric = max_trials, eval_every, metric
        self.sign, self.test_split = sign, test_split
        k_strat, self.k_pop, self.k_run = jax.random.split(key, 3)
        self.proposer = Proposer(strategy, k_strat)
        scheduler.start(max_trials, eval_every, space, self.size)
        self.slot = np.full(self.size, -1, np.int64)  # trial number per slot, -1 = free
        self.x = np.full((self.size, space.dim), 0.5, np.float32)
        self.trials: dict[int, SlotTrial] = {}
        self.parked: dict[int, object] = {}  # trial -> its member state on the host
        self.round = self.next_id = self.busy = 0
        self.trace: list[tuple[float, float]] = []
        self.best = math.inf
        self.pbt_rounds: list[PBTRound] = []
        self.pbt_x0 = None
        self.t_start = time.time()
        self.state = self._blank()

    def _blank(self):
        """A population state to fill: members are created by ``replace`` when their slot is
        first filled, so without static groups zeros of the right shapes do (no ``init``
        compilation); grouped states (static hyperparameters) come from ``init``."""
        hp = self.space.decode(jnp.asarray(self.x))
        if getattr(self.pop, "grouped", False):
            return self.pop.init(self.k_pop, hp)
        shapes = jax.eval_shape(self.pop.init, self.k_pop, hp)
        return self.pop.place(jax.tree.map(_zeros, shapes))

    # ------------------------------------------------------------------ one round
    def _fill(self, key):
        """Give every free slot the scheduler's next job; returns the decoded hparams."""
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
                self.trials[t] = SlotTrial(np.asarray(x, np.float32), g, m, t0=time.time())
                fresh[i] = True
            else:
                t = job.trial
                moves[i] = self.parked.pop(t)
            self.slot[i] = t
            self.x[i] = self.trials[t].x
            self.trials[t].segments.append([int(i), time.time(), None, None])
        hp = self.space.decode(jnp.asarray(self.x))
        if fresh.any():
            self.state = self.pop.replace(self.state, fresh, k_init, hp)
        if moves:
            self.state = self.pop.put(self.state, moves)
        return hp

    def _end(self, t, status, metrics) -> tuple[Trial, list]:
        info = self.trials[t]
        _close(info)
        value = info.curve[-1] if info.curve else None
        cons = None if not self.constraints else (
            info.cons or [math.nan] * len(self.constraints))
        m = {f"val_{self.metric}": value if value is not None else math.nan, **metrics,
             **{f"val_{c}": v for c, v in zip(self.constraints, cons or [])}}
        tr = make_trial(self.space, t, info.generation, info.member, info.x, m,
                        None if value is None else [value],
                        status=None if status == OK else status,
                        wall_time=time.time() - info.t0, fidelity=info.steps,
                        constraints=cons)
        if status == OK and value is None:
            tr.status = STOPPED
        tr.segments = [list(s) for s in info.segments] or None
        self._tell(info)
        return tr, [float(v) for v in info.curve]

    def _tell(self, info: SlotTrial):
        """Give the strategy a trial's value the first time it leaves its slot (stopped,
        paused at a rung or done): model-based strategies then learn from every rung."""
        if info.generation >= 0 and not info.told:
            info.told = True
            v = info.curve[-1] if info.curve else math.nan
            self.proposer.result(info.generation, info.member, self.sign * v, info.cons)

    def step(self) -> list | None:
        """One round; returns the trials that ended in it, ``None`` when nothing is left."""
        k_fill, k_pbt = jax.random.split(jax.random.fold_in(self.k_run, self.round))
        hp = self._fill(k_fill)
        active = np.flatnonzero(self.slot >= 0)
        if active.size == 0:
            return None
        self.state, curve = self.pop.train(self.state, hp, steps=self.eval_every,
                                           eval_every=self.eval_every)
        measured = np.asarray(to_host(curve[self.metric]))[:, -1].astype(np.float64)
        self.busy += active.size
        self.round += 1
        trials = [int(self.slot[i]) for i in active]
        cons = self._constraints(curve)
        for i, t in zip(active, trials):
            self.trials[t].steps += self.eval_every
            self.trials[t].curve.append(float(measured[i]))
            if cons is not None:
                self.trials[t].cons = [float(c) for c in cons[i]]
        steps = [self.trials[t].steps for t in trials]
        decisions = self.scheduler.report(trials, steps, [self.sign * measured[i]
                                                          for i in active],
                                          [self.x[i] for i in active])
        if self.scheduler.pbt and active.size == self.size and all(
                a == Decision.CONTINUE for a in decisions):
            self._pbt(k_pbt, steps[0], measured)
        ended = []
        test = {}
        if self.test_split and any(a == Decision.DONE for a in decisions):
            test = to_host(self.pop.evaluate(self.state, hp, "test"))
        for i, t, a in zip(active, trials, decisions):
            if a == Decision.DONE:
                m = {f"test_{k}": float(v[i]) for k, v in test.items()
                     if k in ("loss", "accuracy")}
                ended.append(self._end(t, OK, m))
                v = self.trials[t].curve[-1]
                feasible = all(c <= 0 for c in self.trials[t].cons or [])
                if math.isfinite(v) and feasible and self.sign * v < self.best:
                    self.best = self.sign * v
                    self.trace.append((time.time() - self.t_start, v))
            elif a == Decision.STOP:
                ended.append(self._end(t, STOPPED, {}))
        paused = [i for i, a in zip(active, decisions) if a == Decision.PAUSE]
        if paused:
            for i, member in zip(paused, self.pop.take(self.state, paused)):
                self.parked[int(self.slot[i])] = member
                _close(self.trials[int(self.slot[i])], "paused")
                self._tell(self.trials[int(self.slot[i])])
        for t in self.scheduler.take_dropped():
            self.parked.pop(t, None)
            ended.append(self._end(t, STOPPED, {}))
        for i, a in zip(active, decisions):
            if a != Decision.CONTINUE:
                self.slot[i] = -1
        return ended

    def _constraints(self, curve) -> np.ndarray | None:
        """``f64[size, k]``: the round's constraint metrics (``None`` without constraints)."""
        if not self.constraints:
            return None
        missing = [c for c in self.constraints if c not in curve]
        if missing:
            raise ValueError(f"constraints {missing} are not among the population's validation "
                             f"metrics {sorted(curve)}; name metrics its evaluate returns")
        return np.stack([np.asarray(to_host(curve[c]))[:, -1] for c in self.constraints],
                        -1).astype(np.float64)

    def _pbt(self, key, step, measured):
        sched = self.scheduler
        if step % sched.interval or step >= sched.max_steps:
            return
        if self.pbt_x0 is None:
            self.pbt_x0 = self.x.copy()
        src, exploit, new_x = sched.exploit(key, self.sign * measured, self.x, self.space)
        static = np.asarray(getattr(self.space, "is_static", np.zeros(self.space.dim, bool)))
        if static.any():  # explore moves traced values only: a copy stays in its source's group
            new_x = np.array(new_x, np.float32)
            new_x[:, static] = np.where(np.asarray(exploit)[:, None],
                                        self.x[np.asarray(src)][:, static], new_x[:, static])
        if exploit.any():
            self.state = self.pop.gather(self.state, src)
            for i in np.flatnonzero(exploit):
                t, u = int(self.slot[i]), int(self.slot[src[i]])
                self.trials[t].curve = list(self.trials[u].curve)
                self.trials[t].x = np.asarray(new_x[i], np.float32)
                _close(self.trials[t], "exploited")
                self.trials[t].segments.append([int(i), time.time(), None, None])
            self.x = np.asarray(new_x, np.float32)
        self.pbt_rounds.append(PBTRound(int(step), np.asarray(src).tolist(),
                                        np.asarray(exploit).tolist(), self.x.tolist()))

    def unfinished(self, recorded) -> list[tuple[Trial, list]]:
        """End every trial not in ``recorded`` (paused or cut off) as stopped: the run is
        over."""
        out = []
        for t in sorted(set(self.trials) - set(recorded)):
            self.parked.pop(t, None)
            out.append(self._end(t, STOPPED, {}))
        return out

    # ------------------------------------------------------------------ checkpoints
    _SAVED = ("slot", "x", "trials", "round", "next_id", "busy", "trace", "best", "pbt_rounds",
              "pbt_x0")

    def to_record(self) -> dict:
        """The run state as one JSON-able document (the journal encoding). Members go through
        ``Population.take`` (host copies, with their static values), so grouped and plain
        populations checkpoint alike."""
        members = self.pop.take(self.state, list(range(self.size)))
        return {"engine": encode({k: getattr(self, k) for k in self._SAVED}),
                "scheduler": encode(vars(self.scheduler)),
                "proposer": self.proposer.to_record(),
                "members": [_member_record(m) for m in members],
                "parked": {str(t): _member_record(m) for t, m in self.parked.items()},
                "elapsed": time.time() - self.t_start}

    def load(self, rec: dict) -> None:
        for k, v in decode(rec["engine"]).items():
            setattr(self, k, v)
        self.trials = {int(t): info for t, info in self.trials.items()}
        self.scheduler.__dict__.update(decode(rec["scheduler"]))
        self.proposer.load(rec["proposer"])
        members = [(decode(m["static"]), m["state"], self.x[i])
                   for i, m in enumerate(rec["members"])]
        parked = {int(t): (decode(m["static"]), m["state"], self.trials[int(t)].x)
                  for t, m in rec["parked"].items()}
        templates = self._templates({st: x for st, _, x in members + list(parked.values())})

        def member(st, leaves):
            return Member(jax.device_get(decode_state(leaves, templates[st])), static=st)

        self.state = self.pop.put(self._blank(), {i: member(st, leaves) for i, (st, leaves, _)
                                                  in enumerate(members)})
        self.parked = {t: member(st, leaves) for t, (st, leaves, _) in parked.items()}
        self.t_start = time.time() - rec["elapsed"]

    def _templates(self, rows: dict) -> dict:
        """``{static values: a member state of that group}`` (the pytree structure to decode
        into), from members initialized at the given cube rows ``{static values: x}``."""
        out, pending = {}, list(rows.items())
        while pending:
            batch, pending = pending[:self.size], pending[self.size:]
            x = np.repeat(np.asarray(batch[0][1], np.float32)[None], self.size, 0)
            for i, (_, row) in enumerate(batch):
                x[i] = row
            state = self.pop.init(self.k_pop, self.space.decode(jnp.asarray(x)))
            for (st, _), m in zip(batch, self.pop.take(state, list(range(len(batch))))):
                out[st] = m.state
        return out


def _close(info: SlotTrial, how: str | None = None) -> None:
    """End the trial's open stretch in its slot (see ``Trial.segments``)."""
    if info.segments and info.segments[-1][2] is None:
        info.segments[-1][2:] = [time.time(), how]


def _member_record(m) -> dict:
    return {"static": encode(tuple(m.static)), "state": encode_state(m.state)}


def _zeros(s):
    if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.zeros(s.shape + (2,), jnp.uint32))
    return jnp.zeros(s.shape, s.dtype)
