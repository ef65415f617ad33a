"""Hypergradients through an unrolled ``lax.scan`` of training steps.

For a training step ``c_{t+1} = step(c_t, theta)`` and a validation loss ``L(c_T, theta)``,
the hypergradient is ``dL(c_T(theta), theta) / dtheta``. Reverse mode ("backprop through
training", Maclaurin et al. 2015; Franceschi et al. 2017, Sec. 3 "reverse-HG") differentiates
the scan with ``jax.value_and_grad``: time ``O(T)`` (about 3x a forward pass), memory ``O(T)``
carries. Rematerialization (Griewank & Walther 2000, "Revolve"; Chen et al. 2016) bounds it:

* ``remat=False``: the scan stores every step's residuals (activations of all ``T`` steps);
* ``remat=True``: ``jax.checkpoint`` on the step; only the carry (parameters and optimizer
  state) is stored per step, the step's activations are recomputed in the backward pass;
* ``remat=k`` (int): two levels, segments of ``k`` steps checkpointed as a whole (inner steps
  checkpointed too); ``T/k + k`` carries live at once, ``O(sqrt(T))`` for ``k ~ sqrt(T)``,
  at the cost of a second forward pass.

Forward mode (Franceschi et al. 2017, Sec. 3 "forward-HG") pushes one tangent per
hyperparameter through the scan (``jax.jacfwd``): memory independent of ``T``, time
``O(T * n_hyper)``; the better choice for a handful of hyperparameters and long unrolls.

Truncation (``truncate=K``): the first ``T - K`` steps are run forward only (their dependence on
``theta`` is dropped, ``stop_gradient``) and only the last ``K`` steps are differentiated
(truncated backpropagation; Shaban et al. 2019). Cheaper and bounded in memory, but biased
towards short-horizon optima (Wu et al. 2018); ``truncate=T`` (or ``None``) is exact.

References:
  D. Maclaurin, D. Duvenaud, R. Adams. "Gradient-based Hyperparameter Optimization through
  Reversible Learning." ICML 2015.
  L. Franceschi, M. Donini, P. Frasconi, M. Pontil. "Forward and Reverse Gradient-Based
  Hyperparameter Optimization." ICML 2017.
  A. Shaban, C.-A. Cheng, N. Hatch, B. Boots. "Truncated Back-propagation for Bilevel
  Optimization." AISTATS 2019.
  Y. Wu, M. Ren, R. Liao, R. Grosse. "Understanding Short-Horizon Bias in Stochastic
  Meta-Optimization." ICLR 2018.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

from jaxhpo._validate import check_choice, check_int, is_int

MODES = ("reverse", "forward")


class HyperGradient(NamedTuple):
    """Result of :func:`hypergradient` (one member; a vmapped call stacks each field)."""

    loss: jax.Array  # f32[] validation loss after the unroll
    grad: Any  # like theta: dloss/dtheta
    carry: Any  # the training carry after all steps (continue training from it)


def check_remat(remat, steps: int | None = None):
    """Validate ``remat``: ``False``, ``True`` or a positive int dividing ``steps``."""
    if isinstance(remat, bool):
        return remat
    if not is_int(remat) or remat < 1:
        raise ValueError(f"remat must be False, True or a positive int (segment length), got "
                         f"{remat!r}")
    remat = int(remat)
    if steps is not None and steps % remat:
        raise ValueError(f"remat={remat} (segment length) must divide the {steps} "
                         f"differentiated steps")
    return remat


def unroll(step: Callable, carry, theta, steps: int, *, remat: bool | int = False,
           policy=None):
    """``steps`` applications of ``carry = step(carry, theta)`` under ``lax.scan``.

    ``remat`` only changes what reverse-mode differentiation stores (see the module
    docstring); the values computed are identical. ``policy`` is passed to ``jax.checkpoint``
    (e.g. ``jax.checkpoint_policies.dots_saveable``).
    """
    remat = check_remat(remat, steps)
    one = lambda c: step(c, theta)
    if remat is not False:
        one = jax.checkpoint(one, policy=policy)

    def body(c, _):
        return one(c), None

    if remat is True or remat is False or remat >= steps:
        return jax.lax.scan(body, carry, None, length=steps)[0]

    @jax.checkpoint
    def segment(c):
        return jax.lax.scan(body, c, None, length=remat)[0]

    return jax.lax.scan(lambda c, _: (segment(c), None), carry, None,
                        length=steps // remat)[0]


def hypergradient(step: Callable, loss: Callable, carry, theta, steps: int, *,
                  mode: str = "reverse", remat: bool | int = True,
                  truncate: int | None = None, policy=None) -> HyperGradient:
    """Validation loss after ``steps`` training steps and its gradient w.r.t. ``theta``.

    Args:
      step: ``step(carry, theta) -> carry``, one training step; must be differentiable in
        ``theta`` (and in the float leaves of ``carry``).
      loss: ``loss(carry, theta) -> f32[]``, the validation loss of the trained carry.
      carry: the training state to start from (parameters, optimizer state, step counter...).
      theta: the hyperparameters, a pytree of float arrays (e.g. ``f32[k]`` unconstrained).
      steps: static number of training steps ``T``.
      mode: ``"reverse"`` (``jax.value_and_grad``) or ``"forward"`` (``jax.jacfwd``, one
        tangent per scalar of ``theta``).
      remat: reverse mode's rematerialization: ``False``, ``True`` (checkpoint every step) or
        an int ``k`` (segments of ``k`` steps; must divide the differentiated steps).
        Ignored in forward mode.
      truncate: differentiate only the last ``truncate`` steps (``None``: all ``steps``).
      policy: optional ``jax.checkpoint`` policy for the per-step checkpoint.

    Returns:
      :class:`HyperGradient` ``(loss, grad, carry)``: ``grad`` has ``theta``'s structure,
      ``carry`` is the state after ``steps`` steps (the same with and without truncation).

    Example:
      >>> step = lambda w, lam: w - 0.1 * (X.T @ (X @ w - y) / n + jnp.exp(lam) * w)
      >>> val = lambda w, lam: 0.5 * jnp.mean((Xv @ w - yv) ** 2)
      >>> hg = hypergradient(step, val, jnp.zeros(d), jnp.log(0.1), 200)
    """
    steps = check_int(steps, "steps", 1)
    mode = check_choice(mode, "mode", MODES)
    k = steps if truncate is None else check_int(truncate, "truncate", 1, steps)
    remat = check_remat(remat, k if mode == "reverse" else None)
    if k < steps:
        # Truncated unroll: the head's dependence on theta is dropped (no tape is kept).
        carry = unroll(step, carry, jax.lax.stop_gradient(theta), steps - k)
        carry = jax.lax.stop_gradient(carry)

    def f(th):
        c = unroll(step, carry, th, k, remat=remat if mode == "reverse" else False,
                   policy=policy)
        value = loss(c, th)
        return value, (value, c)

    if mode == "reverse":
        (value, (_, c)), g = jax.value_and_grad(f, has_aux=True)(theta)
    else:
        g, (value, c) = jax.jacfwd(f, has_aux=True)(theta)
    return HyperGradient(value, g, c)
