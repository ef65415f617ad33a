"""GP and acquisition functions against closed forms computed independently in numpy/scipy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxhpo import Categorical, Float, Int, Space, gp

LS = np.array([0.3, 0.5, 2.0, 0.7, 1.5])


def np_kernel(a, b, ls, signal, bins, is_cat, kind="matern52"):
    """Independent numpy version of the mixed kernel (ints to bin centres, categorical
    overlap)."""
    def tr(x):
        x = np.array(x, np.float64)
        for j, (m, c) in enumerate(zip(bins, is_cat)):
            if m:
                i = np.clip(np.floor(x[:, j] * m), 0, m - 1)
                x[:, j] = i if c else (i + 0.5) / m
        return x

    ua, ub = tr(a), tr(b)
    r2 = np.zeros((len(a), len(b)))
    for j in range(ua.shape[1]):
        diff = ua[:, j, None] - ub[None, :, j]
        r2 += ((diff != 0) if is_cat[j] else diff**2) / ls[j] ** 2
    if kind == "rbf":
        return signal * np.exp(-0.5 * r2)
    r = np.sqrt(5 * r2)
    return signal * (1 + r + r**2 / 3) * np.exp(-r)


def problem(seed=0, cap=40, n=25):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(cap, 5))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + (np.floor(x[:, 4] * 3) == 1)
    mask = np.arange(cap) < n
    return x, y, mask, rng.uniform(size=(9, 5))


def mixed_spec(kernel="matern52"):
    space = Space({"a": Float(0, 1), "b": Float(1e-3, 1, log=True), "c": Float(0, 1),
                   "n": Int(1, 6), "k": Categorical(["x", "y", "z"])})
    return gp.InputSpec.from_space(space, kernel)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_posterior_matches_closed_form_float64(kernel):
    with jax.enable_x64(True):
        spec = mixed_spec(kernel)
        x, y, mask, xq = problem()
        signal, noise = 1.3, 1e-3
        p = gp.GPParams(jnp.log(jnp.asarray(LS)), jnp.log(jnp.float64(signal)),
                        jnp.log(jnp.float64(noise)))
        post = gp.posterior(p, jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask), spec, 0.0)
        mean, var = gp.predict(post, jnp.asarray(xq))
        X, Y = x[mask], y[mask]
        z = (Y - Y.mean()) / Y.std()
        kw = dict(ls=LS, signal=signal, bins=spec.num_bins, is_cat=spec.is_categorical,
                  kind=kernel)
        K = np_kernel(X, X, **kw) + (noise + 1e-10 * signal) * np.eye(len(X))
        Ks = np_kernel(xq, X, **kw)
        np.testing.assert_allclose(mean, Ks @ np.linalg.solve(K, z), atol=1e-5, rtol=0)
        ref_var = signal - np.sum(Ks * np.linalg.solve(K, Ks.T).T, axis=1)
        np.testing.assert_allclose(var, ref_var, atol=1e-5, rtol=0)
        m_y, v_y = post.unstandardize(mean, var)
        np.testing.assert_allclose(m_y, Y.mean() + Y.std() * (Ks @ np.linalg.solve(K, z)),
                                   atol=1e-5 * Y.std())


def test_masked_rows_do_not_change_anything():
    with jax.enable_x64(True):
        spec = mixed_spec()
        x, y, mask, xq = problem()
        p = gp.GPParams(jnp.log(jnp.asarray(LS)), jnp.float64(0.1), jnp.float64(-5.0))
        x2, y2 = x.copy(), y.copy()
        x2[~mask], y2[~mask] = 0.123, 1e6  # garbage in masked rows
        a = gp.predict(gp.posterior(p, x, y, mask, spec), xq)
        b = gp.predict(gp.posterior(p, x2, y2, mask, spec), xq)
        c = gp.predict(gp.posterior(p, x[mask], y[mask], mask[mask], spec), xq)
        for u, v, w in zip(a, b, c):
            np.testing.assert_allclose(u, v, atol=1e-12)
            np.testing.assert_allclose(u, w, atol=1e-12)
        la = gp.log_marginal_likelihood(p, x, y, mask, spec)
        lc = gp.log_marginal_likelihood(p, x[mask], y[mask], mask[mask], spec)
        np.testing.assert_allclose(la, lc, rtol=1e-12)


def test_append_rows_equals_the_closed_form_posterior_of_all_rows():
    """The block Cholesky update (rows 25..32 appended, one of them failed/masked) predicts
    exactly what the numpy closed form on all valid rows predicts (R&W Eqs. 2.25-2.26), and
    its factors are those of a full refactorization."""
    with jax.enable_x64(True):
        spec = mixed_spec()
        x, y, _, xq = problem()
        signal, noise = 1.3, 1e-4
        p = gp.GPParams(jnp.log(jnp.asarray(LS)), jnp.log(jnp.float64(signal)),
                        jnp.log(jnp.float64(noise)))
        before = np.arange(40) < 25
        after = np.arange(40) < 33
        after[27] = False  # a failed trial among the appended rows
        post = gp.append_rows(gp.posterior(p, x, y, jnp.asarray(before), spec, 0.0),
                              jnp.asarray(x), jnp.asarray(y), jnp.asarray(after), 25, 8)
        full = gp.posterior(p, x, y, jnp.asarray(after), spec, 0.0)
        np.testing.assert_allclose(post.chol, full.chol, atol=1e-10)
        np.testing.assert_allclose(post.chol_inv @ post.chol, np.eye(40), atol=1e-8)
        mean, var = gp.predict(post, jnp.asarray(xq))
        X, Y = x[after], y[after]
        z = (Y - Y.mean()) / Y.std()
        kw = dict(ls=LS, signal=signal, bins=spec.num_bins, is_cat=spec.is_categorical)
        K = np_kernel(X, X, **kw) + (noise + 1e-10 * signal) * np.eye(len(X))
        Ks = np_kernel(xq, X, **kw)
        np.testing.assert_allclose(mean, Ks @ np.linalg.solve(K, z), atol=1e-8, rtol=0)
        ref_var = signal - np.sum(Ks * np.linalg.solve(K, Ks.T).T, axis=1)
        np.testing.assert_allclose(var, ref_var, atol=1e-8, rtol=0)


def test_log_marginal_likelihood_closed_form_and_gradient():
    with jax.enable_x64(True):
        spec = mixed_spec()
        x, y, mask, _ = problem(1)
        t0 = np.concatenate([np.log(LS), [0.2, math.log(1e-2)]])

        def f(t):
            return gp.log_marginal_likelihood(gp.GPParams(t[:5], t[5], t[6]), x, y, mask, spec,
                                              0.0)

        X, Y = x[mask], y[mask]
        z = (Y - Y.mean()) / Y.std()
        K = np_kernel(X, X, np.exp(t0[:5]), math.exp(0.2), spec.num_bins,
                      spec.is_categorical) + (1e-2 + 1e-10 * math.exp(0.2)) * np.eye(len(X))
        ref = (-0.5 * z @ np.linalg.solve(K, z) - 0.5 * np.linalg.slogdet(K)[1]
               - 0.5 * len(X) * math.log(2 * math.pi))
        np.testing.assert_allclose(f(jnp.asarray(t0)), ref, rtol=1e-10)
        g = np.asarray(jax.grad(f)(jnp.asarray(t0)))
        eps = 1e-6
        fd = np.array([(f(t0 + eps * e) - f(t0 - eps * e)) / (2 * eps) for e in np.eye(7)])
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_fit_recovers_lengthscale_of_a_gp_sample():
    """Data drawn from a 1-d Matern GP with lengthscale 0.2: the MAP lengthscale is close."""
    with jax.enable_x64(True):
        spec = gp.InputSpec.continuous(1)
        rng = np.random.default_rng(0)
        x = np.sort(rng.uniform(size=(100, 1)), axis=0)
        K = np_kernel(x, x, [0.2], 1.0, (0,), (False,)) + 1e-4 * np.eye(100)
        y = np.linalg.cholesky(K) @ rng.normal(size=100)
        mask = np.ones(100, bool)
        starts = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]),
                              gp.GPParams.default(1), gp.sample_prior(jax.random.key(0), 1, 3))
        fitted = gp.fit(x, y, mask, spec, starts, num_steps=50)
        ls = float(jnp.exp(fitted.log_lengthscale[0]))
        assert 0.13 < ls < 0.3, ls
        obj = lambda p: gp.log_marginal_likelihood(p, x, y, mask, spec) + gp.log_prior(p)
        assert obj(fitted) >= max(obj(jax.tree.map(lambda a: a[i], starts)) for i in range(4))


def test_float32_posterior_stays_finite_with_duplicates():
    """Duplicated points and zero noise floor: the Cholesky retries with jitter."""
    spec = gp.InputSpec.continuous(2)
    rng = np.random.default_rng(0)
    x = np.repeat(rng.uniform(size=(50, 2)), 6, axis=0).astype(np.float32)
    x += 1e-7 * rng.normal(size=x.shape).astype(np.float32)
    y = np.sum((x - 0.3) ** 2, axis=1)
    p = gp.GPParams(jnp.log(jnp.full(2, 3.0)), jnp.float32(0.0), jnp.float32(-20.0))
    post = gp.posterior(p, jnp.asarray(x), jnp.asarray(y), jnp.ones(300, bool), spec, 0.0)
    mean, var = gp.predict(post, jnp.asarray(rng.uniform(size=(20, 2)), jnp.float32))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var > 0)


def test_log_ei_equals_log_of_ei_where_representable():
    with jax.enable_x64(True):
        mean = jnp.linspace(-3.0, 25.0, 300)
        var = jnp.full(300, 0.7)
        best = 0.1
        z = (best - np.asarray(mean)) / math.sqrt(0.7)
        ref = np.log(math.sqrt(0.7) * (norm.pdf(z) + z * norm.cdf(z)))
        ok = np.isfinite(ref)
        assert ok.sum() > 250
        np.testing.assert_allclose(np.asarray(gp.log_ei(mean, var, best))[ok], ref[ok],
                                   rtol=1e-9)
        np.testing.assert_allclose(np.log(np.asarray(gp.ei(mean, var, best)))[ok], ref[ok],
                                   rtol=1e-6)


@pytest.mark.parametrize("x64", [False, True])
def test_log_ei_finite_and_monotone_where_ei_underflows(x64):
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        z = -jnp.logspace(-2, 12, 400, dtype=dtype)
        h = np.asarray(jax.jit(gp.log_h)(z), np.float64)  # jitted: one program, not per op
        assert np.all(np.isfinite(h))
        assert np.all(np.diff(h) < 0)  # log h is increasing in z, z decreases along the array
        assert float(gp.ei(jnp.asarray(60.0, dtype), 1.0, 0.0)) == 0.0  # EI has underflowed
        grads = jax.jit(jax.vmap(jax.grad(gp.log_h)))(z)
        assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads) > 0)
        # asymptote log h(z) ~ -z^2/2 - log(2 pi)/2 - 2 log|z| (Ament et al. 2023)
        zz = np.asarray(z[-40:], np.float64)
        np.testing.assert_allclose(h[-40:], -zz**2 / 2 - 0.5 * math.log(2 * math.pi)
                                   - 2 * np.log(-zz), rtol=1e-5)


def test_pi_ucb_closed_forms():
    mean, var, best = jnp.array([0.0, 1.0, -2.0]), jnp.array([1.0, 4.0, 0.25]), 0.5
    z = (best - np.asarray(mean)) / np.sqrt(np.asarray(var))
    np.testing.assert_allclose(gp.pi(mean, var, best), norm.cdf(z), rtol=1e-6)
    np.testing.assert_allclose(gp.log_pi(mean, var, best), norm.logcdf(z), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gp.ucb(mean, var, 4.0), -np.asarray(mean) + 2 * np.sqrt(var),
                               rtol=1e-6)


def test_input_spec_from_space_and_bins():
    spec = mixed_spec()
    assert spec.num_bins == (0, 0, 0, 6, 3)
    assert spec.is_categorical == (False, False, False, False, True)
    u = gp.transform_inputs(spec, jnp.array([[0.1, 0.2, 0.3, 0.99, 0.5]]))
    np.testing.assert_allclose(u, [[0.1, 0.2, 0.3, 5.5 / 6, 1.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="kernel"):
        gp.InputSpec.from_space(Space({"a": Float(0, 1)}), "cubic")


def test_x64_scope_traced_inside_an_x64_off_jit_computes_in_float64():
    """What jaxhpo.gp._precision relies on (if a JAX upgrade changes it, this fails): with the
    global x64 off, ops traced inside ``scope(True)`` under an outer ``jit`` carry float64
    types and run in float64 after the program is lowered outside the scope; float64 arrays
    round-trip exactly through their ``uint32`` bit pairs; and the scope's ``argmax`` (used
    instead of ``jnp.argmax``, which fails there) lowers."""
    from jaxhpo.gp import _precision as precision

    assert not jax.config.read("jax_enable_x64")
    a64 = np.array([1.0, 1.0 + 2.0**-40, np.pi, -1e-300, 1e300])

    def f(a, packed):
        with precision.scope(True):
            b = a.astype(jnp.float64)
            tiny = (b + 2.0**-40) - b  # 2^-40 in float64, 0 in float32
            chol = jnp.linalg.cholesky(jnp.eye(3, dtype=jnp.float64) * (1.0 + 2.0**-40))
            back = precision.unpack(packed)
            i = precision.argmax(jnp.where(jnp.arange(5) == 3, back, -jnp.inf))
            return (tiny.astype(jnp.float32), precision.pack(chol), precision.pack(back), i,
                    b.dtype)

    packed = np.ascontiguousarray(a64).view(np.uint32).reshape(5, 2)
    jaxpr = str(jax.make_jaxpr(lambda a, p: f(a, p)[:4])(jnp.ones(5), packed))
    assert "f64[" in jaxpr and "f32[" in jaxpr
    tiny, chol, back, i = jax.jit(lambda a, p: f(a, p)[:4])(jnp.ones(5), packed)
    np.testing.assert_array_equal(np.asarray(tiny), np.float32(2.0**-40))
    assert chol.dtype == jnp.uint32 and chol.shape == (3, 3, 2)
    diag = np.asarray(chol).reshape(-1).view(np.float64).reshape(3, 3).diagonal()
    np.testing.assert_array_equal(diag, np.sqrt(1.0 + 2.0**-40))
    np.testing.assert_array_equal(np.asarray(back), packed)  # bit-exact
    assert int(i) == 3
    assert f(jnp.ones(5), packed)[4] == jnp.float64  # eager
    with pytest.raises(RuntimeError, match="scope"):
        precision.unpack(jnp.asarray(packed))
