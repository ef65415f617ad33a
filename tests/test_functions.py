"""Test functions: literature optima, local-minimum checks with scipy, API consistency."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from jaxhpo import functions as F

# (function, tolerance on the optimum value matching the literature's printed precision: half a
# unit in the last printed digit; 1e-9 where the value is exact or printed to more digits)
CASES = [
    (F.branin(), 5e-7), (F.hartmann3(), 5e-6), (F.hartmann6(), 5e-6),
    (F.rosenbrock(10), 1e-9), (F.ackley(5), 1e-9), (F.levy(1), 1e-9), (F.levy(4), 1e-9),
    (F.styblinski_tang(4), 1e-9), (F.sphere(3), 1e-9),
]
IDS = [tf.name for tf, _ in CASES]
cases = pytest.mark.parametrize("tf,tol", CASES, ids=IDS)


def f32_tol(tf, tol):
    """``tol`` plus float32 rounding of a sum of O(|optimum|) terms."""
    return tol + 2e-6 * max(1.0, abs(tf.optimum_value))


def bounds(tf):
    return np.array([(tf.space[n].low, tf.space[n].high) for n in tf.space.names])


@cases
def test_value_at_optimum_matches_literature(tf, tol):
    assert tf.optimum_locations.ndim == 2 and tf.optimum_locations.shape[1] == tf.dim
    with jax.enable_x64(True):
        v64 = np.asarray(jax.jit(tf.fn)(tf.optimum_locations))
    assert v64.dtype == np.float64
    np.testing.assert_allclose(v64, tf.optimum_value, rtol=0, atol=tol)
    v32 = np.asarray(jax.jit(tf.fn)(jnp.asarray(tf.optimum_locations, jnp.float32)))
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32, tf.optimum_value, rtol=0, atol=f32_tol(tf, tol))


@cases
def test_no_random_point_beats_the_optimum(tf, tol):
    """1000 uniform points of the domain, through jit(vmap(value_and_grad))."""
    u = jax.random.uniform(jax.random.key(0), (1000, tf.dim))
    vals, grads = jax.jit(lambda u: jax.vmap(jax.value_and_grad(tf.fn))(tf.from_unit(u)))(u)
    assert vals.shape == (1000,) and grads.shape == (1000, tf.dim)
    assert np.isfinite(np.asarray(vals)).all() and np.isfinite(np.asarray(grads)).all()
    assert float(vals.min()) >= tf.optimum_value - f32_tol(tf, tol)
    batched = jax.jit(lambda u: tf(tf.from_unit(u)))(u)  # fn broadcasts over leading axes
    np.testing.assert_allclose(np.asarray(batched), np.asarray(vals), rtol=1e-6, atol=1e-6)


@cases
def test_optimum_is_a_local_minimum(tf, tol):
    """In float64, the gradient vanishes at each optimum and L-BFGS-B started at it or near it
    converges to the literature value and finds nothing meaningfully lower."""
    lohi = bounds(tf)
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        vg = jax.jit(jax.value_and_grad(tf.fn))

        def fun(x):
            v, g = vg(np.asarray(x, np.float64))
            return float(v), np.asarray(g, np.float64)

        for x0 in tf.optimum_locations:
            v, g = fun(x0)
            # printed locations (6 digits) leave a small gradient; scale by the domain width
            assert np.abs(g).max() * (lohi[:, 1] - lohi[:, 0]).max() < 1e-3, g
            starts = [x0] + [np.clip(x0 + 1e-3 * (lohi[:, 1] - lohi[:, 0])
                                     * rng.uniform(-1, 1, tf.dim), lohi[:, 0], lohi[:, 1])
                             for _ in range(3)]
            for s in starts:
                res = minimize(fun, s, jac=True, method="L-BFGS-B", bounds=lohi,
                               options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 200})
                assert res.fun >= tf.optimum_value - tol
                assert res.fun <= tf.optimum_value + max(tol, 1e-6), (s, res)


API_CASES = [CASES[i] for i in (0, 2, 4, 8)]  # branin, hartmann6, ackley-5, sphere-3


@pytest.mark.parametrize("tf,tol", API_CASES, ids=[tf.name for tf, _ in API_CASES])
def test_objective_and_from_unit_agree_with_fn(tf, tol):
    names = tf.space.names
    us = np.stack([tf.space.encode({n: float(v) for n, v in zip(names, loc)})
                   for loc in tf.optimum_locations])
    assert us.shape == tf.optimum_locations.shape and us.dtype == np.float32

    @jax.jit
    def run(u):
        x = tf.from_unit(u)
        obj = jax.vmap(tf.objective, in_axes=(None, 0))(jax.random.key(0), tf.space.decode(u))
        return x, obj, tf(x)

    x, obj, direct = run(jnp.asarray(us))
    np.testing.assert_allclose(np.asarray(x), tf.optimum_locations, rtol=1e-5, atol=1e-5)
    assert obj.dtype == jnp.float32 and obj.shape == (len(us),)
    np.testing.assert_allclose(np.asarray(obj), np.asarray(direct), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(obj), tf.optimum_value, atol=f32_tol(tf, tol) + 1e-4)
    assert tf.regret(tf.optimum_value) == 0.0 and tf.regret(tf.optimum_value + 1.5) == 1.5


def test_closed_form_values():
    f = lambda tf, x: float(jax.jit(tf.fn)(jnp.asarray(x, jnp.float32)))  # noqa: E731
    assert f(F.rosenbrock(2), [0.0, 0.0]) == pytest.approx(1.0)
    assert f(F.rosenbrock(2), [-1.0, 1.0]) == pytest.approx(4.0)
    assert f(F.rosenbrock(3), [0.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert f(F.ackley(3), [0.0, 0.0, 0.0]) == pytest.approx(0.0, abs=1e-6)
    # Ackley at (1, 0): both cosines are 1, so only the radial term remains
    assert f(F.ackley(2), [1.0, 0.0]) == pytest.approx(20 * (1 - math.exp(-0.2 * math.sqrt(0.5))),
                                                       rel=1e-5)
    assert f(F.sphere(2), [0.0, 0.0]) == pytest.approx(0.18)
    assert f(F.sphere(2, center=0.5), [1.0, 1.0]) == pytest.approx(0.5)
    assert f(F.styblinski_tang(1), [0.0]) == 0.0
    assert f(F.styblinski_tang(2), [1.0, -1.0]) == pytest.approx(-15.0)  # (-10 + -20) / 2
    # Levy at x = -3 (w = 0): sin^2(0) + (1 + 10 sin^2(1)) + 1 * (1 + sin^2(0))
    assert f(F.levy(2), [-3.0, -3.0]) == pytest.approx(2 + 10 * math.sin(1) ** 2, rel=1e-6)
    # Branin at the origin: (0 - 0 + 0 - 6)^2 + 10 (1 - 1/(8 pi)) cos 0 + 10
    assert f(F.branin(), [0.0, 0.0]) == pytest.approx(56 - 10 / (8 * math.pi), rel=1e-6)
    # Hartmann far from every P row: exponentials vanish
    assert f(F.hartmann3(), [0.5, 0.5, 0.5]) < 0
    # integer input is promoted to float
    assert float(F.rosenbrock(2)(jnp.array([0, 0]))) == pytest.approx(1.0)


def test_domains_and_names():
    tf = F.branin()
    assert tf.space.names == ("x0", "x1")
    assert (tf.space["x0"].low, tf.space["x0"].high) == (-5.0, 10.0)
    assert (tf.space["x1"].low, tf.space["x1"].high) == (0.0, 15.0)
    assert tf.optimum_locations.shape == (3, 2)
    expect = {"rosenbrock": (-5, 10), "ackley": (-32.768, 32.768), "levy": (-10, 10),
              "styblinski_tang": (-5, 5), "sphere": (0, 1)}
    for name, (lo, hi) in expect.items():
        tf = F.get(name, d=3)
        assert tf.name == f"{name}-3" and tf.space.names == ("x0", "x1", "x2")
        assert all((tf.space[n].low, tf.space[n].high) == (lo, hi) for n in tf.space.names)
    assert F.styblinski_tang(3).optimum_value == pytest.approx(-39.16599 * 3, abs=1e-3)


def test_get():
    for tf, _ in CASES:
        assert F.get(tf.name).name == tf.name
    for name, factory in F.FUNCTIONS.items():
        assert F.get(name).name.split("-")[0] == name
        assert isinstance(factory(), F.TestFunction)
    assert F.get("ackley-5").dim == 5 and F.get("levy", d=3).name == "levy-3"
    assert F.get("sphere", d=2, center=0.7).optimum_locations.tolist() == [[0.7, 0.7]]
    with pytest.raises(ValueError, match="unknown test function.*branin.*sphere"):
        F.get("rastrigin")
    for bad in ("ackley-x", "branin-3", "ackley-"):
        with pytest.raises(ValueError, match="bad test function name"):
            F.get(bad)
    with pytest.raises(ValueError, match="conflicts"):
        F.get("ackley-5", d=3)
    with pytest.raises(TypeError, match="name"):
        F.get(3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="d must be >= 2"):
        F.rosenbrock(1)
    for factory in (F.ackley, F.levy, F.styblinski_tang, F.sphere):
        with pytest.raises(ValueError, match="d must be >= 1"):
            factory(0)
        for bad in (2.0, True, "3", None):
            with pytest.raises(TypeError, match="d must be an int"):
                factory(bad)
    with pytest.raises(ValueError, match="center"):
        F.sphere(2, center=1.5)
    with pytest.raises(TypeError, match="center"):
        F.sphere(2, center="0.3")
