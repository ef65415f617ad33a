"""Experience replay and an ensemble-MLP critic over the unit cube (the surrogate of ARS's
augmentations, :mod:`jaxhpo.strategies._ars_augmented`).

The replay buffer is a fixed-capacity ring of every evaluated ``(x, reward)`` with a validity
mask, so the strategy state keeps one shape however many trials accumulate. The critic is an
ensemble of small Flax MLPs, vmapped over members, each fitted by a few Adam steps (optax) per
call on Bayesian-bootstrap weights of the buffer (Rubin 1981), warm-started from its previous
parameters. Inputs are the unit cube mapped to ``[-1, 1]``; targets are standardized by the mean
and standard deviation of the valid rewards, and predictions are mapped back to reward units.
Ensembles of independently trained networks as uncertainty-aware surrogates follow
Lakshminarayanan et al., "Simple and scalable predictive uncertainty estimation using deep
ensembles", NeurIPS 2017.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class ReplayBuffer:
    x: jax.Array  # f32[C, d]   unit-cube points
    y: jax.Array  # f32[C]      rewards (0 where not valid)
    valid: jax.Array  # bool[C]  filled with a finite reward
    count: jax.Array  # i32[]    rows ever added (the next row goes to count % C)


def buffer_init(capacity: int, dim: int) -> ReplayBuffer:
    """An empty buffer of ``capacity`` rows of ``dim`` coordinates."""
    return ReplayBuffer(jnp.zeros((capacity, dim), jnp.float32), jnp.zeros(capacity, jnp.float32),
                        jnp.zeros(capacity, bool), jnp.zeros((), jnp.int32))


def buffer_add(buf: ReplayBuffer, x: jax.Array, y: jax.Array, ok: jax.Array) -> ReplayBuffer:
    """Append ``x: f32[n, d]``, ``y: f32[n]`` as a ring (oldest rows overwritten first).

    Rows with ``ok == False`` (failed trials) or a non-finite ``y`` are stored but marked invalid,
    so they never reach the critic's training set or its standardization. Needs ``n <= C``.
    """
    cap, n = buf.y.shape[0], x.shape[0]
    idx = (buf.count + jnp.arange(n)) % cap
    ok = ok & jnp.isfinite(y)
    return ReplayBuffer(buf.x.at[idx].set(x), buf.y.at[idx].set(jnp.where(ok, y, 0.0)),
                        buf.valid.at[idx].set(ok), buf.count + n)


class _MLP(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, z):
        for h in self.hidden:
            z = jnp.tanh(nn.Dense(h)(z))  # smooth, so d critic / d x is well behaved
        return nn.Dense(1)(z)[..., 0]


@struct.dataclass
class CriticState:
    params: Any  # pytree, each leaf with a leading member axis [K, ...]
    opt_state: Any  # Adam state, same leading axis
    y_mean: jax.Array  # f32[]  standardization of the targets
    y_std: jax.Array  # f32[]
    num_valid: jax.Array  # i32[]  valid rows at the last fit


class Critic(NamedTuple):
    """Pure functions of an ensemble critic (closed over its static configuration).

    Attributes:
      init: ``init(key) -> CriticState``.
      fit: ``fit(key, state, buffer) -> state``: ``steps`` Adam steps from the current params.
      predict: ``predict(state, x f32[..., d]) -> f32[...]``: ensemble mean, reward units.
      grad: ``grad(state, x f32[d]) -> f32[d]``: ``d predict / d x``.
      members: ``predict`` per member, ``f32[K, ...]`` (reward units).
    """

    init: Callable
    fit: Callable
    predict: Callable
    grad: Callable
    members: Callable


def ensemble_critic(dim: int, *, members: int = 5, hidden: tuple[int, ...] = (32, 32),
                    steps: int = 32, learning_rate: float = 3e-3,
                    weight_decay: float = 1e-4) -> Critic:
    """An ensemble of ``members`` MLPs ``[-1, 1]^d -> R`` fitted by masked, weighted MSE.

    Args:
      dim: input dimension ``d``.
      members: ensemble size ``K``.
      hidden: hidden widths (tanh).
      steps: Adam steps per ``fit`` (full batch over the buffer).
      learning_rate, weight_decay: of ``optax.adamw``.
    """
    net = _MLP(tuple(hidden))
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)

    @jax.jit  # one compiled call instead of many small eager ones
    def init(key):
        params = jax.vmap(lambda k: net.init(k, jnp.zeros((dim,))))(jax.random.split(key, members))
        return CriticState(params, jax.vmap(opt.init)(params), jnp.zeros(()), jnp.ones(()),
                           jnp.zeros((), jnp.int32))

    def members_fn(state, x):
        z = 2.0 * jnp.asarray(x, jnp.float32) - 1.0
        out = jax.vmap(lambda p: net.apply(p, z))(state.params)
        return state.y_mean + state.y_std * out

    def predict(state, x):
        return jnp.mean(members_fn(state, x), axis=0)

    def grad(state, x):
        return jax.grad(lambda v: predict(state, v))(x)

    def fit(key, state, buf):
        valid = buf.valid.astype(jnp.float32)
        n = jnp.sum(valid)
        mean = jnp.sum(valid * buf.y) / jnp.maximum(n, 1.0)
        std = jnp.sqrt(jnp.sum(valid * (buf.y - mean) ** 2) / jnp.maximum(n, 1.0))
        std = jnp.where(std > 1e-8, std, 1.0)
        target = jnp.where(buf.valid, (buf.y - mean) / std, 0.0)
        z = 2.0 * buf.x - 1.0
        # Bayesian bootstrap: each member sees the valid rows with its own Exp(1) weights
        w = jax.random.exponential(key, (members, buf.y.shape[0])) * valid

        def loss(params, w_k):
            err = net.apply(params, z) - target
            return jnp.sum(w_k * err**2) / jnp.maximum(jnp.sum(w_k), 1e-6)

        def step(carry, _):
            params, opt_state = carry
            g = jax.vmap(jax.grad(loss))(params, w)
            upd, opt_state = jax.vmap(opt.update)(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), None

        (params, opt_state), _ = jax.lax.scan(step, (state.params, state.opt_state), None,
                                              length=steps)
        return CriticState(params, opt_state, mean, std, n.astype(jnp.int32))

    return Critic(init, fit, predict, grad, members_fn)
