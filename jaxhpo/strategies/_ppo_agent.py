"""Model-based RL hyperparameter optimization: an LSTM policy trained by PPO picks the
hyperparameters one per step, sped up by a learned reward model under a KL guard.

J. Wu, S. Chen and X. Liu, "Efficient Hyperparameter Optimization through Model-based
Reinforcement Learning", Neurocomputing (2020), doi:10.1016/j.neucom.2020.06.064; PPO:
Schulman et al., arXiv:1707.06347.

An episode has ``d`` steps; step ``t`` chooses the coordinate ``order[t]`` (a fixed permutation
per run: the space's order, or a random one drawn at ``init``). The state at step ``t`` is the
previous action (its unit-cube value, 0 at ``t = 0``) plus a learned step embedding; the policy
is input embedding -> stacked LSTM (default 3 x 35, Adam lr 0.007 as in the paper) -> a head per
step. Float/Int coordinates: a Gaussian ``N(mu, sigma)`` with ``mu = (tanh(h) + 1) / 2`` (the
tanh-squashed mean rescaled into the coordinate's range ``[0, 1]``) and a learned per-coordinate
``sigma``; the sample is clipped into the cube (``log pi`` is that of the unclipped sample, kept
in the state between ``ask`` and ``tell``). Categorical coordinates: a softmax over the ``k``
choices, proposing ``x = (i + 0.5) / k``. A value head on the LSTM output is PPO's critic.
Reward is 0 until the last step, then ``-fitness``; ``gamma = 1``.

``ask`` samples ``population_size`` episodes (one vmapped population evaluation). ``tell``:

1. PPO update on the real batch. Rewards are standardized across the batch,
   ``r = -(f - mean f) / std f``, so the scale of the metric never matters and a batch is its own
   baseline (our choice; the paper does not say).
2. The real ``(x, f)`` pairs join the reward model's buffer (:mod:`._reward_model`: an ensemble
   of MLPs) and it is refitted (warm start).
3. Once the buffer holds ``model_warmup`` pairs, imagined batches (``imagined_batch`` episodes
   sampled from the current policy, scored by the ensemble mean) drive further PPO updates while
   ``KL(pi_before || pi_after) <= kl_threshold``, where ``pi_before`` is the policy after step 1
   and the KL is the exact per-step KL summed over the episode and averaged over a probe batch of
   episodes drawn from ``pi_before``. An update that would cross the threshold is discarded and
   the model phase ends (the paper stops using the model when the KL grows too large; whether
   the crossing update is kept, the threshold value and the cap ``max_model_updates`` are our
   choices). The next generation returns to real evaluations.

Failed trials (NaN/inf fitness) get the batch's worst finite fitness (the lowest reward), so
they are punished but never dominate the standardization; they enter the model buffer with that
value. ``tell`` needs randomness (minibatch order, imagined episodes); it uses a key that
``ask`` derives from its own key and stores in the state.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._space import CATEGORICAL
from jaxhpo._strategy import (Strategy, check_int, check_population_size, check_real, check_space,
                              sanitize_fitness)
from jaxhpo.rl import Batch, PPOConfig, TrainState, gae, make_optimizer, make_update
from jaxhpo.strategies._reward_model import RewardModel, RewardModelState

_LOG_2PI_E = math.log(2.0 * math.pi * math.e)


class _Policy(nn.Module):
    """One step of the agent: ``(carry, prev_x, t) -> (carry, mu_raw, logits, value)``."""

    num_steps: int
    max_choices: int
    embed: int
    hidden: int
    layers: int

    def setup(self):
        self.inp = nn.Dense(self.embed)
        self.step_embed = nn.Embed(self.num_steps, self.embed)
        # LSTM cells written out (one fused Dense per layer): a smaller XLA graph than
        # flax's cells, which matters for compile time on CPU
        self.gates = [nn.Dense(4 * self.hidden) for _ in range(self.layers)]
        # per-step heads, stacked: row t holds step t's mean and logits
        self.heads = nn.Dense(self.num_steps * (1 + self.max_choices),
                              kernel_init=nn.initializers.orthogonal(0.01))
        self.value = nn.Dense(1)

    def __call__(self, carry, prev_x, t):
        h = nn.tanh(self.inp(prev_x[..., None]) + self.step_embed(t))
        new = []
        for dense, (c, h_prev) in zip(self.gates, carry):
            i, f, g, o = jnp.split(dense(jnp.concatenate([h, h_prev], -1)), 4, -1)
            c = nn.sigmoid(f + 1.0) * c + nn.sigmoid(i) * jnp.tanh(g)  # forget bias 1
            h = nn.sigmoid(o) * jnp.tanh(c)
            new.append((c, h))
        out = self.heads(h).reshape(h.shape[:-1] + (self.num_steps, 1 + self.max_choices))
        out = jnp.take(out, t, axis=-2)
        return tuple(new), out[..., 0], out[..., 1:], self.value(h)[..., 0]

    def zero_carry(self, batch):
        return tuple((jnp.zeros((batch, self.hidden)), jnp.zeros((batch, self.hidden)))
                     for _ in range(self.layers))


@struct.dataclass
class PPOAgentState:
    train: TrainState  # policy weights (incl. log_std f32[d]) and Adam state
    model: RewardModelState
    order: jax.Array  # i32[d]       coordinate chosen at each step
    actions: jax.Array  # f32[pop, d] last ask's actions in step order (unclipped / index)
    key: jax.Array  # key           for tell's randomness, set by ask
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]
    model_updates: jax.Array  # i32[]  imagined PPO updates accepted in the last tell
    model_kl: jax.Array  # f32[]       KL(pi_before || pi_after) after them
    generation: jax.Array  # i32[]


def ppo_agent(space, population_size: int, *, model_based: bool = True,
              random_order: bool = False, hidden: int = 35, layers: int = 3, embed: int = 16,
              learning_rate: float = 0.007, num_epochs: int = 4, num_minibatches: int = 1,
              clip_eps: float = 0.2, ent_coef: float = 0.0, vf_coef: float = 0.5,
              max_grad_norm: float = 0.5, gae_lambda: float = 1.0, init_std: float = 0.25,
              min_std: float = 0.01, kl_threshold: float = 0.5, max_model_updates: int = 10,
              imagined_batch: int | None = None, model_warmup: int | None = None,
              model: RewardModel | None = None) -> Strategy:
    """PPO agent choosing hyperparameters one per step (Wu, Chen & Liu 2020).

    Args:
      space: the search space (Float, Int and Categorical coordinates).
      population_size: episodes per ``ask`` (real evaluations per generation); must be
        divisible by ``num_minibatches``.
      model_based: use the reward model and imagined updates (``False``: plain PPO on real
        evaluations only).
      random_order: draw the step order of the coordinates at ``init`` (default: space order).
      hidden, layers, embed: LSTM width, number of stacked LSTM cells, input/step embedding.
      learning_rate, num_epochs, num_minibatches, clip_eps: PPO settings
        (:class:`jaxhpo.rl.PPOConfig`; ``gamma = 1``).
      ent_coef, vf_coef, max_grad_norm, gae_lambda: PPO settings, as above.
      init_std, min_std: initial and minimal Gaussian standard deviation (cube units).
      kl_threshold: largest ``KL(pi_before || pi_after)`` (nats per episode) the imagined
        updates of one ``tell`` may reach. One PPO update with the defaults moves the policy by
        about 0.1 nats on Hartmann6 (measured), so 0.5 admits a few imagined updates per real
        batch (about 3 on Hartmann6, see ``benchmarks/rl_hpo.py``); 0.05 admits almost none.
      max_model_updates: cap on imagined updates per ``tell``.
      imagined_batch: episodes per imagined update (default ``population_size``).
      model_warmup: real trials needed before the model is used (default
        ``max(2 * population_size, d + 1)``).
      model: a :class:`RewardModel` (default: 5 MLPs of 64-64, capacity 512).

    Returns:
      A :class:`jaxhpo.Strategy`; its state is :class:`PPOAgentState`.

    Example:
      >>> s = jaxhpo.strategies.ppo_agent(space, 16)
      >>> state = s.init(jax.random.key(0))
      >>> x, state = s.ask(jax.random.key(1), state)
      >>> state = s.tell(state, x, fitness)

    References:
      J. Wu, S. Chen, X. Liu, "Efficient Hyperparameter Optimization through Model-based
      Reinforcement Learning", Neurocomputing (2020), doi:10.1016/j.neucom.2020.06.064.
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    n_img = pop if imagined_batch is None else check_population_size(imagined_batch,
                                                                      "imagined_batch")
    for name, v in (("hidden", hidden), ("layers", layers), ("embed", embed),
                    ("num_epochs", num_epochs), ("num_minibatches", num_minibatches)):
        check_int(v, name, 1)
    check_int(max_model_updates, "max_model_updates", 0)
    if model_warmup is not None:
        check_int(model_warmup, "model_warmup", 0)
    for name, v in (("learning_rate", learning_rate), ("clip_eps", clip_eps),
                    ("max_grad_norm", max_grad_norm), ("init_std", init_std),
                    ("min_std", min_std), ("kl_threshold", kl_threshold)):
        check_real(v, name, 0.0, low_open=True)
    check_real(ent_coef, "ent_coef", 0.0)
    check_real(vf_coef, "vf_coef", 0.0)
    check_real(gae_lambda, "gae_lambda", 0.0, 1.0)
    for name, v in (("population_size", pop), ("imagined_batch", n_img)):
        if v % num_minibatches:
            raise ValueError(f"{name}={v} must be divisible by num_minibatches="
                             f"{num_minibatches}; change one of them")
    if not 0 < min_std <= init_std:
        raise ValueError(f"need 0 < min_std <= init_std, got min_std={min_std}, "
                         f"init_std={init_std}")
    if not kl_threshold > 0:
        raise ValueError(f"kl_threshold must be > 0, got {kl_threshold}")
    warmup = max(2 * pop, d + 1) if model_warmup is None else int(model_warmup)
    rm = model if model is not None else RewardModel(d)
    if rm.dim != d:
        raise ValueError(f"model.dim={rm.dim} must equal the space's dimension {d}")
    cfg = PPOConfig(learning_rate=learning_rate, num_epochs=num_epochs,
                    num_minibatches=num_minibatches, clip_eps=clip_eps, vf_coef=vf_coef,
                    ent_coef=ent_coef, max_grad_norm=max_grad_norm, gamma=1.0,
                    gae_lambda=gae_lambda)
    kinds = jnp.asarray(space.kinds)
    nchoice = jnp.asarray(np.maximum(space.num_choices, 1))
    kmax = int(max(1, np.max(np.where(space.kinds == CATEGORICAL, space.num_choices, 1))))
    net = _Policy(d, kmax, embed, hidden, layers)
    optimizer = make_optimizer(cfg)
    log_min = math.log(min_std)

    def dists(params, order, actions):
        """Teacher-forced unroll: per-step ``(mu, log_std, logits, value)``, all ``[n, d, ...]``."""
        n = actions.shape[0]
        prev = jnp.concatenate([jnp.zeros((n, 1)), _to_x(actions, order)[:, :-1]], 1)

        def step(carry, t):
            carry, mu_raw, logits, value = net.apply(params["net"], carry, prev[:, t], t)
            return carry, (mu_raw, logits, value)

        _, (mu_raw, logits, value) = jax.lax.scan(step, net.zero_carry(n), jnp.arange(d))
        mu = 0.5 * (jnp.tanh(mu_raw.T) + 1.0)  # [n, d]: tanh mean rescaled into [0, 1]
        logits = _mask_logits(jnp.swapaxes(logits, 0, 1), order)
        log_std = jnp.maximum(params["log_std"][order], log_min)
        return mu, log_std, logits, value.T

    def _mask_logits(logits, order):
        k = nchoice[order]  # [d]
        return jnp.where(jnp.arange(kmax) < k[:, None], logits, -1e9)

    def _to_x(actions, order):
        k = nchoice[order].astype(jnp.float32)
        cat = kinds[order] == CATEGORICAL
        return jnp.where(cat, (actions + 0.5) / k, jnp.clip(actions, 0.0, 1.0))

    def evaluate(params, inputs):
        order, actions = inputs
        mu, log_std, logits, value = dists(params, order[0], actions)
        cat = kinds[order[0]] == CATEGORICAL
        z = (actions - mu) / jnp.exp(log_std)
        lp_g = -0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)
        logp = jax.nn.log_softmax(logits)
        idx = jnp.clip(actions, 0, kmax - 1).astype(jnp.int32)
        lp_c = jnp.take_along_axis(logp, idx[..., None], -1)[..., 0]
        ent_g = jnp.broadcast_to(log_std + 0.5 * _LOG_2PI_E, mu.shape)
        ent_c = -jnp.sum(jnp.where(logits > -1e8, jnp.exp(logp) * logp, 0.0), -1)
        return jnp.where(cat, lp_c, lp_g), jnp.where(cat, ent_c, ent_g), value

    update = make_update(cfg, evaluate, optimizer)

    def sample(key, params, order, n):
        """``n`` episodes from the policy: actions ``f32[n, d]`` in step order."""
        log_std = jnp.maximum(params["log_std"][order], log_min)

        def step(carry, inp):
            lstm, prev = carry
            t, k = inp
            lstm, mu_raw, logits, _ = net.apply(params["net"], lstm, prev, t)
            kg, kc = jax.random.split(k)
            u = 0.5 * (jnp.tanh(mu_raw) + 1.0) + jnp.exp(log_std[t]) * jax.random.normal(
                kg, (n,))
            k_t = nchoice[order[t]]
            i = jax.random.categorical(kc, jnp.where(jnp.arange(kmax) < k_t, logits, -1e9))
            cat = kinds[order[t]] == CATEGORICAL
            a = jnp.where(cat, i.astype(jnp.float32), u)
            x = jnp.where(cat, (a + 0.5) / k_t, jnp.clip(a, 0.0, 1.0))
            return (lstm, x), a

        _, a = jax.lax.scan(step, (net.zero_carry(n), jnp.zeros((n,))),
                            (jnp.arange(d), jax.random.split(key, d)))
        return a.T

    def ppo_step(key, train, order, actions, fitness):
        """One PPO update from episodes and their (clean) fitness ``f32[n]``."""
        n = actions.shape[0]
        r = -(fitness - jnp.mean(fitness)) / (jnp.std(fitness) + 1e-8)
        lp, _, value = evaluate(train.params, (jnp.broadcast_to(order, (n, d)), actions))
        rewards = jnp.zeros((d, n)).at[-1].set(r)
        dones = jnp.zeros((d, n), bool).at[-1].set(True)
        adv, target = gae(rewards, value.T, dones, jnp.zeros((n,)), 1.0, cfg.gae_lambda)
        batch = Batch((jnp.broadcast_to(order, (n, d)), actions), lp, value, adv.T, target.T)
        train, _ = update(key, train, batch)
        return train

    def kl(params_a, params_b, order, probe):
        """Mean over probe episodes of sum_t KL(pi_a(.|s_t) || pi_b(.|s_t))."""
        mu_a, ls_a, lg_a, _ = dists(params_a, order, probe)
        mu_b, ls_b, lg_b, _ = dists(params_b, order, probe)
        kl_g = ls_b - ls_a + (jnp.exp(2 * ls_a) + (mu_a - mu_b) ** 2) / (
            2 * jnp.exp(2 * ls_b)) - 0.5
        pa, la, lb = jax.nn.softmax(lg_a), jax.nn.log_softmax(lg_a), jax.nn.log_softmax(lg_b)
        kl_c = jnp.sum(jnp.where(lg_a > -1e8, pa * (la - lb), 0.0), -1)
        per = jnp.where(kinds[order] == CATEGORICAL, kl_c, kl_g)
        return jnp.mean(jnp.sum(per, -1))

    def init(key):
        k_net, k_order, k_model, k_tell = jax.random.split(key, 4)
        order = (jax.random.permutation(k_order, d) if random_order
                 else jnp.arange(d)).astype(jnp.int32)
        params = {"net": net.init(k_net, net.zero_carry(1), jnp.zeros((1,)),
                                  jnp.zeros((), jnp.int32)),
                  "log_std": jnp.full((d,), math.log(init_std), jnp.float32)}
        return PPOAgentState(TrainState(params, optimizer.init(params)), rm.init(k_model),
                             order, jnp.zeros((pop, d)), k_tell,
                             jnp.full((d,), 0.5, jnp.float32),
                             jnp.float32(jnp.finfo(jnp.float32).max), jnp.zeros((), jnp.int32),
                             jnp.zeros(()), jnp.zeros((), jnp.int32))

    def ask(key, state):
        k_sample, k_tell = jax.random.split(key)
        actions = sample(k_sample, state.train.params, state.order, pop)
        x = jnp.zeros((pop, d)).at[:, state.order].set(_to_x(actions, state.order))
        return x, state.replace(actions=actions, key=k_tell)

    def tell(state, x, fitness):
        k_real, k_fit, k_model = jax.random.split(state.key, 3)  # k_model: loop updates
        order = state.order
        f, ok = sanitize_fitness(fitness)
        worst = jnp.max(jnp.where(ok, f, -jnp.inf))
        f = jnp.where(ok, f, jnp.where(jnp.isfinite(worst), worst, 0.0))
        # actions of the episodes that produced x (stored unclipped samples where they match)
        xs = jnp.clip(jnp.asarray(x, jnp.float32)[:, order], 0.0, 1.0)
        k = nchoice[order].astype(jnp.float32)
        cat = kinds[order] == CATEGORICAL
        idx = jnp.clip(jnp.floor(xs * k), 0, k - 1)
        same = jnp.abs(_to_x(state.actions, order) - xs) < 1e-6
        actions = jnp.where(cat, idx, jnp.where(same, state.actions, xs))
        i = jnp.argmin(f)
        better = ok[i] & (f[i] < state.best_fitness)
        state = state.replace(best_x=jnp.where(better, x[i], state.best_x),
                              best_fitness=jnp.where(better, f[i], state.best_fitness),
                              generation=state.generation + 1)
        if not model_based:
            return state.replace(train=ppo_step(k_real, state.train, order, actions, f))

        model = rm.add(state.model, jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0), f,
                       jnp.full((pop,), jnp.isfinite(worst)))
        model = rm.fit(k_fit, model)
        use = model.count >= warmup

        def imagined(params, key):
            a = sample(key, params, order, n_img)
            f_hat, _ = rm.predict(model, jnp.zeros((n_img, d)).at[:, order].set(
                _to_x(a, order)))
            return a, f_hat

        # One loop for the real update (iteration 0) and the imagined ones, so the PPO
        # update is compiled once; pi_before is the policy after iteration 0.
        def cond(c):
            it, stop = c[0], c[4]
            return (it == 0) | (use & ~stop & (it <= max_model_updates))

        def body(c):
            it, tr, ref, kl_now, _, key = c
            key, k_s, k_u = jax.random.split(key, 3)
            if n_img == pop:
                a, fa = jax.lax.cond(it == 0, lambda: (actions, f),
                                     lambda: imagined(tr.params, k_s))
                cand = ppo_step(k_u, tr, order, a, fa)
            else:  # batches of two sizes: two instances of the update
                cand = jax.lax.cond(
                    it == 0, lambda: ppo_step(k_u, tr, order, actions, f),
                    lambda: ppo_step(k_u, tr, order, *imagined(tr.params, k_s)))
            kl_c = kl(ref.params, cand.params, order, actions)
            accept = (it == 0) | (jnp.isfinite(kl_c) & (kl_c <= kl_threshold))
            tr = jax.tree.map(lambda new, old: jnp.where(accept, new, old), cand, tr)
            ref = jax.tree.map(lambda new, old: jnp.where(it == 0, new, old), cand, ref)
            return (it + 1, tr, ref, jnp.where((it > 0) & accept, kl_c, kl_now), ~accept, key)

        it, tr, _, kl_now, stop, _ = jax.lax.while_loop(
            cond, body, (jnp.zeros((), jnp.int32), state.train, state.train, jnp.zeros(()),
                         jnp.bool_(False), k_model))
        n_upd = it - 1 - stop.astype(jnp.int32)
        return state.replace(train=tr, model=model, model_updates=n_upd, model_kl=kl_now)

    name = "ppo_agent" if model_based else "ppo_agent_model_free"
    return Strategy(init, ask, tell, pop, d, name)
