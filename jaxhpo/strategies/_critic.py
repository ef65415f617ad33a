"""The ensemble critic of ARS's augmentations (:mod:`jaxhpo.strategies._ars_augmented`).

A :mod:`jaxhpo.strategies._ensemble` surrogate of the reward over the unit cube: tanh MLPs
(smooth, so ``d critic / d x`` is well behaved), each member fitted full-batch on its own
Bayesian-bootstrap weights of the replay buffer (Rubin 1981) by a few AdamW steps per ``tell``,
warm-started from its previous parameters.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxhpo.strategies._ensemble import (Ensemble, EnsembleState, ReplayBuffer, buffer_add,
                                         buffer_init, ensemble)

Critic = Ensemble
CriticState = EnsembleState

__all__ = ["Critic", "CriticState", "ReplayBuffer", "buffer_add", "buffer_init",
           "ensemble_critic"]


def ensemble_critic(dim: int, *, members: int = 5, hidden: tuple[int, ...] = (32, 32),
                    steps: int = 32, learning_rate: float = 3e-3,
                    weight_decay: float = 1e-4) -> Critic:
    """An ensemble of ``members`` tanh MLPs ``[0, 1]^d -> R`` fitted by weighted MSE.

    Args:
      dim: input dimension ``d``.
      members: ensemble size ``K``.
      hidden: hidden widths (tanh).
      steps: AdamW steps per ``fit`` (full batch over the buffer, bootstrap weights).
      learning_rate, weight_decay: of ``optax.adamw``.

    Returns:
      An :class:`jaxhpo.strategies._ensemble.Ensemble`: ``init``, ``fit(key, state, buffer)``,
      ``members``, ``predict`` (ensemble mean, reward units) and ``grad``.
    """
    return ensemble(dim, members=members, hidden=hidden, activation=jnp.tanh, steps=steps,
                    learning_rate=learning_rate, weight_decay=weight_decay, batch_size=None)
