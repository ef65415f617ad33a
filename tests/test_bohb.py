"""BOHB's model-data rule (Falkner et al. 2018, Algorithm 2, Eqs. 2-3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo.schedulers import bohb_init, bohb_model_data, bohb_observe

observe = jax.jit(bohb_observe)
model = jax.jit(bohb_model_data, static_argnames=("top_fraction", "random_fraction",
                                                  "min_points"))


def filled(num_budgets, counts, d=2, seed=0):
    obs = bohb_init(num_budgets, 32, d)
    rng = np.random.default_rng(seed)
    for b, n in enumerate(counts):
        for v in rng.permutation(n):
            obs = observe(obs, b, rng.uniform(size=d), float(v))   # values 0..n-1 shuffled
    return obs


def test_largest_budget_with_enough_points_and_the_split():
    # d = 2 -> N_min = 3; a budget needs >= 5 points. Budgets hold 20, 12, 4 observations:
    # the largest with enough is budget 1 (N_b = 12).
    obs = filled(3, [20, 12, 4])
    m = model(jax.random.key(0), obs, random_fraction=0.0)
    assert bool(m.use_model) and int(m.budget) == 1
    vals = np.asarray(obs.value[1])
    # N_l = max(3, floor(0.15 * 12) = 1) = 3 best; N_g = max(3, 12 - 3) = 9 worst.
    np.testing.assert_array_equal(np.sort(vals[np.asarray(m.good)]), [0, 1, 2])
    np.testing.assert_array_equal(np.sort(vals[np.asarray(m.bad)]), np.arange(3, 12))
    # 32 points on budget 0 only: N_l = max(3, floor(4.8)) = 4, N_g = max(3, 32 - 4) = 28.
    obs = filled(2, [32, 0])
    m = model(jax.random.key(0), obs, random_fraction=0.0)
    assert int(m.budget) == 0 and int(jnp.sum(m.good)) == 4 and int(jnp.sum(m.bad)) == 28


def test_no_budget_with_enough_points_means_random():
    m = model(jax.random.key(0), filled(2, [4, 2]), random_fraction=0.0)
    assert not bool(m.use_model) and int(m.budget) == -1 and not bool(jnp.any(m.good))


def test_random_fraction_is_a_third():
    obs = filled(1, [10])
    use = jax.vmap(lambda k: model(k, obs).use_model)(jax.random.split(jax.random.key(1), 6000))
    assert abs(1 - float(jnp.mean(use)) - 1 / 3) < 0.02


def test_diverged_observations_go_to_bad():
    obs = bohb_init(1, 8, 1)
    for i, v in enumerate([jnp.nan, 0.5, 0.1, jnp.inf, 0.3, 0.2]):
        obs = observe(obs, 0, jnp.array([i / 10]), v)
    m = model(jax.random.key(0), obs, random_fraction=0.0, min_points=2)
    # N_b = 6: N_l = 2 best (0.1, 0.2), N_g = 4 worst (0.3, 0.5, nan, inf).
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(m.good)), [2, 5])
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(m.bad)), [0, 1, 3, 4])


def test_errors():
    obs = bohb_init(1, 4, 2)
    with pytest.raises(ValueError, match="top_fraction"):
        bohb_model_data(jax.random.key(0), obs, top_fraction=0.7)
    with pytest.raises(ValueError, match="random_fraction"):
        bohb_model_data(jax.random.key(0), obs, random_fraction=1.5)
    with pytest.raises(ValueError, match="num_dims"):
        bohb_init(1, 4, 0)
