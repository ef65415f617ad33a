"""Shared test helper: run a strategy for some generations inside one jitted lax.scan."""

import jax
import jax.numpy as jnp


def scan_strategy(strategy, f, gens, key):
    """Run ``gens`` generations on ``f`` (one point -> fitness, vmapped).

    Returns ``(final_state, fitness f[gens, pop(, m)], proposals f32[gens, pop, d])``; the
    init key and the per-generation ask keys are split from ``key``.
    """
    @jax.jit
    def go(key):
        k_init, key = jax.random.split(key)

        def gen(state, k):
            x, state = strategy.ask(k, state)
            fx = jax.vmap(f)(x)
            return strategy.tell(state, x, fx), (fx, x)

        return jax.lax.scan(gen, strategy.init(k_init), jax.random.split(key, gens))

    state, (fs, xs) = go(key)
    return state, fs, xs


def best_value(strategy, f, gens, seed=0):
    """Lowest fitness seen over ``gens`` generations (single objective)."""
    _, fs, _ = scan_strategy(strategy, f, gens, jax.random.key(seed))
    return float(jnp.min(fs))
