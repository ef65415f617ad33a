"""NSGA-II and Pareto utilities: sorting and crowding against brute force, hypervolume against
closed forms and Monte Carlo, and convergence on ZDT1 toward its known front."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import scan_strategy
from jaxhpo import Float, Space, hypervolume, pareto_front
from jaxhpo.strategies import nsga2, random_search
from jaxhpo.strategies._nsga2 import crowding_distance, non_dominated_rank


def brute_force_rank(f):
    f = np.asarray(f)
    rank = np.full(len(f), -1)
    left = set(range(len(f)))
    r = 0
    while left:
        front = [i for i in left if not any(np.all(f[j] <= f[i]) and np.any(f[j] < f[i])
                                            for j in left if j != i)]
        for i in front:
            rank[i] = r
        left -= set(front)
        r += 1
    return rank


def test_non_dominated_rank_matches_brute_force():
    f = np.array([(1, 5), (2, 3), (3, 1), (2, 4), (4, 4), (5, 5)], np.float32)
    # (4, 4) is dominated by (2, 4), which is itself dominated by (2, 3)
    assert list(np.asarray(non_dominated_rank(jnp.asarray(f)))) == [0, 0, 0, 1, 2, 3]
    rng = np.random.default_rng(0)
    for m in (2, 3):
        f = rng.integers(0, 6, size=(40, m)).astype(np.float32)  # many ties
        np.testing.assert_array_equal(np.asarray(non_dominated_rank(jnp.asarray(f))),
                                      brute_force_rank(f))


def test_crowding_distance_closed_form():
    f = jnp.array([(0.0, 3.0), (1.0, 2.0), (2.0, 1.0), (3.0, 0.0), (3.0, 3.0)])
    rank = non_dominated_rank(f)
    d = np.asarray(crowding_distance(f, rank))
    assert np.isinf(d[0]) and np.isinf(d[3]) and np.isinf(d[4])  # front ends, lone point
    np.testing.assert_allclose(d[1:3], [4 / 3, 4 / 3], rtol=1e-6)


def test_hypervolume_closed_forms_and_monte_carlo():
    assert hypervolume([(1, 0), (0, 1)], (2, 2)) == pytest.approx(3.0)
    assert hypervolume([(1, 0), (0, 1), (1, 1)], (2, 2)) == pytest.approx(3.0)  # dominated
    assert hypervolume([(3, 0)], (2, 2)) == 0.0
    assert hypervolume([(0, 0, 0)], (1, 1, 1)) == pytest.approx(1.0)
    pts = np.random.default_rng(1).random((12, 3))
    ref = np.ones(3)
    u = np.random.default_rng(2).random((400_000, 3))
    dominated = np.any(np.all(pts[None] <= u[:, None], axis=-1), axis=1)
    assert hypervolume(pts, ref) == pytest.approx(dominated.mean(), abs=4e-3)
    front = pareto_front([(3, 1), (1, 3), (2, 2), (2, 3), (np.nan, 0)])
    np.testing.assert_array_equal(front, [(1, 3), (2, 2), (3, 1)])
    with pytest.raises(ValueError, match="hypervolume"):
        hypervolume(np.zeros((3, 4)), np.ones(4))


def zdt1(x):
    g = 1 + 9 * jnp.mean(x[1:])
    return jnp.stack([x[0], g * (1 - jnp.sqrt(x[0] / g))])


def run(strategy, gens, key):
    return np.asarray(scan_strategy(strategy, zdt1, gens, key)[1]).reshape(-1, 2)


def test_nsga2_approaches_the_zdt1_front():
    """ZDT1 (30-d): the optimal front f2 = 1 - sqrt(f1) has hypervolume 0.1 + 2/3 + 0.11 =
    0.8767 for the reference (1.1, 1.1). With 4000 evaluations NSGA-II gets within 0.1 of it
    (Optuna's NSGAIISampler, population 40, seed 0, reached 0.558 at the same budget in our
    run); random search with the same budget dominates nothing below the reference."""
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(30)})
    ours = hypervolume(run(nsga2(space, 40), 100, jax.random.key(0)), (1.1, 1.1))
    rand = hypervolume(run(random_search(space, 40), 100, jax.random.key(0)), (1.1, 1.1))
    assert ours > 0.77 and ours < 0.8767 + 1e-6
    assert rand < 0.5


def test_nsga2_bad_arguments():
    space = Space({"x": Float(0.0, 1.0)})
    with pytest.raises(ValueError, match="even number"):
        nsga2(space, 7)
    one = nsga2(space, 4, num_objectives=1)  # a single objective arrives as f32[pop]
    st = jax.jit(one.tell)(one.init(jax.random.key(0)), jnp.linspace(0, 1, 4)[:, None],
                  jnp.array([3.0, 1.0, 2.0, 0.0]))
    np.testing.assert_array_equal(np.asarray(st.fitness)[:, 0], [0.0, 1.0, 2.0, 3.0])
    s = nsga2(space, 4, num_objectives=3)
    with pytest.raises(ValueError, match="f32\\[4, 3\\]"):
        s.tell(s.init(jax.random.key(0)), jnp.zeros((4, 1)), jnp.zeros((4, 2)))


def test_constrained_domination_matches_deb_definition():
    """Deb et al. 2002, Sect. V, Def. 1, brute force: feasible beats infeasible, smaller
    overall violation beats larger, and Pareto domination among the feasible."""
    from jaxhpo.strategies._nsga2 import constraint_violation

    rng = np.random.default_rng(3)
    f = rng.integers(0, 4, size=(30, 2)).astype(np.float32)
    c = rng.integers(-2, 3, size=(30, 2)).astype(np.float32)
    c[5, 1] = np.nan  # a NaN constraint: violated, maximally
    v = np.asarray(constraint_violation(jnp.asarray(c)))
    np.testing.assert_allclose(v[:5], np.maximum(c[:5], 0).sum(1))
    assert v[5] > 1e30

    def dominates(i, j):
        if v[i] <= 0 and v[j] <= 0:
            return np.all(f[i] <= f[j]) and np.any(f[i] < f[j])
        return v[i] <= 0 < v[j] or 0 < v[i] < v[j]

    rank = np.full(30, -1)
    left, r = set(range(30)), 0
    while left:
        front = [i for i in left if not any(dominates(j, i) for j in left if j != i)]
        rank[front] = r
        left -= set(front)
        r += 1
    got = np.asarray(jax.jit(non_dominated_rank)(jnp.asarray(f), jnp.asarray(v)))
    np.testing.assert_array_equal(got, rank)
    assert got[v <= 0].max() < got[v > 0].min()  # every feasible point ranks first


def test_nsga2_constrained_finds_the_constr_front():
    """CONSTR (Deb 2001; Deb et al. 2002, Table V): min (x1, (1 + x2) / x1) on [0.1, 1] x [0, 5]
    s.t. x2 + 9 x1 >= 6 and 9 x1 - x2 >= 1. Its Pareto front is analytic: f2 = (7 - 9 f1) / f1
    for f1 in [7/18, 2/3] and f2 = 1 / f1 for f1 in [2/3, 1]; hypervolume 5.3327 for the
    reference (1.1, 10). The unconstrained optimum of f1 (0.1) is infeasible."""
    space = Space({"x1": Float(0.1, 1.0), "x2": Float(0.0, 5.0)})

    def constr(u):
        x1, x2 = 0.1 + 0.9 * u[0], 5.0 * u[1]
        return (jnp.stack([x1, (1 + x2) / x1]),
                jnp.stack([6 - x2 - 9 * x1, 1 + x2 - 9 * x1]))  # <= 0 feasible

    s = nsga2(space, 40, num_constraints=2)
    assert s.num_constraints == 2 and s.config["num_constraints"] == 2

    @jax.jit
    def go(key):
        def gen(state, k):
            x, state = s.ask(k, state)
            f, c = jax.vmap(constr)(x)
            return s.tell(state, x, f, c), None

        return jax.lax.scan(gen, s.init(key), jax.random.split(key, 30))[0]

    state = go(jax.random.key(0))
    f, c = (np.asarray(a) for a in jax.vmap(constr)(state.population))
    assert np.all(c <= 0) and np.all(np.asarray(state.violation) == 0)
    assert f[:, 0].min() >= 7 / 18 - 1e-6  # the constraint cut off f1 < 7/18
    front = np.where(f[:, 0] < 2 / 3, (7 - 9 * f[:, 0]) / f[:, 0], 1 / f[:, 0])
    assert np.all(f[:, 1] >= front - 1e-4)  # nothing beyond the analytic front
    assert np.median(f[:, 1] / front - 1) < 0.05
    hv = hypervolume(f, (1.1, 10.0))
    assert 0.95 * 5.3327 < hv <= 5.3327  # measured 5.165 (96.9%) at 30 x 40 evaluations
    with pytest.raises(ValueError, match="constraints"):
        s.tell(state, state.population, jnp.zeros((40, 2)))
