"""TPE and its Parzen estimators against independent truths: quadrature, scipy's truncated
normal, Optuna's own estimator / gamma / weights, closed-form categorical kernels, and known
optima (Branin, Hartmann6, a mixed int/categorical problem)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.functions import branin, hartmann6
from jaxhpo.strategies import fit_parzen, parzen_spec, random_search, tpe
from jaxhpo.strategies import log_pdf as _log_pdf
from jaxhpo.strategies import log_pdf_marginal as _log_pdf_marginal
from jaxhpo.strategies import sample_parzen as _sample
from jaxhpo.strategies._tpe import default_weights, split_below_above
from helpers import scan_strategy

fit = jax.jit(fit_parzen, static_argnums=0, static_argnames="prior_weight")
log_pdf, log_pdf_marginal = jax.jit(_log_pdf), jax.jit(_log_pdf_marginal)
sample_parzen = jax.jit(_sample, static_argnums=2, static_argnames="independent")


def mixed():
    return Space({"a": Float(0.1, 10.0, log=True), "b": Float(-2.0, 3.0), "n": Int(1, 9),
                  "m": Int(1, 100, log=True), "c": Categorical(["x", "y", "z"])})


def test_float_density_integrates_to_one_and_is_a_truncated_normal_mixture():
    scipy_stats = pytest.importorskip("scipy.stats")
    space = Space({"u": Float(0.0, 1.0)})
    obs = np.array([[0.05], [0.3], [0.32], [0.9]], np.float32)
    w = np.array([1.0, 0.5, 1.0, 2.0], np.float32)
    est = fit(parzen_spec(space), obs, w)
    grid = np.linspace(0, 1, 20001, dtype=np.float32)[:, None]
    dens = np.exp(np.asarray(log_pdf(est, grid), np.float64))
    assert abs(np.trapezoid(dens, grid[:, 0]) - 1.0) < 1e-4
    mu, sg = np.asarray(est.mu[:, 0], np.float64), np.asarray(est.sigma[:, 0], np.float64)
    wk = np.append(w, 1.0) / np.append(w, 1.0).sum()  # prior weight 1
    ref = sum(wk[k] * scipy_stats.truncnorm.pdf(grid[:, 0], -mu[k] / sg[k], (1 - mu[k]) / sg[k],
                                                mu[k], sg[k]) for k in range(5))
    np.testing.assert_allclose(dens, ref, rtol=2e-4)
    # Optuna's bandwidth rule by hand: sorted 0.05, 0.3, 0.32, 0.9 in [0, 1], n = 4:
    # ends use their inner neighbour, the others the larger gap; clipped below at 1/6.
    np.testing.assert_allclose(mu, [0.05, 0.3, 0.32, 0.9, 0.5], atol=1e-6)
    np.testing.assert_allclose(sg, [0.25, 0.25, 0.58, 0.58, 1.0], atol=1e-6)


def test_mixed_estimator_sums_to_one_over_ints_and_choices():
    space = Space({"n": Int(1, 9), "m": Int(1, 30, log=True), "c": Categorical(["x", "y", "z"])})
    obs = space.encode_many([{"n": 2, "m": 3, "c": "x"}, {"n": 8, "m": 20, "c": "z"},
                             {"n": 3, "m": 1, "c": "x"}])
    est = fit(parzen_spec(space), obs, np.ones(3, np.float32))
    pts = space.encode_many([{"n": n, "m": m, "c": c} for n in range(1, 10)
                             for m in range(1, 31) for c in "xyz"])
    total = float(jnp.sum(jnp.exp(log_pdf(est, pts))))
    assert abs(total - 1.0) < 1e-4, total


def test_categorical_kernels_match_closed_form():
    """Kernel = (1 + p/(n+1)) on the observed choice, p/(n+1) elsewhere, normalized; the
    prior kernel is uniform; mixture weights 1, ..., 1, p."""
    k, p = 4, 1.0
    space = Space({"c": Categorical(list("abcd"))})
    seen = [0, 0, 3]
    obs = space.encode_many([{"c": "abcd"[i]} for i in seen])
    est = fit(parzen_spec(space), obs, np.ones(3, np.float32), prior_weight=p)
    n = len(seen)
    rows = np.full((n + 1, k), p / (n + 1))
    rows[np.arange(n), seen] += 1
    rows /= rows.sum(1, keepdims=True)
    expect = (rows.sum(0) - rows[-1] + p * rows[-1]) / (n + p)
    got = np.exp(np.asarray(log_pdf(est, (np.arange(k)[:, None] + 0.5) / k)))
    np.testing.assert_allclose(got, expect, rtol=1e-5)
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("n_obs", [12, 40])
def test_joint_log_pdf_matches_optuna_parzen_estimator(n_obs):
    """Optuna's own _ParzenEstimator (multivariate, default settings, default_weights) on the
    same observations: equal log densities, up to the Jacobian of each float's cube map."""
    pytest.importorskip("optuna")
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)
    from optuna.samplers._tpe.parzen_estimator import (_ParzenEstimator,
                                                       _ParzenEstimatorParameters)
    from optuna.samplers._tpe.sampler import default_weights as optuna_weights

    space = Space({"a": Float(0.1, 10.0, log=True), "b": Float(-2.0, 3.0), "n": Int(1, 60),
                   "m": Int(1, 1000, log=True), "c": Categorical(["x", "y", "z"])})
    dists = {"a": FloatDistribution(0.1, 10.0, log=True), "b": FloatDistribution(-2.0, 3.0),
             "n": IntDistribution(1, 60), "m": IntDistribution(1, 1000, log=True),
             "c": CategoricalDistribution(["x", "y", "z"])}
    # Distinct ints: equal values get their bandwidths in an arbitrary order (numpy's unstable
    # argsort in Optuna, a stable sort here), which is not something to compare.
    rng = np.random.default_rng(n_obs)
    obs = space.encode_many([
        {"a": float(np.exp(rng.uniform(np.log(0.1), np.log(10)))), "b": float(rng.uniform(-2, 3)),
         "n": int(n), "m": int(m), "c": str(rng.choice(["x", "y", "z"]))}
        for n, m in zip(rng.permutation(60)[:n_obs] + 1,
                        rng.choice(np.unique(np.geomspace(1, 1000, 200).astype(int)), n_obs,
                                   replace=False))])
    test = np.asarray(jax.random.uniform(jax.random.key(1), (64, 5)))

    def to_optuna(x):
        hp = space.decode(jnp.asarray(x))
        return {k: np.asarray(v, np.float64) for k, v in hp.items()}

    params = _ParzenEstimatorParameters(1.0, True, False, optuna_weights, True)
    ref = _ParzenEstimator(to_optuna(obs), dists, params).log_pdf(to_optuna(test))
    w = default_weights(jnp.arange(n_obs), n_obs)
    est = fit(parzen_spec(space), obs, w)
    # snap the test floats to what Optuna saw (float32 decode), then add the cube Jacobians
    got = np.asarray(log_pdf(est, space.encode_many(space.to_params_list(test))), np.float64)
    jac = math.log(math.log(10.0 / 0.1)) + math.log(5.0)
    np.testing.assert_allclose(got, ref + jac, rtol=2e-3, atol=2e-3)


def test_gamma_and_weights_match_optuna():
    pytest.importorskip("optuna")
    from optuna.samplers._tpe.sampler import default_gamma
    from optuna.samplers._tpe.sampler import default_weights as optuna_weights

    split = jax.jit(split_below_above)
    for n in [1, 5, 10, 11, 19, 20, 21, 99, 100, 101, 249, 250, 251, 400]:
        y = jax.random.normal(jax.random.key(n), (512,))
        valid = jnp.arange(512) < n
        below, above = split(y, jnp.ones(512, bool), valid)
        assert int(below.sum()) == default_gamma(n) and int(above.sum()) == n - default_gamma(n)
        assert float(jnp.max(jnp.where(below, y, -jnp.inf))) < float(
            jnp.min(jnp.where(above, y, jnp.inf)))
    weights = jax.jit(default_weights)
    for m in [0, 1, 24, 25, 26, 27, 60, 300]:
        w = weights(jnp.arange(400), m)[:m]
        np.testing.assert_allclose(np.asarray(w), optuna_weights(m), rtol=1e-6)


def test_failed_trials_only_join_the_above_group():
    y = jnp.array([0.0, 5.0, 1.0, 2.0, 9.0])
    ok = jnp.array([False, True, False, True, True])
    below, above = split_below_above(y, ok, jnp.ones(5, bool), gamma=0.5)  # ceil(2.5) = 3
    np.testing.assert_array_equal(below, [False, True, False, True, True])
    below, _ = split_below_above(y, ok, jnp.ones(5, bool), gamma=0.2)
    np.testing.assert_array_equal(below, [False, False, False, True, False])


def test_samples_follow_the_density():
    space = Space({"u": Float(0.0, 1.0), "n": Int(0, 5)})
    obs = np.array([[0.1, 0.25], [0.15, 0.6], [0.8, 0.95]], np.float32)
    est = fit(parzen_spec(space), obs, np.ones(3, np.float32))
    xs = np.asarray(sample_parzen(jax.random.key(0), est, 40000, independent=True))
    edges = np.linspace(0, 1, 11)
    hist = np.histogram(xs[:, 0], edges)[0] / len(xs)
    grid = np.linspace(0, 1, 2001, dtype=np.float32)
    dens = np.exp(np.asarray(log_pdf_marginal(est, np.stack([grid, grid], -1))))[:, 0]
    expect = [np.trapezoid(dens[(grid >= a) & (grid <= b)], grid[(grid >= a) & (grid <= b)])
              for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(hist, expect, atol=0.01)
    centres = (np.arange(6) + 0.5) / 6
    p_int = np.exp(np.asarray(log_pdf_marginal(est, np.stack([centres] * 2, -1))))[:, 1]
    freq = np.array([np.mean(np.isclose(xs[:, 1], c)) for c in centres])
    np.testing.assert_allclose(freq, p_int, atol=0.01)


def test_full_buffer_keeps_the_best_and_overwrites_the_oldest():
    space = Space({"u": Float(0.0, 1.0)})
    s = tpe(space, 5, capacity=30, gamma_max=10)
    tell = jax.jit(s.tell)
    state = s.init(jax.random.key(0))
    f = np.random.default_rng(0).permutation(60).astype(np.float32)
    for g in range(12):
        x = jnp.full((5, 1), g / 12.0)
        state = tell(state, x, jnp.asarray(f[5 * g:5 * g + 5]))
    kept = set(np.asarray(state.order).tolist())
    best10 = set(np.argsort(f)[:10].tolist())
    assert best10 <= kept and len(kept) == 30
    assert set(range(40, 60)) <= kept  # then the newest 20 of the rest


def test_univariate_constant_liar_portfolio_variant_compiles_once_and_stays_in_bounds():
    space = Space({"a": Float(0.0, 1.0), "n": Int(1, 9), "c": Categorical(["x", "y", "z"]),
                   "m": Float(0.0, 1.0, condition={"c": ["x", "y"]})})
    s = tpe(space, 4, n_startup_trials=4, capacity=32, multivariate=False, constant_liar=True,
            gamma_spread=2.0)  # the wide-batch portfolio rule too: one l/g per row
    traces = []
    ask = jax.jit(lambda k, st: (traces.append(1), s.ask(k, st))[1])
    tell = jax.jit(s.tell)
    state = s.init(jax.random.key(0))
    for g in range(4):
        x, state = ask(jax.random.key(g), state)
        f = jnp.sum((x - 0.3) ** 2, -1).at[0].set(jnp.nan)
        state = tell(state, x, f)
        assert bool(jnp.all((x >= 0) & (x <= 1)))
        assert len({tuple(np.asarray(r).round(5)) for r in x}) > 1  # rows differ
    assert len(traces) == 1


def run_seeds(strategy, f, gens, seeds):
    """Fitness ``f32[seeds, gens, pop]`` and proposals, all seeds in one compiled program."""
    def one(key):
        _, fs, xs = scan_strategy(strategy, f, gens, key)
        return fs, xs

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), seeds))


def median_regret(strategy, tf, gens, seeds):
    fs, _ = run_seeds(strategy, lambda u: tf.fn(tf.from_unit(u)), gens, seeds)
    return float(np.median(np.asarray(fs).reshape(seeds, -1).min(1))) - tf.optimum_value


@pytest.mark.parametrize("make_tf,evals,factor", [(branin, 100, 0.25), (hartmann6, 100, 0.5)])
def test_tpe_beats_random_search(make_tf, evals, factor):
    """Median regret over 5 seeds after 100 sequential evaluations is a fraction of random
    search's (measured: about 0.1x on Branin, 0.1x on Hartmann6)."""
    tf = make_tf()
    ours = median_regret(tpe(tf.space, 1, capacity=evals), tf, evals, 5)
    rand = median_regret(random_search(tf.space, 1), tf, evals, 5)
    assert ours < factor * rand, (ours, rand)


def test_solves_mixed_int_categorical_problem():
    """Optimum 0 at n = 7, c = "b", x = 1 (and m = 3 when c = "b"): 8 x 4 x 4 = 128 evals."""
    space = Space({"x": Float(-5.0, 5.0), "n": Int(1, 20), "c": Categorical(list("abcd")),
                   "m": Int(1, 5, condition={"c": "b"})})

    def f(u):
        hp = space.decode(u)
        return ((hp["x"] - 1.0) ** 2 / 25 + jnp.abs(hp["n"] - 7) / 5
                + jnp.where(hp["c"] == 1, jnp.abs(hp["m"] - 3) / 2, 1.0 + hp["c"] / 4))

    fs, xs = run_seeds(tpe(space, 4, capacity=128), f, 32, 1)
    best = space.to_params(np.asarray(xs).reshape(-1, 4)[int(jnp.argmin(fs))])
    assert best["n"] == 7 and best["c"] == "b" and best["m"] == 3, best
    assert abs(best["x"] - 1.0) < 0.5


@pytest.mark.parametrize("n_feasible", [3, 30])
def test_constrained_split_matches_optuna(n_feasible):
    """Optuna's own ``_split_trials`` (constraints) on the same 40 trials: the same below set,
    whether the feasible trials fill the below group (30 feasible) or not (3 feasible: the
    least-violating infeasible trials fill it)."""
    optuna = pytest.importorskip("optuna")
    from optuna.samplers._tpe.sampler import _split_trials, default_gamma

    rng = np.random.default_rng(n_feasible)
    n = 40
    y = rng.permutation(n).astype(np.float32)
    c = rng.uniform(0.1, 2.0, (n, 2)).astype(np.float32)  # both violated...
    c[rng.permutation(n)[:n_feasible]] *= -1.0  # ...except on the feasible trials
    c[0, 1] = 0.0  # on the boundary: feasible if its other value is
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [optuna.trial.create_trial(value=float(y[i]), params={"x": 0.5}, distributions=dist,
                                        constraints={"c0": float(c[i, 0]), "c1": float(c[i, 1])})
              for i in range(n)]
    for i, t in enumerate(trials):
        t.number = i
    study = optuna.create_study()
    ref_below, _ = _split_trials(study, trials, default_gamma(n))
    from jaxhpo.strategies._tpe import constraint_violation
    below, above = split_below_above(jnp.asarray(y), jnp.ones(n, bool), jnp.ones(n, bool),
                                     viol=constraint_violation(jnp.asarray(c)))
    assert sorted(np.flatnonzero(np.asarray(below)).tolist()) == [t.number for t in ref_below]
    assert not bool(jnp.any(below & above)) and int(below.sum()) == default_gamma(n)


def test_constraint_violation_and_contract():
    from jaxhpo.strategies._tpe import constraint_violation

    v = constraint_violation(jnp.array([[-1.0, 0.0], [0.5, -2.0], [0.5, 1.0], [jnp.nan, -1.0]]))
    np.testing.assert_allclose(np.asarray(v[:3]), [0.0, 0.5, 1.5])
    assert np.isfinite(float(v[3])) and float(v[3]) > 1e30  # NaN = the worst violation
    space = Space({"u": Float(0.0, 1.0)})
    s = tpe(space, 2, num_constraints=2, capacity=32)
    assert s.num_constraints == 2 and s.config["num_constraints"] == 2
    st = s.init(jax.random.key(0))
    with pytest.raises(ValueError, match="constraints"):
        s.tell(st, jnp.zeros((2, 1)), jnp.zeros(2))
    st = s.tell(st, jnp.zeros((2, 1)), jnp.zeros(2), jnp.array([[0.0, 1.0], [jnp.nan, 0.0]]))
    assert bool(jnp.all(jnp.isfinite(st.viol)))
    # Without constraints the state has no violation leaf (journals of k = 0 runs unchanged).
    assert tpe(space, 2, capacity=32).init(jax.random.key(0)).viol is None


def test_constrained_tpe_searches_the_feasible_region():
    """Branin restricted to the disk (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 20, which excludes all three
    global minima: the constrained optimum 0.942 (dense grid, on the boundary near (2.99, 3.06)).
    60 evaluations in rounds of 4, 3 seeds; the control is the same compiled run told that every
    trial is feasible (plain TPE). Measured (8 seeds): constrained best-feasible regret median
    0.6 vs 4 for the control, feasible share of the last 30 proposals 0.47-0.67 vs 0.0-0.4."""
    tf = branin()
    g = np.stack(np.meshgrid(np.linspace(-5, 10, 1501), np.linspace(0, 15, 1501)), -1)
    g = g.reshape(-1, 2)
    disk = lambda z: (z[..., 0] - 2.5) ** 2 + (z[..., 1] - 7.5) ** 2 - 20.0
    fv = np.asarray(tf.fn(jnp.asarray(g, jnp.float32)))
    opt = float(fv[np.asarray(disk(g)) <= 0].min())
    assert abs(opt - 0.942) < 0.01
    s = tpe(tf.space, 4, num_constraints=1, capacity=64)

    def run(key, use):
        k0, key = jax.random.split(key)

        def gen(st, k):
            x, st = s.ask(k, st)
            z = tf.from_unit(x)
            f, c = tf.fn(z), disk(z)
            return s.tell(st, x, f, jnp.where(use, c, -1.0)[:, None]), (f, c)

        return jax.lax.scan(gen, s.init(k0), jax.random.split(key, 15))[1]

    f, c = jax.jit(jax.vmap(jax.vmap(run, (None, 0)), (0, None)))(
        jax.random.split(jax.random.key(0), 3), jnp.array([True, False]))
    f, c = np.asarray(f).reshape(3, 2, -1), np.asarray(c).reshape(3, 2, -1)
    regret = np.where(c <= 0, f, np.inf).min(-1) - opt  # best feasible value - optimum
    share = (c[..., 30:] <= 0).mean(-1)
    assert np.all(share[:, 0] >= 0.4) and np.median(share[:, 1]) < 0.3, share
    assert np.median(regret[:, 0]) < 0.25 * np.median(regret[:, 1]), regret
    assert np.median(regret[:, 0]) < 1.0, regret
