"""ARS augmentations: replay ring, critic fit, control-variate unbiasedness, pre-screening with an
exact critic, shaping and costs against hand-computed updates, no retrace, Hartmann6 progress."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhpo
from helpers import scan_strategy
from jaxhpo import Float, Space
from jaxhpo.functions import hartmann6
from jaxhpo.strategies import ars, ars_augmented, random_search
from jaxhpo.strategies._ars_augmented import control_variate_sum, prescreen_directions
from jaxhpo.strategies._critic import buffer_add, buffer_init, ensemble_critic


SMALL = dict(critic_members=2, critic_hidden=(8,), critic_steps=2, replay_capacity=16)


def cube(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def test_replay_buffer_is_a_ring_and_masks_failures():
    buf = buffer_init(5, 2)
    x1 = jnp.arange(6.0).reshape(3, 2)
    buf = buffer_add(buf, x1, jnp.array([1.0, jnp.nan, 3.0]), jnp.array([True, False, True]))
    x2 = 10 + jnp.arange(6.0).reshape(3, 2)
    buf = buffer_add(buf, x2, jnp.array([4.0, jnp.inf, 6.0]), jnp.array([True, True, True]))
    assert int(buf.count) == 6
    # rows 0..2 <- batch 1, rows 3, 4, 0 <- batch 2 (the oldest row is overwritten first)
    np.testing.assert_array_equal(np.asarray(buf.x), [[14, 15], [2, 3], [4, 5], [10, 11],
                                                      [12, 13]])
    np.testing.assert_array_equal(np.asarray(buf.valid), [True, False, True, True, False])
    np.testing.assert_array_equal(np.asarray(buf.y), [6.0, 0.0, 3.0, 4.0, 0.0])


def test_critic_learns_a_smooth_function_and_its_gradient():
    """Fit on 192 points of a known quadratic; held-out R^2 and gradient direction are checked
    against the closed form."""
    d = 3
    a = jnp.array([0.3, 0.6, 0.5])
    f = lambda x: -jnp.sum(jnp.array([1.0, 3.0, 0.5]) * (x - a) ** 2, -1)  # noqa: E731
    kx, kt = jax.random.split(jax.random.key(0))
    x = jax.random.uniform(kx, (192, d))
    buf = buffer_add(buffer_init(192, d), x, f(x), jnp.ones(192, bool))
    critic = ensemble_critic(d, members=3, steps=300, learning_rate=1e-2)
    cs = jax.jit(critic.fit)(jax.random.key(1), critic.init(jax.random.key(2)), buf)
    xt = jax.random.uniform(kt, (200, d))
    pred, true = critic.predict(cs, xt), f(xt)
    r2 = 1 - jnp.sum((pred - true) ** 2) / jnp.sum((true - true.mean()) ** 2)
    assert r2 > 0.95, r2
    p = jnp.array([0.7, 0.2, 0.8])
    g, g_true = critic.grad(cs, p), jax.grad(f)(p)
    assert jnp.dot(g, g_true) / (jnp.linalg.norm(g) * jnp.linalg.norm(g_true)) > 0.95


def _estimators(r, c, theta, nu, n, draws, kappa=1.0):
    """Plain and control-variate finite-difference sums for ``draws`` sets of ``n`` directions."""
    def one(key):
        delta = jax.random.normal(key, (n, theta.shape[0]))
        rp, rm = r(theta + nu * delta), r(theta - nu * delta)
        cp, cm = c(theta + nu * delta), c(theta - nu * delta)
        plain = (rp - rm) @ delta
        cv = control_variate_sum(rp, rm, cp, cm, delta, jax.grad(c)(theta), nu, kappa)
        return plain, cv
    return jax.vmap(one)(jax.random.split(jax.random.key(0), draws))


def test_control_variate_is_unbiased_and_reduces_variance():
    """E[sum (r+ - r-) delta] = 2 nu n grad r for a quadratic reward (closed form); the control
    variate with any quadratic critic has that mean; with an exact critic it is exact for every
    draw; with a nearly exact one its variance is far smaller."""
    theta, nu, n, draws = jnp.array([0.5, 0.4, 0.6]), 0.1, 4, 20000
    A = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])
    a = jnp.array([0.2, 0.7, 0.5])
    r = lambda x: -jnp.einsum("...i,ij,...j->...", x - a, A, x - a)  # noqa: E731
    truth = 2 * nu * n * jax.grad(r)(theta)
    wrong = lambda x: -jnp.sum((x - 0.9) ** 2, -1) * 4.0  # noqa: E731
    for c in (wrong, r):
        plain, cv = _estimators(r, c, theta, nu, n, draws)
        for g in (plain, cv):
            se = jnp.std(g, 0) / np.sqrt(draws) + 1e-7
            assert bool(jnp.all(jnp.abs(g.mean(0) - truth) < 4 * se + 1e-6))
    np.testing.assert_allclose(np.asarray(cv), np.broadcast_to(truth, cv.shape), atol=1e-5)
    near = lambda x: r(x) + 0.02 * wrong(x)  # noqa: E731
    plain, cv = _estimators(r, near, theta, nu, n, draws)
    assert float(jnp.sum(jnp.var(cv, 0))) < 0.1 * float(jnp.sum(jnp.var(plain, 0)))


def test_control_variate_keeps_the_plain_mean_on_a_non_quadratic_reward():
    """Paired draws: E[g_cv - g_plain] = 0 for a quadratic critic even when the reward is not."""
    theta, nu, n, draws = jnp.array([0.5, 0.3]), 0.2, 3, 20000
    r = lambda x: jnp.sin(4 * x[..., 0]) * jnp.cos(3 * x[..., 1]) + x[..., 0] ** 3  # noqa: E731
    c = lambda x: -jnp.sum((x - jnp.array([0.8, 0.1])) ** 2, -1)  # noqa: E731
    plain, cv = _estimators(r, c, theta, nu, n, draws)
    diff = cv - plain
    assert bool(jnp.all(jnp.abs(diff.mean(0)) < 4 * jnp.std(diff, 0) / np.sqrt(draws)))


def test_prescreening_with_an_exact_critic_keeps_the_best_directions():
    """For a linear reward g.x, max(r+, r-) = g.theta + nu |g.delta|: the kept directions must be
    the n largest |g . delta| (an independent ranking)."""
    g = jnp.array([1.0, -2.0, 0.5, 0.0])
    theta = jnp.full(4, 0.5)
    delta = jax.random.normal(jax.random.key(3), (32, 4))
    idx = prescreen_directions(lambda x: x @ g, theta, delta, 0.05, 8)
    expect = np.argsort(-np.abs(np.asarray(delta @ g)))[:8]
    assert set(np.asarray(idx).tolist()) == set(expect.tolist())


def test_all_switches_off_is_plain_ars():
    tf = hartmann6()
    sa, _, xa = scan_strategy(ars(tf.space, 4, top_directions=2), tf.fn, 6, jax.random.key(0))
    sb, _, xb = scan_strategy(ars_augmented(tf.space, 4, top_directions=2), tf.fn, 6,
                              jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
    np.testing.assert_array_equal(np.asarray(sa.theta), np.asarray(sb.theta))


def _first_tell(strategy, fitness_fn):
    st = strategy.init(jax.random.key(0))
    x, st = jax.jit(strategy.ask)(jax.random.key(1), st)
    return st, x, jax.jit(strategy.tell)(st, x, fitness_fn(x))


def test_shaping_penalty_cancels_in_pairs_and_reranks_directions():
    """Hand-computed update (BRS scaling alpha / N): directions are ranked by
    max(r+, r-) - lambda ||nu delta||^2 (beta = 1 before the critic is ready), and the penalty,
    equal within a pair, cancels in r+ - r-."""
    n, b, alpha, nu, lam = 6, 3, 0.1, 0.05, 300.0
    f = lambda x: jnp.sum((x - 0.3) ** 2, -1)  # noqa: E731
    s = ars_augmented(cube(3), n, top_directions=b, step_size=alpha, noise=nu, shaping=lam,
                      scale_by_std=False, **SMALL)
    st, x, new = _first_tell(s, f)
    delta = np.asarray(st.delta)
    r = -np.asarray(f(x))
    pen = lam * np.sum((nu * delta) ** 2, -1)
    top = np.argsort(-np.maximum(r[:n], r[n:]) + pen)[:b]
    assert set(top) != set(np.argsort(-np.maximum(r[:n], r[n:]))[:b])  # shaping matters here
    expect = 0.5 + alpha / n * ((r[:n][top] - r[n:][top]) @ delta[top])
    np.testing.assert_allclose(np.asarray(new.theta), expect, rtol=1e-5)


def test_cost_columns_equal_their_weighted_sum():
    """Fitness [f, c1, c2] with weights w gives the update of fitness f + w . c."""
    w = (0.5, 2.0)
    f = lambda x: jnp.sum((x - 0.3) ** 2, -1)  # noqa: E731
    costs = lambda x: jnp.stack([x[:, 0], jnp.sum(x, -1)], -1)  # noqa: E731
    s_cost = ars_augmented(cube(3), 4, top_directions=2, cost_weights=w)
    s_sum = ars_augmented(cube(3), 4, top_directions=2)
    _, _, a = _first_tell(s_cost, lambda x: jnp.concatenate([f(x)[:, None], costs(x)], -1))
    _, _, b = _first_tell(s_sum, lambda x: f(x) + costs(x) @ jnp.array(w))
    np.testing.assert_allclose(np.asarray(a.theta), np.asarray(b.theta), rtol=1e-6)
    np.testing.assert_allclose(float(a.best_fitness), float(b.best_fitness), rtol=1e-6)
    with pytest.raises(ValueError, match=r"fitness must have shape \(8, 3\)"):
        s_cost.tell(s_cost.init(jax.random.key(0)), jnp.zeros((8, 3)), jnp.zeros(8))


def test_costs_through_the_driver_reach_the_cost_weighted_optimum():
    """minimize(metric=["loss", "cost"]) hands ARS f32[pop, 2]; with loss (a - .3)^2 + (b - .3)^2,
    cost a and weight 0.5 the optimum is a = 0.3 - 0.25 = 0.05, b = 0.3 (value 0.0875)."""
    space = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})

    def objective(key, hp):
        return {"loss": (hp["a"] - 0.3) ** 2 + (hp["b"] - 0.3) ** 2, "cost": hp["a"]}

    s = ars_augmented(space, 4, step_size=0.02, noise=0.03, cost_weights=(0.5,))
    res = jaxhpo.minimize(objective, space, s, num_generations=40, metric=["loss", "cost"],
                          progress=False)
    np.testing.assert_allclose(np.asarray(res.state.theta), [0.05, 0.3], atol=0.03)
    assert 0.0875 <= float(res.state.best_fitness) < 0.0875 + 2e-3


def test_everything_on_compiles_once_and_survives_nan():
    s = ars_augmented(cube(3), 4, top_directions=2, prescreen=3, control_variate=1.0,
                      actor_critic=0.5, shaping=1.0, cost_weights=(0.1,), critic_steps=2,
                      critic_members=2, critic_hidden=(8,), critic_warmup=8, replay_capacity=16)
    traces = {"ask": 0, "tell": 0}

    def ask(key, st):
        traces["ask"] += 1
        return s.ask(key, st)

    def tell(st, x, fit):
        traces["tell"] += 1
        return s.tell(st, x, fit)

    ask, tell = jax.jit(ask), jax.jit(tell)
    st = s.init(jax.random.key(0))
    for g in range(6):
        x, st = ask(jax.random.key(g), st)
        fit = jnp.stack([jnp.sum((x - 0.3) ** 2, -1), x[:, 0]], -1)
        fit = fit.at[0, 0].set(jnp.nan).at[3, 1].set(jnp.inf)
        st = tell(st, x, fit)
    assert traces == {"ask": 1, "tell": 1}
    assert int(jnp.sum(st.buffer.valid)) == 16 - 4  # 2 failures in each of the last 2 batches
    for leaf in jax.tree.leaves(st):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf)))


def test_actor_critic_follows_the_reward_gradient():
    """On a linear objective the critic's gradient and the actor's path align with the truth."""
    g = jnp.array([1.0, -0.5, 0.25])
    s = ars_augmented(cube(3), 4, step_size=0.02, noise=0.03, actor_critic=1.0,
                      critic_steps=16, replay_capacity=80)
    st, _, _ = scan_strategy(s, lambda x: -(x @ g), 10, jax.random.key(1))
    move = st.theta - 0.5
    assert float(jnp.dot(move, g) / (jnp.linalg.norm(move) * jnp.linalg.norm(g))) > 0.9
    assert float(st.cv_corr) > 0.5  # the critic's differences predicted the real ones


def test_ars_critic_beats_random_search_on_hartmann6():
    """256 evaluations (16 generations of 8 pairs), 5 seeds: the median regret of ARS with
    critic pre-screening is below half of random search's (benchmark: 0.023 vs 1.06)."""
    tf = hartmann6()
    keys = jax.random.split(jax.random.key(0), 5)

    def regret(strategy):
        best = jax.jit(jax.vmap(lambda k: jnp.min(scan_strategy(strategy, tf.fn, 16, k)[1])))
        return float(jnp.median(best(keys))) - tf.optimum_value

    ours = regret(ars_augmented(tf.space, 8, top_directions=4, prescreen=4, critic_steps=16,
                                replay_capacity=256))  # holds all 256 trials
    rand = regret(random_search(tf.space, 16))
    assert ours < 0.5 * rand, (ours, rand)


def test_bad_arguments():
    with pytest.raises(ValueError, match="replay_capacity"):
        ars_augmented(cube(2), 8, replay_capacity=10)
    with pytest.raises(ValueError, match="control_variate"):
        ars_augmented(cube(2), 4, control_variate=2.0)
    with pytest.raises(ValueError, match="shaping"):
        ars_augmented(cube(2), 4, shaping=-1.0)
