"""An ensemble-MLP surrogate over the unit cube and its replay ring buffer.

One surrogate serves the model-based strategies: the critic of ARS's augmentations
(:func:`jaxhpo.strategies._critic.ensemble_critic`) and the reward model of the PPO agent
(:class:`jaxhpo.strategies.RewardModel`).

* **Replay buffer.** A fixed-capacity ring of ``(x, y)`` rows with a validity mask, so a
  strategy's state keeps one shape however many trials accumulate. Failed rows (``ok`` False or
  a non-finite ``y``) are either stored but masked out (they take their turn in the ring) or not
  stored at all (``drop_invalid``).
* **Ensemble.** ``K`` small Flax MLPs ``[-1, 1]^d -> R`` (the unit cube mapped to ``[-1, 1]``),
  vmapped over members. Targets are standardized by the mean and standard deviation of the valid
  rows at each fit; predictions are mapped back to target units. Each ``fit`` continues from
  the previous weights (warm start) with ``steps`` AdamW steps on a squared error, the members
  differing by initialization and by the data they weigh: either the whole buffer with one
  Bayesian-bootstrap weight per row and member (Rubin 1981), or ``batch_size`` rows drawn
  uniformly from the valid rows per step and member.

Ensembles of independently trained networks as uncertainty-aware surrogates follow
Lakshminarayanan, Pritzel & Blundell, "Simple and scalable predictive uncertainty estimation
using deep ensembles", NeurIPS 2017.
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
    y: jax.Array  # f32[C]      targets (0 where not valid)
    valid: jax.Array  # bool[C]  filled with a finite target
    count: jax.Array  # i32[]    rows ever stored (the next row goes to count % C)


def buffer_init(capacity: int, dim: int) -> ReplayBuffer:
    """An empty buffer of ``capacity`` rows of ``dim`` coordinates."""
    return ReplayBuffer(jnp.zeros((capacity, dim), jnp.float32), jnp.zeros(capacity, jnp.float32),
                        jnp.zeros(capacity, bool), jnp.zeros((), jnp.int32))


def buffer_add(buf: ReplayBuffer, x: jax.Array, y: jax.Array, ok: jax.Array, *,
               drop_invalid: bool = False) -> ReplayBuffer:
    """Append ``x: f32[n, d]``, ``y: f32[n]`` as a ring (oldest rows overwritten first).

    Rows with ``ok == False`` (failed trials) or a non-finite ``y`` never reach a fit or the
    standardization: by default they are stored marked invalid (and counted); with
    ``drop_invalid`` they are not stored, so the valid rows stay a prefix of a part-filled
    buffer. Needs ``n <= C``.
    """
    cap, n = buf.y.shape[0], x.shape[0]
    ok = ok & jnp.isfinite(y)
    if drop_invalid:
        rank = jnp.cumsum(ok) - 1  # position among the valid rows
        idx = jnp.where(ok, (buf.count + rank) % cap, cap)  # cap: out of range, dropped
        added = jnp.sum(ok).astype(jnp.int32)
    else:
        idx = (buf.count + jnp.arange(n)) % cap
        added = n
    put = lambda a, v: a.at[idx].set(v, mode="drop")  # noqa: E731
    return ReplayBuffer(put(buf.x, jnp.asarray(x, jnp.float32)), put(buf.y, jnp.where(ok, y, 0.0)),
                        put(buf.valid, ok), buf.count + added)


class MLP(nn.Module):
    """``[0, 1]^d -> R``: inputs mapped to ``[-1, 1]``, ``hidden`` layers of ``activation``."""

    hidden: tuple[int, ...]
    activation: Callable = jnp.tanh

    @nn.compact
    def __call__(self, x):
        z = 2.0 * x - 1.0
        for h in self.hidden:
            z = self.activation(nn.Dense(h)(z))
        return nn.Dense(1)(z)[..., 0]


@struct.dataclass
class EnsembleState:
    params: Any  # pytree, each leaf with a leading member axis [K, ...]
    opt_state: Any  # AdamW state, same leading axis
    y_mean: jax.Array  # f32[]  standardization of the targets at the last fit
    y_std: jax.Array  # f32[]
    num_valid: jax.Array  # i32[]  valid rows at the last fit


class Ensemble(NamedTuple):
    """Pure functions of an ensemble surrogate (closed over its static configuration).

    Attributes:
      init: ``init(key) -> EnsembleState``.
      fit: ``fit(key, state, buffer) -> state``: ``steps`` AdamW steps from the current params.
      members: ``members(state, x f32[..., d]) -> f32[K, ...]``: each member's prediction.
      predict: ``predict(state, x f32[..., d]) -> f32[...]``: the ensemble mean.
      grad: ``grad(state, x f32[d]) -> f32[d]``: ``d predict / d x``.
    """

    init: Callable
    fit: Callable
    members: Callable
    predict: Callable
    grad: Callable


def target_stats(buf: ReplayBuffer):
    """``(n, mean, std)`` of the valid targets (``std = 1`` when they are all equal)."""
    valid = buf.valid.astype(jnp.float32)
    n = jnp.sum(valid)
    mean = jnp.sum(valid * buf.y) / jnp.maximum(n, 1.0)
    std = jnp.sqrt(jnp.sum(valid * (buf.y - mean) ** 2) / jnp.maximum(n, 1.0))
    return n, mean, jnp.where(std > 1e-8, std, 1.0)


def ensemble(dim: int, *, members: int = 5, hidden: tuple[int, ...] = (32, 32),
             activation: Callable = jnp.tanh, steps: int = 32, learning_rate: float = 3e-3,
             weight_decay: float = 0.0, batch_size: int | None = None) -> Ensemble:
    """An ensemble of ``members`` MLPs fitted by a (weighted) squared error.

    Args:
      dim: input dimension ``d``.
      members: ensemble size ``K``.
      hidden, activation: hidden widths and their nonlinearity.
      steps: AdamW steps per ``fit``.
      learning_rate, weight_decay: of ``optax.adamw``.
      batch_size: ``None``: full batch, each member with Bayesian-bootstrap weights
        (``Exp(1)`` per valid row, drawn once per fit); else rows per step and member, drawn
        uniformly with replacement from the valid rows.
    """
    net = MLP(tuple(hidden), activation)
    opt = optax.adamw(learning_rate, weight_decay=weight_decay)

    @jax.jit  # one compiled call instead of many small eager ones
    def init(key):
        params = jax.vmap(lambda k: net.init(k, jnp.zeros((dim,))))(jax.random.split(key, members))
        return EnsembleState(params, jax.vmap(opt.init)(params), jnp.zeros(()), jnp.ones(()),
                             jnp.zeros((), jnp.int32))

    def members_fn(state, x):
        out = jax.vmap(lambda p: net.apply(p, jnp.asarray(x, jnp.float32)))(state.params)
        return state.y_mean + state.y_std * out

    def predict(state, x):
        return jnp.mean(members_fn(state, x), axis=0)

    def grad(state, x):
        return jax.grad(lambda v: predict(state, v))(x)

    def loss(params, x, target, w):
        err = net.apply(params, x) - target
        return jnp.sum(w * err**2) / jnp.maximum(jnp.sum(w), 1e-6)

    def adam_step(params, opt_state, x, target, w):  # one member
        g = jax.grad(loss)(params, x, target, w)
        upd, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, upd), opt_state

    def fit(key, state, buf):
        n, mean, std = target_stats(buf)
        target = jnp.where(buf.valid, (buf.y - mean) / std, 0.0)
        if batch_size is None:
            w = jax.random.exponential(key, (members, buf.y.shape[0])) * buf.valid

            def step(carry, _):
                params, opt_state = carry
                return jax.vmap(adam_step, (0, 0, None, None, 0))(params, opt_state, buf.x,
                                                                   target, w), None

            keys = None
        else:
            rows = jnp.argsort(~buf.valid, stable=True)  # the valid rows first
            ones = jnp.ones((batch_size,), jnp.float32)

            def one(params, opt_state, k):
                idx = rows[jax.random.randint(k, (batch_size,), 0, jnp.maximum(n, 1).astype(
                    jnp.int32))]
                return adam_step(params, opt_state, buf.x[idx], target[idx], ones)

            def step(carry, k):
                params, opt_state = carry
                return jax.vmap(one)(params, opt_state, jax.random.split(k, members)), None

            keys = jax.random.split(key, steps)
        (params, opt_state), _ = jax.lax.scan(step, (state.params, state.opt_state), keys,
                                              length=steps)
        return EnsembleState(params, opt_state, mean, std, n.astype(jnp.int32))

    return Ensemble(init, fit, members_fn, predict, grad)
