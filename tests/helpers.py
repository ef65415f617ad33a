"""Shared test helpers: run a strategy for some generations inside one jitted lax.scan; the
XLA options under which two different programs compute bit-identical results."""

import os

import jax
import jax.numpy as jnp

# ``jax.jit(..., compiler_options=DEFAULT_EMITTERS)``: XLA's default CPU fusion emitters for a
# program whose results a test compares bit for bit with another program's. The suite compiles
# with the older emitters (conftest.py), whose rounding depends on how XLA fused each program.
DEFAULT_EMITTERS = ({"xla_cpu_use_fusion_emitters": True}
                    if "xla_cpu_use_fusion_emitters=false" in os.environ.get("XLA_FLAGS", "")
                    else {})


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


def curve_objective(params, trial):
    """A Python objective with learning curves f(a, b) + 1/step, reported every 10 steps to 90;
    f is minimal (0) at a = 0.3, b = 0.6."""
    import jaxhpo

    f = (params["a"] - 0.3) ** 2 + (params["b"] - 0.6) ** 2
    for s in range(10, 91, 10):
        trial.report(s, f + 1.0 / s)
        if trial.should_stop():
            raise jaxhpo.StopTrial()
    return f + 1.0 / 90
