"""ASHA (Li et al. 2020, Algorithm 2): a hand-worked sequence of reports and jobs for the
promotion variant, one for the stopping variant, capacity overflow, and no retrace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo.schedulers import (CONTINUE, STOP, asha_get_job, asha_get_jobs, asha_init,
                               asha_report, asha_stop_decision)

report = jax.jit(asha_report)
get_job = jax.jit(asha_get_job, static_argnames="eta")
stop_decision = jax.jit(asha_stop_decision, static_argnames="eta")


def job(state):
    j, state = get_job(state, eta=3)
    return (bool(j.promote), int(j.trial), int(j.rung)), state


NEW = (False, -1, 0)


def test_promotion_variant_hand_worked():
    st = asha_init(num_rungs=3, capacity=16)
    j, st = job(st)
    assert j == NEW                                         # empty: start a new trial
    st = report(st, 0, 0, 0.5)
    j, st = job(st)
    assert j == NEW                                         # floor(1/3) = 0 promotable
    st = report(report(st, 0, 1, 0.3), 0, 2, 0.7)
    j, st = job(st)
    assert j == (True, 1, 1)                                # top 1 of 3 at rung 0: t1
    j, st = job(st)
    assert j == NEW                                         # t1 already promoted
    st = report(st, 0, 3, 0.1)
    j, st = job(st)
    assert j == (True, 3, 1)                                # top 1 of 4: t3
    st = report(report(st, 0, 4, 0.9), 0, 5, 0.2)
    j, st = job(st)
    assert j == (True, 5, 1)                                # top 2 of 6: t3 (done), t5
    for t, v in [(1, 0.25), (3, 0.15), (5, 0.4)]:
        st = report(st, 1, t, v)
    j, st = job(st)
    assert j == (True, 3, 2)                                # highest rung first: t3 -> rung 2
    j, st = job(st)
    assert j == NEW                                         # rung 1 top 1 and rung 0 top 2 done
    st = report(st, 0, 6, jnp.nan)                          # diverged: ranked last
    j, st = job(st)
    assert j == NEW
    np.testing.assert_array_equal(np.asarray(st.count), [7, 3, 0])


def test_diverged_reports_are_never_promoted():
    st = asha_init(2, 8)
    for t in range(3):
        st = report(st, 0, t, jnp.inf if t else jnp.nan)
    j, st = job(st)
    assert j == NEW


def test_get_jobs_for_several_free_slots():
    st = asha_init(2, 16)
    vals = [0.9, 0.1, 0.8, 0.3, 0.7, 0.6, 0.2, 0.5, 0.4]
    for t, v in enumerate(vals):
        st = report(st, 0, t, v)
    jobs, st = asha_get_jobs(st, 4, eta=3)
    # top 3 of 9 in order of value (t1 0.1, t6 0.2, t3 0.3), then a new trial.
    np.testing.assert_array_equal(np.asarray(jobs.trial), [1, 6, 3, -1])
    np.testing.assert_array_equal(np.asarray(jobs.promote), [True, True, True, False])
    np.testing.assert_array_equal(np.asarray(jobs.rung), [1, 1, 1, 0])


def test_stopping_variant_hand_worked():
    st = asha_init(num_rungs=3, capacity=16)
    seq = [  # (rung, trial, value, expected); keep = max(1, floor(n / 3)) with n incl. this one
        (0, 0, 0.5, CONTINUE),   # n=1, keep 1, rank 0
        (0, 1, 0.7, STOP),       # n=2, keep 1, rank 1
        (0, 2, 0.3, CONTINUE),   # n=3, keep 1, rank 0
        (0, 3, 0.4, STOP),       # n=4, keep 1, rank 1
        (0, 4, 0.45, STOP),      # n=5, keep 1, rank 2
        (0, 5, 0.35, CONTINUE),  # n=6, keep 2, rank 1
        (0, 6, 0.3, CONTINUE),   # n=7, keep 2, rank 1 (the earlier 0.3 wins the tie)
        (0, 7, 0.3, STOP),       # n=8, keep 2, rank 2
        (0, 8, jnp.nan, STOP),   # diverged
        (1, 2, 0.2, CONTINUE),   # first report at rung 1
        (2, 2, 0.1, STOP),       # top rung: full resource reached, the trial is complete
    ]
    for rung, t, v, expect in seq:
        code, st = stop_decision(st, rung, t, v, eta=3)
        assert int(code) == expect, (rung, t, v)


def test_overflow_is_counted_not_written():
    st = asha_init(1, 2)
    for t in range(3):
        st = report(st, 0, t, float(t))
    assert int(st.count[0]) == 2 and int(st.overflow) == 1
    np.testing.assert_array_equal(np.asarray(st.trial[0]), [0, 1])


def test_no_retrace_as_reports_accumulate():
    traces = []

    @jax.jit
    def step(st, t, v):
        traces.append(1)
        code, st = asha_stop_decision(st, t % 3, t, v)
        j, st = asha_get_job(st)
        return st, code, j

    st = asha_init(3, 32)
    for t in range(20):
        st, _, _ = step(st, t, jnp.float32(np.sin(t)))
    assert len(traces) == 1 and int(jnp.sum(st.count)) == 20


def test_errors():
    with pytest.raises(ValueError, match="num_rungs"):
        asha_init(0, 4)
    with pytest.raises(ValueError, match="capacity"):
        asha_init(2, 0)
    with pytest.raises(ValueError, match="eta"):
        asha_get_job(asha_init(2, 4), eta=1)
    with pytest.raises(ValueError, match="num_jobs"):
        asha_get_jobs(asha_init(2, 4), 0)


def test_vmaps_over_independent_states():
    """Several ASHA instances (e.g. one per HyperBand bracket) advance together under vmap."""
    states = jax.vmap(lambda _: asha_init(2, 8))(jnp.arange(3))
    vals = jnp.array([[0.3, 0.1, 0.2], [0.5, 0.6, 0.4], [jnp.nan, 0.9, 0.8]])
    for t in range(3):
        states = jax.vmap(asha_report, (0, None, None, 0))(states, 0, t, vals[:, t])
    jobs, states = jax.vmap(lambda s: asha_get_job(s, eta=3))(states)
    np.testing.assert_array_equal(np.asarray(jobs.trial), [1, 2, 2])
