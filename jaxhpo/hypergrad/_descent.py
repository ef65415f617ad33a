"""Online hyperparameter descent: train a round, take a hypergradient step, continue.

Each round trains ``steps_per_round`` steps from the current state with the current
hyperparameters ``theta``, differentiates the validation loss at the end of the round through
those steps (:func:`~jaxhpo.hypergrad.hypergradient`, possibly truncated), and updates
``theta`` with an optax optimizer; training continues from the state reached (weights are never
reset). This is the "hyperparameter optimization on the fly" of Franceschi et al. (2017,
Sec. 4, real-time HO) and Baydin et al. (2018), with a round of ``T`` steps instead of one step
as the hypergradient horizon; it carries the short-horizon bias of truncated hypergradients
(Wu et al. 2018): the longer the round, the closer ``theta`` tracks the optimum of the final
validation loss.

The functions here are per member and pure; a population of tuners is ``jax.vmap`` of
``update`` (see :func:`~jaxhpo.hypergrad.tune` for the Trainer/Population runner with PBT).

References:
  L. Franceschi, M. Donini, P. Frasconi, M. Pontil. "Forward and Reverse Gradient-Based
  Hyperparameter Optimization." ICML 2017.
  A. G. Baydin, R. Cornish, D. M. Rubio, M. Schmidt, F. Wood. "Online Learning Rate Adaptation
  with Hypergradient Descent." ICLR 2018.
  Y. Wu, M. Ren, R. Liao, R. Grosse. "Understanding Short-Horizon Bias in Stochastic
  Meta-Optimization." ICLR 2018.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxhpo._validate import check_int, check_optional_int
from jaxhpo.hypergrad._unroll import check_remat, hypergradient


@struct.dataclass
class DescentState:
    """One tuner's state (a population stacks these along axis 0)."""

    carry: Any  # the training state (continued across rounds)
    theta: Any  # hyperparameters in unconstrained coordinates, e.g. f32[k]
    opt_state: Any  # the hyper-optimizer's state for theta
    loss: jax.Array  # f32[] validation loss at the end of the last round (inf before any)
    rounds: jax.Array  # i32[] rounds done


class DescentInfo(NamedTuple):
    loss: jax.Array  # f32[] validation loss after the round, at the round's theta
    grad: Any  # like theta: the hypergradient used (non-finite entries zeroed)
    theta: Any  # like theta: the hyperparameters the round trained with


class HyperDescent(NamedTuple):
    """``init(carry, theta) -> DescentState``; ``update(state) -> (state, DescentInfo)``."""

    init: Callable
    update: Callable
    steps_per_round: int


def hyper_descent(step: Callable, loss: Callable, steps_per_round: int, *,
                  optimizer: optax.GradientTransformation | None = None,
                  project: Callable | None = None, mode: str = "reverse",
                  remat: bool | int = True, truncate: int | None = None,
                  policy=None) -> HyperDescent:
    """Online hypergradient descent on ``theta`` for the training step ``step``.

    Args:
      step: ``step(carry, theta) -> carry``, one training step.
      loss: ``loss(carry, theta) -> f32[]``, the validation loss to minimize.
      steps_per_round: training steps per hyperparameter update (static).
      optimizer: the optax optimizer of ``theta`` (default ``optax.adam(0.05)``: a step of at
        most about 5% of the value per round for log-scale hyperparameters).
      project: optional ``project(theta) -> theta`` applied after each step (e.g. clipping to
        the search space's bounds, :meth:`Unconstrained.project`).
      mode, remat, truncate, policy: how the hypergradient is computed, see
        :func:`~jaxhpo.hypergrad.hypergradient`.

    Returns:
      A :class:`HyperDescent`. A non-finite hypergradient (a diverged member) is replaced by
      zeros, so ``theta`` and the optimizer state stay finite.

    Example:
      >>> tuner = hyper_descent(step, val_loss, 50, optimizer=optax.adam(0.1))
      >>> s = tuner.init(w0, jnp.log(jnp.array([1.0])))
      >>> s, info = jax.lax.scan(lambda s, _: tuner.update(s), s, None, length=40)
    """
    steps_per_round = check_int(steps_per_round, "steps_per_round", 1)
    truncate = check_optional_int(truncate, "truncate", 1, steps_per_round)
    check_remat(remat, truncate or steps_per_round)
    tx = optax.adam(0.05) if optimizer is None else optimizer
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                        f"{type(tx).__name__}")
    proj = (lambda t: t) if project is None else project

    def init(carry, theta) -> DescentState:
        theta = proj(theta)
        return DescentState(carry, theta, tx.init(theta), jnp.asarray(jnp.inf, jnp.float32),
                            jnp.zeros((), jnp.int32))

    def update(state: DescentState):
        hg = hypergradient(step, loss, state.carry, state.theta, steps_per_round, mode=mode,
                           remat=remat, truncate=truncate, policy=policy)
        ok = jnp.isfinite(hg.loss)
        g = jax.tree.map(lambda a: jnp.where(ok & jnp.isfinite(a), a, 0.0), hg.grad)
        updates, opt_state = tx.update(g, state.opt_state, state.theta)
        theta = proj(optax.apply_updates(state.theta, updates))
        new = DescentState(hg.carry, theta, opt_state, hg.loss.astype(jnp.float32),
                           state.rounds + 1)
        return new, DescentInfo(hg.loss, g, state.theta)

    return HyperDescent(init, update, steps_per_round)
