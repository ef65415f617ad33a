"""CMA-ES: convergence rates on functions with known optima, covariance learning, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import scan_strategy
from jaxhpo import Float, Space
from jaxhpo.strategies import cma_es
from jaxhpo.strategies._cma_es import cma_es_constants


def cube(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def best_curve(f, d, gens, seed=0, **kw):
    s = cma_es(cube(d), **kw)
    st, fs, xs = scan_strategy(s, f, gens, jax.random.key(seed))
    curve = np.minimum.accumulate(np.asarray(fs).min(axis=1))
    return curve, np.asarray(xs), st, s.population_size


def evals_to(curve, lam, target):
    hit = np.nonzero(curve < target)[0]
    return (hit[0] + 1) * lam if hit.size else np.inf


def test_default_parameters_follow_the_tutorial():
    k = cma_es_constants(10, 10)  # lambda = 4 + floor(3 ln 10) = 10
    w = k["weights"]
    assert k["mu"] == 5 and w[:5].sum() == pytest.approx(1.0, rel=1e-6)
    assert np.all(np.diff(w) < 0) and np.all(w[:5] > 0) and np.all(w[5:] <= 0)
    mu_eff = 1 / np.sum(w[:5] ** 2)
    assert k["mu_eff"] == pytest.approx(mu_eff, rel=1e-6)
    assert k["c1"] == pytest.approx(2 / ((10 + 1.3) ** 2 + mu_eff))
    assert k["c_sigma"] == pytest.approx((mu_eff + 2) / (10 + mu_eff + 5))
    # the negative weights are bounded so that C stays positive definite (Eq. 52)
    assert -w[5:].sum() <= (1 - k["c1"] - k["c_mu"]) / (10 * k["c_mu"]) + 1e-6


def test_sphere_converges_linearly():
    curve, _, _, lam = best_curve(lambda x: jnp.sum((x - 0.3) ** 2), 10, 250)
    # CMA-ES needs ~1100-1300 evaluations for 1e-8 on the 10-d sphere from sigma0 = 0.3
    assert evals_to(curve, lam, 1e-8) <= 2000


def test_learns_a_rotated_ill_conditioned_ellipsoid():
    d = 8
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))
    scales = jnp.asarray(10 ** (6 * np.arange(d) / (d - 1)), jnp.float32)
    rot = jnp.asarray(q, jnp.float32)
    f = lambda x: jnp.sum(scales * (rot @ (x - 0.45)) ** 2)
    # sigma0 = 0.1 keeps the search inside the cube: from the default 0.3 the mean of some
    # seeds (1 of 8 measured) leaves it early and crawls along the clipped boundary for
    # hundreds of generations, which is about bound handling, not covariance learning. From
    # 0.1, seeds 0-7 all reach 1e-8 in 2430-3010 evaluations.
    curve, _, st, lam = best_curve(f, d, 700, sigma0=0.1)
    # Without covariance adaptation this condition number (1e6, rotated) needs >1e5 evals.
    assert evals_to(curve, lam, 1e-8) <= 6000
    eig = np.linalg.eigvalsh(np.asarray(st.cov))
    assert eig.max() / eig.min() > 1e4  # C learned the inverse Hessian's conditioning


def test_optimum_on_the_boundary_stays_inside_the_cube():
    curve, xs, st, _ = best_curve(lambda x: jnp.sum((x - 1.3) ** 2), 4, 150)
    assert np.all((xs >= 0) & (xs <= 1))
    np.testing.assert_allclose(np.asarray(st.best_x), 1.0, atol=1e-3)
    assert curve[-1] == pytest.approx(4 * 0.09, rel=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma0"):
        cma_es(cube(2), sigma0=0.0)
    with pytest.raises(ValueError, match="mean0"):
        cma_es(cube(2), mean0=[0.5, 2.0])
    with pytest.raises(ValueError, match=">= 2"):
        cma_es(cube(2), 1)


def test_sep_cma_es_solves_separable_ellipsoid_in_high_dimension():
    """sep-CMA-ES on a 100-d axis-aligned ellipsoid (condition 1e4): linear-time updates still
    learn the per-coordinate scales; full CMA-ES would need d^2 = 1e4 covariance entries."""
    from jaxhpo.strategies import sep_cma_es

    d = 100
    scales = jnp.asarray(10 ** (4 * np.arange(d) / (d - 1)), jnp.float32)
    f = lambda x: jnp.sum(scales * (x - 0.4) ** 2)
    st, fs, _ = scan_strategy(sep_cma_es(cube(d)), f, 1500, jax.random.key(0))
    assert float(jnp.min(fs)) < 1e-6
    diag = np.asarray(st.diag)
    # learned variances follow the inverse curvature: first coordinates far wider than last
    assert diag[:10].mean() / diag[-10:].mean() > 100
