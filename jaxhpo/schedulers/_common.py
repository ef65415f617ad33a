"""The decision vocabulary and the argument checks shared by the scheduler rules.

Every rule returns per-slot ``int32`` codes equal to :class:`Decision` values, so a slot-based
driver can apply them with ``jnp.where``/gathers, never Python control flow; the schedulers of
:func:`jaxhpo.tune` answer each round's reports with the same values.

Metrics are minimized. A non-finite metric (NaN, +inf, -inf) means the trial diverged: it ranks
after every finite value and is always stopped (or, in PBT, always replaced).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxhpo._validate import check_real


class Decision(enum.IntEnum):
    """What happens to a trial (or a population slot) after a report.

    The jitted rules return ``int32`` arrays of these values; the members compare equal to
    those ints (``Decision(int(code))`` names one).
    """

    CONTINUE = 0  #: keep training the trial in its slot
    STOP = 1  #: stop the trial (early-stopped or diverged); its slot is free for a new one
    PROMOTE = 2  #: it survives a rung (successive halving, ASHA) and trains to the next
    EXPLOIT = 3  #: PBT: overwrite the member with a copy of a better one, then explore
    PAUSE = 4  #: its rung is done: keep its weights for a possible promotion, free the slot
    DONE = 5  #: it trained to the full budget


CONTINUE, STOP, PROMOTE, EXPLOIT, PAUSE, DONE = Decision
DECISION_NAMES = {d: d.name.lower() for d in Decision}


class Job(NamedTuple):
    """Work for one free slot: train ``trial`` to rung ``rung`` (``target`` steps).

    ``trial`` is a paused trial to resume (promote), or negative for a new configuration. The
    jitted ASHA rules (:func:`asha_get_job`, :func:`asha_get_jobs`) return ``i32`` arrays
    (``[]`` or ``[n]``) and leave ``target`` ``None``: they know rungs, not steps. The
    schedulers of :func:`jaxhpo.tune` return plain ints with ``target`` set.
    """

    trial: int | jax.Array  # i32: the trial to resume; negative = a new configuration
    rung: int | jax.Array  # i32: the rung it trains to (0 = the first)
    target: int | None = None  # optimizer steps to train to

    @property
    def promote(self):
        """``trial >= 0``: the job resumes a paused trial instead of starting a new one."""
        return self.trial >= 0


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
    """The reduction factor: a finite number >= 2 (a ``ValueError`` naming ``eta`` otherwise)."""
    try:
        return check_real(eta, "eta (the reduction factor)", 2.0)
    except ValueError as e:
        raise ValueError(f"{e}; the papers use eta=3") from None


def check_curves(curves, mask):
    """Validate metric curves ``f32[N, S]`` (trials x reports) and their mask of equal shape."""
    curves = jnp.asarray(curves, jnp.float32)
    if curves.ndim != 2:
        raise ValueError(f"curves must be f32[N, S] (trials x reports), got shape {curves.shape}")
    mask = jnp.asarray(mask, bool)
    if mask.shape != curves.shape:
        raise ValueError(f"mask must have the shape of curves {curves.shape}, got {mask.shape}")
    return curves, mask
