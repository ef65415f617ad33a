"""Median stopping rule (Golovin et al. 2017): a hand-worked case, a brute-force reference on
random curves, divergence, grace period, and no retrace as trials accumulate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo.schedulers import CONTINUE, STOP, median_stopping, running_averages

NAN = np.nan


def buffer(rows, steps):
    c = np.full((len(rows), steps), NAN, np.float32)
    m = np.zeros((len(rows), steps), bool)
    for i, r in enumerate(rows):
        c[i, :len(r)], m[i, :len(r)] = r, True
    return jnp.asarray(c), jnp.asarray(m)


# A, B, C have 4 reports; D, E are at report index 1; F diverged at index 1.
ROWS = [[1.0, 0.8, 0.6, 0.5], [1.0, 0.9, 0.8, 0.7], [0.8, 0.6, 0.4, 0.3],
        [1.0, 0.95], [0.9, 0.85], [1.0, NAN]]


def test_hand_worked_case():
    c, m = buffer(ROWS, 4)
    d = np.asarray(median_stopping(c, m, reference=jnp.arange(6) < 5, min_trials=3))
    # D at s=1: pool A, B, C, E running averages 0.9, 0.95, 0.7, 0.875 -> median 0.8875;
    # D's best 0.95 is worse -> stop. E: pool A, B, C, D = 0.9, 0.95, 0.7, 0.975 -> 0.925;
    # E's best 0.85 -> continue. A, B, C at s=3 have a pool of 2 < min_trials -> continue.
    # F diverged -> stop.
    np.testing.assert_array_equal(d, [CONTINUE, CONTINUE, CONTINUE, STOP, CONTINUE, STOP])
    d = np.asarray(median_stopping(c, m, min_trials=2))
    # s=3, pool of 2: A best 0.5 vs median(0.85, 0.525) = 0.6875 -> continue; B best 0.7 vs
    # median(0.725, 0.525) = 0.625 -> stop; C best 0.3 -> continue.
    np.testing.assert_array_equal(d[:3], [CONTINUE, STOP, CONTINUE])


def test_grace_period_and_active_mask():
    c, m = buffer(ROWS, 4)
    d = np.asarray(median_stopping(c, m, grace_period=3))
    assert d[3] == CONTINUE and d[5] == STOP          # divergence ignores the grace period
    d = np.asarray(median_stopping(c, m, active=jnp.array([1, 1, 1, 0, 1, 1], bool)))
    assert d[3] == CONTINUE


def brute_force(curves, mask, grace, min_trials):
    n, _ = curves.shape
    out = []
    for i in range(n):
        obs = np.flatnonzero(mask[i])
        s = obs[-1]
        if not np.isfinite(curves[i, s]):
            out.append(STOP)
            continue
        best = np.min(curves[i, obs])
        pool = [np.mean(curves[j, np.flatnonzero(mask[j, :s + 1])]) for j in range(n)
                if j != i and mask[j, s]]
        stop = len(obs) >= grace and len(pool) >= min_trials and best > np.median(pool)
        out.append(STOP if stop else CONTINUE)
    return np.array(out)


def test_matches_brute_force_on_random_curves():
    rng = np.random.default_rng(0)
    n, steps = 24, 10
    lengths = rng.integers(1, steps + 1, n)
    rows = [np.exp(-rng.uniform(0.05, 0.5) * np.arange(L)) + rng.uniform(0, 1) +
            0.05 * rng.normal(size=L) for L in lengths]
    c, m = buffer(rows, steps)
    ours = np.asarray(median_stopping(c, m, grace_period=2, min_trials=3))
    ref = brute_force(np.asarray(c), np.asarray(m), 2, 3)
    np.testing.assert_array_equal(ours, ref)
    assert 0 < np.sum(ours == STOP) < n                # the case exercises both outcomes


def test_running_averages_diverged_prefix_is_inf():
    c, m = buffer([[1.0, 3.0], [NAN, 1.0]], 3)
    avg = np.asarray(running_averages(c, m))
    np.testing.assert_allclose(avg[0, :2], [1.0, 2.0])
    assert avg[0, 2] == 2.0 and np.isinf(avg[1, 0]) and np.isinf(avg[1, 1])


def test_no_retrace_as_trials_accumulate():
    traces = []

    @jax.jit
    def decide(c, m):
        traces.append(1)
        return median_stopping(c, m)

    rng = np.random.default_rng(1)
    c = np.zeros((16, 8), np.float32)
    m = np.zeros((16, 8), bool)
    for t in range(1, 9):
        c[:t, t - 1] = rng.uniform(size=t)
        m[:t, :t] = True
        decide(jnp.asarray(c), jnp.asarray(m))
    assert len(traces) == 1


def test_errors():
    c, m = buffer(ROWS, 4)
    with pytest.raises(ValueError, match="grace_period"):
        median_stopping(c, m, grace_period=0)
    with pytest.raises(ValueError, match="min_trials"):
        median_stopping(c, m, min_trials=0)
    with pytest.raises(ValueError, match="mask"):
        median_stopping(c, m[:, :2])
    with pytest.raises(ValueError, match="curves"):
        median_stopping(c[0], m[0])
