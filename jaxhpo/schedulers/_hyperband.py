"""Successive halving (Jamieson & Talwalkar 2016) and HyperBand's brackets (Li et al. 2018).

Successive halving runs ``n`` configurations on a small budget ``r``, keeps the best
``floor(n_i / eta)`` of each rung and multiplies their budget by ``eta``. HyperBand hedges over
how aggressive that is by running brackets ``s = s_max, ..., 0`` (Li et al. 2018, Algorithm 1):

    s_max = floor(log_eta(R)),  B = (s_max + 1) R
    n = ceil(B / R * eta^s / (s + 1)),  r = R eta^-s
    rung i = 0..s:  n_i = floor(n eta^-i),  r_i = r eta^i

``R`` is the maximum resource in units of the minimum resource (e.g. epochs), so ``r_i`` of the
last rung is ``R``. The bracket tables are static Python data (they set array shapes); the rung
decision :func:`successive_halving_decision` is a jit-able function over slots.

References:
  K. Jamieson, A. Talwalkar. "Non-stochastic Best Arm Identification and Hyperparameter
  Optimization." AISTATS 2016.
  L. Li, K. Jamieson, G. DeSalvo, A. Rostamizadeh, A. Talwalkar. "Hyperband: A Novel
  Bandit-Based Approach to Hyperparameter Optimization." JMLR 18(185), 2018.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxhpo._validate import check_int, check_real
from jaxhpo.schedulers._common import PROMOTE, STOP, check_eta, rank_ascending


class Rung(NamedTuple):
    """One rung of a bracket: ``n`` configurations each trained to resource ``r``."""

    n: int
    r: float


class Bracket(NamedTuple):
    """One HyperBand bracket ``s`` (successive halving with ``s + 1`` rungs)."""

    s: int
    rungs: tuple[Rung, ...]


def _exact(value, arg):
    """A Fraction for exact floor/ceil (ints, and floats taken at their exact binary value)."""
    if isinstance(value, jax.Array):
        raise TypeError(f"{arg} must be a Python number (it sets the brackets' static shapes), "
                        f"got a JAX array {value!r}")
    return Fraction(check_real(value, arg))


def _plain(q: Fraction):
    return int(q) if q.denominator == 1 else float(q)


def _s_max(R: Fraction, eta: Fraction) -> int:
    # floor(log_eta(R)) in exact arithmetic: float logs give floor(log(81)/log(3)) = 3.
    s = 0
    while eta ** (s + 1) <= R:
        s += 1
    return s


def successive_halving_rungs(n: int, r: float, eta: float = 3, *,
                             num_rungs: int | None = None) -> tuple[Rung, ...]:
    """The rungs of successive halving: ``n_i = floor(n eta^-i)``, ``r_i = r eta^i``.

    Args:
      n: configurations in the first rung (>= 1).
      r: resource per configuration in the first rung (> 0).
      eta: reduction factor (>= 2).
      num_rungs: rungs to return (default: until one configuration is left,
        ``floor(log_eta(n)) + 1``).

    Returns:
      a tuple of :class:`Rung` ``(n_i, r_i)``.
    """
    n = check_int(n, "n", 1)
    eta_q = _exact(check_eta(eta), "eta")
    r_q = _exact(r, "r")
    if r_q <= 0:
        raise ValueError(f"r must be > 0, got {r!r}")
    k = _s_max(Fraction(n), eta_q) + 1 if num_rungs is None else check_int(num_rungs,
                                                                           "num_rungs", 1)
    return tuple(Rung(math.floor(n / eta_q ** i), _plain(r_q * eta_q ** i)) for i in range(k))


def hyperband_brackets(max_resource: float, eta: float = 3) -> tuple[Bracket, ...]:
    """HyperBand's brackets exactly as Algorithm 1 of Li et al. (2018).

    Args:
      max_resource: ``R``, the largest resource given to one configuration, in units of the
        smallest (>= 1; e.g. 81 epochs with a minimum of 1 epoch).
      eta: the reduction factor ``eta`` (>= 2).

    Returns:
      brackets ``s = s_max, ..., 0``, each with its ``s + 1`` rungs ``(n_i, r_i)``. For
      ``R = 81, eta = 3`` the first bracket is ``81/1, 27/3, 9/9, 3/27, 1/81``.

    Example:
      >>> [[(g.n, g.r) for g in b.rungs] for b in hyperband_brackets(81, 3)][1]
      [(34, 3), (11, 9), (3, 27), (1, 81)]
    """
    R = _exact(max_resource, "max_resource")
    if R < 1:
        raise ValueError(f"max_resource (R) must be >= 1 (in units of the minimum resource), "
                         f"got {max_resource!r}")
    eta_q = _exact(check_eta(eta), "eta")
    s_max = _s_max(R, eta_q)
    out = []
    for s in range(s_max, -1, -1):
        n = math.ceil(Fraction(s_max + 1, s + 1) * eta_q ** s)  # n = ceil(B/R * eta^s/(s+1))
        r = R / eta_q ** s                                        # r = R eta^-s
        out.append(Bracket(s, successive_halving_rungs(n, _plain(r), eta, num_rungs=s + 1)))
    return tuple(out)


def successive_halving_decision(metrics: jax.Array, mask: jax.Array | None = None, *,
                                eta: float = 3, num_keep=None) -> jax.Array:
    """Successive halving's rung decision: promote the best ``floor(n_i / eta)``, stop the rest.

    Args:
      metrics: ``f32[P]`` each slot's metric at the end of the rung (minimized; NaN/inf =
        diverged, ranked last and never promoted).
      mask: ``bool[P]`` slots that ran this rung (default all); the rung size ``n_i`` is its
        count. Slots outside the mask get ``STOP`` too (nothing to continue).
      eta: the reduction factor (>= 2).
      num_keep: override the number promoted (an int or traced ``i32[]``, e.g. the bracket's
        next ``n_{i+1}``); default ``floor(n_i / eta)``.

    Returns:
      ``i32[P]`` codes: ``PROMOTE`` for the kept slots, ``STOP`` for the others. Ties break by
      slot index.
    """
    metrics = jnp.asarray(metrics, jnp.float32)
    if metrics.ndim != 1:
        raise ValueError(f"metrics must be f32[P], got shape {metrics.shape}")
    mask = jnp.ones(metrics.shape, bool) if mask is None else jnp.asarray(mask, bool)
    if mask.shape != metrics.shape:
        raise ValueError(f"mask must have the shape of metrics {metrics.shape}, got {mask.shape}")
    eta = check_eta(eta)
    n = jnp.sum(mask)
    keep = jnp.floor(n / eta).astype(jnp.int32) if num_keep is None else num_keep
    rank = rank_ascending(metrics, mask)
    promote = mask & (rank < keep) & jnp.isfinite(metrics)
    return jnp.where(promote, PROMOTE, STOP).astype(jnp.int32)
