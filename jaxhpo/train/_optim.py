"""One optax optimizer whose *kind* is a traced number, so a population can mix optimizers.

``population_optimizer`` covers SGD, heavy-ball momentum, RMSProp, Adam and AdamW with a single
state layout (first moment ``mu``, second moment ``nu``, step ``count``), so members that use
different optimizers share one compiled program and can exchange state (PBT). It is wrapped in
``optax.inject_hyperparams``: every numeric setting lives in ``opt_state.hyperparams`` per
member and can be changed between steps without recompiling.

Update rules (g: gradient after optional global-norm clipping and, except for AdamW, coupled L2
weight decay ``g + wd * p``):

* ``sgd``:      ``d = g``
* ``momentum``: ``mu = m * mu + g``;  ``d = mu``  (Polyak heavy ball, as ``optax.sgd(momentum=m)``)
* ``rmsprop``:  ``nu = b2 * nu + (1 - b2) g^2``;  ``d = g / (sqrt(nu) + eps)``  (as ``optax.rmsprop``)
* ``adam``:     Kingma & Ba 2015, Alg. 1: ``mu, nu`` EMAs with bias correction,
  ``d = mu_hat / (sqrt(nu_hat) + eps)``
* ``adamw``:    Adam plus decoupled decay ``d += wd * p`` (Loshchilov & Hutter 2019)

The step is ``-lr_t * d`` with ``lr_t = lr * warmup(t) * decay(t)``: linear warmup over
``warmup_steps``, then constant / cosine / linear decay to 0 at ``decay_steps``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear")


class PopulationOptState(NamedTuple):
    mu: optax.Updates  # first moment / momentum trace, like params
    nu: optax.Updates  # second moment, like params
    count: jax.Array  # i32[] steps taken


def _population_optimizer(learning_rate, optimizer, momentum, b1, b2, eps, weight_decay,
                          clip_norm, warmup_steps, schedule, decay_steps):
    """Factory for ``optax.inject_hyperparams``; every argument may be a traced scalar.

    ``optimizer`` and ``schedule`` are indices into :data:`OPTIMIZERS` and :data:`SCHEDULES`.
    ``clip_norm <= 0`` disables clipping; ``decay_steps <= 0`` disables decay.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return PopulationOptState(zeros, jax.tree.map(jnp.zeros_like, params),
                                  jnp.zeros((), jnp.int32))

    def update(grads, state, params):
        opt = jnp.asarray(optimizer, jnp.int32)
        is_mom, is_adam = opt == 1, (opt == 2) | (opt == 3)
        is_adamw, uses_nu = opt == 3, (opt == 2) | (opt == 3) | (opt == 4)
        gnorm = tree_norm(grads)
        clip = jnp.where((clip_norm > 0) & (gnorm > clip_norm), clip_norm / gnorm, 1.0)
        l2 = jnp.where(is_adamw, 0.0, weight_decay)
        g = jax.tree.map(lambda g_, p: g_ * clip + l2 * p, grads, params)
        count = state.count + 1
        t = count.astype(jnp.float32)
        # First moment: heavy ball (a=m, c=1), Adam EMA (a=b1, c=1-b1), else unused (a=0, c=1).
        a = jnp.where(is_mom, momentum, jnp.where(is_adam, b1, 0.0))
        c = jnp.where(is_adam, 1.0 - b1, 1.0)
        mu = jax.tree.map(lambda m, g_: a * m + c * g_, state.mu, g)
        nu = jax.tree.map(lambda v, g_: b2 * v + (1.0 - b2) * g_ * g_, state.nu, g)
        bc1 = jnp.where(is_adam, 1.0 - b1**t, 1.0)
        bc2 = jnp.where(is_adam, 1.0 - b2**t, 1.0)
        first = jax.tree.map(lambda m, g_: jnp.where(is_adam | is_mom, m / bc1, g_), mu, g)
        d = jax.tree.map(
            lambda f, v: jnp.where(uses_nu, f / (jnp.sqrt(v / bc2) + eps), f), first, nu)
        d = jax.tree.map(lambda d_, p: d_ + jnp.where(is_adamw, weight_decay, 0.0) * p, d,
                         params)
        lr = learning_rate * lr_multiplier(count - 1, warmup_steps, schedule, decay_steps)
        updates = jax.tree.map(lambda d_: -lr * d_, d)
        return updates, PopulationOptState(mu, nu, count)

    return optax.GradientTransformation(init, update)


def tree_norm(tree) -> jax.Array:
    """Global L2 norm of a pytree (as ``optax.clip_by_global_norm`` computes it)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def lr_multiplier(step, warmup_steps, schedule, decay_steps):
    """Warmup-then-decay factor in ``[0, 1]`` for integer ``step`` (0-based)."""
    t = jnp.asarray(step, jnp.float32)
    warm = jnp.where(warmup_steps > 0, jnp.minimum(1.0, (t + 1.0) / jnp.maximum(warmup_steps, 1)),
                     1.0)
    frac = jnp.clip((t - warmup_steps) / jnp.maximum(decay_steps - warmup_steps, 1.0), 0.0, 1.0)
    frac = jnp.where(decay_steps > 0, frac, 0.0)
    sched = jnp.asarray(schedule, jnp.int32)
    decay = jnp.where(sched == 1, 0.5 * (1.0 + jnp.cos(jnp.pi * frac)),
                      jnp.where(sched == 2, 1.0 - frac, 1.0))
    return warm * decay


population_optimizer = optax.inject_hyperparams(_population_optimizer)
"""``population_optimizer(learning_rate=..., optimizer=..., ...)``: the injectable optimizer."""
