"""Proximal Policy Optimization: GAE, the clipped surrogate and one jitted minibatch update.

J. Schulman, F. Wolski, P. Dhariwal, A. Radford and O. Klimov, "Proximal Policy Optimization
Algorithms", arXiv:1707.06347 (2017); J. Schulman, P. Moritz, S. Levine, M. Jordan and
P. Abbeel, "High-Dimensional Continuous Control Using Generalized Advantage Estimation", ICLR
2016. The implementation details (advantage normalization per minibatch, clipped value loss,
global-norm clipping, Adam eps 1e-5) follow Huang et al., "The 37 Implementation Details of
PPO" (ICLR blog track 2022) and PureJaxRL's ``make_train``.

The update is agnostic of the network: the caller passes
``evaluate(params, inputs) -> (log_prob, entropy, value)``, re-evaluating the stored actions
under new parameters. For a feed-forward agent a batch row is one transition; for a recurrent
agent a row is a whole episode (``log_prob: f32[N, T]``) and ``evaluate`` re-runs the recurrence
over the episode. Minibatches always split the leading axis.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxhpo._validate import check_int, check_real


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Static PPO settings (hashable, so a config can close over a jitted function).

    Attributes:
      learning_rate: Adam step size (the start of the schedule if ``anneal_lr``).
      num_epochs: passes over the batch per update (``K`` in the paper).
      num_minibatches: minibatches per epoch; must divide the batch's leading axis.
      clip_eps: ``epsilon`` of the clipped surrogate, Eq. (7) of Schulman et al. 2017; also
        the value-clipping range.
      vf_coef, ent_coef: ``c1``, ``c2`` of Eq. (9).
      max_grad_norm: global-norm gradient clipping before Adam.
      gamma, gae_lambda: discount and GAE ``lambda`` (Schulman et al. 2016, Eq. (16)).
      clip_value: use the clipped value loss (PPO2) instead of plain squared error.
      normalize_advantages: standardize advantages within each minibatch.
      anneal_lr: linearly decay the learning rate to 0 over ``num_updates`` updates.
      adam_eps: Adam's epsilon.
    """

    learning_rate: float = 2.5e-4
    num_epochs: int = 4
    num_minibatches: int = 4
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_value: bool = True
    normalize_advantages: bool = True
    anneal_lr: bool = False
    adam_eps: float = 1e-5

    def __post_init__(self):
        for name in ("num_epochs", "num_minibatches"):
            check_int(getattr(self, name), f"PPOConfig.{name}", 1)
        for name in ("learning_rate", "clip_eps", "max_grad_norm"):
            check_real(getattr(self, name), f"PPOConfig.{name}", 0.0, low_open=True)
        for name in ("vf_coef", "ent_coef"):
            check_real(getattr(self, name), f"PPOConfig.{name}")
        for name in ("gamma", "gae_lambda"):
            check_real(getattr(self, name), f"PPOConfig.{name}", 0.0, 1.0)


class Batch(NamedTuple):
    """Rollout data for one PPO update; every leaf has the same leading axis ``N``.

    ``inputs`` is whatever ``evaluate`` needs (observations and actions, or whole episodes);
    the four arrays share one shape, ``f32[N]`` (transitions) or ``f32[N, T]`` (episodes).
    """

    inputs: Any
    log_prob: jax.Array  # f32[N, ...]  behaviour-policy log-probabilities of the actions
    value: jax.Array  # f32[N, ...]     value estimates at collection time
    advantage: jax.Array  # f32[N, ...] GAE advantages
    target: jax.Array  # f32[N, ...]    value targets (advantage + value)


class TrainState(NamedTuple):
    params: Any
    opt_state: Any


class LossInfo(NamedTuple):
    total: jax.Array  # f32[]
    policy: jax.Array  # f32[]
    value: jax.Array  # f32[]
    entropy: jax.Array  # f32[]
    approx_kl: jax.Array  # f32[]  mean of (ratio - 1) - log ratio (Schulman's k3 estimator)
    clip_frac: jax.Array  # f32[]  fraction of ratios outside [1 - eps, 1 + eps]


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalized advantage estimates by a reverse scan over time (Schulman et al. 2016).

    ``delta_t = r_t + gamma V(s_{t+1}) (1 - done_t) - V(s_t)`` (Eq. (10)) and
    ``A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}`` (Eq. (16)), where ``done_t`` marks that
    the episode ended at step ``t`` (so ``s_{t+1}`` belongs to the next episode).

    Args:
      rewards, values, dones: ``f32[T, ...]`` time-major (``dones`` bool or float).
      last_value: ``f32[...]``, ``V`` of the state after the last step (bootstrap).
      gamma, lam: discount and GAE ``lambda``.

    Returns:
      ``(advantages, targets)``, both ``f32[T, ...]``; ``targets = advantages + values``.
    """
    not_done = 1.0 - jnp.asarray(dones, jnp.float32)

    def step(carry, xs):
        adv_next, v_next = carry
        r, v, nd = xs
        delta = r + gamma * v_next * nd - v
        adv = delta + gamma * lam * nd * adv_next
        return (adv, v), adv

    init = (jnp.zeros_like(last_value), last_value)
    _, adv = jax.lax.scan(step, init, (rewards, values, not_done), reverse=True)
    return adv, adv + values


def ppo_loss(new_log_prob, entropy, new_value, batch: Batch, config: PPOConfig):
    """PPO's objective for one minibatch, to be minimized.

    ``L = -L^CLIP + c1 L^VF - c2 S`` (Eq. (9)), ``L^CLIP = E[min(r A, clip(r, 1-eps, 1+eps) A)]``
    (Eq. (7)), ``r = exp(log pi - log pi_old)``; the value loss is
    ``0.5 E[max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)]`` when ``clip_value``.

    Returns:
      ``(loss f32[], LossInfo)``.
    """
    adv = batch.advantage
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_ratio = new_log_prob - batch.log_prob
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
    policy = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    v_err = (new_value - batch.target) ** 2
    if config.clip_value:
        v_clip = batch.value + jnp.clip(new_value - batch.value, -config.clip_eps,
                                        config.clip_eps)
        v_err = jnp.maximum(v_err, (v_clip - batch.target) ** 2)
    value = 0.5 * jnp.mean(v_err)
    ent = jnp.mean(entropy)
    total = policy + config.vf_coef * value - config.ent_coef * ent
    info = LossInfo(total, policy, value, ent, jnp.mean(ratio - 1.0 - log_ratio),
                    jnp.mean((jnp.abs(ratio - 1.0) > config.clip_eps).astype(jnp.float32)))
    return total, info


def make_optimizer(config: PPOConfig, num_updates: int | None = None):
    """``optax.chain(clip_by_global_norm, adam)``, with a linear decay over ``num_updates``
    PPO updates when ``config.anneal_lr``."""
    lr = config.learning_rate
    if config.anneal_lr:
        if not num_updates:
            raise ValueError("make_optimizer: anneal_lr=True needs num_updates (the number of "
                             "PPO updates of the run), got None")
        steps = num_updates * config.num_epochs * config.num_minibatches
        lr = optax.linear_schedule(config.learning_rate, 0.0, steps)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(lr, eps=config.adam_eps))


def make_update(config: PPOConfig, evaluate: Callable, optimizer):
    """Build ``update(key, train_state, batch) -> (train_state, LossInfo of the last epoch)``.

    Args:
      config: :class:`PPOConfig`.
      evaluate: ``evaluate(params, inputs) -> (log_prob, entropy, value)``, each shaped like
        ``batch.log_prob``, for the ``inputs`` of a minibatch.
      optimizer: an ``optax.GradientTransformation`` (see :func:`make_optimizer`).

    Returns:
      A pure function (``jit`` it, or call it inside a jitted training loop) that runs
      ``num_epochs`` passes of ``num_minibatches`` shuffled minibatches over the leading axis.
      The reported ``LossInfo`` is averaged over the last epoch's minibatches.
    """

    def loss_fn(params, mb: Batch):
        lp, ent, v = evaluate(params, mb.inputs)
        return ppo_loss(lp, ent, v, mb, config)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def update(key, train_state: TrainState, batch: Batch):
        n = batch.log_prob.shape[0]
        m = config.num_minibatches
        if n % m:
            raise ValueError(f"PPO update: batch size {n} is not divisible by "
                             f"num_minibatches={m}; choose sizes that divide")

        def minibatch(ts: TrainState, mb: Batch):
            (_, info), grads = grad_fn(ts.params, mb)
            upd, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
            return TrainState(optax.apply_updates(ts.params, upd), opt_state), info

        def epoch(ts, k):
            perm = jax.random.permutation(k, n)
            mbs = jax.tree.map(lambda a: a[perm].reshape((m, n // m) + a.shape[1:]), batch)
            ts, infos = jax.lax.scan(minibatch, ts, mbs)
            return ts, jax.tree.map(jnp.mean, infos)

        train_state, infos = jax.lax.scan(epoch, train_state,
                                          jax.random.split(key, config.num_epochs))
        return train_state, jax.tree.map(lambda a: a[-1], infos)

    return update
