"""Reinforcement learning in JAX: a reusable PPO core and a PPO trainer for gymnax-style
environments (used by :func:`jaxhpo.strategies.ppo_agent`)."""

from jaxhpo.rl._ppo import (Batch, LossInfo, PPOConfig, TrainState, gae, make_optimizer,
                            make_update, ppo_loss)
from jaxhpo.rl._train import ActorCritic, TrainConfig, TrainOutput, make_train

__all__ = ["Batch", "LossInfo", "PPOConfig", "TrainState", "gae", "make_optimizer",
           "make_update", "ppo_loss", "ActorCritic", "TrainConfig", "TrainOutput",
           "make_train"]
