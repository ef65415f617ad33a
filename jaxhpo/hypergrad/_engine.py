"""Hypergradients and online hyperparameter descent for the population training engine.

Binds :func:`~jaxhpo.hypergrad.hypergradient` and :func:`~jaxhpo.hypergrad.hyper_descent` to a
:class:`jaxhpo.train.Trainer`: the step is ``Trainer.step`` (the engine's own optimizer step,
minibatch stream and divergence guard), the loss is ``Trainer.evaluate(...)["loss"]`` on the
validation split (un-smoothed cross-entropy or MSE), and the hyperparameters are the
continuous space parameters in unconstrained coordinates (:func:`unconstrained`). Per member
functions are mapped over a :class:`jaxhpo.train.Population` with its vmap / chunking /
sharding, so a population of tuners trains in lock-step, each from its own start point, and can
be combined with PBT's exploit (:func:`jaxhpo.schedulers.pbt_exploit`) and explore
(:func:`jaxhpo.schedulers.pbt_perturb`).

Differentiable training hyperparameters (:data:`DIFFERENTIABLE`): ``learning_rate``,
``weight_decay``, ``momentum``, ``b1``, ``b2``, ``eps``, ``label_smoothing``, ``clip_norm``.
Dropout (the mask is sampled), ``init_scale`` (acts only at initialization) and integer or
categorical parameters are not differentiated.
"""

from __future__ import annotations

import functools
import time
import warnings
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxhpo._validate import check_int
from jaxhpo.hypergrad._descent import hyper_descent
from jaxhpo.hypergrad._params import Unconstrained, unconstrained
from jaxhpo.hypergrad._unroll import hypergradient
from jaxhpo.schedulers import pbt_exploit, pbt_perturb
from jaxhpo.train import Population, Trainer
from jaxhpo.train._trainer import ALIASES

DIFFERENTIABLE = ("learning_rate", "weight_decay", "momentum", "b1", "b2", "eps",
                  "label_smoothing", "clip_norm")


def trainer_params(trainer: Trainer, names: Sequence[str] | None = None) -> Unconstrained:
    """The unconstrained map of ``trainer.space``'s differentiable parameters ``names``
    (default: every unconditional Float with a differentiable canonical name)."""
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must be a jaxhpo.train.Trainer, got {type(trainer).__name__}")
    space = trainer.space
    if space is None:
        raise ValueError("trainer has no space: build it with Trainer(..., space=Space({...})) "
                         "holding the hyperparameters to differentiate")
    canon = lambda n: ALIASES.get(n, n)
    if names is None:
        names = [n for n in space.names if canon(n) in DIFFERENTIABLE]
    names = [names] if isinstance(names, str) else list(names)
    for n in names:
        if canon(n) not in DIFFERENTIABLE:
            raise ValueError(f"names: {n!r} is not a differentiable training hyperparameter; "
                             f"choose from {list(DIFFERENTIABLE)} (aliases {sorted(ALIASES)})")
    return unconstrained(space, names)


def _step_and_loss(trainer: Trainer, t: Unconstrained, data, split: str):
    """Per-member ``step((state, x), z)`` and ``loss((state, x), z)``; ``x: f32[d]`` holds
    the fixed (non-differentiated) coordinates."""
    def step(carry, z):
        state, x = carry
        return trainer.step(state, t.decode(z, x), data)[0], x

    def loss(carry, z):
        state, x = carry
        return trainer.evaluate(state, t.decode(z, x), split, data)["loss"]

    return step, loss


def _check_split(split):
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'val' (or 'train'), got {split!r}; never tune on test")


def trainer_hypergradient(trainer: Trainer, steps: int, *, names: Sequence[str] | None = None,
                          split: str = "val", mode: str = "reverse", remat: bool | int = True,
                          truncate: int | None = None, policy=None):
    """Per-member hypergradient of a Trainer: ``fn(state, z, x) -> HyperGradient``.

    ``fn`` trains ``state`` (a :class:`~jaxhpo.train.MemberState`) ``steps`` steps with the
    hyperparameters ``t.decode(z, x)`` (``t = trainer_params(trainer, names)``; ``z: f32[k]``
    unconstrained, ``x: f32[d]`` the unit-cube point of the other parameters) and returns the
    ``split`` loss, ``d loss / d z: f32[k]`` and the carry ``(state, x)``. Pure; ``jax.vmap``
    it for a population (or use :func:`population_hypergradient`). See
    :func:`~jaxhpo.hypergrad.hypergradient` for ``mode``, ``remat``, ``truncate``, ``policy``.
    """
    _check_split(split)
    t = trainer_params(trainer, names)

    def fn(state, z, x, data=None):
        data = trainer.device_data() if data is None else data
        step, loss = _step_and_loss(trainer, t, data, split)
        return hypergradient(step, loss, (state, x), z, steps, mode=mode, remat=remat,
                             truncate=truncate, policy=policy)
    return fn


def population_hypergradient(pop: Population, steps: int, **kwargs):
    """:func:`trainer_hypergradient` mapped over a Population, jitted:
    ``fn(state, z: f32[P, k], x: f32[P, d]) -> HyperGradient`` with leading axis ``P``."""
    if not isinstance(pop, Population):
        raise TypeError(f"pop must be a jaxhpo.train.Population, got {type(pop).__name__}")
    one = trainer_hypergradient(pop.trainer, steps, **kwargs)
    run = jax.jit(lambda s, z, x, data: pop._map(lambda a, b, c, *d: one(a, b, c, d), s, z, x,
                                                 shared=data))
    return lambda state, z, x: run(state, z, x, pop._data)


class HyperTuneResult(NamedTuple):
    """Outcome of :func:`hyper_tune` (host numpy arrays; ``R`` rounds, ``P`` members)."""

    x: np.ndarray  # f32[R + 1, P, d] unit-cube hyperparameters before each round and at the end
    params: dict  # {tuned name: f32[R + 1, P]} their values
    val_loss: np.ndarray  # f32[R, P] validation loss after each round (the descended objective)
    val_accuracy: np.ndarray  # f32[R, P] validation accuracy after each round (NaN: regression)
    src: np.ndarray  # i32[R, P] PBT copy source of each slot after each round (itself if none)
    final: dict  # {"val_loss", "val_accuracy", "test_loss", "test_accuracy": f32[P]}
    best: int  # member with the best final validation accuracy (loss for regression)
    best_params: dict  # its final hyperparameters (plain values)
    state: Any  # the final stacked DescentState (carry = (MemberState, x))
    steps: int  # total training steps, P * R * steps_per_round
    seconds: float  # wall time including compilation


def hyper_tune(target: Trainer | Population, key: jax.Array, x0, *, rounds: int,
         steps_per_round: int, names: Sequence[str] | None = None,
         optimizer: optax.GradientTransformation | None = None, mode: str = "reverse",
         remat: bool | int = True, truncate: int | None = None, split: str = "val",
         exploit_every: int = 0, exploit_fraction: float = 0.25,
         explore: bool = False) -> HyperTuneResult:
    """Online hypergradient descent for a population of Trainer members.

    (Not :func:`jaxhpo.tune`, which searches with a strategy and a scheduler; this one descends
    hypergradients. It was ``jaxhpo.hypergrad.tune``; that name stays one release as a deprecated
    alias.)

    Each of the ``P`` members starts from its own point ``x0[i]`` (e.g. a quasi-random
    strategy's ``ask``), then for ``rounds`` rounds trains ``steps_per_round`` steps and takes
    a hypergradient step on its continuous hyperparameters (:func:`hyper_descent`), continuing
    from its trained weights. With ``exploit_every = m > 0`` every ``m`` rounds the worst
    ``exploit_fraction`` of members copy weights, hyperparameters and hyper-optimizer state
    from the best (PBT truncation selection, by validation loss) and, with ``explore``,
    perturb the copied hyperparameters (PBT explore).

    Args:
      target: a Trainer (a Population of ``len(x0)`` members is built) or a Population.
      key: PRNG key (member initialization and streams, PBT draws).
      x0: ``f32[P, d]`` unit-cube start points (``f32[d]`` for a single member).
      rounds, steps_per_round: the schedule; total training ``P * rounds * steps_per_round``.
      names: the space parameters to tune (default every differentiable Float).
      optimizer: the hyper-optimizer on unconstrained coordinates (default ``adam(0.05)``).
      mode, remat, truncate: hypergradient computation, see :func:`hypergradient`.
      split: the loss descended (``"val"``).
      exploit_every, exploit_fraction, explore: optional PBT, see above.

    Returns:
      A :class:`HyperTuneResult` (trajectories, final metrics on validation and test, best
      member).
    """
    t0 = time.perf_counter()
    _check_split(split)
    x0 = np.asarray(x0, np.float32)
    x0 = x0[None] if x0.ndim == 1 else x0
    if isinstance(target, Population):
        pop = target
        if pop.size != x0.shape[0]:
            raise ValueError(f"x0 has {x0.shape[0]} rows but the population has {pop.size}")
    elif isinstance(target, Trainer):
        pop = Population(target, x0.shape[0])
    else:
        raise TypeError(f"target must be a Trainer or Population, got {type(target).__name__}")
    rounds = check_int(rounds, "rounds", 1)
    exploit_every = check_int(exploit_every, "exploit_every", 0)
    trainer, space = pop.trainer, pop.trainer.space
    t = trainer_params(trainer, names)
    if x0.shape[1] != space.dim:
        raise ValueError(f"x0 must be f32[P, {space.dim}], got shape {x0.shape}")
    data = pop._data

    def descent(d):
        step, loss = _step_and_loss(trainer, t, d, split)
        return hyper_descent(step, loss, steps_per_round, optimizer=optimizer,
                             project=t.project, mode=mode, remat=remat, truncate=truncate)

    descent(data)  # validate the arguments now, outside jit

    def init_impl(keys, x, data):
        member = pop._map(trainer.init, keys, space.decode(x))
        return pop._map(lambda m, z, xx: descent(data).init((m, xx), z), member, t.to_z(x), x)

    def round_impl(state, data):
        def one(s, *d):
            s, info = descent(d).update(s)
            m = trainer.evaluate(s.carry[0], t.decode(info.theta, s.carry[1]), "val", d)
            return s, m.get("accuracy", jnp.float32(jnp.nan))
        return pop._map(one, state, shared=data)

    def exploit_impl(key, state, data):
        k_src, k_exp = jax.random.split(key)
        src, exploit = pbt_exploit(k_src, state.loss, fraction=exploit_fraction)
        state = jax.tree.map(lambda a: a[src], state)
        if explore:
            x = t.to_x(state.theta, state.carry[1])
            z = t.project(t.to_z(pbt_perturb(k_exp, x, space)))
            state = state.replace(theta=jnp.where(exploit[:, None], z, state.theta))
        return state, src

    k_init, k_pbt = jax.random.split(key)
    state = jax.jit(init_impl)(jax.random.split(k_init, pop.size), jnp.asarray(x0), data)
    round_fn, exploit_fn = jax.jit(round_impl), jax.jit(exploit_impl)
    xs, losses, accs, srcs = [t.to_x(state.theta, state.carry[1])], [], [], []
    ident = np.arange(pop.size, dtype=np.int32)
    for r in range(rounds):
        state, acc = round_fn(state, data)
        losses.append(state.loss)
        accs.append(acc)
        src = ident
        if exploit_every and (r + 1) % exploit_every == 0 and r + 1 < rounds:
            state, src = exploit_fn(jax.random.fold_in(k_pbt, r), state, data)
        srcs.append(src)
        xs.append(t.to_x(state.theta, state.carry[1]))
    xs = np.asarray(jnp.stack(xs))
    x_final = jnp.asarray(xs[-1])
    hp = t.decode(state.theta, state.carry[1])
    final = {}
    for s in ("val", "test"):
        m = pop.evaluate(state.carry[0], hp, s)
        final.update({f"{s}_{k}": np.asarray(m[k]) for k in ("loss", "accuracy") if k in m})
    if "val_accuracy" in final:
        acc = np.where(np.isfinite(final["val_accuracy"]), final["val_accuracy"], -np.inf)
        best = int(np.argmax(acc))
    else:
        best = int(np.argmin(np.where(np.isfinite(final["val_loss"]), final["val_loss"],
                                      np.inf)))
    values = t.values(jnp.asarray(t.to_z(jnp.asarray(xs))))
    return HyperTuneResult(x=xs, params={k: np.asarray(v) for k, v in values.items()},
                           val_loss=np.asarray(jnp.stack(losses)),
                           val_accuracy=np.asarray(jnp.stack(accs)), src=np.stack(srcs),
                           final=final, best=best,
                           best_params=space.to_params(np.asarray(x_final[best])),
                           state=state, steps=pop.size * rounds * steps_per_round,
                           seconds=time.perf_counter() - t0)


@functools.wraps(hyper_tune, assigned=("__module__", "__annotations__"))
def tune(*args, **kwargs) -> HyperTuneResult:
    """Deprecated alias of :func:`hyper_tune` (renamed so it is not mistaken for
    :func:`jaxhpo.tune`); it warns, and goes in the next release."""
    warnings.warn("jaxhpo.hypergrad.tune is deprecated: call jaxhpo.hypergrad.hyper_tune (same "
                  "arguments; it returns a HyperTuneResult). The alias goes in the next release.",
                  DeprecationWarning, stacklevel=2)
    return hyper_tune(*args, **kwargs)
