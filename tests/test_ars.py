"""ARS: antithetic proposals, the paper's update rule, beating random search on Hartmann6, and
the running observation normalizer of V2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import best_value
from jaxhpo import Float, Space
from jaxhpo.functions import hartmann6
from jaxhpo.strategies import RunningNorm, ars, random_search


def cube(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def test_antithetic_pairs_and_update_rule():
    n, b, alpha, nu = 4, 2, 0.1, 0.05
    s = ars(cube(3), n, top_directions=b, step_size=alpha, noise=nu)
    st = s.init(jax.random.key(0))
    x, st = s.ask(jax.random.key(1), st)
    delta = np.asarray(st.delta)
    np.testing.assert_allclose(np.asarray(x[:n]) - 0.5, nu * delta, atol=1e-6)
    np.testing.assert_allclose(np.asarray(x[n:]) - 0.5, -nu * delta, atol=1e-6)
    fitness = np.array([1.0, 4.0, -2.0, 0.5, 3.0, 0.0, 1.0, 2.5], np.float32)
    new = s.tell(st, x, jnp.asarray(fitness))
    r_plus, r_minus = -fitness[:n], -fitness[n:]
    top = np.argsort(-np.maximum(r_plus, r_minus))[:b]          # directions 2 and 1
    used = np.concatenate([r_plus[top], r_minus[top]])
    expect = 0.5 + alpha / (b * used.std()) * ((r_plus[top] - r_minus[top]) @ delta[top])
    np.testing.assert_allclose(np.asarray(new.theta), np.clip(expect, 0, 1), rtol=1e-5)


def test_basic_random_search_variant_has_no_std_scaling():
    s = ars(cube(2), 2, step_size=0.1, noise=0.1, scale_by_std=False)
    st = s.init(jax.random.key(0))
    x, st = s.ask(jax.random.key(3), st)
    new = s.tell(st, x, jnp.array([1.0, 0.0, 0.0, 1.0]))
    delta = np.asarray(st.delta)
    expect = 0.5 + 0.1 / 2 * ((np.array([-1.0, 0.0]) - np.array([0.0, -1.0])) @ delta)
    np.testing.assert_allclose(np.asarray(new.theta), expect, rtol=1e-5)


def best_regret(strategy, tf, gens, seed):
    return best_value(strategy, tf.fn, gens, seed) - tf.optimum_value


def test_ars_beats_random_search_on_hartmann6():
    """512 evaluations (32 generations of 8 antithetic pairs): ARS V1-t's median regret over
    5 seeds is below 0.05, random search's above 0.3."""
    tf = hartmann6()
    ours = np.median([best_regret(ars(tf.space, 8, top_directions=4), tf, 32, s)
                      for s in range(5)])
    rand = np.median([best_regret(random_search(tf.space, 16), tf, 32, s) for s in range(5)])
    assert ours < 0.05 < 0.3 < rand


def test_running_norm_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (5, 17, 1, 30)]
    norm = RunningNorm.create(4)
    for bt in batches:
        norm = norm.update(jnp.asarray(bt))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(np.asarray(norm.mean), allx.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(norm.std), allx.std(0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(norm.normalize(jnp.asarray(allx))).mean(0), 0,
                               atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="top_directions"):
        ars(cube(2), 4, top_directions=5)
    with pytest.raises(ValueError, match="step_size and noise"):
        ars(cube(2), 4, noise=0.0)
    with pytest.raises(ValueError, match="theta0"):
        ars(cube(2), 4, theta0=[0.5])
