"""ppo_agent: categorical proposals and learning on a mixed space, the KL guard and model use,
the reward-model ensemble against a known function, and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo import Categorical, Float, Space
from jaxhpo.strategies import RewardModel, ppo_agent

SMALL = dict(hidden=16, layers=1, embed=8)


def run(strategy, f, gens, seed):
    @jax.jit
    def go(key):
        k_init, key = jax.random.split(key)

        def gen(state, k):
            x, state = strategy.ask(k, state)
            state = strategy.tell(state, x, jax.vmap(f)(x))
            return state, (x, state.model_updates, state.model_kl)

        return jax.lax.scan(gen, strategy.init(k_init), jax.random.split(key, gens))

    return go(jax.random.key(seed))


def test_learns_mixed_space_under_the_kl_guard():
    """f = (a - 0.8)^2 + [c != 'z'] with 20 generations of 16 episodes, model-based: categorical
    proposals are bin centres; the policy ends up picking 'z' (x = 5/6) in >= 80% of episodes
    (about 1/3 at the start) and its a-samples move toward 0.8; the model is used once warm
    (2 x 16 trials), never more than ``max_model_updates`` times per generation, and the
    accepted KL never exceeds the threshold."""
    space = Space({"a": Float(0.0, 1.0), "c": Categorical(["x", "y", "z"])})

    def f(x):
        return (x[0] - 0.8) ** 2 + jnp.where(jnp.floor(x[1] * 3) == 2, 0.0, 1.0)

    model = RewardModel(2, capacity=512, num_members=3, hidden=(32,), train_steps=30)
    s = ppo_agent(space, 16, kl_threshold=0.3, max_model_updates=4, model=model, **SMALL)
    state, (xs, n_upd, kl) = run(s, f, 20, 0)
    xs, n_upd, kl = np.asarray(xs), np.asarray(n_upd), np.asarray(kl)
    np.testing.assert_allclose(np.unique(xs[..., 1]), [1 / 6, 3 / 6, 5 / 6], rtol=1e-6)
    first, last = xs[0], xs[-1]
    assert 0.1 < np.mean(first[:, 1] > 0.66) < 0.6
    assert np.mean(last[:, 1] > 0.66) >= 0.8
    assert np.mean(np.abs(last[:, 0] - 0.8)) < 0.5 * np.mean(np.abs(first[:, 0] - 0.8))
    assert n_upd[0] == 0 and n_upd.sum() > 0 and np.all(n_upd <= 4)
    assert np.all(kl <= 0.3 + 1e-6)
    fs = np.asarray(jax.vmap(jax.vmap(f))(jnp.asarray(xs)))
    np.testing.assert_allclose(float(state.best_fitness), fs.min(), rtol=1e-6)


def test_reward_model_fits_a_quadratic_and_ring_buffer_wraps():
    rng = np.random.default_rng(0)
    x = rng.random((96, 2)).astype(np.float32)
    y = np.sum((x - 0.4) ** 2, 1) * 10.0 + 3.0
    rm = RewardModel(2, capacity=128, num_members=3, hidden=(32, 32), train_steps=400)
    st = rm.init(jax.random.key(0))
    st = rm.add(st, jnp.asarray(x[:64]), jnp.asarray(y[:64]), jnp.ones(64, bool))
    st = rm.fit(jax.random.key(1), st)
    pred, std = rm.predict(st, jnp.asarray(x[64:]))
    r2 = 1 - np.sum((np.asarray(pred) - y[64:]) ** 2) / np.sum((y[64:] - y[64:].mean()) ** 2)
    assert r2 > 0.9, r2
    assert np.all(np.asarray(std) >= 0)
    small = RewardModel(2, capacity=4)
    st = small.init(jax.random.key(0))
    st = small.add(st, jnp.asarray(x[:3]), jnp.asarray(y[:3]), jnp.array([True, False, True]))
    st = small.add(st, jnp.asarray(x[3:6]), jnp.asarray(y[3:6]), jnp.ones(3, bool))
    assert int(st.count) == 5
    kept = {round(float(v), 5) for v in np.asarray(st.y)}
    assert kept == {round(float(v), 5) for v in [y[2], y[3], y[4], y[5]]}


def test_bad_arguments():
    space = Space({"a": Float(0.0, 1.0)})
    with pytest.raises(ValueError, match="num_minibatches"):
        ppo_agent(space, 6, num_minibatches=4)
    with pytest.raises(ValueError, match="min_std"):
        ppo_agent(space, 4, init_std=0.001)
    with pytest.raises(ValueError, match="kl_threshold"):
        ppo_agent(space, 4, kl_threshold=0.0)
    with pytest.raises(ValueError, match="model.dim"):
        ppo_agent(space, 4, model=RewardModel(3))
    with pytest.raises(TypeError, match="population_size"):
        ppo_agent(space, 4.0)
