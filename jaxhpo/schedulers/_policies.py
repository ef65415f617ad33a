"""Schedulers for :func:`jaxhpo.tune`: the host-side job logic around the pure decision rules.

A scheduler hands out *jobs* to free slots (start a new configuration and train it to a target
step, or resume a paused trial to a higher rung) and turns each round's reports into actions.
The numerical decisions are the pure, jitted rules of this package (:func:`median_stopping`,
:func:`curve_extrapolation_stopping`, :func:`asha_stop_decision`, :func:`asha_get_job`,
:func:`successive_halving_decision`, :func:`bohb_model_data`, :func:`pbt_exploit`,
:func:`pbt_perturb`); what is here is bookkeeping on plain Python/NumPy values, so a scheduler
pickles into the run's checkpoint.

Protocol (all steps are optimizer steps; values are minimized, NaN = diverged):

* ``start(max_trials, eval_every, space, slots)``: once, before the first job.
* ``prepare(num_free)``: before a round's free slots ask for jobs (lets a scheduler batch).
* ``next_job(key, new_id) -> Job | None``: work for one free slot (a new trial it starts gets
  the id ``new_id``); ``None`` when there is none now.
* ``report(trials, steps, values, xs) -> list[Decision]``: one entry per running trial after a
  round, each one of ``Decision.CONTINUE``, ``STOP`` (early-stopped or diverged), ``PAUSE``
  (rung done, keep the weights for a possible promotion) or ``DONE`` (trained to
  ``max_steps``).
* ``take_dropped() -> list[int]``: paused trials that will never resume (their weights can go).
* ``propose(key, num_dims) -> f32[d] | None``: a configuration for a new trial, or ``None`` to
  take the search strategy's (BOHB proposes from its own densities).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo.schedulers._asha import asha_get_jobs, asha_init, asha_report, asha_stop_decision
from jaxhpo.schedulers._bohb import bohb_init, bohb_model_data, bohb_observe
from jaxhpo._validate import check_int, check_real
from jaxhpo.schedulers._common import CONTINUE, DONE, PAUSE, STOP, Decision, Job, check_eta
from jaxhpo.schedulers._curves import curve_extrapolation_stopping
from jaxhpo.schedulers._hyperband import hyperband_brackets, successive_halving_decision
from jaxhpo.schedulers._median import median_stopping
from jaxhpo.schedulers._pbt import pbt_exploit, pbt_perturb


def _check_steps(max_steps, min_steps=None):
    max_steps = check_int(max_steps, "max_steps", 1)
    if min_steps is not None:
        min_steps = check_int(min_steps, "min_steps", 1)
        if min_steps > max_steps:
            raise ValueError(f"min_steps={min_steps} must be <= max_steps={max_steps}")
    return max_steps, min_steps


class Scheduler:
    """Base: run every trial to ``max_steps`` (no early stopping, first-in first-out)."""

    name = "fifo"
    pbt = False
    python_ok = True  # usable with black-box Python objectives (stopping-type schedulers)

    def __init__(self, max_steps: int):
        self.max_steps, _ = _check_steps(max_steps)
        self.min_steps = None

    def default_eval_every(self) -> int:
        return self.min_steps or max(1, self.max_steps // 10)

    def start(self, max_trials: int, eval_every: int, space, slots: int = 1) -> None:
        """Called once before the first job; ``slots`` = trials that may run at once."""
        self.max_trials, self.eval_every, self.slots = max_trials, eval_every, slots
        self.started = 0
        self._dropped: list[int] = []
        for s in self.milestones():
            if s % eval_every:
                raise ValueError(f"eval_every={eval_every} must divide every rung's step count "
                                 f"{self.milestones()} of {self.name}; pick eval_every = "
                                 f"min_steps or a divisor of it")

    def milestones(self) -> list[int]:
        return [self.max_steps]

    def _new(self) -> Job | None:
        if self.started >= self.max_trials:
            return None
        self.started += 1
        return Job(-1, 0, self.max_steps)

    def next_job(self, key, new_id: int) -> Job | None:
        """Work for a free slot; a new trial started by it gets the id ``new_id``."""
        return self._new()

    def report(self, trials, steps, values, xs) -> list[Decision]:
        # A diverged trial (NaN/inf) is frozen by the Trainer: stop it and free its slot.
        # PBT keeps it: the exploit step replaces it with a copy of a top member.
        return [DONE if s >= self.max_steps else
                STOP if not (self.pbt or math.isfinite(v)) else CONTINUE
                for s, v in zip(steps, values)]

    def prepare(self, num_free: int) -> None:
        """Called before the free slots of a round ask for jobs (lets a scheduler batch)."""

    def take_dropped(self) -> list[int]:
        out, self._dropped = self._dropped, []
        return out

    def propose(self, key, num_dims):
        return None


class _CurveBuffer:
    """Per-trial learning curves on the common report grid (every ``eval_every`` steps).

    Rows grow by doubling as trials arrive (from 64), so the jitted rules see a handful of
    shapes, not ``max_trials`` rows from the start.
    """

    def __init__(self, max_trials, max_steps, eval_every):
        self.n, self.s = min(64, max_trials), max_steps // eval_every
        self.curves = np.full((self.n, self.s), np.nan, np.float32)
        self.mask = np.zeros((self.n, self.s), bool)
        self.eval_every = eval_every

    def add(self, trial, step, value):
        while trial >= self.n:
            self.curves = np.concatenate([self.curves, np.full_like(self.curves, np.nan)])
            self.mask = np.concatenate([self.mask, np.zeros_like(self.mask)])
            self.n *= 2
        j = step // self.eval_every - 1
        if 0 <= j < self.s:
            self.curves[trial, j] = value
            self.mask[trial, j] = True


def _grow(tree, axis: int, fill: dict):
    """Double a fixed-capacity buffer along ``axis``; ``fill`` gives each field's empty value."""
    def pad(name, a):
        a = np.asarray(a)
        shape = list(a.shape)
        shape[axis] = a.shape[axis]
        return jnp.asarray(np.concatenate([a, np.full(shape, fill[name], a.dtype)], axis))
    return tree.replace(**{k: pad(k, getattr(tree, k)) for k in fill})


_median = jax.jit(median_stopping, static_argnames=("grace_period", "min_trials"))


def _check_bounds(bounds) -> tuple[float, float]:
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds must be None or (low, high) with finite low < high, got "
                         f"{bounds!r}")
    low, high = (float(check_real(b, "bounds")) for b in bounds)
    if not low < high:
        raise ValueError(f"bounds must be None or (low, high) with finite low < high, got "
                         f"{bounds!r}")
    return low, high


class MedianStopping(Scheduler):
    """Median stopping rule (Golovin et al. 2017) at every report; see :func:`median_stopping`.

    Args:
      max_steps: training steps of a complete trial.
      grace_period: reports before a trial may be stopped.
      min_trials: other trials needed at a report index before the rule fires.
    """

    name = "median"

    def __init__(self, max_steps: int, *, grace_period: int = 2, min_trials: int = 3):
        super().__init__(max_steps)
        self.grace_period = check_int(grace_period, "grace_period", 1)
        self.min_trials = check_int(min_trials, "min_trials", 1)

    def start(self, max_trials, eval_every, space, slots=1):
        super().start(max_trials, eval_every, space, slots)
        self.buf = _CurveBuffer(max_trials, self.max_steps, eval_every)

    def _decide(self, active):
        active = np.concatenate([active, np.zeros(self.buf.n - active.size, bool)])
        return np.asarray(_median(self.buf.curves, self.buf.mask, active,
                                  grace_period=self.grace_period, min_trials=self.min_trials))

    def report(self, trials, steps, values, xs):
        for t, s, v in zip(trials, steps, values):
            self.buf.add(t, s, v)
        active = np.zeros(self.buf.n, bool)
        active[trials] = True
        codes = self._decide(active)
        return [DONE if s >= self.max_steps else STOP if codes[t] == STOP else CONTINUE
                for t, s in zip(trials, steps)]


_curve = jax.jit(curve_extrapolation_stopping,
                 static_argnames=("bounds", "threshold", "min_points", "iterations"))


class CurveStopping(MedianStopping):
    """Learning-curve extrapolation (Domhan et al. 2015): stop a trial when the probability
    that its extrapolated final value beats the best completed one is below ``threshold``; see
    :func:`curve_extrapolation_stopping`.

    Args:
      max_steps: training steps of a complete trial.
      threshold: the probability below which a trial stops.
      min_points: reports needed before a trial is judged.
      bounds: range the metric cannot leave (e.g. ``(-1, 0)`` for a negated accuracy).
    """

    name = "curve"

    def __init__(self, max_steps: int, *, threshold: float = 0.05, min_points: int = 5,
                 bounds=None):
        Scheduler.__init__(self, max_steps)
        self.threshold = check_real(threshold, "threshold", 0.0, 1.0, low_open=True,
                                    high_open=True)
        self.min_points = check_int(min_points, "min_points", 2)
        self.bounds = None if bounds is None else _check_bounds(bounds)
        self.best = math.inf

    def _decide(self, active):
        steps = np.arange(1, self.buf.s + 1, dtype=np.float32) * self.eval_every
        out = _curve(self.buf.curves, self.buf.mask, np.float32(self.best), active, steps,
                     bounds=self.bounds, threshold=self.threshold, min_points=self.min_points,
                     iterations=20)
        return np.asarray(out.codes)

    def report(self, trials, steps, values, xs):
        actions = super().report(trials, steps, values, xs)
        for a, v in zip(actions, values):
            if a == DONE and math.isfinite(v):
                self.best = min(self.best, float(v))
        return actions


def _rung_steps(min_steps, eta, num_rungs):
    return [int(round(min_steps * eta ** k)) for k in range(num_rungs)]


_bohb_observe = jax.jit(bohb_observe)
def _asha_report_many(state, rungs, trials, values, mask):
    """``asha_report`` for a batch (rows with ``mask`` False are skipped)."""
    def one(st, a):
        k, t, v, m = a
        new = asha_report(st, k, t, v)
        return jax.tree.map(lambda x, y: jnp.where(m, x, y), new, st), None
    return jax.lax.scan(one, state, (rungs, trials, values, mask))[0]


def _asha_stop_many(state, rungs, trials, values, mask, eta):
    def one(st, a):
        k, t, v, m = a
        code, new = asha_stop_decision(st, k, t, v, eta)
        return jax.tree.map(lambda x, y: jnp.where(m, x, y), new, st), code
    return jax.lax.scan(one, state, (rungs, trials, values, mask))


_asha_report_jit = jax.jit(_asha_report_many)
_asha_stop_jit = jax.jit(_asha_stop_many, static_argnames=("eta",))
_asha_jobs = jax.jit(asha_get_jobs, static_argnames=("num_jobs", "eta"))
_sh_decision = jax.jit(successive_halving_decision, static_argnames=("eta",))


class ASHA(Scheduler):
    """Asynchronous successive halving (Li et al. 2020) on rungs ``min_steps * eta^k``.

    Args:
      min_steps: steps of rung 0.
      max_steps: steps of the top rung; rungs are ``min_steps eta^k <= max_steps``, the last one
        set to ``max_steps``.
      eta: reduction factor.
      mode: ``"promotion"`` (Algorithm 2: trials pause at each rung and free slots promote the
        best paused one, else start a new trial) or ``"stopping"`` (trials run on and stop at a
        rung unless in its top ``1/eta``; the only mode for Python objectives). In ``tune``
        a model-based strategy (TPE, GP-BO) is told a trial's value when it first leaves its
        slot: in promotion mode that is always rung 0, in stopping mode the last rung it
        reached, which is what such a strategy should model when low rungs mislead (MNIST-1D,
        ``benchmarks/e2e_mnist1d.py``, 5 seeds: ASHA + TPE's best validation accuracy at
        30 s 0.6025 in promotion mode, 0.64 in stopping mode).
    """

    name = "asha"

    def __init__(self, min_steps: int, max_steps: int, *, eta: float = 3,
                 mode: str = "promotion"):
        self.max_steps, self.min_steps = _check_steps(max_steps, min_steps)
        self.eta = check_eta(eta)
        if mode not in ("promotion", "stopping"):
            raise ValueError(f"mode must be 'promotion' or 'stopping', got {mode!r}")
        self.mode = mode
        self.python_ok = mode == "stopping"
        k = 1
        while self.min_steps * self.eta ** k <= self.max_steps * (1 + 1e-9):
            k += 1
        self.rungs = _rung_steps(self.min_steps, self.eta, k)
        self.rungs[-1] = self.max_steps

    def milestones(self):
        return self.rungs

    def start(self, max_trials, eval_every, space, slots=1):
        super().start(max_trials, eval_every, space, slots)
        self.state = asha_init(len(self.rungs), min(1024, max_trials))

    def _room(self, need: np.ndarray):
        """Grow the rungs' capacity until ``need[k]`` more reports fit in every rung ``k``."""
        while np.any(np.asarray(self.state.count) + need > self.state.trial.shape[1]):
            self.state = _grow(self.state, 1, {"trial": -1, "value": np.inf, "promoted": False})

    def prepare(self, num_free: int) -> None:
        """Compute the jobs for ``num_free`` free slots in one jitted call (Algorithm 2's
        ``get_job`` repeated; promotions come first, then new trials)."""
        self._queue = []
        if self.mode == "stopping" or num_free == 0:
            return
        n = max(num_free, self.slots)  # one compiled size per run
        jobs, _ = _asha_jobs(self.state, num_jobs=n, eta=self.eta)
        trial, rung = np.asarray(jobs.trial)[:num_free], np.asarray(jobs.rung)[:num_free]
        # Only the first num_free jobs are handed out: mark just their promotions.
        table = np.asarray(self.state.trial)
        promoted = np.array(self.state.promoted)
        for t, k in zip(trial, rung):
            if t >= 0:  # a promotion (Job.promote)
                promoted[k - 1, int(np.flatnonzero(table[k - 1] == t)[0])] = True
                self._queue.append(Job(int(t), int(k), self.rungs[int(k)]))
        self.state = self.state.replace(promoted=jnp.asarray(promoted))

    def next_job(self, key, new_id):
        if self.mode == "promotion" and getattr(self, "_queue", None):
            return self._queue.pop(0)
        job = self._new()
        if job is not None and self.mode == "promotion":
            job = Job(-1, 0, self.rungs[0])
        return job

    def report(self, trials, steps, values, xs):
        out = [STOP if not math.isfinite(v) else CONTINUE for v in values]
        at = [i for i, s in enumerate(steps) if s in self.rungs]
        if not at:
            return out
        self._room(np.bincount([self.rungs.index(steps[i]) for i in at],
                               minlength=len(self.rungs)))
        n = max(len(at), self.slots)  # one compiled size per run
        ks = np.zeros(n, np.int32)
        ts = np.zeros(n, np.int32)
        vs = np.zeros(n, np.float32)
        ks[:len(at)] = [self.rungs.index(steps[i]) for i in at]
        ts[:len(at)] = [trials[i] for i in at]
        vs[:len(at)] = [values[i] for i in at]
        mask = np.arange(n) < len(at)
        top = len(self.rungs) - 1
        if self.mode == "stopping":
            self.state, codes = _asha_stop_jit(self.state, ks, ts, vs, mask, eta=self.eta)
            codes = np.asarray(codes)
            for j, i in enumerate(at):
                out[i] = DONE if ks[j] == top else STOP if codes[j] == STOP else CONTINUE
        else:
            self.state = _asha_report_jit(self.state, ks, ts, vs, mask)
            for j, i in enumerate(at):
                out[i] = DONE if ks[j] == top else \
                    STOP if not math.isfinite(values[i]) else PAUSE
        return out


class HyperBand(Scheduler):
    """HyperBand (Li et al. 2018): successive-halving brackets ``s = s_max..0`` over and over.

    Brackets are exactly :func:`hyperband_brackets` with ``R = max_steps / min_steps``; rung
    resources become ``round(r_i * min_steps)`` steps. Rungs are synchronous within a bracket
    (a rung's decision waits for all its trials), but several brackets run at once: a free slot
    takes the first runnable job of the oldest bracket, or opens the next one.

    Args:
      min_steps, max_steps: the smallest and largest training budget per trial.
      eta: reduction factor.
    """

    name = "hyperband"
    python_ok = False

    def __init__(self, min_steps: int, max_steps: int, *, eta: float = 3):
        self.max_steps, self.min_steps = _check_steps(max_steps, min_steps)
        self.eta = check_eta(eta)
        self.brackets = hyperband_brackets(self.max_steps / self.min_steps, self.eta)

    def milestones(self):
        return sorted({max(self.min_steps, int(round(g.r * self.min_steps)))
                       for b in self.brackets for g in b.rungs})

    def start(self, max_trials, eval_every, space, slots=1):
        super().start(max_trials, eval_every, space, slots)
        self.live: list[dict] = []
        self.opened = 0
        # trial -> its bracket's id: ids, not the bracket dicts, so the state survives a JSON
        # checkpoint (which would turn shared references into copies)
        self.where: dict[int, int] = {}

    def _open(self):
        b = self.brackets[self.opened % len(self.brackets)]
        self.opened += 1
        rungs = [(g.n, max(self.min_steps, int(round(g.r * self.min_steps)))) for g in b.rungs]
        rungs[-1] = (rungs[-1][0], self.max_steps)
        n0 = min(rungs[0][0], self.max_trials - self.started)
        br = {"id": self.opened - 1, "s": b.s, "rungs": rungs, "i": 0, "to_start": n0,
              "queue": [], "members": [], "results": {}}
        self.live.append(br)
        return br

    def next_job(self, key, new_id):
        for br in self.live:
            steps = br["rungs"][br["i"]][1]
            if br["queue"]:
                return Job(br["queue"].pop(0), br["i"], steps)
            if br["i"] == 0 and br["to_start"] > 0:
                br["to_start"] -= 1
                br["members"].append(new_id)
                self.where[new_id] = br["id"]
                self.started += 1
                return Job(-1, 0, steps)
        if self.started < self.max_trials:
            self._open()
            return self.next_job(key, new_id)
        return None

    def _bracket(self, trial: int) -> dict:
        """The live bracket of ``trial``."""
        return next(br for br in self.live if br["id"] == self.where[trial])

    def _close(self, br) -> None:
        self.live = [b for b in self.live if b["id"] != br["id"]]

    def _rung_done(self, br):
        i, members = br["i"], br["members"]
        if i == len(br["rungs"]) - 1:
            self._close(br)
            return
        vals = np.array([br["results"][t] for t in members], np.float32)
        keep = min(br["rungs"][i + 1][0], len(members))
        cap = 1 << (len(vals) - 1).bit_length()  # pad: one compiled shape per power of two
        padded = np.full(cap, np.inf, np.float32)
        padded[:len(vals)] = vals
        codes = np.asarray(_sh_decision(padded, np.arange(cap) < len(vals), num_keep=keep,
                                        eta=self.eta))[:len(vals)]
        up = [t for t, c in zip(members, codes) if c != STOP]
        self._dropped += [t for t, c in zip(members, codes) if c == STOP]
        br.update(i=i + 1, queue=list(up), members=list(up), results={})
        if not up:
            self._close(br)

    def report(self, trials, steps, values, xs):
        out = []
        for t, s, v in zip(trials, steps, values):
            br = self._bracket(t)
            if s < br["rungs"][br["i"]][1]:
                out.append(CONTINUE)
                continue
            br["results"][t] = float(v)
            out.append(DONE if br["i"] == len(br["rungs"]) - 1 else PAUSE)
            if br["to_start"] == 0 and len(br["results"]) == len(br["members"]):
                self._rung_done(br)
        return out


class BOHB(HyperBand):
    """BOHB (Falkner et al. 2018): HyperBand whose new configurations come from TPE-style
    densities fitted on the largest budget with enough observations (:func:`bohb_model_data`,
    top 15%, random fraction 1/3, ``N_min = d + 1``), sampled with bandwidth factor 3 and
    picked by the highest ``l(x) / g(x)`` among ``num_candidates`` draws.
    """

    name = "bohb"

    def __init__(self, min_steps: int, max_steps: int, *, eta: float = 3,
                 top_fraction: float = 0.15, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3.0, num_candidates: int = 64):
        super().__init__(min_steps, max_steps, eta=eta)
        self.top_fraction = check_real(top_fraction, "top_fraction", 0.0, 0.5, low_open=True)
        self.random_fraction = check_real(random_fraction, "random_fraction", 0.0, 1.0)
        self.bandwidth_factor = check_real(bandwidth_factor, "bandwidth_factor", 0.0,
                                           low_open=True)
        self.num_candidates = check_int(num_candidates, "num_candidates", 1)

    def start(self, max_trials, eval_every, space, slots=1):
        super().start(max_trials, eval_every, space, slots)
        from jaxhpo.strategies._parzen import parzen_spec
        self.spec = parzen_spec(space)
        budgets = sorted({r for br in self.brackets for r in
                          [max(self.min_steps, int(round(g.r * self.min_steps))) for g in br.rungs]}
                         | {self.max_steps})
        self.budgets = budgets
        self.obs = bohb_init(len(budgets), min(64, max_trials), space.dim)

    def report(self, trials, steps, values, xs):
        for t, s, v, x in zip(trials, steps, values, xs):
            br = self._bracket(t)
            if s in self.budgets and s == br["rungs"][br["i"]][1]:
                b = self.budgets.index(s)
                if int(self.obs.count[b]) >= self.obs.value.shape[1]:
                    self.obs = _grow(self.obs, 1, {"x": 0.0, "value": np.inf})
                self.obs = _bohb_observe(self.obs, self.budgets.index(s),
                                        np.asarray(x, np.float32), np.float32(v))
        return super().report(trials, steps, values, xs)

    def propose(self, key, num_dims):
        return np.asarray(_bohb_propose_jit(key, self.obs, spec=self.spec,
                                        top_fraction=self.top_fraction,
                                        random_fraction=self.random_fraction,
                                        bandwidth_factor=self.bandwidth_factor,
                                        num_candidates=self.num_candidates))


def _bohb_propose(key, obs, *, spec, top_fraction, random_fraction, bandwidth_factor,
                  num_candidates):
    from jaxhpo.strategies._parzen import fit_parzen, log_pdf, sample, snap

    k_coin, k_rand, k_samp = jax.random.split(key, 3)
    data = bohb_model_data(k_coin, obs, top_fraction=top_fraction,
                           random_fraction=random_fraction)
    b = jnp.maximum(data.budget, 0)
    x = obs.x[b]
    good = fit_parzen(spec, x, data.good.astype(jnp.float32))
    bad = fit_parzen(spec, x, data.bad.astype(jnp.float32))
    cand = sample(k_samp, good, num_candidates, bandwidth_factor=bandwidth_factor)
    score = log_pdf(good, cand) - log_pdf(bad, cand)
    best = cand[jnp.argmax(score)]
    rand = snap(spec, jax.random.uniform(k_rand, (x.shape[1],)))
    return jnp.where(data.use_model, best, rand)


_bohb_propose_jit = jax.jit(_bohb_propose, static_argnames=(
    "spec", "top_fraction", "random_fraction", "bandwidth_factor", "num_candidates"))
_pbt_exploit = jax.jit(pbt_exploit, static_argnames=("fraction",))


class PBT(Scheduler):
    """Population based training (Jaderberg et al. 2017) over the slots.

    Every slot trains one member to ``max_steps``; every ``interval`` steps the bottom
    ``fraction`` copy the weights and optimizer state of a random top member (truncation
    selection) and explore by perturbing its hyperparameters (x0.8/x1.2, resampling with
    ``resample_prob``); see :func:`pbt_exploit`, :func:`pbt_perturb`.
    """

    name = "pbt"
    pbt = True
    python_ok = False

    def __init__(self, max_steps: int, interval: int, *, fraction: float = 0.25,
                 resample_prob: float = 0.25):
        super().__init__(max_steps)
        self.interval = check_int(interval, "interval", 1)
        self.fraction = check_real(fraction, "fraction", 0.0, 0.5, low_open=True)
        self.resample_prob = check_real(resample_prob, "resample_prob", 0.0, 1.0)

    def default_eval_every(self):
        return self.interval

    def milestones(self):
        return [self.interval, self.max_steps]

    def exploit(self, key, values, x, space):
        """``(src i32[P], exploit bool[P], x' f32[P, d])`` for one exploit/explore round."""
        k_sel, k_exp = jax.random.split(key)
        src, ex = _pbt_exploit(k_sel, np.asarray(values, np.float32), fraction=self.fraction)
        src, ex = np.asarray(src), np.asarray(ex)
        new = np.asarray(pbt_perturb(k_exp, np.asarray(x)[src], space,
                                     resample_prob=self.resample_prob))
        return src, ex, np.where(ex[:, None], new, np.asarray(x))
