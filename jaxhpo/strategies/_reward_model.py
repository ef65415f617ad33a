"""A bootstrap ensemble of small MLPs predicting fitness from a unit-cube configuration.

The reward model of model-based RL for hyperparameter optimization (Wu, Chen & Liu,
"Efficient Hyperparameter Optimization through Model-based Reinforcement Learning",
Neurocomputing 2020), used by :func:`jaxhpo.strategies.ppo_agent` to score imagined episodes.
The paper uses one MLP; an ensemble (members differing in initialization and in the minibatches
they draw, as in Lakshminarayanan et al., NeurIPS 2017) gives a steadier mean and a disagreement
estimate at little cost. The ensemble, its ring buffer and its fit are those of
:mod:`jaxhpo.strategies._ensemble` (shared with ARS's critic).

Every real ``(x, fitness)`` pair goes into a fixed-capacity ring buffer (the oldest pair is
overwritten once it is full, so shapes never change; failed pairs are not stored). Targets are
standardized with the buffer's mean and standard deviation before fitting; predictions are
returned in fitness units. Each :meth:`RewardModel.fit` call continues training the previous
weights (warm start) for ``train_steps`` Adam steps on minibatches drawn uniformly from the
filled part of the buffer.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo.strategies._ensemble import (Ensemble, EnsembleState, ReplayBuffer, buffer_add,
                                         buffer_init, ensemble)


@struct.dataclass
class RewardModelState:
    surrogate: EnsembleState  # per-member MLP weights (leading axis M), Adam state, scaling
    buffer: ReplayBuffer  # C pairs, ring; only successful trials are stored

    @property
    def count(self) -> jax.Array:
        """``i32[]``: pairs ever added (the buffer holds ``min(count, C)``)."""
        return self.buffer.count

    @property
    def x(self) -> jax.Array:
        """``f32[C, d]``: the configurations in the buffer."""
        return self.buffer.x

    @property
    def y(self) -> jax.Array:
        """``f32[C]``: their fitness."""
        return self.buffer.y


@dataclasses.dataclass(frozen=True)
class RewardModel:
    """Static settings and the pure functions of the ensemble.

    Attributes:
      dim: ``d``.
      capacity: ``C``, pairs kept.
      num_members: ``M``.
      hidden: widths of the hidden layers (swish).
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

    @functools.cached_property
    def _ensemble(self) -> Ensemble:
        return ensemble(self.dim, members=self.num_members, hidden=tuple(self.hidden),
                        activation=jax.nn.swish, steps=self.train_steps,
                        learning_rate=self.learning_rate, batch_size=self.batch_size)

    def init(self, key) -> RewardModelState:
        return RewardModelState(self._ensemble.init(key), buffer_init(self.capacity, self.dim))

    def add(self, state: RewardModelState, x, y, valid) -> RewardModelState:
        """Append the rows of ``x f32[n, d]``, ``y f32[n]`` where ``valid bool[n]``."""
        return state.replace(buffer=buffer_add(state.buffer, x, y, jnp.asarray(valid, bool),
                                               drop_invalid=True))

    def fit(self, key, state: RewardModelState) -> RewardModelState:
        """``train_steps`` Adam steps of mean squared error on standardized targets."""
        return state.replace(surrogate=self._ensemble.fit(key, state.surrogate, state.buffer))

    def predict(self, state: RewardModelState, x):
        """``(mean f32[n], std f32[n])`` of the members' fitness predictions at ``x f32[n, d]``
        (as of the last :meth:`fit`)."""
        preds = self._ensemble.members(state.surrogate, x)  # [M, n]
        return jnp.mean(preds, 0), jnp.std(preds, 0)
