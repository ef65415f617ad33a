"""gp_bo beyond the conformance suite: growing buffers, large batches, failures, mixed spaces,
resume."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space, gp
from jaxhpo.strategies import gp_bo

FAST = dict(num_candidates=128, num_polish=4, polish_steps=3, num_restarts=2, fit_steps=5)
# For runs where no trial fails: the failure GP only switches on after a failure, so the
# proposals are the same with or without it, and leaving it out halves tell's compile time.
NO_FAILURES = {**FAST, "failure_model": False}


def square(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def matern52(a, b, ls, sig):
    """numpy float64 Matern-5/2 kernel matrix (R&W Eq. 4.17) with ARD lengthscales ``ls``."""
    r = np.sqrt(5 * np.sum(((a[:, None] - b[None]) / ls) ** 2, -1))
    return sig * (1 + r + r * r / 3) * np.exp(-r)


def sphere(key, hp):
    del key
    return (hp["x0"] - 0.7) ** 2 + (hp["x1"] - 0.2) ** 2


def test_buffer_doubles_with_log2_compilations_and_keeps_every_observation_unless_fixed():
    s = gp_bo(square(2), 16, **NO_FAILURES)
    traces = {"tell": 0}

    def tell(state, x, f):
        traces["tell"] += 1
        return s.tell(state, x, f)

    res = jaxhpo.minimize(sphere, square(2), s._replace(tell=tell), num_generations=11, key=0)
    state = res.state
    assert state.x.shape[0] == 256  # 64 -> 128 -> 256 for 176 observations
    assert traces["tell"] == 3  # one compilation per capacity, block updates included
    assert int(jnp.sum(state.status == 1)) == 176
    # refits at 144 observations (25% growth), then two tells appended rows to the factor
    assert int(state.fitted_at) == 144
    best = float(jnp.min(jnp.where(state.status == 1, state.y, jnp.inf)))
    np.testing.assert_allclose(best, res.best_value, rtol=1e-6)
    assert res.best_value < 1e-3
    # the factor maintained by block updates between refits is the factor of the buffer
    from jaxhpo.gp import _precision as precision
    with precision.scope(True):
        post = precision.unpack(state.post)
        full = gp.posterior(precision.unpack(state.params), state.x.astype(jnp.float64),
                            state.y.astype(jnp.float64), state.status == 1,
                            gp.InputSpec.from_space(square(2)), 1e-8)
        np.testing.assert_allclose(post.chol, full.chol, atol=1e-8)
        xq = jnp.asarray(np.random.default_rng(0).uniform(size=(16, 2)))
        for a, b in zip(gp.predict(post, xq), gp.predict(full, xq)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    # capacity=64 (an int) fixes the buffer: the same ask/tell (no new compilation) with the
    # fixed strategy's reserve keeps the 64 best of 80 observations instead of growing
    fixed = gp_bo(square(2), 16, capacity=64, **NO_FAILURES)
    res = jaxhpo.minimize(sphere, square(2), s._replace(tell=tell, reserve=fixed.reserve),
                          num_generations=5, key=0)
    assert res.state.x.shape[0] == 64 and traces["tell"] == 3
    values = np.sort([t.value for t in res.history.trials])
    assert len(values) == 80
    np.testing.assert_allclose(np.sort(np.asarray(res.state.y)), values[:64], rtol=1e-6)


def test_batch_of_64_is_distinct_inside_the_cube_and_cheap_to_grow():
    space = square(3)
    s = gp_bo(space, 64, **NO_FAILURES)
    ask = jax.jit(s.ask)  # one program for the warm-up and the model-based batch
    state = s.init(jax.random.key(0))
    x0, state = ask(jax.random.key(1), state)  # quasi-random warm-up
    state = jax.jit(s.tell)(state, x0, jnp.sum((x0 - 0.4) ** 2, axis=1))
    x1, _ = ask(jax.random.key(2), state)  # model-based batch
    x1 = np.asarray(x1)
    assert x1.shape == (64, 3) and np.all((x1 >= 0) & (x1 <= 1))
    assert len(np.unique(np.round(x1, 6), axis=0)) == 64
    # kriging believer spreads the batch: not all 64 in one tiny ball around the optimum
    assert np.median(np.linalg.norm(x1 - 0.4, axis=1)) > 0.02


def test_failed_region_is_avoided_and_state_stays_finite():
    """NaN wherever x0 < 0.4 (40% of the cube); the optimum (0.7, 0.2) lies outside. The GP on
    the failure indicator (probability of success, Gelbart et al. 2014) keeps the model-based
    batches out of the failing region, where a region-blind sampler spends 40% (the
    kernel-correlation penalty it replaced: 27.5% with this seed)."""
    space = square(2)

    def objective(key, hp):
        del key
        f = (hp["x0"] - 0.7) ** 2 + (hp["x1"] - 0.2) ** 2
        return jnp.where(hp["x0"] < 0.4, jnp.nan, f)

    # the side GPs need a real fit (a 5-step fit of the 0/1 labels can stay noise-dominated)
    s = gp_bo(space, 8, **{**FAST, "num_restarts": 3, "fit_steps": 15})
    res = jaxhpo.minimize(objective, space, s, num_generations=8, key=1)
    x = np.array([t.x for t in res.history.trials])
    later = x[24:]  # after the warm-up and one model batch
    assert np.mean(later[:, 0] < 0.4) <= 0.1, np.mean(later[:, 0] < 0.4)  # 0.0 with this seed
    assert res.best_value < 1e-5
    for leaf in jax.tree.leaves(res.state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf)))


def test_mixed_int_categorical_optimum_is_found():
    space = Space({"a": Float(0.0, 1.0), "n": Int(1, 8), "c": Categorical(["p", "q", "r"])})

    def objective(key, hp):
        del key
        return (hp["a"] - 0.3) ** 2 + (hp["n"] - 6) ** 2 / 10.0 + (hp["c"] != 2)

    res = jaxhpo.minimize(objective, space, gp_bo(space, 4, **NO_FAILURES), num_generations=10,
                          key=0)
    assert res.best_params["n"] == 6 and res.best_params["c"] == "r"
    assert res.best_value < 1e-2


def test_resume_restores_a_grown_buffer(tmp_path):
    space = square(2)
    s = gp_bo(space, 40, **NO_FAILURES)  # capacity 80 -> 160 during the run
    path = str(tmp_path / "run.jsonl")
    full = jaxhpo.minimize(sphere, space, s, num_generations=3, key=3)
    jaxhpo.minimize(sphere, space, s, num_generations=2, key=3, journal=path)
    resumed = jaxhpo.minimize(sphere, space, s, num_generations=3, key=3, journal=path,
                              resume=True)
    assert resumed.state.x.shape == full.state.x.shape == (160, 2)
    np.testing.assert_array_equal([t.x for t in resumed.history.trials],
                                  [t.x for t in full.history.trials])
    for a, b in zip(_raw(resumed.state), _raw(full.state)):  # the GP state bit-exactly
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _told(s, gens=2, seed=0):
    """A state after ``gens`` jitted ask/tell rounds on a shifted sphere."""
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    state = s.init(jax.random.key(seed))
    for g in range(gens):
        x, state = ask(jax.random.key(100 + g), state)
        state = tell(state, x, jnp.sum((x - 0.3) ** 2, axis=1))
    return state


def test_journal_round_trip_of_the_state_gives_the_same_proposals():
    """The journal stores state leaves raw: decoding them gives a state whose ask and tell are
    bit-identical to the original's."""
    from jaxhpo._journal import decode_state, encode_state

    space = Space({"a": Float(0.0, 1.0), "n": Int(1, 8), "c": Categorical(["p", "q", "r"]),
                   "m": Float(0.0, 1.0, condition={"c": ["p"]})})
    s = gp_bo(space, 4, num_initial=4, **NO_FAILURES)
    state = _told(s)
    back = decode_state(encode_state(state), s.init(jax.random.key(1)))
    xa, sa = jax.jit(s.ask)(jax.random.key(7), state)
    xb, sb = jax.jit(s.ask)(jax.random.key(7), back)
    np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
    f = jnp.sum(xa, axis=1)
    tell = jax.jit(s.tell)
    for a, b in zip(_raw(tell(sa, xa, f)), _raw(tell(sb, xb, f))):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _raw(tree):
    """The state's leaves as numpy arrays (PRNG keys as their data)."""
    return [np.asarray(jax.random.key_data(leaf) if jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key) else leaf) for leaf in jax.tree.leaves(tree)]


def _dtypes(tree):
    return [str(getattr(leaf, "dtype", type(leaf))) for leaf in jax.tree.leaves(tree)]


def test_no_float64_leaves_or_dtype_warnings_with_x64_off_and_same_dtypes_with_x64_on():
    """The float64 GP stays inside jaxhpo.gp._precision: with x64 off (the default) init, ask,
    tell and reserve, eager or jitted, warn about no dtype and return no float64 leaf; with x64
    on the state has the same dtypes (no hidden precision switch; traced with
    ``jax.eval_shape``, which applies the same dtype rules as running it)."""
    import warnings

    assert not jax.config.read("jax_enable_x64")
    space = square(2)
    s = gp_bo(space, 4, num_initial=4, **FAST)  # capacity 64, grown to 128 below
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = s.init(jax.random.key(0))
        x, state = s.ask(jax.random.key(1), state)  # eager (both branches of the model switch)
        state = s.reserve(s.tell(state, x, jnp.sum(x, axis=1)), 65)  # eager
        x, state = jax.jit(s.ask)(jax.random.key(3), state)  # from the model
        state = jax.jit(s.tell)(state, x, jnp.sum(x, axis=1))
    off = _dtypes((x, state))
    assert "float64" not in off and state.post.chol.dtype == jnp.uint32, off
    assert state.x.shape == (128, 2) and state.post.chol.shape == (128, 128, 2)
    with jax.enable_x64(True):
        # a fresh Space: jax caches the numpy index arrays a Space holds as device constants
        # of the precision they were first used in, so flipping x64 mid-process breaks reuse
        s = gp_bo(square(2), 4, num_initial=4, **FAST)
        st = jax.eval_shape(s.init, jax.random.key(0))
        xo, st = jax.eval_shape(s.ask, jax.random.key(1), st)
        st = jax.eval_shape(lambda st, x: s.reserve(s.tell(st, x, jnp.sum(x, axis=1)), 65),
                            st, xo)
        xo, st = jax.eval_shape(s.ask, jax.random.key(2), st)
        on = _dtypes((xo, jax.eval_shape(s.tell, st, xo, jnp.zeros(4))))
    assert on == off


def test_float64_gp_matches_numpy_float64_posterior_without_global_x64():
    """With jax_enable_x64 off the GP is still float64: the strategy's posterior mean (unpacked
    from the state's bit pairs) equals a float64 numpy closed form (R&W Eq. 2.25,
    Matern-5/2, the fitted hyperparameters) to 1e-9 (float32 gets ~1e-4 on this Gram matrix,
    condition ~1e6); ``ask`` still returns float32."""
    from jaxhpo.gp import _precision as precision

    assert not jax.config.read("jax_enable_x64")
    space = square(2)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(24, 2)), jnp.float32)
    y = jnp.sin(5 * x[:, 0]) + jnp.cos(3 * x[:, 1])
    xq = rng.uniform(size=(50, 2))
    s = gp_bo(space, 24, capacity=32, num_initial=1, num_candidates=128, failure_model=False)
    st = jax.jit(s.tell)(s.init(jax.random.key(0)), x, y)
    assert st.x.dtype == jnp.float32 and st.post.chol.dtype == jnp.uint32
    with precision.scope(True):
        post = precision.unpack(st.post)
        assert post.chol.dtype == jnp.float64
        mean, _ = gp.predict(post, jnp.asarray(xq))
        mean = np.asarray(post.unstandardize(mean, 0.0)[0])
        ls, sig, noise = (np.asarray(a) for a in (post.lengthscale, post.signal, post.noise))

    xo, yo = np.asarray(x, np.float64), np.asarray(y, np.float64)
    jit = 1e-10 * sig  # the float64 jitter of jaxhpo.gp
    gram = matern52(xo, xo, ls, sig) + (noise + jit) * np.eye(24)
    z = (yo - yo.mean()) / yo.std()
    ref = yo.mean() + yo.std() * matern52(xq, xo, ls, sig) @ np.linalg.solve(gram, z)
    np.testing.assert_allclose(mean, ref, atol=1e-9)
    xa, _ = jax.jit(s.ask)(jax.random.key(1), st)
    assert xa.dtype == jnp.float32 and xa.shape == (24, 2)


def test_disk_constrained_branin_converges_to_the_grid_optimum():
    """Branin (unit cube) subject to ``|u - (0.3, 0.5)|^2 <= 0.25^2``: the disk excludes all
    three global minima (0.398), so the constrained optimum lies on its rim, at 1.8175 by a
    1001^2 grid. gp_bo(num_constraints=1) must find a feasible point within 0.25 of it in 36
    evaluations and its later batches must be mostly feasible; a strategy that ignores the
    constraint heads for the infeasible minima."""
    tf = jaxhpo.functions.get("branin")
    centre, radius = jnp.asarray([0.3, 0.5]), 0.25

    def objective(u):
        return tf.fn(tf.from_unit(u))

    def constraint(u):
        return (jnp.sum((u - centre) ** 2, axis=-1) - radius**2)[:, None]

    g = np.linspace(0.0, 1.0, 1001)
    grid = jnp.asarray(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2))
    fg, cg = np.asarray(objective(grid)), np.asarray(constraint(grid))[:, 0]
    opt = float(np.min(np.where(cg <= 0, fg, np.inf)))
    assert abs(opt - 1.8175) < 1e-3 and fg.min() < 0.4

    s = gp_bo(tf.space, 4, num_constraints=1, num_candidates=128, num_polish=4,
              polish_steps=3, num_restarts=3, fit_steps=15)
    assert s.num_constraints == 1
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    state, xs = s.init(jax.random.key(2)), []
    for g in range(9):
        x, state = ask(jax.random.key(100 + g), state)
        state = tell(state, x, objective(x), constraint(x))
        xs.append(np.asarray(x))
    x = jnp.asarray(np.concatenate(xs))
    f, c = np.asarray(objective(x)), np.asarray(constraint(x))[:, 0]
    best = float(np.min(np.where(c <= 0, f, np.inf)))
    assert opt <= best < opt + 0.25, (best, opt)
    np.testing.assert_allclose(float(state.best_fitness), best, rtol=1e-6)  # feasible only
    assert np.mean(c[-12:] <= 0) >= 0.5, c[-12:]


def test_trust_region_follows_turbos_side_length_rule():
    """Eriksson et al. 2019, Sect. 2: doubled after 3 successes in a row (at most 1.6), halved
    after ceil(max(4, d) / q) failures in a row, reset to 0.8 below 2^-7."""
    from types import SimpleNamespace

    from jaxhpo.strategies._gp_bo import trust_region

    def lengths(d, q, outcomes):
        tr, out = jnp.asarray([0.8, 0.0, 0.0]), []
        for ok in outcomes:
            tr = trust_region(SimpleNamespace(d=d, q=q), tr, jnp.asarray(ok))
            out.append(round(float(tr[0]), 6))
        return out

    # q = 32, d = 4: one failure halves
    assert lengths(4, 32, [1, 1, 1, 1, 1, 1, 0, 1, 0] + [0] * 6) == [
        0.8, 0.8, 1.6, 1.6, 1.6, 1.6, 0.8, 0.8, 0.4, 0.2, 0.1, 0.05, 0.025, 0.0125, 0.8]
    # q = 1, d = 6: six failures in a row halve; a success in between resets the count
    assert lengths(6, 1, [0] * 5 + [1] + [0] * 6) == [0.8] * 11 + [0.4]


def test_trust_region_draws_the_uniform_candidates_inside_the_box():
    """Box around the incumbent (0.9, 0.1) with side 0.2 * ls / geomean(ls), ls = (0.25, 1):
    half-widths (0.05, 0.2), clipped to the cube: [0.85, 0.95] x [0, 0.3]; without the trust
    region the same candidates span the cube."""
    import inspect

    from jaxhpo.strategies._gp_bo_propose import candidates

    def uniform_half(trust):
        s = gp_bo(square(2), 4, num_candidates=256, trust_region=trust)
        cfg = inspect.getclosurevars(s.init).nonlocals["cfg"]
        st = s.init(jax.random.key(0)).replace(best_x=jnp.asarray([0.9, 0.1]),
                                               tr=jnp.asarray([0.2, 0.0, 0.0]))
        xc = candidates(cfg, jax.random.key(1), st, jnp.asarray([0.25, 1.0]))
        return np.asarray(xc[:128])

    x = uniform_half(True)
    assert np.all((x[:, 0] >= 0.85 - 1e-6) & (x[:, 0] <= 0.95 + 1e-6)), x[:, 0].min()
    assert np.all(x[:, 1] <= 0.3 + 1e-6)
    assert x[:, 0].max() - x[:, 0].min() > 0.08 and x[:, 1].max() > 0.27
    x = uniform_half(False)
    assert x.min(axis=0).max() < 0.05 and x.max(axis=0).min() > 0.95


def test_default_warm_up_is_the_whole_batches_that_fit_in_ten_points():
    """q = 4 in 2-d: the default warm-up is two batches (8 of ``max(10, d + 1) = 10`` points),
    not three: the first two asks equal those of an all-warm-up run (``num_initial=100``), the
    third comes from the model and differs."""
    space = square(2)
    runs = []
    for kw in ({}, {"num_initial": 100}):
        s = gp_bo(space, 4, **NO_FAILURES, **kw)
        ask, tell = jax.jit(s.ask), jax.jit(s.tell)
        state, xs = s.init(jax.random.key(0)), []
        for g in range(3):
            x, state = ask(jax.random.key(100 + g), state)
            state = tell(state, x, jnp.sum((x - 0.3) ** 2, axis=1))
            xs.append(np.asarray(x))
        runs.append(xs)
    (a1, a2, a3), (b1, b2, b3) = runs
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert np.abs(a3 - b3).max() > 1e-3


def test_output_warps_match_scipy():
    """``output_warp``: the copula's targets are the normal scores of the ranks (scipy's
    ``rankdata`` and ``norm.ppf``); Yeo-Johnson's are scipy's ``yeojohnson`` of the standardized
    values at the grid exponent nearest scipy's maximum-likelihood one, for right-skewed,
    left-skewed and symmetric samples; rows outside the mask stay 0."""
    import inspect

    from scipy.stats import norm, rankdata, yeojohnson

    from jaxhpo.strategies._gp_bo_propose import targets

    def cfg(warp):
        return inspect.getclosurevars(gp_bo(square(2), 4, output_warp=warp).init).nonlocals["cfg"]

    rng = np.random.default_rng(0)
    mask = jnp.arange(52) < 50
    for y in (np.exp(1.5 * rng.normal(size=50)), -np.exp(rng.normal(size=50)),
              rng.normal(size=50)):
        yp = jnp.asarray(np.r_[y, 7.0, 7.0], jnp.float32)
        u = (y - y.mean()) / y.std()
        lam = yeojohnson(u)[1]
        assert -2.0 < lam < 3.0
        got = np.asarray(targets(cfg("yeo-johnson"), yp, mask))
        np.testing.assert_allclose(got[:50], yeojohnson(u, lmbda=round(lam, 1)), atol=1e-5)
        got = np.asarray(targets(cfg("copula"), yp, mask))
        np.testing.assert_allclose(got[:50], norm.ppf((rankdata(y) - 0.5) / 50), atol=1e-5)
        assert np.all(got[50:] == 0.0)
    np.testing.assert_array_equal(targets(cfg("none"), yp, mask), yp)


def test_plug_in_incumbent_is_the_lowest_posterior_mean_at_the_observations():
    """``plug_in=True``: EI's incumbent is the lowest posterior mean over the observations
    (numpy closed form, R&W Eq. 2.25, on the Yeo-Johnson targets), which with a noise floor
    lies above the lowest target; ``plug_in=False``: the lowest target. A copula warp makes the
    fitted posterior the same for ``y`` and the monotone ``exp(3 y)``. Both are the defaults
    from ``q = 32`` only."""
    import inspect

    from scipy.stats import yeojohnson

    from jaxhpo.gp import _precision as precision
    from jaxhpo.strategies._gp_bo_propose import incumbent

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.uniform(size=(24, 2)), jnp.float32)
    y = jnp.sin(5 * x[:, 0]) + jnp.cos(3 * x[:, 1])
    yo = np.asarray(y, np.float64)
    u = (yo - yo.mean()) / yo.std()
    z = yeojohnson(u, lmbda=round(yeojohnson(u)[1], 1))
    zs = (z - z.mean()) / z.std()
    kw = dict(capacity=32, num_initial=1, num_candidates=128, failure_model=False,
              min_noise=0.05)
    s = gp_bo(square(2), 24, output_warp="yeo-johnson", plug_in=True, **kw)
    cfg = inspect.getclosurevars(s.init).nonlocals["cfg"]
    st = jax.jit(s.tell)(s.init(jax.random.key(0)), x, y)
    with precision.scope(True):
        post = precision.unpack(st.post)
        inc = float(incumbent(cfg, post, st))
        inc_obs = float(incumbent(cfg._replace(plug_in=False), post, st))
        ls, sig, noise = (np.asarray(a) for a in (post.lengthscale, post.signal, post.noise))

    xo = np.asarray(x, np.float64)
    k = matern52(xo, xo, ls, sig)
    mean = k @ np.linalg.solve(k + (noise + 1e-10 * sig) * np.eye(24), zs)
    assert noise >= 0.05
    np.testing.assert_allclose(inc, mean.min(), atol=1e-6)
    np.testing.assert_allclose(inc_obs, zs.min(), atol=1e-5)
    assert inc > inc_obs + 0.01

    s = gp_bo(square(2), 24, output_warp="copula", **kw)
    tell, st0 = jax.jit(s.tell), s.init(jax.random.key(0))
    st, st_exp = tell(st0, x, y), tell(st0, x, jnp.exp(3.0 * y))
    with precision.scope(True):
        np.testing.assert_allclose(np.asarray(precision.unpack(st.post).alpha),
                                   np.asarray(precision.unpack(st_exp.post).alpha), atol=1e-6)
    cfgs = [inspect.getclosurevars(gp_bo(square(2), q).init).nonlocals["cfg"] for q in (8, 32)]
    assert [(c.output_warp, c.plug_in) for c in cfgs] == [("none", False),
                                                           ("yeo-johnson", True)]
