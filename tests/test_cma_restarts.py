"""IPOP/BIPOP-CMA-ES: restarts keep shapes fixed, follow the papers' schedule, and escape the
local optima of Rastrigin where a single small-population CMA-ES run gets stuck."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import DEFAULT_EMITTERS
from jaxhpo import Float, Space
from jaxhpo.strategies import cma_es, cma_es_restarts
from jaxhpo.strategies._cma_restarts import STOP_CRITERIA


def cube(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


def run_loop(s, f, gens, seed=0):
    """Jitted ask/tell in a Python loop with trace counters; one state snapshot per tell."""
    traces = {"ask": 0, "tell": 0}

    def ask(key, state):
        traces["ask"] += 1
        return s.ask(key, state)

    def tell(state, x, fx):
        traces["tell"] += 1
        return s.tell(state, x, fx)

    ask, tell = jax.jit(ask), jax.jit(tell)
    state = s.init(jax.random.key(seed))
    snaps, asked = [], []
    for g in range(gens):
        x, state = ask(jax.random.fold_in(jax.random.key(seed + 1), g), state)
        assert x.shape == (s.population_size, s.num_dims)
        asked.append(jax.device_get(state))
        state = tell(state, x, jax.vmap(f)(x))
        snaps.append(jax.device_get(state))
    return snaps, asked, traces


def flat(x):
    """A plateau (the value ignores x below float32 resolution): every run must stop."""
    return jnp.float32(1.0) + 0.0 * jnp.sum(x)


def test_bipop_schedule_on_a_plateau_without_retracing():
    """Every run stops on a plateau (EqualFunVals), so restarts come quickly; ask/tell trace
    once although the population level changes."""
    s = cma_es_restarts(cube(3), 6, mode="bipop", max_doublings=3, sigma0=0.2)
    snaps, asked, traces = run_loop(s, flat, 300)
    assert traces == {"ask": 1, "tell": 1}
    assert all(int(st.stop_flags) & (1 << STOP_CRITERIA.index("equal_fun_vals"))
               for st in snaps if st.restarts > 0)
    assert float(snaps[-1].best_fitness) == 1.0
    # (small, level, sigma) at the first ask of each run after the first
    runs = [(bool(b.small), int(b.level), float(b.core.sigma))
            for a, b in zip(snaps, asked[1:]) if a.pending]
    assert len(runs) >= 6
    large = [r for r in runs if not r[0]]
    small = [r for r in runs if r[0]]
    assert large and small
    # large runs: IPOP doubling with sigma0; small runs: below half the last large population,
    # sigma0 * 10**(-2U) (Hansen 2009)
    assert [r[1] for r in large] == [min(i, 3) for i in range(1, len(large) + 1)]
    assert all(r[2] == pytest.approx(0.2) for r in large)
    assert all(0.2 * 1e-2 <= r[2] <= 0.2 for r in small)
    last_large = 0
    for is_small, level, _ in runs:
        if is_small:
            assert level <= max(last_large - 1, 0)
        else:
            last_large = level
    # budgets: at each restart the regime with fewer evaluations so far runs next
    decided = [st for st in snaps if st.pending]
    assert all(bool(st.small) == (int(st.budget_small) < int(st.budget_large))
               for st in decided)
    assert int(snaps[-1].budget_small) > 0 and int(snaps[-1].budget_large) > 0


def rastrigin_unit(d, seed=0):
    """Rastrigin on [-5.12, 5.12]^d mapped to the unit cube, optimum 0 moved off the centre."""
    shift = jnp.asarray(0.5 + 0.15 * np.random.default_rng(seed).uniform(-1, 1, d),
                        jnp.float32)

    def f(u):
        z = 10.24 * (u - shift)
        return 10 * d + jnp.sum(z**2 - 10 * jnp.cos(2 * jnp.pi * z))

    return f


D, LAM, GENS, SEEDS = 10, 10, 2000, 4


def run_seeds(s, f, seeds, gens=GENS):
    """Final states and the first 50 generations' proposals per seed (one compile; with XLA's
    default emitters, so that two strategies computing the same thing agree bit for bit)."""
    @functools.partial(jax.jit, compiler_options=DEFAULT_EMITTERS)
    def go(key):
        k_init, key = jax.random.split(key)

        def gen(state, k):
            x, state = s.ask(k, state)
            return s.tell(state, x, jax.vmap(f)(x)), x

        state, xs = jax.lax.scan(gen, s.init(k_init), jax.random.split(key, gens))
        return state, xs[:50]

    return [jax.device_get(go(jax.random.key(i))) for i in seeds]


@pytest.fixture(scope="module")
def plain_rastrigin():
    return run_seeds(cma_es(cube(D), LAM), rastrigin_unit(D), range(SEEDS))


def test_without_restarts_it_is_cma_es_bit_for_bit(plain_rastrigin):
    (st, xs), = run_seeds(cma_es_restarts(cube(D), LAM, max_restarts=0), rastrigin_unit(D),
                          [0], gens=200)
    np.testing.assert_array_equal(xs, plain_rastrigin[0][1])
    assert int(st.restarts) == 0 and st.core.y.shape == (LAM, D)  # no lambda_max buffer


def test_ipop_escapes_rastrigin_local_optima_that_stop_cma_es(plain_rastrigin):
    """Rastrigin-10 at 20,000 evaluations, lambda0 = 10: a single CMA-ES run with the default
    population converges to a local optimum (f ~ 10-20 for this shift); larger populations
    smooth out the ripples (Auger & Hansen 2005, Fig. 2), so IPOP ends far lower."""
    plain = np.array([float(st.best_fitness) for st, _ in plain_rastrigin])
    runs = run_seeds(cma_es_restarts(cube(D), LAM, max_doublings=4), rastrigin_unit(D),
                     range(SEEDS))
    ipop = np.array([float(st.best_fitness) for st, _ in runs])
    for st, _ in runs:  # after r restarts the population is 2**min(r, K) * lambda0
        assert int(st.restarts) >= 2
        assert int(st.level) == min(int(st.restarts) - int(st.pending), 4)
    # a statement about typical runs (a single run's end point is chaotic: it moves with the
    # compiler's floating-point choices): plain CMA-ES typically stalls in a local optimum,
    # and every IPOP run ends below the typical plain run
    assert np.median(plain) > 5.0, plain
    assert np.median(ipop) < 0.3 * np.median(plain) and ipop.max() < np.median(plain), (ipop,
                                                                                        plain)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        cma_es_restarts(cube(2), mode="nipop")
    with pytest.raises(ValueError, match="max_doublings"):
        cma_es_restarts(cube(2), max_doublings=-1)
    with pytest.raises(ValueError, match="max_restarts"):
        cma_es_restarts(cube(2), max_restarts=1.5)
    with pytest.raises(ValueError, match="sigma0"):
        cma_es_restarts(cube(2), sigma0=0.0)
