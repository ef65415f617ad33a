"""Asynchronous successive halving, ASHA (Li et al. 2020, Algorithm 2).

ASHA keeps, per rung ``k``, the (trial, metric) pairs reported there. When a worker (here: a
free slot) asks for a job, ASHA scans the rungs from the highest that can still promote down to
rung 0 and promotes the best not-yet-promoted trial that lies in the top ``floor(|rung k| / eta)``
of its rung; when no rung has one, it starts a new configuration at rung 0 (Algorithm 2,
``get_job``). Promotions are thus never waiting for a rung to fill up.

The *stopping* variant (as used by Ray Tune's ASHA and Optuna's ``SuccessiveHalvingPruner``)
lets every trial run on; when it reports at rung ``k`` it continues iff it lies in the top
``1/eta`` of rung ``k`` so far. With fewer than ``eta`` reports the top ``1/eta`` would be empty,
so the best report of the rung always continues (``max(1, floor(n / eta))``, Optuna's rule).

The state is fixed-capacity: ``K`` rungs x ``C`` entries with counts, so ``report``/``get_job``
compile once. Reports beyond a rung's capacity are dropped and counted in ``overflow``.

Reference:
  L. Li, K. Jamieson, A. Rostamizadeh, E. Gonina, J. Ben-Tzur, M. Hardt, B. Recht,
  A. Talwalkar. "A System for Massively Parallel Hyperparameter Tuning." MLSys 2020.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._validate import check_int
from jaxhpo.schedulers._common import (CONTINUE, STOP, Job, check_eta, rank_ascending,
                                       worst_if_nonfinite)


@struct.dataclass
class ASHAState:
    trial: jax.Array  # i32[K, C] trial id of each report (-1 = empty)
    value: jax.Array  # f32[K, C] metric of each report (+inf = diverged or empty)
    promoted: jax.Array  # bool[K, C] already promoted out of this rung
    count: jax.Array  # i32[K] reports held per rung
    overflow: jax.Array  # i32[] reports dropped because a rung was full


def asha_init(num_rungs: int, capacity: int) -> ASHAState:
    """An empty ASHA state with ``num_rungs`` rungs of ``capacity`` reports each.

    Args:
      num_rungs: ``K`` rungs, rung ``k`` at resource ``r eta^k`` (``K = floor(log_eta(R/r)) + 1``
        for a maximum resource ``R``).
      capacity: the most reports a rung can hold (e.g. the total trial budget for rung 0).
    """
    k = check_int(num_rungs, "num_rungs", 1)
    c = check_int(capacity, "capacity", 1)
    return ASHAState(trial=jnp.full((k, c), -1, jnp.int32), value=jnp.full((k, c), jnp.inf),
                     promoted=jnp.zeros((k, c), bool), count=jnp.zeros((k,), jnp.int32),
                     overflow=jnp.zeros((), jnp.int32))


def asha_report(state: ASHAState, rung, trial, value) -> ASHAState:
    """Record that ``trial`` reached ``rung`` with metric ``value`` (minimized, NaN/inf =
    diverged: kept as ``+inf``, never promoted)."""
    rung = jnp.asarray(rung, jnp.int32)
    pos = state.count[rung]
    ok = pos < state.trial.shape[1]
    put = lambda a, v: a.at[rung, pos].set(v, mode="drop")  # a full rung drops the report
    return state.replace(
        trial=put(state.trial, jnp.asarray(trial, jnp.int32)),
        value=put(state.value, worst_if_nonfinite(value)),
        count=state.count.at[rung].add(ok.astype(jnp.int32)),
        overflow=state.overflow + (~ok).astype(jnp.int32))


def _top(state: ASHAState, eta, at_least_one: bool):
    """``bool[K, C]``: reports in the top ``floor(n_k / eta)`` of their rung (finite only)."""
    c = state.trial.shape[1]
    filled = jnp.arange(c)[None, :] < state.count[:, None]
    ranks = jax.vmap(rank_ascending)(state.value, filled)
    keep = jnp.floor(state.count / eta).astype(jnp.int32)
    if at_least_one:
        keep = jnp.maximum(keep, 1)
    return filled & (ranks < keep[:, None]) & jnp.isfinite(state.value), ranks


def asha_get_job(state: ASHAState, eta: float = 3) -> tuple[Job, ASHAState]:
    """Algorithm 2's ``get_job``: the highest-rung promotion available, else a new trial.

    Rungs are scanned from ``K - 2`` (the top rung has nowhere to go) down to 0; in the first
    rung with a promotable trial (top ``floor(n_k / eta)``, not yet promoted), the best such
    trial is promoted to rung ``k + 1`` and marked promoted in the returned state.

    Returns:
      ``(job, state)``: ``job`` a :class:`Job` of ``i32[]`` (``trial = -1, rung = 0`` for a new
      configuration; ``job.promote`` is ``trial >= 0``); trial ids must be ``>= 0``.
    """
    eta = check_eta(eta)
    num_rungs = state.trial.shape[0]
    top, ranks = _top(state, eta, at_least_one=False)
    can = top & ~state.promoted
    can = can.at[num_rungs - 1].set(False)
    has = jnp.any(can, axis=1)                                        # bool[K]
    k = num_rungs - 1 - jnp.argmax(has[::-1])                         # highest rung with one
    j = jnp.argmin(jnp.where(can[k], ranks[k], jnp.iinfo(jnp.int32).max))  # best candidate
    any_ = jnp.any(has)
    job = Job(trial=jnp.where(any_, state.trial[k, j], -1).astype(jnp.int32),
              rung=jnp.where(any_, k + 1, 0).astype(jnp.int32))
    promoted = state.promoted.at[k, j].set(state.promoted[k, j] | any_)
    return job, state.replace(promoted=promoted)


def asha_get_jobs(state: ASHAState, num_jobs: int, eta: float = 3) -> tuple[Job, ASHAState]:
    """``num_jobs`` successive ``get_job`` calls (e.g. one per free slot): a :class:`Job` of
    ``[num_jobs]`` arrays; later jobs see the earlier promotions."""
    num_jobs = check_int(num_jobs, "num_jobs", 1)
    eta = check_eta(eta)

    def one(st, _):
        job, st = asha_get_job(st, eta)
        return st, job

    state, jobs = jax.lax.scan(one, state, None, length=num_jobs)
    return jobs, state


def asha_stop_decision(state: ASHAState, rung, trial, value, eta: float = 3
                       ) -> tuple[jax.Array, ASHAState]:
    """The stopping variant: record the report, then ``CONTINUE`` iff the trial is in the top
    ``max(1, floor(n_k / eta))`` of rung ``k`` (counting this report), else ``STOP``.

    A report at the top rung ``K - 1`` always returns ``STOP`` (the trial has its full
    resource); a diverged report always returns ``STOP``.

    Returns:
      ``(code i32[], state)``.
    """
    eta = check_eta(eta)
    rung = jnp.asarray(rung, jnp.int32)
    value = worst_if_nonfinite(value)
    c = state.trial.shape[1]
    filled = jnp.arange(c) < state.count[rung]
    n = jnp.minimum(state.count[rung], c) + 1                          # rung size with this one
    # Rank of the new report among the rung's; earlier reports win ties.
    rank = jnp.sum(filled & (state.value[rung] <= value))
    keep = jnp.maximum(jnp.floor(n / eta).astype(jnp.int32), 1)
    go = (rank < keep) & (rung < state.trial.shape[0] - 1) & jnp.isfinite(value)
    state = asha_report(state, rung, trial, value)
    return jnp.where(go, CONTINUE, STOP).astype(jnp.int32), state
