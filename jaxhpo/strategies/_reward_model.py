"""A bootstrap ensemble of small MLPs predicting fitness from a unit-cube configuration.

The reward model of model-based RL for hyperparameter optimization (Wu, Chen & Liu,
"Efficient Hyperparameter Optimization through Model-based Reinforcement Learning",
Neurocomputing 2020), used by :func:`jaxhpo.strategies.ppo_agent` to score imagined episodes.
The paper uses one MLP; an ensemble (members differing in initialization and in the minibatches
they draw, as in Lakshminarayanan et al., NeurIPS 2017) gives a steadier mean and a disagreement
estimate at little cost.

Every real ``(x, fitness)`` pair goes into a fixed-capacity ring buffer (the oldest pair is
overwritten once it is full, so shapes never change). Targets are standardized with the
buffer's mean and standard deviation before fitting; predictions are returned in fitness units.
Each :func:`fit` call continues training the previous weights (warm start) for ``train_steps``
Adam steps on minibatches drawn uniformly from the filled part of the buffer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct


class _MLP(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        h = 2.0 * x - 1.0
        for w in self.hidden:
            h = nn.swish(nn.Dense(w)(h))
        return nn.Dense(1)(h)[..., 0]


@struct.dataclass
class RewardModelState:
    params: Any  # per-member MLP weights, every leaf with a leading axis M
    opt_state: Any
    x: jax.Array  # f32[C, d]  configurations (ring buffer)
    y: jax.Array  # f32[C]     their fitness
    count: jax.Array  # i32[]  pairs ever added (the buffer holds min(count, C))


@dataclasses.dataclass(frozen=True)
class RewardModel:
    """Static settings and the pure functions of the ensemble.

    Attributes:
      dim: ``d``.
      capacity: ``C``, pairs kept.
      num_members: ``M``.
      hidden: widths of the hidden layers.
      learning_rate: Adam step size.
      train_steps: Adam steps per :meth:`fit`.
      batch_size: minibatch rows per step and member.
    """

    dim: int
    capacity: int = 512
    num_members: int = 5
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-3
    train_steps: int = 100
    batch_size: int = 64

    @property
    def _net(self):
        return _MLP(self.hidden)

    @property
    def _opt(self):
        return optax.adam(self.learning_rate)

    def init(self, key) -> RewardModelState:
        keys = jax.random.split(key, self.num_members)
        params = jax.vmap(lambda k: self._net.init(k, jnp.zeros((self.dim,))))(keys)
        return RewardModelState(params, jax.vmap(self._opt.init)(params),
                                jnp.zeros((self.capacity, self.dim)),
                                jnp.zeros((self.capacity,)), jnp.zeros((), jnp.int32))

    def add(self, state: RewardModelState, x, y, valid) -> RewardModelState:
        """Append the rows of ``x f32[n, d]``, ``y f32[n]`` where ``valid bool[n]``."""
        rank = jnp.cumsum(valid) - 1  # position among the valid rows
        slot = jnp.where(valid, (state.count + rank) % self.capacity, self.capacity)
        bx = state.x.at[slot].set(x, mode="drop")
        by = state.y.at[slot].set(y, mode="drop")
        return state.replace(x=bx, y=by, count=state.count + jnp.sum(valid).astype(jnp.int32))

    def _stats(self, state):
        filled = jnp.minimum(state.count, self.capacity)
        mask = jnp.arange(self.capacity) < filled
        m = jnp.sum(jnp.where(mask, state.y, 0.0)) / jnp.maximum(filled, 1)
        var = jnp.sum(jnp.where(mask, (state.y - m) ** 2, 0.0)) / jnp.maximum(filled, 1)
        return filled, m, jnp.sqrt(jnp.maximum(var, 1e-12))

    def fit(self, key, state: RewardModelState) -> RewardModelState:
        """``train_steps`` Adam steps of mean squared error on standardized targets."""
        filled, mu, sd = self._stats(state)
        y = (state.y - mu) / sd

        def member_step(params, opt_state, k):
            idx = jax.random.randint(k, (self.batch_size,), 0, jnp.maximum(filled, 1))

            def loss(p):
                return jnp.mean((self._net.apply(p, state.x[idx]) - y[idx]) ** 2)

            g = jax.grad(loss)(params)
            upd, opt_state = self._opt.update(g, opt_state, params)
            return optax.apply_updates(params, upd), opt_state

        def step(carry, k):
            params, opt_state = carry
            ks = jax.random.split(k, self.num_members)
            return jax.vmap(member_step)(params, opt_state, ks), None

        (params, opt_state), _ = jax.lax.scan(step, (state.params, state.opt_state),
                                              jax.random.split(key, self.train_steps))
        return state.replace(params=params, opt_state=opt_state)

    def predict(self, state: RewardModelState, x):
        """``(mean f32[n], std f32[n])`` of the members' fitness predictions at ``x f32[n, d]``."""
        _, mu, sd = self._stats(state)
        preds = jax.vmap(lambda p: self._net.apply(p, x))(state.params) * sd + mu  # [M, n]
        return jnp.mean(preds, 0), jnp.std(preds, 0)
