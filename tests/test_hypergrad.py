"""Hypergradients through unrolled training: ridge regression trained by gradient descent, whose
optimal regularization is known in closed form, finite differences in float64, mode/remat/
truncation equivalences, the Trainer binding and the population tuner."""

import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxhpo import Categorical, Float, Space
from jaxhpo import hypergrad
from jaxhpo.hypergrad import (hyper_descent, hyper_tune, hypergradient, population_hypergradient,
                              trainer_hypergradient, trainer_params, unconstrained)
from jaxhpo.train import Population, Trainer, from_linen, mlp, synthetic_classification

# ----------------------------------------------------------------------------- ridge problem
N, NV, D, ETA = 30, 30, 8, 0.4


def ridge_problem(seed=0):
    """Noisy linear data; train loss ||Xw - y||^2 / 2n + lam ||w||^2 / 2, val loss on (Xv, yv)."""
    rng = np.random.default_rng(seed)
    x, xv = rng.normal(size=(N, D)), rng.normal(size=(NV, D))
    w_true = 0.5 * rng.normal(size=D)
    y, yv = x @ w_true + rng.normal(size=N), xv @ w_true + rng.normal(size=NV)
    return x, y, xv, yv


def closed_form(prob, lam):
    """Where gradient descent converges: w(lam) = (X'X/n + lam I)^-1 X'y/n (float64 numpy)."""
    x, y, _, _ = prob
    return np.linalg.solve(x.T @ x / N + lam * np.eye(D), x.T @ y / N)


def val_loss_np(prob, w):
    _, _, xv, yv = prob
    return 0.5 * np.mean((xv @ w - yv) ** 2)


def optimal_log_lambda(prob):
    """argmin_lam L_val(w(lam)) by a fine grid on log lam then ternary search (float64)."""
    f = lambda s: val_loss_np(prob, closed_form(prob, np.exp(s)))
    grid = np.linspace(np.log(1e-4), np.log(1e2), 2001)
    i = int(np.argmin([f(s) for s in grid]))
    assert 0 < i < len(grid) - 1, "the optimum must be interior for the test to mean anything"
    lo, hi = grid[i - 1], grid[i + 1]
    for _ in range(80):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, b) if f(a) < f(b) else (a, hi)
    return 0.5 * (lo + hi)


def ridge_fns(prob):
    x, y, xv, yv = map(jnp.asarray, prob)

    def step(w, log_lam):  # one full-batch gradient-descent step
        return w - ETA * (x.T @ (x @ w - y) / N + jnp.exp(log_lam) * w)

    def loss(w, log_lam):
        return 0.5 * jnp.mean((xv @ w - yv) ** 2)
    return step, loss


def test_hypergradient_matches_finite_difference_and_implicit_derivative_float64():
    with jax.enable_x64(True):
        prob = ridge_problem()
        step, loss = ridge_fns(prob)
        w0, s0, T = jnp.zeros(D), jnp.log(0.05), 300
        hg = jax.jit(lambda s: hypergradient(step, loss, w0, s, T))(s0)
        f = jax.jit(lambda s: hypergradient(step, loss, w0, s, T).loss)
        h = 1e-5
        fd = (f(s0 + h) - f(s0 - h)) / (2 * h)
        assert abs(float(hg.grad) - float(fd)) <= 1e-3 * abs(float(fd))
        # T = 300 steps contract the error by (1 - 0.4 * 0.24)^300 < 1e-12: the unrolled
        # hypergradient equals the implicit one, lam * grad L_val . (-(A + lam I)^-1 w(lam)).
        x, _, xv, yv = prob
        lam = 0.05
        w = closed_form(prob, lam)
        dw = -np.linalg.solve(x.T @ x / N + lam * np.eye(D), w)
        implicit = lam * (xv.T @ (xv @ w - yv) / NV) @ dw
        np.testing.assert_allclose(float(hg.grad), implicit, rtol=1e-6)
        np.testing.assert_allclose(hg.carry, w, atol=1e-9)


def test_reverse_forward_remat_and_full_truncation_agree():
    with jax.enable_x64(True):
        step, loss = ridge_fns(ridge_problem(1))
        w0, theta, T = jnp.zeros(D), jnp.log(0.3), 12
        ref = hypergradient(step, loss, w0, theta, T, remat=False)
        for kw in ({"mode": "forward"}, {"remat": True}, {"remat": 4}, {"truncate": T}):
            hg = hypergradient(step, loss, w0, theta, T, **kw)
            np.testing.assert_allclose(hg.grad, ref.grad, rtol=1e-10, err_msg=str(kw))
            np.testing.assert_allclose(hg.loss, ref.loss, rtol=1e-12)
            np.testing.assert_allclose(hg.carry, ref.carry, rtol=1e-12)


def test_truncated_hypergradient_differentiates_only_the_last_k_steps():
    with jax.enable_x64(True):
        step, loss = ridge_fns(ridge_problem(1))
        w0, theta, T, K = jnp.zeros(D), jnp.log(0.3), 40, 5
        tr = hypergradient(step, loss, w0, theta, T, truncate=K)
        w_head = w0
        for _ in range(T - K):
            w_head = step(w_head, theta)
        direct = jax.grad(lambda s: loss(jax.lax.fori_loop(0, K, lambda i, w: step(w, s),
                                                           w_head), s))(theta)
        np.testing.assert_allclose(tr.grad, direct, rtol=1e-10)
        full = hypergradient(step, loss, w0, theta, T)
        np.testing.assert_allclose(tr.carry, full.carry, rtol=1e-12)
        assert abs(float(tr.grad) - float(full.grad)) > 1e-3 * abs(float(full.grad))


def test_online_descent_reaches_the_closed_form_optimal_regularization():
    with jax.enable_x64(True):
        prob = ridge_problem()
        s_star = optimal_log_lambda(prob)
        step, loss = ridge_fns(prob)
        opt = optax.adam(optax.exponential_decay(0.2, 20, 0.7))
        for kw in ({}, {"mode": "forward", "truncate": 25}):
            tuner = hyper_descent(step, loss, 50, optimizer=opt, **kw)
            s = tuner.init(jnp.zeros(D), jnp.log(1e-3))
            s, info = jax.jit(lambda s: jax.lax.scan(lambda c, _: tuner.update(c), s, None,
                                                     length=100))(s)
            # within 5% of lam* (|log lam - log lam*| <= log 1.05), from 400x below it
            assert abs(float(s.theta) - s_star) <= np.log(1.05), (kw, np.exp(float(s.theta)),
                                                                  np.exp(s_star))
            assert np.isfinite(np.asarray(info.loss)).all()
            assert float(info.loss[-1]) <= float(info.loss[0])


def test_descent_ignores_non_finite_hypergradients():
    step = lambda w, s: w * jnp.exp(s) * jnp.inf  # diverges at once
    loss = lambda w, s: jnp.sum(w)
    tuner = hyper_descent(step, loss, 3, optimizer=optax.sgd(0.1))
    s, info = tuner.update(tuner.init(jnp.ones(2), jnp.zeros(1)))
    assert np.isfinite(np.asarray(s.theta)).all() and float(s.theta[0]) == 0.0
    assert not np.isfinite(float(s.loss))


# ----------------------------------------------------------------------------- coordinates
def test_unconstrained_coordinates_round_trip_and_decode():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "momentum": Float(0.0, 1.0),
                   "b1": Float(0.5, 0.99), "opt": Categorical(["a", "b"])})
    t = unconstrained(space)
    assert t.names == ("lr", "momentum", "b1")
    x = jnp.array([[0.3, 0.2, 0.7, 0.9]])
    z = t.to_z(x)
    np.testing.assert_allclose(t.to_x(z, x), x, atol=1e-6)
    vals, dec = t.values(z), space.decode(x)
    for n in t.names:
        np.testing.assert_allclose(vals[n], dec[n], rtol=1e-5)
    np.testing.assert_allclose(z[0, 0], np.log(dec["lr"][0]), rtol=1e-6)  # log
    np.testing.assert_allclose(z[0, 1], np.log(0.2 / 0.8), rtol=1e-5)  # logit on [0, 1]
    assert float(t.project(jnp.array([5.0, 30.0, -30.0]))[0]) == pytest.approx(np.log(0.1))
    with pytest.raises(ValueError, match="Categorical"):
        unconstrained(space, ["opt"])
    with pytest.raises(ValueError, match="not a parameter"):
        unconstrained(space, ["nope"])


def test_argument_errors_name_the_argument():
    step, loss = (lambda w, s: w), (lambda w, s: jnp.sum(w))
    with pytest.raises(ValueError, match="remat"):
        hypergradient(step, loss, jnp.ones(2), 0.0, 10, remat=3)
    with pytest.raises(ValueError, match="truncate"):
        hypergradient(step, loss, jnp.ones(2), 0.0, 10, truncate=11)
    with pytest.raises(ValueError, match="mode"):
        hypergradient(step, loss, jnp.ones(2), 0.0, 10, mode="backward")
    space = Space({"lr": Float(1e-3, 1e-1, log=True), "dropout": Float(0.0, 0.5)})
    tr = Trainer(mlp(3, max_width=8), synthetic_classification(100, 4, 3), space=space)
    with pytest.raises(ValueError, match="dropout"):
        trainer_params(tr, ["dropout"])
    assert trainer_params(tr).names == ("lr",)


# ----------------------------------------------------------------------------- the engine
def linear_trainer(dtype=jnp.float32):
    data = synthetic_classification(300, 6, 3, seed=2)
    space = Space({"lr": Float(1e-3, 1.0, log=True), "wd": Float(1e-5, 1e-1, log=True),
                   "momentum": Float(0.0, 1.0)})
    model = from_linen(nn.Dense(3, param_dtype=dtype))
    return Trainer(model, data, space=space, defaults={"optimizer": "momentum"},
                   max_batch_size=32)


def test_trainer_hypergradient_matches_finite_difference_float64():
    with jax.enable_x64(True):
        tr = linear_trainer(jnp.float64)
        t = trainer_params(tr)
        x = jnp.array([0.6, 0.5, 0.7], jnp.float64)
        z = t.to_z(x)
        state = tr.init(jax.random.key(0), tr.space.decode(x))
        fn = trainer_hypergradient(tr, 12)
        hg = jax.jit(fn)(state, z, x)
        fwd = jax.jit(trainer_hypergradient(tr, 12, mode="forward"))(state, z, x)
        np.testing.assert_allclose(fwd.grad, hg.grad, rtol=1e-6)  # float32-rounded hparams
        f = jax.jit(lambda z: fn(state, z, x).loss)
        # the Trainer rounds hyperparameters to float32, so the step is 1e-3 (not 1e-6)
        h = 1e-3
        fd = np.array([(f(z.at[i].add(h)) - f(z.at[i].add(-h))) / (2 * h) for i in range(3)])
        assert np.all(np.abs(np.asarray(hg.grad) - fd) <= 1e-3 * np.abs(fd)), (hg.grad, fd)
        assert np.all(np.abs(fd) > 1e-4)


def test_population_hypergradient_equals_per_member_and_tune_runs_with_pbt():
    tr = linear_trainer()
    t = trainer_params(tr, ["lr", "wd"])
    pop = Population(tr, 4, chunk_size=None, mesh=None)
    x = jnp.array([[0.1, 0.5, 0.7], [0.5, 0.2, 0.7], [0.8, 0.9, 0.7], [0.3, 0.3, 0.7]])
    hp = tr.space.decode(x)
    state = pop.init(jax.random.key(1), hp)
    many = population_hypergradient(pop, 10, names=["lr", "wd"])(state, t.to_z(x), x)
    one = jax.jit(trainer_hypergradient(tr, 10, names=["lr", "wd"]))
    for i in range(4):
        s_i = jax.tree.map(lambda a: a[i], state)
        g_i = one(s_i, t.to_z(x[i]), x[i]).grad
        np.testing.assert_allclose(many.grad[i], g_i, rtol=2e-4, atol=1e-6)
    kw = dict(rounds=2, steps_per_round=10, names=["lr", "wd"], optimizer=optax.adam(0.3))
    plain = hyper_tune(pop, jax.random.key(2), x, **kw)
    assert (plain.src == np.arange(4)).all()  # no PBT: every slot keeps its member
    # member 0 starts at lr = 2e-3, too small for 20 steps: the hypergradient raises it
    assert plain.params["lr"][1, 0] > plain.params["lr"][0, 0]
    res = hyper_tune(pop, jax.random.key(2), x, exploit_every=1, explore=True, **kw)
    assert res.x.shape == (3, 4, 3) and res.val_loss.shape == (2, 4)
    assert res.params["lr"].shape == (3, 4) and res.steps == 4 * 2 * 10
    assert (res.x >= 0).all() and (res.x <= 1).all()
    np.testing.assert_array_equal(res.x[:, :, 2], 0.7 * np.ones((3, 4), np.float32))
    # round 1 is the same run; PBT after it (not after the last): the worst member copied a
    # better one, the others kept their own hyperparameters
    np.testing.assert_allclose(res.val_loss[0], plain.val_loss[0], rtol=1e-6)
    worst = int(np.argmax(res.val_loss[0]))
    assert res.src[0, worst] != worst and (res.src[0] != np.arange(4)).sum() == 1
    assert res.val_loss[0, res.src[0, worst]] < res.val_loss[0, worst]
    assert (res.src[1] == np.arange(4)).all()
    kept = np.arange(4) != worst
    np.testing.assert_allclose(res.params["lr"][1, kept], plain.params["lr"][1, kept], rtol=1e-6)
    assert set(res.final) == {"val_loss", "val_accuracy", "test_loss", "test_accuracy"}
    assert 0 <= res.best < 4


def test_tune_is_a_deprecated_alias_of_hyper_tune():
    """``jaxhpo.hypergrad.tune`` (the old name) warns at the caller's line and runs
    ``hyper_tune`` (its argument check answers); ``TuneResult`` warns and is
    ``HyperTuneResult``."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match="target must be a Trainer or Population"):
            hypergrad.tune(object(), jax.random.key(0), np.zeros((2, 3)), rounds=1,
                           steps_per_round=1)
        assert hypergrad.TuneResult is hypergrad.HyperTuneResult
    assert [w.category for w in rec] == [DeprecationWarning] * 2
    assert "hyper_tune" in str(rec[0].message) and "HyperTuneResult" in str(rec[1].message)
    assert rec[0].filename == __file__
    assert "tune" not in hypergrad.__all__ and "TuneResult" not in hypergrad.__all__


def test_remat_reduces_reverse_mode_memory():
    """XLA's temp buffers of the compiled hypergradient: per-step checkpoints store only the
    carry, segments of 4 steps store 1/4 of them (a 2-layer MLP trained by SGD, 16 steps)."""
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    xb, yb = jax.random.normal(k1, (256, 32)), jax.random.normal(k2, (256, 1))
    w0 = (0.3 * jax.random.normal(k3, (32, 64)), jnp.zeros((64, 1)))  # carry: 8 KiB

    def train_loss(w, lam):
        return jnp.mean((jnp.tanh(xb @ w[0]) @ w[1] - yb) ** 2) + jnp.exp(lam) * sum(
            jnp.sum(a * a) for a in w)

    step = lambda w, lam: jax.tree.map(lambda a, g: a - 0.1 * g, w,
                                       jax.grad(train_loss)(w, lam))
    loss = lambda w, lam: train_loss(w, -30.0)

    def temp_bytes(remat):
        fn = lambda lam: hypergradient(step, loss, w0, lam, 16, remat=remat).grad
        ma = jax.jit(fn).lower(jnp.float32(-3.0)).compile().memory_analysis()
        if ma is None:
            pytest.skip("this backend reports no memory analysis")
        return ma.temp_size_in_bytes

    none, per_step, seg = temp_bytes(False), temp_bytes(True), temp_bytes(4)
    assert per_step < none and seg < per_step, (none, per_step, seg)
