"""Learning-curve extrapolation (Domhan et al. 2015): predictions on synthetic curves from
known families, the stop decision for a clearly bad and a clearly good curve, divergence, and
no retrace as reports accumulate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo.schedulers import CONTINUE, STOP, curve_extrapolation_stopping, fit_learning_curves

S = 50
X = np.arange(1, S + 1, dtype=np.float64)
TRUTHS = {  # minimized metrics (e.g. validation error) from four of the paper's families
    "pow3": 0.2 + 0.8 * X ** -0.7,
    "weibull": 0.15 + 0.85 * np.exp(-(0.08 * X) ** 0.9),
    "mmf": 0.1 + 0.8 / (1 + (0.15 * X) ** 1.2),
    "janoschek": 0.3 + 0.7 * np.exp(-0.1 * X ** 0.8),
    "ilog2": 0.05 + 0.5 / np.log(X + 1),
}
SEEDS = 5
N = 10          # every call uses 10-row buffers, so the whole file compiles the rule once
TRACES = []
NO_BOUNDS = (-np.inf, np.inf)


@jax.jit
def _rule(c, m, best, bounds):
    TRACES.append(1)
    return curve_extrapolation_stopping(c, m, best, bounds=bounds)


def pad(a):
    a = np.asarray(a)
    return jnp.asarray(np.concatenate([a, np.repeat(a[-1:], N - len(a), 0)]))


def rule(c, m, best=0.0, bounds=NO_BOUNDS):
    """curve_extrapolation_stopping on any number of rows, in chunks of N (numpy results)."""
    out = [_rule(pad(c[i:i + N]), pad(m[i:i + N]), jnp.float32(best),
                 jnp.asarray(bounds, jnp.float32)) for i in range(0, len(c), N)]
    return jax.tree.map(lambda *a: np.concatenate(a)[:len(c)], *out)


def fit(c, m, bounds=NO_BOUNDS):
    return rule(c, m, bounds=bounds).prediction


def decide(c, m, best):
    d = rule(c, m, best)
    return d.codes, d.prob_better


def noisy(curves, seed, sd=0.005):
    rng = np.random.default_rng(seed)
    return np.stack([c + sd * rng.normal(size=c.shape) for c in curves]).astype(np.float32)


def prefix(n_rows, observed):
    m = np.zeros((n_rows, S), bool)
    m[:, :observed] = True
    return jnp.asarray(m)


def test_predicts_final_value_of_known_families():
    """Half of each curve observed (noise sd 0.005): the median |error| over 5 seeds of the
    final-value prediction is below 0.03 for every family, every error below 0.08."""
    truth = np.stack(list(TRUTHS.values()))
    c = np.concatenate([noisy(truth, s) for s in range(SEEDS)])
    pred = fit(c, np.asarray(prefix(len(c), 25)))
    err = np.abs(np.asarray(pred.mean) - np.tile(truth[:, -1], SEEDS)).reshape(SEEDS, -1)
    assert np.asarray(pred.valid).all()
    assert (np.median(err, axis=0) < 0.03).all(), dict(zip(TRUTHS, np.median(err, 0)))
    assert err.max() < 0.08
    # Weights are a distribution over families; the spread is positive.
    np.testing.assert_allclose(np.asarray(pred.weights).sum(1), 1.0, rtol=1e-5)
    assert (np.asarray(pred.std) > 0).all()


def test_uncertainty_shrinks_as_more_is_observed():
    c = noisy(np.stack([TRUTHS["pow3"]] * 3), 0)
    stds = [float(fit(c, prefix(3, k)).std[0]) for k in (8, 16, 32)]
    assert stds[0] > stds[1] > stds[2]


def test_stops_a_clearly_bad_curve_and_keeps_a_clearly_good_one():
    """Best final value so far 0.25. After 10 of 50 reports the bad curve (heading to 0.60) is
    stopped; the good one (heading to 0.10) continues; a diverged one is stopped; one with too
    few reports continues."""
    bad = 0.6 + 0.4 / (1 + (0.2 * X) ** 1.5)
    good = 0.1 + 0.9 * X ** -0.6
    c = noisy(np.stack([bad, good, good, good]), 1)
    c[2, 9] = np.nan
    m = np.asarray(prefix(4, 10)).copy()
    m[3, 3:] = False
    codes, prob = decide(c, m, 0.25)
    np.testing.assert_array_equal(codes, [STOP, CONTINUE, STOP, CONTINUE])
    assert float(prob[0]) < 0.01 < 0.5 < float(prob[1])
    # No final value yet: nothing beats "inf", nothing is stopped (except divergence).
    codes, prob = decide(c, m, np.inf)
    np.testing.assert_array_equal(codes, [CONTINUE, CONTINUE, STOP, CONTINUE])


def test_bounds_discard_impossible_extrapolations():
    c = noisy(np.stack([TRUTHS["weibull"]]), 0)
    pred = fit(c, prefix(1, 8), bounds=(0.0, 1.0))
    fm = np.asarray(pred.family_mean)[0]
    assert (fm[np.isfinite(fm)] >= 0).all() and float(pred.mean[0]) >= 0


def test_no_retrace_as_reports_accumulate():
    before = len(TRACES)
    c = noisy(np.stack([TRUTHS["pow3"], TRUTHS["mmf"]]), 2)
    for k in (5, 6, 7):
        decide(c, prefix(2, k), 0.2)
    assert len(TRACES) - before <= 1            # 0 when an earlier test compiled it


def test_errors():
    c, m = jnp.zeros((2, S)), prefix(2, 5)
    with pytest.raises(ValueError, match="threshold"):
        curve_extrapolation_stopping(c, m, 0.1, threshold=1.0)
    with pytest.raises(ValueError, match="min_points"):
        curve_extrapolation_stopping(c, m, 0.1, min_points=1)
    with pytest.raises(ValueError, match="mask"):
        fit_learning_curves(c, m[:, :3])
    with pytest.raises(ValueError, match="steps"):
        fit_learning_curves(c, m, jnp.arange(3.0))
    with pytest.raises(ValueError, match="bounds"):
        fit_learning_curves(c, m, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="iterations"):
        fit_learning_curves(c, m, iterations=-1)
