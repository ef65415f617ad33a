"""Conformance suite: every strategy in jaxhpo.strategies.REGISTRY must pass these tests.

In the spirit of optax's ``_OPTIMIZERS_UNDER_TEST`` and evosax's conftest: shapes and bounds of
``ask``, no retrace across generations, determinism under a fixed key, running inside
``lax.scan``, finite state and proposals under NaN/inf fitness, and progress on a function
with a known optimum.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.strategies import REGISTRY

NAMES = sorted(REGISTRY)
POP = 16


def mixed_space():
    return Space({"a": Float(0.0, 1.0), "b": Float(1e-3, 1.0, log=True), "n": Int(1, 9),
                  "c": Categorical(["x", "y", "z"]),
                  "m": Float(0.0, 1.0, condition={"c": ["x", "y"]})})


def unit_space(d):
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


# The lax.scan, NaN/inf and progress tests share one space (and the driver names of ``run``),
# so a strategy's jitted ask/tell compile once per process and later tests hit the persistent
# compilation cache (compiling gp_bo and ppo_agent dominates this file's time on a CPU).
SPACE_2D = unit_space(2)


def toy_fitness(x, m):
    """Sphere centred at 0.3 (m = 1); for m = 2 a second sphere centred at 0.7."""
    f1 = jnp.sum((x - 0.3) ** 2, axis=-1)
    if m == 1:
        return f1
    return jnp.stack([f1, jnp.sum((x - 0.7) ** 2, axis=-1)], axis=-1)


def run(strategy, key, gens, m, corrupt=False):
    """Python loop of ask/tell (jitted), returning all proposals and the final state."""
    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
    k_init, key = jax.random.split(key)
    state = strategy.init(k_init)
    xs = []
    for g in range(gens):
        key, k = jax.random.split(key)
        x, state = ask(k, state)
        f = toy_fitness(x, m)
        if corrupt:
            bad = jnp.array([jnp.nan, jnp.inf, -jnp.inf, jnp.nan] * (POP // 4), jnp.float32)
            mask = jnp.arange(POP) % 2 == 0
            f = jnp.where(mask if f.ndim == 1 else mask[:, None],
                          bad if f.ndim == 1 else bad[:, None], f)
        state = tell(state, x, f)
        xs.append(x)
    return jnp.stack(xs), state


@pytest.mark.parametrize("name", NAMES)
def test_ask_shape_dtype_bounds(name):
    space = mixed_space()
    s = REGISTRY[name].make(space, POP)
    assert s.population_size == POP and s.num_dims == space.dim
    xs, _ = run(s, jax.random.key(0), 3, REGISTRY[name].num_objectives)
    assert xs.shape == (3, POP, space.dim) and xs.dtype == jnp.float32
    assert bool(jnp.all((xs >= 0.0) & (xs <= 1.0)))


@pytest.mark.parametrize("name", NAMES)
def test_no_retrace_across_generations(name):
    """Six generations of jitted ask/tell trace each once (``chex.assert_max_traces``)."""
    space = mixed_space()
    s = REGISTRY[name].make(space, POP)
    chex.clear_trace_counter()  # strategies built by one factory share chex's trace counter
    # chex wraps with functools.wraps: the jitted programs keep the names "ask"/"tell", so
    # they equal (and are served from the compilation cache as) those of
    # test_ask_shape_dtype_bounds
    run(s._replace(ask=chex.assert_max_traces(s.ask, n=1),
                   tell=chex.assert_max_traces(s.tell, n=1)), jax.random.key(1), 6,
        REGISTRY[name].num_objectives)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_fixed_key(name):
    s = REGISTRY[name].make(mixed_space(), POP)
    m = REGISTRY[name].num_objectives
    a, _ = run(s, jax.random.key(7), 3, m)
    b, _ = run(s, jax.random.key(7), 3, m)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", NAMES)
def test_runs_inside_lax_scan(name):
    s = REGISTRY[name].make(SPACE_2D, POP)
    m = REGISTRY[name].num_objectives
    key = jax.random.key(3)

    @jax.jit
    def scanned(key):
        k_init, key = jax.random.split(key)

        def gen(carry, _):
            state, key = carry
            key, k = jax.random.split(key)
            x, state = s.ask(k, state)
            return (s.tell(state, x, toy_fitness(x, m)), key), x

        _, xs = jax.lax.scan(gen, (s.init(k_init), key), None, length=4)
        return xs

    xs_scan = scanned(key)
    xs_loop, _ = run(s, key, 4, m)
    if REGISTRY[name].scan_exact:
        np.testing.assert_allclose(np.asarray(xs_scan), np.asarray(xs_loop), rtol=1e-5,
                                   atol=1e-6)
    else:  # see RegistryEntry.scan_exact
        np.testing.assert_allclose(np.asarray(xs_scan[0]), np.asarray(xs_loop[0]), rtol=1e-5,
                                   atol=1e-6)
        assert bool(jnp.all(jnp.isfinite(xs_scan) & (xs_scan >= 0) & (xs_scan <= 1)))


@pytest.mark.parametrize("name", NAMES)
def test_nan_inf_fitness_keeps_state_and_proposals_finite(name):
    s = REGISTRY[name].make(SPACE_2D, POP)
    xs, state = run(s, jax.random.key(4), 8, REGISTRY[name].num_objectives, corrupt=True)
    assert bool(jnp.all(jnp.isfinite(xs))) and bool(jnp.all((xs >= 0) & (xs <= 1)))
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf))), f"{name}: non-finite state leaf"


# Progress is measured against random search on the same budget (PROGRESS_GENS x POP proposals,
# same function): a strategy's median regret over PROGRESS_SEEDS must be at most
# BEAT_RANDOM[m] x random search's median over REFERENCE_SEEDS (random search costs nothing, so
# its median is taken over many seeds and is stable: 9.8e-4 measured, 1.15e-3 by the closed
# form). One objective: a uniform sampler meets 1/4 with probability ~0.03 (at least 3 of 5 runs
# below its own 0.16-quantile); the adaptive strategies beat it by 8x or more (measured). Two
# objectives: the regret is a median over the last population, which varies little for a
# uniform sampler, so half its median is already out of its reach (NSGA-II keeps a spread
# population on the front: 0.2-0.3x).
PROGRESS_GENS = 12
PROGRESS_SEEDS = (5, 6, 7, 8, 9)
REFERENCE_SEEDS = range(32)
BEAT_RANDOM = {1: 0.25, 2: 0.5}
# Registered strategies that do not beat random search by that much on this problem and budget
# (median regret / random search's, measured). Strict ones: a strategy that starts to pass fails
# the suite, so the list stays true.
NOT_BETTER_THAN_RANDOM = {
    "grid_search": ("enumerates its 32 x 32 grid in order: the first 192 points have x0 <= 0.16 "
                    "(20x random search's regret); not adaptive", True),
    "quasi_random": ("space-filling, not adaptive: its best point is about as close as random "
                     "search's (0.6x)", True),
    "ppo_agent": ("the registry's small agent does no better than random search on this 2-d "
                  "problem (1.7x its regret; 1x at 320 evaluations)", True),
    "simulated_annealing": ("with the default schedule it beats random search by 4x on some "
                            "seeds only (0.14x on seeds 5-9, ~0.9x on six others)", False),
}
def best_regret(xs, m):
    """Regret of the proposals ``xs: f32[gens, pop, 2]``. One objective: the best squared
    distance to the optimum 0.3. Two: how far the last population is from the Pareto set (the
    segment from 0.3 to 0.7 on the diagonal), the median distance of its members -- a
    multi-objective search moves its whole population to the front."""
    xs = np.asarray(xs)
    if m == 1:
        return float(np.min(np.sum((xs - 0.3) ** 2, axis=-1)))
    last = xs[-1]
    t = np.clip(last.mean(axis=1), 0.3, 0.7)
    return float(np.median(np.linalg.norm(last - t[:, None], axis=1)))


def progress(strategy, m, seeds, objectives=None):
    """Median over ``seeds`` of the best regret (for ``m`` objectives) of PROGRESS_GENS
    generations told ``objectives`` (default ``m``) objectives."""
    return float(np.median([best_regret(run(strategy, jax.random.key(seed), PROGRESS_GENS,
                                            objectives or m)[0], m) for seed in seeds]))


@functools.lru_cache(maxsize=None)
def random_search_reference(m):
    """Random search's median best regret over REFERENCE_SEEDS (its proposals ignore fitness)."""
    return progress(REGISTRY["random_search"].make(SPACE_2D, POP), m, REFERENCE_SEEDS,
                    objectives=1)


def test_random_search_reference_matches_the_closed_form():
    """The reference itself: for n uniform points, P(best squared distance to 0.3 > r) =
    (1 - pi r)^n, so its median is (1 - 2^(-1/n)) / pi."""
    n = PROGRESS_GENS * POP
    closed = (1 - 2 ** (-1 / n)) / np.pi
    assert 0.6 * closed < random_search_reference(1) < 1.6 * closed, (
        random_search_reference(1), closed)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=NOT_BETTER_THAN_RANDOM[n][0],
                                            strict=NOT_BETTER_THAN_RANDOM[n][1]))
    if n in NOT_BETTER_THAN_RANDOM else n for n in NAMES if n != "random_search"])
def test_progress_beats_random_search(name):
    """Median regret over 5 seeds x 12 generations x 16 on a 2-d sphere (optimum 0 at 0.3; for
    two objectives: the last population's distance to the Pareto set) <= 1/4 (1/2) of random
    search's median on the same budget."""
    m = REGISTRY[name].num_objectives
    got = progress(REGISTRY[name].make(SPACE_2D, POP), m, PROGRESS_SEEDS)
    reference = random_search_reference(m)
    assert got <= BEAT_RANDOM[m] * reference, (got, reference)
