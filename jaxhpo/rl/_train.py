"""PPO on a vectorized environment with the gymnax interface, as one jitted ``lax.scan``.

Modelled on PureJaxRL's ``make_train`` (C. Lu et al., "Discovered Policy Optimisation",
NeurIPS 2022), with a frozen config dataclass and NamedTuple carries. The environment is any
object with gymnax's functional interface (``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params)``, which in gymnax >= 1.0 returns six values
``obs, state, reward, terminated, truncated, info`` and auto-resets); gymnax itself is never
imported here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo.rl._ppo import Batch, PPOConfig, TrainState, gae, make_optimizer, make_update


class ActorCritic(nn.Module):
    """Separate two-layer tanh MLPs for a categorical policy and a value function
    (orthogonal init, policy output scaled by 0.01, as in the PPO implementation details)."""

    num_actions: int
    hidden: int = 64

    @nn.compact
    def __call__(self, obs):
        def mlp(h, out, scale):
            for _ in range(2):
                h = nn.tanh(nn.Dense(self.hidden, kernel_init=nn.initializers.orthogonal(
                    np.sqrt(2.0)))(h))
            return nn.Dense(out, kernel_init=nn.initializers.orthogonal(scale))(h)

        logits = mlp(obs, self.num_actions, 0.01)
        value = mlp(obs, 1, 1.0)[..., 0]
        return logits, value


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static settings of :func:`make_train`.

    Attributes:
      ppo: the :class:`PPOConfig` of each update.
      num_envs: parallel environments (vmapped).
      num_steps: steps per environment per update; a batch has ``num_envs * num_steps``
        transitions.
      total_steps: environment steps of the whole run (rounded down to whole updates).
      hidden: width of the actor-critic MLPs.
      eval_every: updates between two evaluations.
      eval_episodes: episodes per evaluation, run with the greedy (arg-max) policy.
      eval_horizon: steps per evaluation episode (CartPole-v1's limit is 500).
    """

    ppo: PPOConfig = PPOConfig(anneal_lr=True)
    num_envs: int = 4
    num_steps: int = 128
    total_steps: int = 500_000
    hidden: int = 64
    eval_every: int = 10
    eval_episodes: int = 10
    eval_horizon: int = 500

    @property
    def num_updates(self) -> int:
        return self.total_steps // (self.num_envs * self.num_steps)

    @property
    def num_evals(self) -> int:
        return self.num_updates // self.eval_every

    @property
    def steps_per_eval(self) -> int:
        return self.eval_every * self.num_envs * self.num_steps


class RunnerState(NamedTuple):
    train: TrainState
    env_state: Any
    obs: jax.Array  # f32[envs, obs]
    ep_return: jax.Array  # f32[envs]  return of each running episode so far


class Transition(NamedTuple):
    obs: jax.Array  # f32[T, envs, obs]
    action: jax.Array  # i32[T, envs]
    log_prob: jax.Array  # f32[T, envs]
    value: jax.Array  # f32[T, envs]
    reward: jax.Array  # f32[T, envs]
    done: jax.Array  # bool[T, envs]
    finished: jax.Array  # f32[T, envs]  return of an episode that ended here, else 0


class TrainOutput(NamedTuple):
    params: Any
    eval_return: jax.Array  # f32[num_evals]  greedy policy's mean return after each window
    train_return: jax.Array  # f32[num_evals]  mean return of training episodes in the window


def make_train(config: TrainConfig, env, env_params):
    """Build ``train(key) -> TrainOutput``: PPO with a feed-forward :class:`ActorCritic`.

    Args:
      config: :class:`TrainConfig`.
      env, env_params: a gymnax-style environment with a discrete action space.

    Returns:
      A pure function of a PRNG key; ``jax.jit(train)`` compiles the whole run.
    """
    if config.num_evals < 1:
        raise ValueError(f"TrainConfig: total_steps={config.total_steps} gives fewer updates "
                         f"than eval_every={config.eval_every}; raise total_steps")
    num_actions = env.action_space(env_params).n
    net = ActorCritic(num_actions, config.hidden)
    optimizer = make_optimizer(config.ppo, config.num_updates)

    def evaluate(params, inputs):
        obs, action = inputs
        logits, value = net.apply(params, obs)
        logp = jax.nn.log_softmax(logits)
        lp = jnp.take_along_axis(logp, action[..., None], -1)[..., 0]
        return lp, -jnp.sum(jnp.exp(logp) * logp, -1), value

    update = make_update(config.ppo, evaluate, optimizer)

    def env_step(runner: RunnerState, key):
        k_act, k_env = jax.random.split(key)
        logits, value = net.apply(runner.train.params, runner.obs)
        action = jax.random.categorical(k_act, logits)
        lp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
        obs, env_state, reward, term, trunc, _ = jax.vmap(
            env.step, (0, 0, 0, None))(jax.random.split(k_env, config.num_envs),
                                       runner.env_state, action, env_params)
        done = term | trunc
        ep = runner.ep_return + reward
        tr = Transition(runner.obs, action, lp, value, reward, done, jnp.where(done, ep, 0.0))
        return runner._replace(env_state=env_state, obs=obs,
                               ep_return=jnp.where(done, 0.0, ep)), tr

    def ppo_iteration(runner: RunnerState, key):
        k_roll, k_upd = jax.random.split(key)
        runner, tr = jax.lax.scan(env_step, runner,
                                  jax.random.split(k_roll, config.num_steps))
        _, last_value = net.apply(runner.train.params, runner.obs)
        adv, target = gae(tr.reward, tr.value, tr.done, last_value, config.ppo.gamma,
                          config.ppo.gae_lambda)
        flat = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
        batch = Batch((flat(tr.obs), flat(tr.action)), flat(tr.log_prob), flat(tr.value),
                      flat(adv), flat(target))
        train, _ = update(k_upd, runner.train, batch)
        done = tr.done.astype(jnp.float32)
        return runner._replace(train=train), (jnp.sum(tr.finished), jnp.sum(done))

    def greedy_return(params, key):
        obs, state = env.reset(key, env_params)

        def step(carry, k):
            obs, state, alive, ret = carry
            logits, _ = net.apply(params, obs)
            obs, state, r, term, trunc, _ = env.step(k, state, jnp.argmax(logits), env_params)
            ret = ret + jnp.where(alive, r, 0.0)
            return (obs, state, alive & ~(term | trunc), ret), None

        (_, _, _, ret), _ = jax.lax.scan(step, (obs, state, jnp.bool_(True), jnp.float32(0)),
                                         jax.random.split(key, config.eval_horizon))
        return ret

    def window(runner: RunnerState, key):
        k_upd, k_eval = jax.random.split(key)
        runner, (ret_sum, count) = jax.lax.scan(ppo_iteration, runner,
                                                jax.random.split(k_upd, config.eval_every))
        rets = jax.vmap(greedy_return, (None, 0))(runner.train.params,
                                                  jax.random.split(k_eval,
                                                                   config.eval_episodes))
        train_ret = jnp.sum(ret_sum) / jnp.maximum(jnp.sum(count), 1.0)
        return runner, (jnp.mean(rets), train_ret)

    def train(key) -> TrainOutput:
        k_init, k_reset, k_run = jax.random.split(key, 3)
        obs_shape = env.observation_space(env_params).shape
        params = net.init(k_init, jnp.zeros(obs_shape, jnp.float32))
        obs, env_state = jax.vmap(env.reset, (0, None))(
            jax.random.split(k_reset, config.num_envs), env_params)
        runner = RunnerState(TrainState(params, optimizer.init(params)), env_state, obs,
                             jnp.zeros(config.num_envs))
        runner, (ev, tr) = jax.lax.scan(window, runner,
                                        jax.random.split(k_run, config.num_evals))
        return TrainOutput(runner.train.params, ev, tr)

    return train
