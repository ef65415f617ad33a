"""Unconstrained coordinates for the continuous parameters of a :class:`jaxhpo.Space`.

Hypergradient steps are taken in an unbounded space where the hyperparameter's natural
constraint holds automatically:

* a log-scale ``Float(low, high, log=True)`` (learning rate, weight decay, epsilon, ...):
  ``z = log(value)``; a step moves the value by a factor. The bounds are enforced by
  projection (``clip(z, log low, log high)``) after each step;
* a linear ``Float(low, high)`` (momentum, Adam's betas, label smoothing, ...):
  ``z = logit((value - low) / (high - low))``, i.e. ``logit(value)`` on ``[0, 1]``; the value
  stays strictly inside the bounds.

``Int`` and ``Categorical`` parameters (and any Float not named) are not differentiated: they
keep their unit-cube coordinate.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._space import Float, Space

_EPS = 1e-6  # keeps logit finite at the bounds of a linear Float


class Unconstrained(NamedTuple):
    """The map between unit-cube points and unconstrained coordinates of ``k`` Floats."""

    space: Space
    names: tuple[str, ...]  # the k tuned parameters, in space order
    index: np.ndarray  # i32[k] their coordinates in the space
    log: np.ndarray  # bool[k] log-scale (z = log v) or linear (z = logit of the position)
    low: np.ndarray  # f32[k] bounds (natural values)
    high: np.ndarray  # f32[k]

    def _log_bounds(self):
        """``(log low, log high)`` for log-scale coordinates, ``(0, 1)`` for linear ones."""
        lo = np.log(np.where(self.log, self.low, 1.0))
        hi = np.where(self.log, np.log(np.where(self.log, self.high, 1.0)), 1.0)
        return lo, hi

    def to_z(self, x: jax.Array) -> jax.Array:
        """Unit-cube points ``f32[..., d]`` -> unconstrained ``f32[..., k]``."""
        u = jnp.clip(jnp.asarray(x)[..., self.index], 0.0, 1.0)
        lo, hi = self._log_bounds()
        uc = jnp.clip(u, _EPS, 1.0 - _EPS)
        return jnp.where(self.log, lo + u * (hi - lo), jnp.log(uc) - jnp.log1p(-uc))

    def to_x(self, z: jax.Array, x: jax.Array) -> jax.Array:
        """Replace the tuned coordinates of ``x: f32[..., d]`` by those of ``z: f32[..., k]``."""
        lo, hi = self._log_bounds()
        x = jnp.asarray(x)
        u = jnp.where(self.log, (z - lo) / (hi - lo), jax.nn.sigmoid(z))
        return x.at[..., self.index].set(jnp.clip(u, 0.0, 1.0).astype(x.dtype))

    def values(self, z: jax.Array) -> dict[str, jax.Array]:
        """``{name: value}`` of the tuned parameters, differentiable in ``z: f32[..., k]``."""
        out = {}
        for j, name in enumerate(self.names):
            if self.log[j]:
                out[name] = jnp.exp(z[..., j])
            else:
                lo, hi = float(self.low[j]), float(self.high[j])
                out[name] = lo + (hi - lo) * jax.nn.sigmoid(z[..., j])
        return out

    def project(self, z: jax.Array) -> jax.Array:
        """Clip the log-scale coordinates to ``[log low, log high]`` (linear ones are inside)."""
        lo, hi = self._log_bounds()
        return jnp.clip(z, np.where(self.log, lo, -np.inf), np.where(self.log, hi, np.inf))

    def decode(self, z: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
        """Every parameter's value: ``space.decode(x)`` with the tuned ones taken from ``z``."""
        return {**self.space.decode(x), **self.values(z)}


def unconstrained(space: Space, names: Sequence[str] | None = None) -> Unconstrained:
    """The unconstrained parameterization of the Float parameters ``names`` of ``space``.

    Args:
      space: the search space.
      names: parameters to differentiate (default: every unconditional ``Float``). Each must
        be an unconditional ``Float``.

    Returns:
      An :class:`Unconstrained` map (``to_z``, ``to_x``, ``values``, ``project``, ``decode``).
    """
    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    if names is None:
        names = [n for n in space.names if isinstance(space[n], Float)
                 and not space[n].condition]
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("names: no continuous parameter to differentiate; the space needs "
                         "at least one unconditional Float")
    for n in names:
        if n not in space.names:
            raise ValueError(f"names: {n!r} is not a parameter of the space {list(space.names)}")
        p = space[n]
        if not isinstance(p, Float):
            raise ValueError(f"names: {n!r} is a {type(p).__name__}; only Float parameters "
                             f"can be differentiated")
        if p.condition:
            raise ValueError(f"names: {n!r} is conditional; hypergradients need unconditional "
                             f"parameters")
    names = tuple(n for n in space.names if n in names)
    ps = [space[n] for n in names]
    return Unconstrained(space, names, np.asarray([space.names.index(n) for n in names], np.int32),
                         np.asarray([p.log for p in ps], bool),
                         np.asarray([p.low for p in ps], np.float64),
                         np.asarray([p.high for p in ps], np.float64))
