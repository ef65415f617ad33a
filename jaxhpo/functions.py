"""Benchmark functions with known global minima, as JAX functions with their search spaces.

Definitions, domains and optima follow the Virtual Library of Simulation Experiments
(S. Surjanovic and D. Bingham, https://www.sfu.ca/~ssurjano/optimization.html) and the original
papers cited per function. Every function is minimized.

Example:
  >>> tf = jaxhpo.functions.branin()
  >>> res = jaxhpo.minimize(tf.objective, tf.space, strategy, num_generations=10)
  >>> tf.regret(res.best_value)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._space import Float, Space


class TestFunction(NamedTuple):
    """A benchmark function on its natural box domain, minimized.

    Attributes:
      name: e.g. ``"branin"``, ``"rosenbrock-10"``.
      fn: ``f32[..., d]`` natural coordinates -> ``f32[...]``; jit/vmap/grad-able.
      space: Float parameters ``x0..x{d-1}`` spanning the standard domain.
      optimum_value: the literature's global minimum value.
      optimum_locations: ``f64[k, d]``, every known global minimizer.
    """

    __test__ = False  # not a pytest class

    name: str
    fn: Callable[[jax.Array], jax.Array]
    space: Space
    optimum_value: float
    optimum_locations: np.ndarray

    def __call__(self, x):
        return self.fn(x)

    @property
    def dim(self) -> int:
        return self.space.dim

    def objective(self, key, hparams):
        """JAX-native objective for :func:`jaxhpo.minimize`: ``hparams = {"x0": f32[], ...}``."""
        del key
        return self.fn(jnp.stack([hparams[n] for n in self.space.names], axis=-1))

    def from_unit(self, u):
        """Unit-cube points ``f32[..., d]`` -> natural coordinates ``f32[..., d]``."""
        dec = self.space.decode(u)
        return jnp.stack([dec[n] for n in self.space.names], axis=-1)

    def regret(self, value):
        """``value - optimum_value`` (>= 0 up to rounding)."""
        return value - self.optimum_value


def _box(d: int, low: float, high: float) -> Space:
    return Space({f"x{i}": Float(float(low), float(high)) for i in range(d)})


def _check_d(d, minimum: int = 1) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"d must be an int, got {d!r}")
    if d < minimum:
        raise ValueError(f"d must be >= {minimum}, got {d}")
    return int(d)


def branin() -> TestFunction:
    """Branin–Hoo on ``[-5, 10] x [0, 15]``; minimum 0.397887 at three points.

    Reference: Dixon & Szegő, "The global optimisation problem: an introduction", 1978.
    """
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8 * math.pi)

    def fn(x):
        x1, x2 = x[..., 0], x[..., 1]
        return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * jnp.cos(x1) + s

    space = Space({"x0": Float(-5.0, 10.0), "x1": Float(0.0, 15.0)})
    locs = np.array([[-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]])
    return TestFunction("branin", fn, space, 0.397887, locs)


def _hartmann(alpha, A, P):
    alpha, A, P = (jnp.asarray(v, jnp.float32) for v in (alpha, A, P))

    def fn(x):
        inner = jnp.sum(A * (x[..., None, :] - P) ** 2, axis=-1)
        return -jnp.sum(alpha * jnp.exp(-inner), axis=-1)

    return fn


def hartmann3() -> TestFunction:
    """Hartmann 3-d on ``[0, 1]^3``; minimum -3.86278 at (0.114614, 0.555649, 0.852547).

    Reference: Hartman, "Some experiments in global optimization", Naval Res. Logist. 1973.
    """
    A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
    P = np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                  [381, 5743, 8828]]) * 1e-4
    fn = _hartmann([1.0, 1.2, 3.0, 3.2], A, P)
    return TestFunction("hartmann3", fn, _box(3, 0, 1), -3.86278,
                        np.array([[0.114614, 0.555649, 0.852547]]))


def hartmann6() -> TestFunction:
    """Hartmann 6-d on ``[0, 1]^6``; minimum -3.32237.

    Reference: Hartman 1973; optimum location from Surjanovic & Bingham.
    """
    A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
         [17, 8, 0.05, 10, 0.1, 14]]
    P = np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                  [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
                 ) * 1e-4
    fn = _hartmann([1.0, 1.2, 3.0, 3.2], A, P)
    return TestFunction("hartmann6", fn, _box(6, 0, 1), -3.32237, np.array(
        [[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]]))


def rosenbrock(d: int = 2) -> TestFunction:
    """Rosenbrock on ``[-5, 10]^d``; minimum 0 at ``(1, ..., 1)`` (Rosenbrock 1960)."""
    d = _check_d(d, 2)

    def fn(x):
        return jnp.sum(100.0 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2,
                       axis=-1)

    return TestFunction(f"rosenbrock-{d}", fn, _box(d, -5, 10), 0.0, np.ones((1, d)))


def ackley(d: int = 2) -> TestFunction:
    """Ackley on ``[-32.768, 32.768]^d`` (a=20, b=0.2, c=2π); minimum 0 at the origin
    (Ackley, "A connectionist machine for genetic hillclimbing", 1987)."""
    d = _check_d(d)

    def fn(x):
        r = jnp.sqrt(jnp.mean(x**2, axis=-1))
        cos = jnp.mean(jnp.cos(2 * jnp.pi * x), axis=-1)
        return -20.0 * jnp.exp(-0.2 * r) - jnp.exp(cos) + 20.0 + jnp.e

    return TestFunction(f"ackley-{d}", fn, _box(d, -32.768, 32.768), 0.0, np.zeros((1, d)))


def levy(d: int = 2) -> TestFunction:
    """Levy on ``[-10, 10]^d``; minimum 0 at ``(1, ..., 1)`` (Levy & Montalvo 1985)."""
    d = _check_d(d)

    def fn(x):
        w = 1.0 + (x - 1.0) / 4.0
        head = jnp.sin(jnp.pi * w[..., 0]) ** 2
        mid = jnp.sum((w[..., :-1] - 1) ** 2 * (1 + 10 * jnp.sin(jnp.pi * w[..., :-1] + 1) ** 2),
                      axis=-1)
        tail = (w[..., -1] - 1) ** 2 * (1 + jnp.sin(2 * jnp.pi * w[..., -1]) ** 2)
        return head + mid + tail

    return TestFunction(f"levy-{d}", fn, _box(d, -10, 10), 0.0, np.ones((1, d)))


_ST_ARGMIN = -2.903534027771178
_ST_MIN_PER_DIM = -39.166165703771412


def styblinski_tang(d: int = 2) -> TestFunction:
    """Styblinski–Tang on ``[-5, 5]^d``; minimum -39.16617·d at ``x_i = -2.903534``
    (Styblinski & Tang, "Experiments in nonconvex optimization", Neural Networks 1990)."""
    d = _check_d(d)

    def fn(x):
        return 0.5 * jnp.sum(x**4 - 16 * x**2 + 5 * x, axis=-1)

    return TestFunction(f"styblinski_tang-{d}", fn, _box(d, -5, 5), _ST_MIN_PER_DIM * d,
                        np.full((1, d), _ST_ARGMIN))


def sphere(d: int = 2, center: float = 0.3) -> TestFunction:
    """``sum_i (x_i - center)^2`` on ``[0, 1]^d``; minimum 0 at ``center`` (an easy check)."""
    d = _check_d(d)

    def fn(x):
        return jnp.sum((x - center) ** 2, axis=-1)

    return TestFunction(f"sphere-{d}", fn, _box(d, 0, 1), 0.0, np.full((1, d), float(center)))


FUNCTIONS: dict[str, Callable[..., TestFunction]] = {
    "branin": branin, "hartmann3": hartmann3, "hartmann6": hartmann6,
    "rosenbrock": rosenbrock, "ackley": ackley, "levy": levy,
    "styblinski_tang": styblinski_tang, "sphere": sphere,
}


def get(name: str, **kwargs) -> TestFunction:
    """A test function by name, e.g. ``get("ackley", d=5)`` or ``get("ackley-5")``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    base, _, dim = name.partition("-")
    if dim:
        if not dim.isdigit():
            raise ValueError(f"bad function name {name!r}; use e.g. 'ackley-5'")
        kwargs.setdefault("d", int(dim))
    if base not in FUNCTIONS:
        raise ValueError(f"unknown test function {name!r}; choose from {sorted(FUNCTIONS)}")
    return FUNCTIONS[base](**kwargs)
