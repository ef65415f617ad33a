"""Parzen estimators on the unit cube, as used by TPE (Bergstra et al. 2011) and BOHB.

One kernel per observation plus one prior kernel, following Optuna's ``_ParzenEstimator``
(documented in S. Watanabe, "Tree-structured Parzen estimator: Understanding its algorithm
components and their roles for better empirical performance", arXiv:2304.11127, 2023, Sect. 3-4):

* float coordinates: Gaussians truncated to ``[0, 1]`` (the cube already makes ``log=True``
  parameters uniform, so Optuna's truncated log-normal is a truncated normal here), centred at
  the observations. Bandwidth = the larger distance to the sorted neighbours (the domain ends
  count as neighbours, except that with ``consider_endpoints=False`` the lowest and highest
  observations use their one inner neighbour), clipped to ``[1 / min(100, n + 2), 1]`` ("magic
  clip", n observations + 1 prior kernel). Prior kernel: centre ``0.5``, bandwidth ``1``.
* int coordinates: the same Gaussians, discretized: the probability of an integer is the
  kernel's mass on that integer's bin of the cube (the space maps ``[low - 0.5, high + 0.5]``,
  log-scaled for ``log=True``, onto ``[0, 1]``: exactly Optuna's domain with ``step`` = 1).
  For up to 256 values each kernel's mass on every value is tabulated once per fit, so scoring
  candidates is a lookup, like for categoricals.
* categorical coordinates: kernel ``k`` puts ``(1 + p / (n + 1)) / (1 + k p / (n + 1))`` on its
  observed choice and ``(p / (n + 1)) / (1 + k p / (n + 1))`` on every other (``p`` = prior
  weight, ``k`` choices, an Aitchison-Aitken-like smoothing); the prior kernel is uniform.

Mixture weights: the given observation weights plus ``prior_weight`` for the prior kernel,
normalized. Conditional parameters: each coordinate's bandwidths are computed from the
observations where it is active; in the joint density an observation's kernel for an inactive
coordinate is the prior kernel (it says nothing about that coordinate), and the per-coordinate
marginals use only the observations where the coordinate is active (Optuna's independent
sampling). All shapes are fixed; observations are selected with ``weights > 0``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.special import log_ndtr

from jaxhpo._space import CATEGORICAL, FLOAT, INT, Int


class ParzenSpec(NamedTuple):
    """Static per-coordinate facts (hashable tuples), built by :func:`parzen_spec`.

    Attributes:
      kinds: FLOAT / INT / CATEGORICAL per coordinate.
      num_choices: choices (categorical) or number of integers (int); 0 for floats.
      is_log: whether an int coordinate is log-scaled (its bins then have unequal widths).
      int_low: lowest integer of each int coordinate (0 elsewhere).
    """

    kinds: tuple
    num_choices: tuple
    is_log: tuple
    int_low: tuple

    @property
    def dim(self) -> int:
        return len(self.kinds)


def parzen_spec(space) -> ParzenSpec:
    """The :class:`ParzenSpec` of a :class:`jaxhpo.Space`."""
    lows = tuple(int(p.low) if isinstance(p, Int) else 0 for p in (space[n] for n in space.names))
    return ParzenSpec(tuple(int(k) for k in space.kinds), tuple(int(c) for c in space.num_choices),
                      tuple(bool(b) for b in space.is_log), lows)


def _cols(spec: ParzenSpec, kind: int) -> np.ndarray:
    return np.array([j for j, k in enumerate(spec.kinds) if k == kind], np.int32)


_MAX_TABLE = 256  # int coordinates with at most this many values get a per-kernel mass table


def _int_split(spec: ParzenSpec) -> tuple[np.ndarray, np.ndarray]:
    """Int columns with a precomputed mass table (few values) and those computed directly."""
    idx = _cols(spec, INT)
    small = np.array([spec.num_choices[j] <= _MAX_TABLE for j in idx], bool)
    return idx[small], idx[~small]


def _int_geometry(spec: ParzenSpec, idx: np.ndarray):
    """Per int column: encode(t) of a (real) value t, and the integer decoded from a cube value."""
    lo = np.array([spec.int_low[j] for j in idx], np.float64)
    hi = lo + np.array([spec.num_choices[j] for j in idx]) - 1
    lg = np.array([spec.is_log[j] for j in idx], bool)
    a = np.where(lg, np.log(np.maximum(lo - 0.5, 1e-30)), lo - 0.5)
    b = np.where(lg, np.log(hi + 0.5), hi + 0.5)
    a32, w32 = jnp.asarray(a, jnp.float32), jnp.asarray(b - a, jnp.float32)
    lg_j = jnp.asarray(lg)

    def encode(t):
        return (jnp.where(lg_j, jnp.log(jnp.maximum(t, 1e-30)), t) - a32) / w32

    def to_int(u):
        t = a32 + jnp.clip(u, 0.0, 1.0) * w32
        t = jnp.where(lg_j, jnp.exp(t), t)
        return jnp.clip(jnp.floor(t + 0.5), jnp.asarray(lo, jnp.float32),
                        jnp.asarray(hi, jnp.float32))

    return encode, to_int


def snap(spec: ParzenSpec, x: jax.Array) -> jax.Array:
    """Move int/categorical coordinates of ``x: f32[..., d]`` to their canonical cube value
    (the encoded integer; the centre of the choice's bin); floats unchanged."""
    x = jnp.clip(x, 0.0, 1.0)
    i_idx, c_idx = _cols(spec, INT), _cols(spec, CATEGORICAL)
    if i_idx.size:
        enc, to_int = _int_geometry(spec, i_idx)
        x = x.at[..., i_idx].set(jnp.clip(enc(to_int(x[..., i_idx])), 0.0, 1.0))
    if c_idx.size:
        k = jnp.asarray([spec.num_choices[j] for j in c_idx], jnp.float32)
        x = x.at[..., c_idx].set((jnp.clip(jnp.floor(x[..., c_idx] * k), 0, k - 1) + 0.5) / k)
    return x


def log_gauss_mass(a: jax.Array, b: jax.Array) -> jax.Array:
    """``log(Phi(b) - Phi(a))`` for ``a <= b``, accurate in both tails (mirror the right tail)."""
    flip = a > 0
    lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
    lb, la = log_ndtr(hi), log_ndtr(lo)
    return lb + jnp.log1p(-jnp.exp(jnp.minimum(la - lb, -1e-30)))


@struct.dataclass
class ParzenEstimator:
    mu: jax.Array  # f32[K, d]       kernel centres (K = n + 1: observations, then the prior)
    sigma: jax.Array  # f32[K, d]    bandwidths
    log_z: jax.Array  # f32[K, d]    log mass of each Gaussian on [0, 1] (truncation)
    cat_logp: jax.Array  # f32[K, d, C]  categorical kernels' log-probabilities
    int_logp: jax.Array  # f32[K, n_small_int, V]  int kernels' log-masses of every value
    log_w: jax.Array  # f32[K]       joint mixture log-weights
    log_w_marginal: jax.Array  # f32[K, d]  per-coordinate log-weights (active observations)
    spec: ParzenSpec = struct.field(pytree_node=False)


def fit_parzen(spec: ParzenSpec, x: jax.Array, weights: jax.Array, active=None, *,
               prior_weight: float = 1.0, magic_clip: bool = True,
               consider_endpoints: bool = False, min_bandwidth: float = 1e-12
               ) -> ParzenEstimator:
    """Fit a Parzen estimator to the observations with ``weights > 0``.

    Args:
      spec: static coordinate facts, :func:`parzen_spec`.
      x: ``f32[n, d]`` observations in the unit cube (int/categorical values are snapped).
      weights: ``f32[n]`` non-negative mixture weights; ``0`` leaves a row out.
      active: optional ``bool[n, d]``: which coordinates of each row are active.
      prior_weight: weight of the prior kernel (Optuna: 1). With no observation the prior
        alone is used whatever this is.
      magic_clip: clip bandwidths below at ``1 / min(100, n + 2)`` (else at ``min_bandwidth``).
      consider_endpoints: let the domain ends bound the lowest/highest observations' bandwidth.
      min_bandwidth: smallest bandwidth when ``magic_clip`` is off.

    Returns:
      A :class:`ParzenEstimator` with ``K = n + 1`` kernels.
    """
    n, d = x.shape
    x = snap(spec, jnp.asarray(x, jnp.float32))
    w = jnp.maximum(jnp.asarray(weights, jnp.float32), 0.0)
    member = w > 0
    act = jnp.ones((n, d), bool) if active is None else jnp.asarray(active, bool)
    use = member[:, None] & act  # bool[n, d]
    n_j = jnp.sum(use, axis=0)  # i32[d] observations per coordinate

    # Bandwidths: larger gap to the sorted neighbours, domain ends [0, 1] as sentinels.
    key = jnp.where(use, x, jnp.inf)
    order = jnp.argsort(key, axis=0)
    s = jnp.take_along_axis(key, order, axis=0)  # f32[n, d] active values first, sorted
    pos = jnp.arange(n)[:, None]
    left = jnp.concatenate([jnp.zeros((1, d)), s[:-1]], axis=0)
    right = jnp.where(pos + 1 < n_j, jnp.concatenate([s[1:], jnp.ones((1, d))], axis=0), 1.0)
    sig = jnp.maximum(s - left, right - s)
    if not consider_endpoints:
        sig = jnp.where((pos == 0) & (n_j >= 2), right - s, sig)
        sig = jnp.where((pos == n_j - 1) & (n_j >= 2), s - left, sig)
    lo = 1.0 / jnp.minimum(100.0, n_j + 2.0) if magic_clip else jnp.float32(min_bandwidth)
    sig = jnp.clip(jnp.where(pos < n_j, sig, 1.0), lo, 1.0)
    sig = jnp.zeros_like(sig).at[order, jnp.arange(d)[None, :]].set(sig)  # unsort

    mu = jnp.concatenate([jnp.where(use, x, 0.5), jnp.full((1, d), 0.5)], axis=0)
    sigma = jnp.concatenate([jnp.where(use, sig, 1.0), jnp.ones((1, d))], axis=0)
    log_z = log_gauss_mass(-mu / sigma, (1.0 - mu) / sigma)

    # Int coordinates with few values: each kernel's log-mass on every value's bin, once.
    t_idx, _ = _int_split(spec)
    int_logp = jnp.zeros((n + 1, 0, 1))
    if t_idx.size:
        enc, _ = _int_geometry(spec, t_idx)
        v_max = max(spec.num_choices[j] for j in t_idx)
        vals = np.array([[spec.int_low[j] + min(i, spec.num_choices[j] - 1) for i in range(v_max)]
                         for j in t_idx], np.float32).T  # f32[V, nt], padded with the last value
        e_lo, e_hi = jnp.clip(enc(vals - 0.5), 0, 1), jnp.clip(enc(vals + 0.5), 0, 1)
        m_, s_ = mu[:, None, t_idx], sigma[:, None, t_idx]  # f32[K, 1, nt]
        table = log_gauss_mass((e_lo - m_) / s_, (e_hi - m_) / s_) - log_z[:, None, t_idx]
        int_logp = jnp.swapaxes(table, 1, 2)  # f32[K, nt, V]

    # Categorical kernels: observed choice + 1, every choice + prior_weight / (n_j + 1).
    c_max = max([c for c, k in zip(spec.num_choices, spec.kinds) if k == CATEGORICAL] or [1])
    cat_logp = jnp.zeros((n + 1, d, c_max))
    c_idx = _cols(spec, CATEGORICAL)
    if c_idx.size:
        k = np.array([spec.num_choices[j] for j in c_idx])
        valid = jnp.asarray(np.arange(c_max)[None, :] < k[:, None])  # bool[nc, C]
        kf = jnp.asarray(k, jnp.float32)
        choice = jnp.clip(jnp.floor(x[:, c_idx] * kf), 0, kf - 1).astype(jnp.int32)
        base = prior_weight / (n_j[c_idx] + 1.0)  # f32[nc]
        p = base[None, :, None] + jax.nn.one_hot(choice, c_max) * use[:, c_idx, None]
        p = jnp.where(use[:, c_idx, None], p, 1.0)  # inactive rows -> the (uniform) prior
        p = jnp.concatenate([p, jnp.ones((1,) + p.shape[1:])], axis=0)
        p = jnp.where(valid[None], p, 0.0)
        p = p / jnp.sum(p, axis=-1, keepdims=True)
        logp = jnp.where(valid[None], jnp.log(jnp.maximum(p, 1e-30)), -jnp.inf)
        cat_logp = cat_logp.at[:, c_idx].set(logp)

    pw = jnp.where(jnp.any(member), jnp.float32(prior_weight), 1.0)
    w_all = jnp.concatenate([w, pw[None]])
    log_w = jnp.log(w_all / jnp.sum(w_all))
    w_m = jnp.concatenate([jnp.where(use, w[:, None], 0.0),
                           jnp.where(n_j > 0, jnp.float32(prior_weight), 1.0)[None]], axis=0)
    log_w_marginal = jnp.log(w_m / jnp.sum(w_m, axis=0, keepdims=True))
    return ParzenEstimator(mu, sigma, log_z, cat_logp, int_logp, log_w, log_w_marginal, spec)


def _kernels_by_kind(est: ParzenEstimator, x: jax.Array, kinds) -> list:
    """``[(columns, f32[m, K, n_kind])]``: log density (float) or log mass (int, categorical)
    of every kernel at the given kinds' coordinates of ``x: f32[m, d]``."""
    spec, out = est.spec, []
    f_idx, c_idx = _cols(spec, FLOAT), _cols(spec, CATEGORICAL)
    if FLOAT in kinds and f_idx.size:
        mu, sg, lz = est.mu[:, f_idx], est.sigma[:, f_idx], est.log_z[:, f_idx]
        z = (x[:, None, f_idx] - mu) / sg
        out.append((f_idx, -0.5 * z**2 - 0.5 * math.log(2 * math.pi) - jnp.log(sg) - lz))
    t_idx, l_idx = _int_split(spec)
    if INT in kinds and t_idx.size:
        _, to_int = _int_geometry(spec, t_idx)
        v = (to_int(x[:, t_idx]) - jnp.asarray([spec.int_low[j] for j in t_idx], jnp.float32))
        lp = jnp.take_along_axis(est.int_logp[None], v.astype(jnp.int32)[:, None, :, None],
                                 axis=-1)[..., 0]
        out.append((t_idx, lp))
    if INT in kinds and l_idx.size:
        enc, to_int = _int_geometry(spec, l_idx)
        v = to_int(x[:, l_idx])
        e_lo, e_hi = jnp.clip(enc(v - 0.5), 0, 1), jnp.clip(enc(v + 0.5), 0, 1)
        mu, sg, lz = est.mu[:, l_idx], est.sigma[:, l_idx], est.log_z[:, l_idx]
        mass = log_gauss_mass((e_lo[:, None] - mu) / sg, (e_hi[:, None] - mu) / sg)
        out.append((l_idx, mass - lz))
    if CATEGORICAL in kinds and c_idx.size:
        kf = jnp.asarray([spec.num_choices[j] for j in c_idx], jnp.float32)
        choice = jnp.clip(jnp.floor(x[:, c_idx] * kf), 0, kf - 1).astype(jnp.int32)  # i32[m, nc]
        table = est.cat_logp[:, c_idx]  # f32[K, nc, C]
        out.append((c_idx, jnp.take_along_axis(table[None], choice[:, None, :, None],
                                               axis=-1)[..., 0]))
    return out


def component_log_kernels(est: ParzenEstimator, x: jax.Array) -> jax.Array:
    """``f32[m, K, d]``: every kernel's log density (float) or log mass (int, categorical) at
    every coordinate of ``x: f32[m, d]``."""
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    parts = _kernels_by_kind(est, x, (FLOAT, INT, CATEGORICAL))
    cols = np.concatenate([c for c, _ in parts])
    return jnp.concatenate([p for _, p in parts], axis=-1)[..., np.argsort(cols)]


def log_pdf(est: ParzenEstimator, x: jax.Array, active=None) -> jax.Array:
    """Joint log density ``f32[m]`` at ``x: f32[m, d]`` (mixture of product kernels).

    With ``active: bool[m, d]`` the inactive coordinates of each point are marginalized out
    (each point is scored in the subspace of its active parameters).
    """
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    m, d = x.shape
    a = jnp.ones((m, d)) if active is None else jnp.asarray(active, jnp.float32)
    total = jnp.zeros((m, est.mu.shape[0]))
    f_idx = _cols(est.spec, FLOAT)
    if f_idx.size:
        # Sum over float coordinates of -(x - mu)^2 / (2 sigma^2) + const as three matmuls
        # (m x K x d work without an [m, K, d] intermediate).
        mu, sg, lz = est.mu[:, f_idx], est.sigma[:, f_idx], est.log_z[:, f_idx]
        p = 1.0 / sg**2
        af, xf = a[:, f_idx], x[:, f_idx]
        mm = lambda u, v: jnp.matmul(u, v.T, precision=jax.lax.Precision.HIGHEST)
        quad = mm(af * xf**2, p) - 2.0 * mm(af * xf, mu * p) + mm(af, mu**2 * p)
        const = -0.5 * math.log(2 * math.pi) - jnp.log(sg) - lz
        total = total - 0.5 * jnp.maximum(quad, 0.0) + mm(af, const)
    for cols, lk in _kernels_by_kind(est, x, (INT, CATEGORICAL)):
        total = total + jnp.sum(jnp.where(a[:, None, cols] > 0, lk, 0.0), axis=-1)
    return jax.nn.logsumexp(est.log_w[None] + total, axis=-1)


def log_pdf_marginal(est: ParzenEstimator, x: jax.Array) -> jax.Array:
    """Per-coordinate marginal log densities ``f32[m, d]`` (each column its own estimator)."""
    lk = component_log_kernels(est, x)
    return jax.nn.logsumexp(est.log_w_marginal[None] + lk, axis=1)


def _categorical(key, log_w, n):
    """``n`` indices drawn from ``softmax(log_w)`` by inverse CDF: ``log_w: f32[K]`` ->
    ``i32[n]``; ``f32[d, K]`` -> ``i32[n, d]`` (one draw per row and column)."""
    cdf = jnp.cumsum(jnp.exp(log_w - jnp.max(log_w, axis=-1, keepdims=True)), axis=-1)
    u = jax.random.uniform(key, (n,) + log_w.shape[:-1]) * cdf[..., -1]
    pick = lambda c, v: jnp.searchsorted(c, v, side="right")
    idx = pick(cdf, u) if log_w.ndim == 1 else jax.vmap(pick, (0, 1), 1)(cdf, u)
    return jnp.minimum(idx, log_w.shape[-1] - 1)


def sample(key: jax.Array, est: ParzenEstimator, n: int, *, independent: bool = False,
           bandwidth_factor: float = 1.0) -> jax.Array:
    """``n`` draws ``f32[n, d]`` from the estimator (int/categorical coordinates snapped).

    Args:
      key: PRNG key.
      est: the estimator.
      n: number of draws (static).
      independent: draw each coordinate from its own marginal (univariate TPE) instead of
        picking one kernel per draw for all coordinates.
      bandwidth_factor: multiply the bandwidths when sampling (BOHB samples from its good-point
        KDE with factor 3).
    """
    k_comp, k_num, k_cat = jax.random.split(key, 3)
    K, d = est.mu.shape
    if independent:
        comp = _categorical(k_comp, est.log_w_marginal.T, n)  # i32[n, d]
    else:
        comp = jnp.broadcast_to(_categorical(k_comp, est.log_w, n)[:, None], (n, d))
    cols = jnp.arange(d)[None, :]
    mu, sg = est.mu[comp, cols], est.sigma[comp, cols] * bandwidth_factor
    z = jax.random.truncated_normal(k_num, -mu / sg, (1.0 - mu) / sg, (n, d))
    x = jnp.clip(mu + sg * z, 0.0, 1.0)
    c_idx = _cols(est.spec, CATEGORICAL)
    if c_idx.size:
        logits = est.cat_logp[comp[:, c_idx], c_idx[None, :]]  # f32[n, nc, C]
        ch = jax.random.categorical(k_cat, logits, axis=-1)
        kf = jnp.asarray([est.spec.num_choices[j] for j in c_idx], jnp.float32)
        x = x.at[:, c_idx].set((ch + 0.5) / kf)
    return snap(est.spec, x)
