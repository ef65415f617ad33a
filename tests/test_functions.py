"""Test functions: literature optima, local-minimum check with scipy, API consistency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from jaxhpo import functions as F

CASES = [
    (F.branin(), 1e-5), (F.hartmann3(), 1e-5), (F.hartmann6(), 1e-5),
    (F.rosenbrock(2), 1e-7), (F.rosenbrock(10), 1e-7), (F.ackley(2), 1e-5),
    (F.ackley(5), 1e-5), (F.levy(4), 1e-7), (F.styblinski_tang(4), 1e-4),
    (F.sphere(3), 1e-7),
]
IDS = [tf.name for tf, _ in CASES]


@pytest.mark.parametrize("tf,tol", CASES, ids=IDS)
def test_value_at_optimum_matches_literature(tf, tol):
    vals = np.asarray(tf(jnp.asarray(tf.optimum_locations, jnp.float32)))
    np.testing.assert_allclose(vals, tf.optimum_value, atol=tol * max(1, abs(tf.optimum_value)))


@pytest.mark.parametrize("tf,tol", CASES, ids=IDS)
def test_no_random_point_beats_the_optimum(tf, tol):
    u = jax.random.uniform(jax.random.key(0), (2000, tf.dim))
    vals = np.asarray(tf(tf.from_unit(u)))
    assert vals.min() >= tf.optimum_value - 1e-4


@pytest.mark.parametrize("tf,tol", CASES, ids=IDS)
def test_optimum_is_a_local_minimum(tf, tol):
    """L-BFGS-B from the optimum (inside the box) finds nothing meaningfully lower."""
    f = jax.jit(tf.fn)
    bounds = [(p.low, p.high) for p in tf.space._params.values()]
    for x0 in tf.optimum_locations:
        # finite-difference gradients: Ackley's gradient is undefined at its optimum
        res = minimize(lambda x: float(f(jnp.asarray(x, jnp.float32))), x0,
                       method="L-BFGS-B", bounds=bounds)
        assert res.fun >= tf.optimum_value - 1e-4 * max(1, abs(tf.optimum_value))


def test_closed_form_values():
    assert float(F.rosenbrock(2)(jnp.zeros(2))) == pytest.approx(1.0)
    assert float(F.ackley(3)(jnp.zeros(3))) == pytest.approx(0.0, abs=1e-5)
    assert float(F.sphere(2)(jnp.zeros(2))) == pytest.approx(0.18)
    assert float(F.styblinski_tang(1)(jnp.zeros(1))) == 0.0
    # Branin at the origin: (0 - 0 + 0 - 6)^2 + 10 (1 - 1/(8 pi)) cos 0 + 10
    assert float(F.branin()(jnp.zeros(2))) == pytest.approx(36 + 20 - 10 / (8 * np.pi), rel=1e-6)


def test_objective_and_from_unit_agree_with_fn():
    tf = F.hartmann6()
    x = jnp.asarray(tf.optimum_locations[0], jnp.float32)
    u = tf.space.encode({n: float(v) for n, v in zip(tf.space.names, tf.optimum_locations[0])})
    np.testing.assert_allclose(np.asarray(tf.from_unit(jnp.asarray(u))), np.asarray(x),
                               rtol=1e-5)
    hp = tf.space.decode(jnp.asarray(u))
    assert float(tf.objective(None, hp)) == pytest.approx(float(tf(x)), rel=1e-5)
    batch = jax.jit(jax.vmap(tf.fn))(jnp.tile(x, (4, 1)))
    assert batch.shape == (4,)
    assert tf.regret(tf.optimum_value) == 0.0


def test_get_and_bad_arguments():
    assert F.get("ackley-5").dim == 5 and F.get("levy", d=3).name == "levy-3"
    assert F.get("branin").name == "branin"
    with pytest.raises(ValueError, match="unknown test function"):
        F.get("rastrigin")
    with pytest.raises(ValueError, match="d must be >= 2"):
        F.rosenbrock(1)
    with pytest.raises(TypeError, match="d must be an int"):
        F.ackley(2.0)
