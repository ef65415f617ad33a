"""Stationary kernels for mixed float / integer / categorical unit-cube inputs.

The GP sees each coordinate through the Space's kind metadata (``space.kinds``,
``space.num_choices``):

* float coordinates are used as they are (log-scale floats are already log-affine in the cube);
* integer coordinates are rounded to the centre of their bin before the distance is taken, so
  every point of a bin has the same covariance (the rounding transform of Garrido-Merchán &
  Hernández-Lobato, "Dealing with categorical and integer-valued variables in Bayesian
  optimization with Gaussian processes", Neurocomputing 2020);
* categorical coordinates are mapped to their choice index and compared by overlap: two values
  contribute ``0`` to the squared distance when equal and ``1 / l_j^2`` when not (a weighted
  Hamming distance inside the stationary kernel, the overlap kernel used e.g. by CoCaBO and
  Optuna's GPSampler).

With ARD lengthscales ``l`` the scaled squared distance is

    r^2(u, u') = sum_{i continuous} ((u_i - u'_i) / l_i)^2 + sum_{j categorical} [c_j != c'_j] / l_j^2

and the kernels are (Rasmussen & Williams, "Gaussian Processes for Machine Learning", 2006)

    RBF:         k = s * exp(-r^2 / 2)                                   (Eq. 4.9)
    Matern-5/2:  k = s * (1 + sqrt(5) r + 5 r^2 / 3) * exp(-sqrt(5) r)   (Eq. 4.17)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._space import CATEGORICAL, INT

KERNELS = ("matern52", "rbf")


class InputSpec(NamedTuple):
    """Static description of the inputs (hashable, so it can be closed over or be static).

    Attributes:
      num_bins: per coordinate, ``0`` for a float, the number of values of an integer, the
        number of choices of a categorical.
      is_categorical: per coordinate.
      kernel: ``"matern52"`` or ``"rbf"``.
    """

    num_bins: tuple[int, ...]
    is_categorical: tuple[bool, ...]
    kernel: str = "matern52"

    @classmethod
    def from_space(cls, space, kernel: str = "matern52") -> "InputSpec":
        """The spec of a :class:`jaxhpo.Space` (integer and categorical coordinates)."""
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        kinds = np.asarray(space.kinds)
        bins = np.where((kinds == INT) | (kinds == CATEGORICAL), space.num_choices, 0)
        return cls(tuple(int(b) for b in bins), tuple(bool(k == CATEGORICAL) for k in kinds),
                   kernel)

    @classmethod
    def continuous(cls, d: int, kernel: str = "matern52") -> "InputSpec":
        """``d`` float coordinates."""
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        return cls((0,) * d, (False,) * d, kernel)

    @property
    def dim(self) -> int:
        return len(self.num_bins)


def transform_inputs(spec: InputSpec, x: jax.Array) -> jax.Array:
    """Map cube points ``f[..., d]`` to kernel inputs: ints to bin centres, categoricals to
    their choice index (as floats), floats unchanged."""
    bins = np.asarray(spec.num_bins)
    if not bins.any():
        return x
    m = jnp.asarray(np.maximum(bins, 1), x.dtype)
    idx = jnp.clip(jnp.floor(x * m), 0, m - 1)
    cat = np.asarray(spec.is_categorical)
    return jnp.where(bins > 0, jnp.where(cat, idx, (idx + 0.5) / m), x)


def snap_to_bins(spec: InputSpec, x: jax.Array) -> jax.Array:
    """Move integer and categorical coordinates of cube points to the centre of their bin."""
    bins = np.asarray(spec.num_bins)
    if not bins.any():
        return x
    m = jnp.asarray(np.maximum(bins, 1), x.dtype)
    return jnp.where(bins > 0, (jnp.clip(jnp.floor(x * m), 0, m - 1) + 0.5) / m, x)


def scaled_sq_dist(spec: InputSpec, lengthscale: jax.Array, u1: jax.Array,
                   u2: jax.Array) -> jax.Array:
    """``r^2`` between transformed inputs ``u1: f[n1, d]`` and ``u2: f[n2, d]`` -> ``f[n1, n2]``."""
    diff = u1[:, None, :] - u2[None, :, :]
    cat = np.asarray(spec.is_categorical)
    if cat.any():
        diff2 = jnp.where(cat, (diff != 0).astype(u1.dtype), diff * diff)
    else:
        diff2 = diff * diff
    return jnp.sum(diff2 / (lengthscale * lengthscale), axis=-1)


def correlation(spec: InputSpec, r2: jax.Array) -> jax.Array:
    """Unit-variance kernel value as a function of the scaled squared distance ``r^2``."""
    if spec.kernel == "rbf":
        return jnp.exp(-0.5 * r2)
    pos = r2 > 0
    r = jnp.where(pos, jnp.sqrt(jnp.where(pos, 5.0 * r2, 1.0)), 0.0)  # sqrt(5) r, safe grad
    return (1.0 + r + r * r / 3.0) * jnp.exp(-r)


def kernel_matrix(spec: InputSpec, lengthscale: jax.Array, signal: jax.Array, u1: jax.Array,
                  u2: jax.Array) -> jax.Array:
    """``k(u1, u2): f[n1, n2]`` for transformed inputs (see :func:`transform_inputs`)."""
    return signal * correlation(spec, scaled_sq_dist(spec, lengthscale, u1, u2))
