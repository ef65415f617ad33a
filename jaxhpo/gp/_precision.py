"""The one place where the GP goes to float64, and how that stays invisible to a user.

Why: in float32 the posterior variance near observed points, ``s - k^T K^-1 k``, cancels to
noise, which limits how close to an optimum the acquisition can steer (Branin's last 1e-4 of
regret). So the GP fit, its factor and the acquisition are computed in float64 — even when the
global ``jax_enable_x64`` is off, as it is by default.

How: :func:`scope` traces the GP numerics inside ``jax.enable_x64(True)``. Under an outer
``jit``/``scan`` traced with x64 off, the ops traced inside the scope carry ``float64`` avals
and XLA runs them in float64; the program is *lowered* later, under the caller's setting.
That split is what this module relies on, and ``tests/test_gp.py`` checks it, so a JAX upgrade
that changes it fails a test rather than a benchmark. It also sets the rules for code inside
the scope:

* no primitive whose lowering re-traces Python with dtype-dependent constants: ``jnp.argmax``
  / ``lax.argmax`` fail (their reducer is traced at lowering time, under x64 off), so use
  :func:`argmax` / :func:`argmin` here, built from ``max`` and ``where``;
* only the GP's own numerics run inside: random draws and code written for float32 (the
  Space's snapping, neutral values and activity masks) run outside it, in float32 — the
  latter is not x64-safe, and this way a key gives the same proposals whatever the setting.

What a user sees: no ``float64`` leaf, ever. Observations are stored in float32 (exactly what
was told; the numerics upcast them exactly), and the float64 arrays the GP keeps between
calls (hyperparameters, Cholesky factor) are stored by :func:`pack` as their bit patterns,
``uint32[..., 2]``, and restored by :func:`unpack` inside the scope. Bit patterns keep a state
written to a journal and read back bit-exact, and make the state's dtypes independent of the
global x64 switch.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np


def dtype(float64: bool):
    """The GP's float type: ``float64`` inside :func:`scope` when requested, else float32."""
    return jnp.float64 if float64 else jnp.float32


@contextlib.contextmanager
def scope(float64: bool = True):
    """Trace the enclosed GP numerics with 64-bit types enabled (no-op when not ``float64``)."""
    if not float64:
        yield
        return
    with jax.enable_x64(True):
        yield


def _x64_enabled() -> bool:
    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def pack(tree):
    """Replace each float64 leaf ``f64[...]`` by its bit pattern ``u32[..., 2]``."""
    def one(a):
        return jax.lax.bitcast_convert_type(a, jnp.uint32) if a.dtype == np.float64 else a
    return jax.tree.map(one, tree)


def unpack(tree):
    """Inverse of :func:`pack`, inside :func:`scope` (``uint32`` leaves back to float64)."""
    def one(a):
        if a.dtype != np.uint32:
            return a
        if not _x64_enabled():
            raise RuntimeError("jaxhpo.gp._precision.unpack must run inside scope(True)")
        return jax.lax.bitcast_convert_type(a, jnp.float64)
    return jax.tree.map(one, tree)


def cast(tree, dtype):
    """``tree`` with its floating leaves cast to ``dtype`` (e.g. the screening posterior)."""
    return jax.tree.map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def argmax(a: jax.Array, axis: int = -1) -> jax.Array:
    """First index of the maximum along ``axis`` (int32), from ``max`` and ``min`` only.

    ``jnp.argmax`` lowers by re-tracing a reduction at compile time under the global x64
    setting, so a float64 argmax traced inside :func:`scope` fails. NaN entries never win
    (callers pass sanitized scores).
    """
    axis = axis % a.ndim
    m = jnp.max(a, axis=axis, keepdims=True)
    idx = jax.lax.broadcasted_iota(jnp.int32, a.shape, axis)
    return jnp.min(jnp.where(a == m, idx, a.shape[axis]), axis=axis).clip(0, a.shape[axis] - 1)


def argmin(a: jax.Array, axis: int = -1) -> jax.Array:
    """First index of the minimum along ``axis`` (see :func:`argmax`)."""
    return argmax(-a, axis)
