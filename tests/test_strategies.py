"""Strategy-specific truths for random, quasi-random (Halton) and grid search."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import qmc

from jaxhpo import Categorical, Float, Int, Space, sanitize_fitness
from jaxhpo.strategies import grid_search, quasi_random, random_search
from jaxhpo.strategies._quasi_random import first_primes


def unit_space(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def take(strategy, gens, seed=0):
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    state = strategy.init(jax.random.key(seed))
    xs = []
    for g in range(gens):
        x, state = ask(jax.random.key(1000 + g), state)
        state = tell(state, x, jnp.zeros(strategy.population_size))
        xs.append(np.asarray(x))
    return np.concatenate(xs)


def test_first_primes():
    assert list(first_primes(10)) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert first_primes(100)[-1] == 541


def test_unscrambled_halton_is_the_van_der_corput_sequence():
    x = take(quasi_random(unit_space(2), 4, scramble=False), 2)
    np.testing.assert_allclose(x[:, 0], [1 / 2, 1 / 4, 3 / 4, 1 / 8, 5 / 8, 3 / 8, 7 / 8, 1 / 16])
    np.testing.assert_allclose(x[:, 1], [1 / 3, 2 / 3, 1 / 9, 4 / 9, 7 / 9, 2 / 9, 5 / 9, 8 / 9],
                               rtol=1e-6)


def test_quasi_random_has_low_discrepancy():
    """Centered L2 discrepancy (scipy) of 256 points in 5-d: far below i.i.d. uniform, on par
    with scipy's own scrambled Halton."""
    d, n = 5, 256
    ours = [qmc.discrepancy(take(quasi_random(unit_space(d), 64), n // 64, seed=s))
            for s in range(5)]
    rng = np.random.default_rng(0)
    iid = [qmc.discrepancy(rng.random((n, d))) for _ in range(20)]
    ref = [qmc.discrepancy(qmc.Halton(d, scramble=True, seed=s).random(n)) for s in range(5)]
    assert np.median(ours) < 0.35 * np.median(iid)
    assert np.median(ours) < 1.5 * np.median(ref)


def test_quasi_random_sequence_independent_of_population_size():
    a = take(quasi_random(unit_space(3), 8), 4)
    b = take(quasi_random(unit_space(3), 32), 1)
    np.testing.assert_allclose(a, b)


def test_quasi_random_scrambles_differ_by_key():
    a = take(quasi_random(unit_space(3), 8), 1, seed=0)
    b = take(quasi_random(unit_space(3), 8), 1, seed=1)
    assert not np.allclose(a, b)


def test_random_search_is_uniform():
    x = take(random_search(unit_space(3), 1000), 4)
    assert x.shape == (4000, 3)
    np.testing.assert_allclose(x.mean(0), 0.5, atol=0.02)
    np.testing.assert_allclose(x.var(0), 1 / 12, atol=0.005)


def test_grid_search_covers_every_point_exactly_once_then_wraps():
    space = Space({"a": Float(0.0, 1.0), "b": Int(1, 3), "c": Categorical(["u", "v"])})
    grid = space.grid(4)  # 4 * 3 * 2 = 24 points
    assert grid.shape == (24, 3)
    s = grid_search(space, 4, population_size=5)
    assert s.max_generations == 5
    x = take(s, 5)
    first = x[:24]
    assert len({tuple(r) for r in first}) == 24
    np.testing.assert_array_equal(first, grid)
    np.testing.assert_array_equal(x[24], grid[0])  # wraps in the partial last generation
    whole = grid_search(space, 4)
    assert whole.population_size == 24 and whole.max_generations == 1


def test_sanitize_fitness_replaces_non_finite_by_worst():
    f = jnp.array([1.0, jnp.nan, -2.0, jnp.inf, -jnp.inf])
    clean, ok = sanitize_fitness(f)
    np.testing.assert_allclose(np.asarray(clean), [1.0, 3.0, -2.0, 3.0, 3.0])
    assert list(np.asarray(ok)) == [True, False, True, False, False]
    allbad, ok = sanitize_fitness(jnp.array([jnp.nan, jnp.nan]))
    assert bool(jnp.all(jnp.isfinite(allbad))) and not bool(ok.any())
    mo, ok = sanitize_fitness(jnp.array([[1.0, jnp.nan], [2.0, 5.0]]))
    np.testing.assert_allclose(np.asarray(mo), [[1.0, 11.0], [2.0, 5.0]])
    assert list(np.asarray(ok)) == [False, True]


@pytest.mark.parametrize("factory", [random_search, quasi_random])
def test_bad_population_size(factory):
    with pytest.raises(ValueError, match="population_size"):
        factory(unit_space(2), 0)
    with pytest.raises(TypeError, match="population_size"):
        factory(unit_space(2), 2.5)
