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

import functools
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


def _flag(kinds: tuple[int, ...], members: tuple[int, ...], opt):
    """``opt in members``: a Python bool when ``kinds`` decides it statically, else traced."""
    hits = [k in members for k in kinds]
    if all(hits):
        return True
    if not any(hits):
        return False
    return jnp.isin(opt, jnp.asarray(members))


def _sel(flag, a, b):
    """``where(flag, a, b)`` that costs nothing when ``flag`` is a Python bool."""
    if flag is True:
        return a
    if flag is False:
        return b
    return jnp.where(flag, a, b)


def _either(a, b):
    """``a | b`` for flags that may be Python bools."""
    if a is True or b is True:
        return True
    if a is False:
        return b
    return a if b is False else a | b


def _population_optimizer(learning_rate, optimizer, momentum, b1, b2, eps, weight_decay,
                          clip_norm, warmup_steps, schedule, decay_steps, *,
                          kinds=tuple(range(len(OPTIMIZERS))), clip=True):
    """Factory for ``optax.inject_hyperparams``; every numeric argument may be traced.

    ``optimizer`` and ``schedule`` are indices into :data:`OPTIMIZERS` and :data:`SCHEDULES`.
    ``clip_norm <= 0`` disables clipping; ``decay_steps <= 0`` disables decay. The static
    ``kinds`` (optimizer indices that can occur) and ``clip`` let a population that never uses
    some feature skip its cost at trace time.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return PopulationOptState(zeros, jax.tree.map(jnp.zeros_like, params),
                                  jnp.zeros((), jnp.int32))

    def update(grads, state, params):
        opt = jnp.asarray(optimizer, jnp.int32)
        is_mom, is_adam = _flag(kinds, (1,), opt), _flag(kinds, (2, 3), opt)
        is_adamw, uses_nu = _flag(kinds, (3,), opt), _flag(kinds, (2, 3, 4), opt)
        scale = 1.0
        if clip:
            gnorm = tree_norm(grads)
            scale = jnp.where((clip_norm > 0) & (gnorm > clip_norm), clip_norm / gnorm, 1.0)
        l2 = _sel(is_adamw, 0.0, weight_decay)
        g = jax.tree.map(lambda g_, p: g_ * scale + l2 * p, grads, params)
        count = state.count + 1
        t = count.astype(jnp.float32)
        # First moment: heavy ball (a=m, c=1), Adam EMA (a=b1, c=1-b1), else unused (a=0, c=1).
        a = _sel(is_mom, momentum, _sel(is_adam, b1, 0.0))
        c = _sel(is_adam, 1.0 - b1, 1.0)
        mu = jax.tree.map(lambda m, g_: a * m + c * g_, state.mu, g)
        if uses_nu is False:
            nu = state.nu
        else:
            nu = jax.tree.map(lambda v, g_: b2 * v + (1.0 - b2) * g_ * g_, state.nu, g)
        bc1 = _sel(is_adam, 1.0 - b1**t, 1.0)
        bc2 = _sel(is_adam, 1.0 - b2**t, 1.0)
        first = jax.tree.map(lambda m, g_: _sel(_either(is_adam, is_mom), m / bc1, g_), mu, g)
        d = jax.tree.map(lambda f, v: _sel(uses_nu, f / (_sqrt(v / bc2) + eps), f), first, nu)
        if is_adamw is not False:
            d = jax.tree.map(lambda d_, p: d_ + _sel(is_adamw, weight_decay, 0.0) * p, d, params)
        lr = learning_rate * lr_multiplier(count - 1, warmup_steps, schedule, decay_steps)
        updates = jax.tree.map(lambda d_: -lr * d_, d)
        return updates, PopulationOptState(mu, nu, count)

    return optax.GradientTransformation(init, update)


def make_population_optimizer(kinds=tuple(range(len(OPTIMIZERS))), clip: bool = True):
    """The injectable optimizer specialized to the optimizer ``kinds`` that can occur."""
    kinds = tuple(sorted(set(int(k) for k in kinds)))
    return optax.inject_hyperparams(
        functools.partial(_population_optimizer, kinds=kinds, clip=bool(clip)))


def _sqrt(v):
    """``sqrt(v)`` for ``v >= 0`` whose derivative is 0 (not ``inf * 0 = NaN``) where ``v = 0``,
    so hypergradients through the update stay finite (jaxhpo.hypergrad); same values."""
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


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


population_optimizer = make_population_optimizer()
"""``population_optimizer(learning_rate=..., optimizer=..., ...)``: the injectable optimizer
covering every kind (see :func:`make_population_optimizer` for a specialized one)."""
