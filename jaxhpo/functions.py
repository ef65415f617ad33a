"""Benchmark functions with known global minima, as pure JAX functions with their search spaces.

Definitions, domains and optima follow the Virtual Library of Simulation Experiments
(S. Surjanovic and D. Bingham, https://www.sfu.ca/~ssurjano/optimization.html) and the original
papers cited per function. Every function is minimized, takes natural coordinates
``f32[..., d]`` and computes in the input's floating dtype (float64 under ``jax_enable_x64``).

Example:
  >>> tf = jaxhpo.functions.get("ackley-5")
  >>> res = jaxhpo.minimize_scan(tf.objective, tf.space, strategy, num_generations=10)
  >>> tf.regret(res.best_value)
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._space import Float, Space
from jaxhpo._validate import check_int


class TestFunction(NamedTuple):
    """A benchmark function on its natural box domain, minimized.

    Attributes:
      name: e.g. ``"branin"``, ``"rosenbrock-10"`` (accepted by :func:`get`).
      fn: ``f32[..., d]`` natural coordinates -> ``f32[...]``; jit/vmap/grad-able.
      space: Float parameters ``x0..x{d-1}`` spanning the standard domain.
      optimum_value: the literature's global minimum value.
      optimum_locations: ``f64[k, d]``, every known global minimizer (``k >= 1``).
    """

    __test__ = False  # not a pytest test class, despite the name

    name: str
    fn: Callable[[jax.Array], jax.Array]
    space: Space
    optimum_value: float
    optimum_locations: np.ndarray

    def __call__(self, x: jax.Array) -> jax.Array:
        """``fn(x)``: ``f32[..., d]`` -> ``f32[...]``."""
        return self.fn(x)

    @property
    def dim(self) -> int:
        """The number of coordinates ``d``."""
        return self.space.dim

    def objective(self, key: jax.Array, hparams: dict[str, jax.Array]) -> jax.Array:
        """JAX-native objective for the drivers: ``{"x0": f32[], ...}`` -> ``f32[]``; key unused."""
        del key
        return self.fn(jnp.stack([hparams[n] for n in self.space.names], axis=-1))

    def from_unit(self, u: jax.Array) -> jax.Array:
        """Unit-cube points ``f32[..., d]`` -> natural coordinates ``f32[..., d]``."""
        dec = self.space.decode(u)
        return jnp.stack([dec[n] for n in self.space.names], axis=-1)

    def regret(self, value):
        """``value - optimum_value`` (``>= 0`` up to rounding for values the function takes)."""
        return value - self.optimum_value


def _float(x) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _box(d: int, low: float, high: float) -> Space:
    return Space({f"x{i}": Float(float(low), float(high)) for i in range(d)})


def _check_d(d, minimum: int = 1) -> int:
    d = check_int(d, "d")  # TypeError for a non-int
    if d < minimum:
        raise ValueError(f"d must be >= {minimum}, got {d}")
    return d


def branin() -> TestFunction:
    """Branin (Branin-Hoo) on ``[-5, 10] x [0, 15]``; minimum 0.397887 at three points.

    ``a (x2 - b x1^2 + c x1 - r)^2 + s (1 - t) cos(x1) + s`` with ``a=1, b=5.1/(4 pi^2),
    c=5/pi, r=6, s=10, t=1/(8 pi)``; minimizers ``(-pi, 12.275), (pi, 2.275), (3 pi, 2.475)``.
    References: Branin, IBM J. Res. Dev. 16(5), 1972; Dixon & Szegő (eds.), "Towards Global
    Optimisation 2", 1978; Surjanovic & Bingham (VLSE).
    """
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5.0 / math.pi
    r, s, t = 6.0, 10.0, 1.0 / (8 * math.pi)

    def fn(x):
        x = _float(x)
        x1, x2 = x[..., 0], x[..., 1]
        return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * jnp.cos(x1) + s

    space = Space({"x0": Float(-5.0, 10.0), "x1": Float(0.0, 15.0)})
    locs = np.array([[-math.pi, 12.275], [math.pi, 2.275], [3 * math.pi, 2.475]])
    return TestFunction("branin", fn, space, 0.397887, locs)


def _hartmann(alpha, A, P) -> Callable[[jax.Array], jax.Array]:
    """``-sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)``, constants cast to the input dtype."""
    alpha, A, P = (np.asarray(v, np.float64) for v in (alpha, A, P))

    def fn(x):
        x = _float(x)
        a, p = jnp.asarray(A, x.dtype), jnp.asarray(P, x.dtype)
        inner = jnp.sum(a * (x[..., None, :] - p) ** 2, axis=-1)
        return -jnp.sum(jnp.asarray(alpha, x.dtype) * jnp.exp(-inner), axis=-1)

    return fn


def hartmann3() -> TestFunction:
    """Hartmann 3-d on ``[0, 1]^3``; minimum -3.86278 at (0.114614, 0.555649, 0.852547).

    References: Hartman, "Some experiments in global optimization", Naval Research Logistics
    Quarterly 20(3), 1973; Surjanovic & Bingham (VLSE).
    """
    A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
    P = np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                  [381, 5743, 8828]]) * 1e-4
    return TestFunction("hartmann3", _hartmann([1.0, 1.2, 3.0, 3.2], A, P), _box(3, 0, 1),
                        -3.86278, np.array([[0.114614, 0.555649, 0.852547]]))


def hartmann6() -> TestFunction:
    """Hartmann 6-d on ``[0, 1]^6``; minimum -3.32237 at
    (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).

    References: Hartman, Naval Research Logistics Quarterly 20(3), 1973; Surjanovic & Bingham.
    """
    A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
         [17, 8, 0.05, 10, 0.1, 14]]
    P = np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                  [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
                 ) * 1e-4
    locs = np.array([[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]])
    return TestFunction("hartmann6", _hartmann([1.0, 1.2, 3.0, 3.2], A, P), _box(6, 0, 1),
                        -3.32237, locs)


def rosenbrock(d: int = 2) -> TestFunction:
    """Rosenbrock on ``[-5, 10]^d`` (``d >= 2``); minimum 0 at ``(1, ..., 1)``.

    ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``. References: Rosenbrock, "An automatic method
    for finding the greatest or least value of a function", Computer Journal 3(3), 1960; VLSE.
    """
    d = _check_d(d, 2)

    def fn(x):
        x = _float(x)
        lo, hi = x[..., :-1], x[..., 1:]
        return jnp.sum(100.0 * (hi - lo**2) ** 2 + (1.0 - lo) ** 2, axis=-1)

    return TestFunction(f"rosenbrock-{d}", fn, _box(d, -5, 10), 0.0, np.ones((1, d)))


def ackley(d: int = 2) -> TestFunction:
    """Ackley on ``[-32.768, 32.768]^d`` (a=20, b=0.2, c=2 pi); minimum 0 at the origin.

    ``-a exp(-b sqrt(mean x^2)) - exp(mean cos(c x)) + a + e``; the gradient at the origin (a
    kink) is the subgradient 0 rather than NaN. References: Ackley, "A Connectionist Machine for
    Genetic Hillclimbing", Kluwer, 1987; Surjanovic & Bingham (VLSE).
    """
    d = _check_d(d)

    def fn(x):
        x = _float(x)
        ms = jnp.mean(x**2, axis=-1)
        pos = ms > 0
        r = jnp.where(pos, jnp.sqrt(jnp.where(pos, ms, 1.0)), 0.0)  # NaN-free gradient at 0
        cos = jnp.mean(jnp.cos(2 * math.pi * x), axis=-1)
        return -20.0 * jnp.exp(-0.2 * r) - jnp.exp(cos) + 20.0 + math.e

    return TestFunction(f"ackley-{d}", fn, _box(d, -32.768, 32.768), 0.0, np.zeros((1, d)))


def levy(d: int = 2) -> TestFunction:
    """Levy on ``[-10, 10]^d``; minimum 0 at ``(1, ..., 1)``.

    With ``w = 1 + (x - 1) / 4``: ``sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2 (1 + 10 sin^2(pi w_i
    + 1)) + (w_d - 1)^2 (1 + sin^2(2 pi w_d))``. References: Levy & Montalvo, "The tunneling
    algorithm for the global minimization of functions", SIAM J. Sci. Stat. Comput. 6(1), 1985;
    Surjanovic & Bingham (VLSE).
    """
    d = _check_d(d)

    def fn(x):
        w = 1.0 + (_float(x) - 1.0) / 4.0
        head = jnp.sin(math.pi * w[..., 0]) ** 2
        wi = w[..., :-1]
        mid = jnp.sum((wi - 1) ** 2 * (1 + 10 * jnp.sin(math.pi * wi + 1) ** 2), axis=-1)
        wd = w[..., -1]
        return head + mid + (wd - 1) ** 2 * (1 + jnp.sin(2 * math.pi * wd) ** 2)

    return TestFunction(f"levy-{d}", fn, _box(d, -10, 10), 0.0, np.ones((1, d)))


_ST_ARGMIN = -2.903534027771178  # root of 4x^3 - 32x + 5 = 0 in [-5, 0]
_ST_MIN_PER_DIM = -39.166165703771412


def styblinski_tang(d: int = 2) -> TestFunction:
    """Styblinski-Tang on ``[-5, 5]^d``; minimum -39.166166 d at ``x_i = -2.903534``.

    ``sum_i (x_i^4 - 16 x_i^2 + 5 x_i) / 2``. VLSE prints the minimum as ``-39.16599 d``; the
    exact value ``-39.166165703771412 d`` is used. References: Styblinski & Tang, "Experiments in
    nonconvex optimization: stochastic approximation with function smoothing and simulated
    annealing", Neural Networks 3(4), 1990; Surjanovic & Bingham (VLSE).
    """
    d = _check_d(d)

    def fn(x):
        x = _float(x)
        return 0.5 * jnp.sum(x**4 - 16.0 * x**2 + 5.0 * x, axis=-1)

    return TestFunction(f"styblinski_tang-{d}", fn, _box(d, -5, 5), _ST_MIN_PER_DIM * d,
                        np.full((1, d), _ST_ARGMIN))


def sphere(d: int = 2, center: float = 0.3) -> TestFunction:
    """``sum_i (x_i - center)^2`` on ``[0, 1]^d``; minimum 0 at ``(center, ..., center)``.

    An easy, smooth function for conformance tests (the classic sphere, De Jong 1975, shifted).
    """
    d = _check_d(d)
    if isinstance(center, bool) or not isinstance(center, (int, float, np.integer, np.floating)):
        raise TypeError(f"center must be a number, got {center!r}")
    if not 0.0 <= center <= 1.0:
        raise ValueError(f"center must lie in [0, 1] (the domain), got {center}")
    center = float(center)

    def fn(x):
        return jnp.sum((_float(x) - center) ** 2, axis=-1)

    return TestFunction(f"sphere-{d}", fn, _box(d, 0, 1), 0.0, np.full((1, d), center))


FUNCTIONS: dict[str, Callable[..., TestFunction]] = {
    "branin": branin, "hartmann3": hartmann3, "hartmann6": hartmann6,
    "rosenbrock": rosenbrock, "ackley": ackley, "levy": levy,
    "styblinski_tang": styblinski_tang, "sphere": sphere,
}


def get(name: str, **kwargs) -> TestFunction:
    """A test function by name: ``get("ackley", d=5)``, or ``get("ackley-5")`` (a ``name``).

    Args:
      name: a key of :data:`FUNCTIONS`, optionally suffixed ``-d`` for the dimension.
      **kwargs: passed to the factory (``d``, ``center``).

    Returns:
      The :class:`TestFunction`. Raises ``ValueError`` for an unknown name.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    base, sep, dim = name.partition("-")
    if base not in FUNCTIONS:
        raise ValueError(f"unknown test function {name!r}; choose from {sorted(FUNCTIONS)}")
    if sep:
        if not dim.isdigit() or base in ("branin", "hartmann3", "hartmann6"):
            raise ValueError(f"bad test function name {name!r}; use e.g. 'ackley-5' (fixed-"
                             "dimension functions take no suffix)")
        if "d" in kwargs and kwargs["d"] != int(dim):
            raise ValueError(f"get({name!r}) conflicts with d={kwargs['d']!r}")
        kwargs["d"] = int(dim)
    return FUNCTIONS[base](**kwargs)
