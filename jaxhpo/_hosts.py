"""Arrays across the processes of a ``jax.distributed`` run (JAX's multi-controller runtime).

Every process runs the same driver loop with the same host values. These two helpers move a
pytree between the host and a sharding over every process's devices, and are plain
``jax.device_put`` / ``jax.device_get`` in a single process.
"""

from __future__ import annotations

import jax
import numpy as np


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def put(tree, sharding):
    """``tree`` placed with ``sharding``. In a multi-process run the sharding spans devices
    this process cannot address, so each leaf is built from the host value every process holds
    (``jax.make_array_from_callback``); PRNG keys travel as their key data."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(a):
        if isinstance(a, jax.core.Tracer):  # traced (e.g. jax.eval_shape): a constraint
            return jax.lax.with_sharding_constraint(a, sharding)
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return jax.jit(lambda b: b, out_shardings=sharding)(a)  # already global: reshard
        key = _is_key(a)
        host = np.asarray(jax.random.key_data(a) if key else a)
        out = jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
        return jax.random.wrap_key_data(out, impl=jax.random.key_impl(a)) if key else out

    return jax.tree.map(one, tree)


def to_host(tree):
    """``jax.device_get(tree)``, gathering leaves that span other processes' devices
    (``multihost_utils.process_allgather``) so every process receives the whole value."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            if _is_key(a):
                return jax.random.wrap_key_data(np.asarray(multihost_utils.process_allgather(
                    jax.random.key_data(a), tiled=True)), impl=jax.random.key_impl(a))
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return jax.device_get(a)

    return jax.tree.map(one, tree)


def agreed(value):
    """Process 0's ``value`` (a bool or number) on every process, so decisions that depend on
    a clock or a callback (time budgets, early stops) are taken by all processes together."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return type(value)(np.asarray(multihost_utils.broadcast_one_to_all(np.asarray(value))))
