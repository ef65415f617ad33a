"""Decision codes and argument checks shared by the scheduler rules.

Every rule returns per-slot ``int32`` codes so a slot-based driver can apply them with
``jnp.where``/gathers, never Python control flow:

* ``CONTINUE`` (0): keep training the trial in its slot.
* ``STOP`` (1): stop the trial; its slot is free for a new configuration.
* ``PROMOTE`` (2): the trial survives a rung (successive halving, ASHA) and trains to the next.
* ``EXPLOIT`` (3): PBT: overwrite the member with a copy of a better one, then explore.

Metrics are minimized. A non-finite metric (NaN, +inf, -inf) means the trial diverged: it ranks
after every finite value and is always stopped (or, in PBT, always replaced).
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

CONTINUE, STOP, PROMOTE, EXPLOIT = 0, 1, 2, 3
DECISION_NAMES = {CONTINUE: "continue", STOP: "stop", PROMOTE: "promote", EXPLOIT: "exploit"}


def worst_if_nonfinite(values: jax.Array) -> jax.Array:
    """``values`` with every non-finite entry (NaN, +-inf = diverged) replaced by ``+inf``."""
    v = jnp.asarray(values, jnp.float32)
    return jnp.where(jnp.isfinite(v), v, jnp.inf)


def rank_ascending(values: jax.Array, valid: jax.Array) -> jax.Array:
    """Rank of each entry among the ``valid`` ones (0 = lowest); invalid entries rank last.

    Non-finite values rank after every finite one; ties break by index (stable sort), so the
    ranking is deterministic. Returns ``i32[n]``; invalid entries get ranks ``>= count(valid)``.
    """
    v = worst_if_nonfinite(values)
    # Two stable sorts: by value, then by validity, gives (invalid last, then value, then index).
    order = jnp.argsort(v, stable=True)
    order = order[jnp.argsort(~valid[order], stable=True)]
    return jnp.zeros(v.shape, jnp.int32).at[order].set(jnp.arange(v.shape[0], dtype=jnp.int32))


def check_eta(eta) -> float:
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not math.isfinite(eta) \
            or eta < 2:
        raise ValueError(f"eta (the reduction factor) must be a number >= 2, got {eta!r}; "
                         "the papers use eta=3")
    return eta


def check_int(value, arg: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{arg} must be an int >= {low}, got {value!r}")
    return int(value)


def check_fraction(value, arg: str, low: float, high: float, *, low_open=True,
                   high_open=False) -> float:
    if isinstance(value, jax.Array):  # traced settings (e.g. vmapped over) are not checked
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and \
             (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{arg} must be a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def check_curves(curves, mask):
    """Validate metric curves ``f32[N, S]`` (trials x reports) and their mask of equal shape."""
    curves = jnp.asarray(curves, jnp.float32)
    if curves.ndim != 2:
        raise ValueError(f"curves must be f32[N, S] (trials x reports), got shape {curves.shape}")
    mask = jnp.asarray(mask, bool)
    if mask.shape != curves.shape:
        raise ValueError(f"mask must have the shape of curves {curves.shape}, got {mask.shape}")
    return curves, mask
