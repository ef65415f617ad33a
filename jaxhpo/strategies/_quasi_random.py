"""Quasi-random search with a scrambled Halton sequence.

Halton (1960) points use the radical inverse of the trial index in the j-th prime base for
coordinate j. Plain Halton points are strongly correlated between large-prime coordinates; we
apply random *linear digit scrambling* (Matoušek, "On the L2-discrepancy for anchored boxes",
J. Complexity 1998): digit ``a`` at position ``k`` of coordinate ``j`` becomes
``(m_jk * a + s_jk) mod p_j`` with ``m_jk`` in ``[1, p_j)`` and ``s_jk`` in ``[0, p_j)`` drawn from
the init key. Each permutation is a bijection on digits, so the scrambled sequence keeps the
stratification (low discrepancy) of Halton while each key gives an independent randomization.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import Strategy, check_population_size, check_space

# Digits kept per coordinate: enough to resolve every int32 index in base 2.
_NUM_DIGITS = 31


def first_primes(n: int) -> np.ndarray:
    """The first ``n`` primes as ``i32[n]``."""
    limit = max(16, int(n * (math.log(n + 2) + math.log(math.log(n + 2)))) + 10)
    sieve = np.ones(limit + 1, bool)
    sieve[:2] = False
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = False
    return np.nonzero(sieve)[0][:n].astype(np.int32)


@struct.dataclass
class QuasiRandomState:
    index: jax.Array  # i32[]       next sequence index
    mult: jax.Array  # i32[d, K]    digit multipliers m_jk
    shift: jax.Array  # i32[d, K]   digit shifts s_jk


def halton(index: jax.Array, bases: jax.Array, mult: jax.Array, shift: jax.Array) -> jax.Array:
    """Scrambled Halton points for integer indices.

    Args:
      index: ``i32[n]`` sequence indices (>= 0).
      bases: ``i32[d]`` prime bases.
      mult, shift: ``i32[d, K]`` digit-scrambling parameters (``mult=1, shift=0`` = plain Halton).

    Returns:
      ``f32[n, d]`` in ``[0, 1)``.
    """
    n = jnp.broadcast_to(index[:, None], (index.shape[0], bases.shape[0])).astype(jnp.int32)
    p = bases[None, :]
    inv_p = 1.0 / bases.astype(jnp.float32)

    def digit_step(k, carry):
        n, out, scale = carry
        digit = (mult[None, :, k] * (n % p) + shift[None, :, k]) % p
        return n // p, out + digit.astype(jnp.float32) * scale, scale * inv_p

    init = (n, jnp.zeros(n.shape, jnp.float32), jnp.broadcast_to(inv_p, n.shape))
    _, out, _ = jax.lax.fori_loop(0, mult.shape[1], digit_step, init)
    return jnp.minimum(out, jnp.float32(1.0 - 2.0**-24))


def quasi_random(space, population_size: int, *, scramble: bool = True) -> Strategy:
    """Low-discrepancy proposals from a (randomly scrambled) Halton sequence.

    Consecutive ``ask`` calls continue the same sequence, so the first ``n`` proposals of a run
    are always the first ``n`` points of one low-discrepancy sequence, whatever the population
    size. The ``ask`` key is unused; the randomization is fixed by the ``init`` key.

    Args:
      space: the search space.
      population_size: proposals per ``ask``.
      scramble: apply random linear digit scrambling (recommended; ``False`` gives the classic
        deterministic Halton sequence, starting at index 1 to skip the origin).

    Returns:
      A :class:`jaxhpo.Strategy`.

    References:
      Halton, "On the efficiency of certain quasi-random sequences of points in evaluating
      multi-dimensional integrals", Numerische Mathematik 1960. Matoušek 1998 (see module).
    """
    pop = check_population_size(population_size)
    d = check_space(space)
    if not isinstance(scramble, bool):
        raise TypeError(f"scramble must be True or False, got {scramble!r}")
    bases = jnp.asarray(first_primes(d))

    def init(key):
        if not scramble:
            ones = jnp.ones((d, _NUM_DIGITS), jnp.int32)
            return QuasiRandomState(jnp.ones((), jnp.int32), ones, 0 * ones)
        k_mult, k_shift = jax.random.split(key)
        u_m = jax.random.uniform(k_mult, (d, _NUM_DIGITS))
        u_s = jax.random.uniform(k_shift, (d, _NUM_DIGITS))
        p = bases[:, None].astype(jnp.float32)
        mult = 1 + jnp.floor(u_m * (p - 1)).astype(jnp.int32)
        shift = jnp.floor(u_s * p).astype(jnp.int32)
        mult = jnp.minimum(mult, bases[:, None] - 1)
        shift = jnp.minimum(shift, bases[:, None] - 1)
        return QuasiRandomState(jnp.zeros((), jnp.int32), mult, shift)

    def ask(key, state):
        del key
        idx = state.index + jnp.arange(pop, dtype=jnp.int32)
        x = halton(idx, bases, state.mult, state.shift)
        return x, state.replace(index=state.index + pop)

    def tell(state, x, fitness):
        del x, fitness
        return state

    return Strategy(init, ask, tell, pop, d, "quasi_random")
