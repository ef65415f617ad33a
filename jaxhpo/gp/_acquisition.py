"""Acquisition functions for minimization, on a GP posterior in standardized units.

With posterior mean ``mu``, standard deviation ``sigma`` and incumbent ``best`` (the lowest
standardized observation), ``z = (best - mu) / sigma`` and

    EI  = sigma * h(z),  h(z) = phi(z) + z Phi(z)          (Jones et al. 1998)
    PI  = Phi(z)                                            (Kushner 1964)
    UCB = -mu + sqrt(beta) * sigma   (a lower confidence bound, negated: larger is better;
                                      Srinivas et al. 2010)

EI underflows to 0 for ``z`` below about -38 in float64 (-13 in float32), which leaves its
optimizer without gradient. ``log_ei`` follows Ament, Daulton, Eriksson, Balandat & Bakshy,
"Unexpected Improvements to Expected Improvement for Bayesian Optimization", NeurIPS 2023,
Eq. (9): for ``z > -1`` the direct formula, below it the asymptotically exact form

    log h(z) = -z^2/2 - c1 + log1mexp(log(erfcx(-z/sqrt 2) |z|) + c2),   c1 = log(2 pi)/2,
                                                                          c2 = log(pi/2)/2

and, once ``erfcx`` is no longer resolvable (``z < -1/sqrt(eps)``), ``-z^2/2 - c1 - 2 log|z|``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erfcx, log_ndtr, ndtr

ACQUISITIONS = ("logei", "ei", "ucb", "pi", "logpi", "thompson")
_C1 = 0.5 * math.log(2 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2)
# (-1)^k (2k+1)!! for k = 0..8: the asymptotic series of t * Phi(-t) / phi(t) in 1/t^2
_SERIES = tuple((-1) ** k * math.prod(range(1, 2 * k + 2, 2)) for k in range(9))


def log1mexp(x: jax.Array) -> jax.Array:
    """``log(1 - exp(x))`` for ``x < 0``, accurate on both sides of ``-log 2`` (Mächler 2012)."""
    x = jnp.minimum(x, -1e-30)
    return jnp.where(x > -math.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def log_h(z: jax.Array) -> jax.Array:
    """``log(phi(z) + z Phi(z))``, finite and monotone for every finite ``z`` (Ament et al.).

    Three branches: the direct formula for ``z > -1``; Ament et al.'s ``erfcx`` form for
    ``-12 < z <= -1``; below, the asymptotic (Mills-ratio) series
    ``t Phi(-t) / phi(t) = 1 - 1/t^2 + 3/t^4 - 15/t^6 + ...`` (Abramowitz & Stegun 7.1.23)
    with ``t = -z`` gives ``log h(z) = -z^2/2 - c1 - 2 log t + log(1 - 3/t^2 + 15/t^4 - ...)``
    without cancellation. (It also sidesteps ``erfcx`` in float32, which returns 0 for some
    arguments near 9.3 in jax 0.10.)
    """
    direct = z > -1.0
    series = z <= -12.0
    zd = jnp.where(direct, z, 0.0)
    upper = jnp.log(jnp.exp(-0.5 * zd * zd - _C1) + zd * ndtr(zd))
    zm = jnp.where(direct | series, -2.0, z)  # a safe value where the middle branch is unused
    middle = (-0.5 * zm * zm - _C1
              + log1mexp(jnp.log(erfcx(-zm / math.sqrt(2.0)) * jnp.abs(zm)) + _C2))
    t = jnp.where(series, -z, 12.0)
    inv2 = 1.0 / (t * t)
    poly = jnp.zeros_like(t)
    for c in _SERIES[::-1]:  # sum_k (-1)^k (2k+1)!! u^k, k = 0..8, by Horner in u = 1/t^2
        poly = c + poly * inv2
    asym = -0.5 * t * t - _C1 - 2.0 * jnp.log(t) + jnp.log(poly)
    return jnp.where(direct, upper, jnp.where(series, asym, middle))


def _z(mean, var, best):
    sigma = jnp.sqrt(var)
    return (best - mean) / sigma, sigma


def log_ei(mean: jax.Array, var: jax.Array, best: jax.Array) -> jax.Array:
    """Log expected improvement below ``best`` (minimization), stable far into the tail."""
    z, sigma = _z(mean, var, best)
    return log_h(z) + jnp.log(sigma)


def ei(mean: jax.Array, var: jax.Array, best: jax.Array) -> jax.Array:
    """Expected improvement below ``best`` (minimization), by the classic closed form."""
    z, sigma = _z(mean, var, best)
    return sigma * (jnp.exp(-0.5 * z * z - _C1) + z * ndtr(z))


def pi(mean, var, best):
    """Probability of improvement below ``best``."""
    return ndtr(_z(mean, var, best)[0])


def log_pi(mean, var, best):
    """Log probability of improvement below ``best`` (``log_ndtr``, stable in the tail)."""
    return log_ndtr(_z(mean, var, best)[0])


def ucb(mean, var, beta):
    """Upper confidence bound of ``-f`` (i.e. a negated lower confidence bound of ``f``)."""
    return -mean + jnp.sqrt(beta * var)


def acquisition_value(name: str, mean, var, best, beta) -> jax.Array:
    """Score to *maximize* for acquisition ``name`` (Thompson sampling is handled by the
    batch optimizer; here it falls back to the posterior mean)."""
    if name == "logei":
        return log_ei(mean, var, best)
    if name == "ei":
        return ei(mean, var, best)
    if name == "pi":
        return pi(mean, var, best)
    if name == "logpi":
        return log_pi(mean, var, best)
    if name == "ucb":
        return ucb(mean, var, beta)
    if name == "thompson":
        return -mean
    raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {name!r}")


def is_log_scale(name: str) -> bool:
    return name in ("logei", "logpi")
