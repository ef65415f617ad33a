"""The common Flax shape in one call: a model, an optax optimizer, a loss and arrays ->
a :class:`~jaxhpo.train.TrainingProgram`."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxhpo._validate import check_int
from jaxhpo.train._data import Dataset
from jaxhpo.train._program import TrainingProgram


def _arity(fn) -> int:
    try:
        ps = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in ps)


def _arrays(data, val, test):
    """(x_train, y_train) or a batch function, (x_val, y_val), (x_test, y_test) or None."""
    if isinstance(data, Dataset):
        test = (data.x_test, data.y_test) if len(data.x_test) else None
        return (data.x_train, data.y_train), (data.x_val, data.y_val), test
    if callable(data):
        if val is None:
            raise ValueError("with a batch function data(key, hp) -> (x, y), pass the "
                             "validation arrays: val=(x_val, y_val)")
        return data, tuple(val), None if test is None else tuple(test)
    if isinstance(data, (tuple, list)) and len(data) in (4, 6):
        d = Dataset.from_arrays(*data)
        return _arrays(d, None, None)
    raise TypeError(f"data must be (x_train, y_train, x_val, y_val[, x_test, y_test]), a "
                    f"jaxhpo.train.Dataset, or a batch function data(key, hp) -> (x, y); got "
                    f"{type(data).__name__}")


def flax_program(model_fn: Callable, tx_fn: Callable, loss_fn: Callable, data, *,
                 batch_size: int | str = 128, val=None, test=None,
                 train_kwarg: str | None = None, eval_batch_size: int | None = None,
                 name: str | None = None) -> TrainingProgram:
    """A :class:`TrainingProgram` for a Flax model trained with an optax optimizer on a loss.

    Args:
      model_fn: ``model_fn(hp) -> flax.linen.Module``, or ``model_fn(hp, rngs) ->
        flax.nnx.Module`` (NNX; ``rngs`` is an ``nnx.Rngs`` with ``params`` and ``dropout``
        streams). Static hyperparameters arrive as Python values: ``MLP(width=hp["width"])``.
      tx_fn: ``tx_fn(hp) -> optax.GradientTransformation``, e.g. ``lambda hp: getattr(optax,
        hp["optimizer"])(hp["lr"])``. It is called inside the vmapped program, so the traced
        floats in ``hp`` (learning rate, weight decay, ...) are each member's own, and a PBT
        change of ``hp`` takes effect at the next step; the optimizer *kind* must be static.
        (Wrapping it in ``optax.inject_hyperparams`` is not needed, and works too.)
      loss_fn: ``loss_fn(outputs, y) -> scalar`` (the mean over the batch), e.g.
        ``lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean()``.
      data: ``(x_train, y_train, x_val, y_val)`` (optionally ``x_test, y_test``) arrays, a
        :class:`Dataset`, or a batch function ``data(key, hp) -> (x, y)`` with ``val=``.
      batch_size: examples per step (drawn uniformly with replacement from each member's own
        stream), or the name of a *static* hyperparameter holding it.
      val, test: ``(x, y)`` evaluation arrays when ``data`` is a batch function.
      train_kwarg: a linen module's boolean train keyword (e.g. ``"train"``) for dropout /
        eval mode; dropout draws from the ``"dropout"`` stream (NNX: ``model.train()`` /
        ``model.eval()`` are called when present).
      eval_batch_size: evaluate in chunks of this many examples (default all at once).

    Returns:
      A TrainingProgram whose state is ``{"params", "opt_state", "rest"}`` (``rest``: NNX
      non-parameter state / linen non-trainable collections) and whose metrics are ``loss``
      and, for integer labels with ``[n, k]`` outputs, ``accuracy`` on the validation data
      (``splits={"test": ...}`` when test arrays are given).

    Example:
      >>> program = flax_program(lambda hp: MLP(hp["width"]),
      ...                        lambda hp: optax.adamw(hp["lr"], weight_decay=hp["wd"]),
      ...                        loss, (x_train, y_train, x_val, y_val), batch_size=64)
      >>> pop = jaxhpo.train.Population(program, 64, space=space)
    """
    if not callable(model_fn) or not callable(tx_fn) or not callable(loss_fn):
        raise TypeError("model_fn, tx_fn and loss_fn must be functions: model_fn(hp) -> module, "
                        "tx_fn(hp) -> optax transform, loss_fn(outputs, y) -> scalar")
    if not isinstance(batch_size, str):
        batch_size = check_int(batch_size, "batch_size", 1)
    if eval_batch_size is not None:
        eval_batch_size = check_int(eval_batch_size, "eval_batch_size", 1)
    train_xy, val_xy, test_xy = _arrays(data, val, test)
    if callable(train_xy):
        batch_fn, x0 = train_xy, np.asarray(val_xy[0])[:1]
    else:
        x_tr, y_tr = (jnp.asarray(a) for a in train_xy)
        x0 = np.asarray(train_xy[0])[:1]

        def batch_fn(key, hp):
            i = jax.random.randint(key, (bs(hp),), 0, x_tr.shape[0])
            return x_tr[i], y_tr[i]
    val_xy = tuple(jnp.asarray(a) for a in val_xy)
    test_xy = None if test_xy is None else tuple(jnp.asarray(a) for a in test_xy)
    nnx_model = _arity(model_fn) >= 2

    def bs(hp):
        if isinstance(batch_size, int):
            return batch_size
        v = hp[batch_size]
        if not isinstance(v, (int, np.integer)):
            raise TypeError(f"batch_size={batch_size!r} names a hyperparameter that must be "
                            f"static (Int(..., static=True)): it sets a shape")
        return int(v)

    if nnx_model:
        from flax import nnx

        def graphdef(hp):
            abstract = nnx.eval_shape(lambda: model_fn(hp, nnx.Rngs(0)))
            return nnx.split(abstract, nnx.Param, ...)[0]

        def make(key, hp):
            k_p, k_d = jax.random.split(key)
            model = model_fn(hp, nnx.Rngs(params=k_p, dropout=k_d))
            _, params, rest = nnx.split(model, nnx.Param, ...)
            return params, rest

        def apply(hp, params, rest, x, key, train):
            model = nnx.merge(graphdef(hp), params, rest)
            if hasattr(model, "train") and hasattr(model, "eval"):
                model.train() if train else model.eval()
            out = model(x)
            return out, nnx.split(model, nnx.Param, ...)[2]
    else:
        def make(key, hp):
            k_p, k_d = jax.random.split(key)
            kw = {train_kwarg: False} if train_kwarg else {}
            v = model_fn(hp).init({"params": k_p, "dropout": k_d}, jnp.asarray(x0), **kw)
            v = dict(v)
            return v.pop("params"), v

        def apply(hp, params, rest, x, key, train):
            kw = {train_kwarg: train} if train_kwarg else {}
            rngs = {"dropout": key} if key is not None else {}
            return model_fn(hp).apply({"params": params, **rest}, x, rngs=rngs, **kw), rest

    def init(key, hp):
        params, rest = make(key, hp)
        return {"params": params, "opt_state": tx_fn(hp).init(params), "rest": rest}

    def step(state, key, hp):
        k_b, k_d = jax.random.split(key)
        xb, yb = batch_fn(k_b, hp)

        def loss(p):
            out, rest = apply(hp, p, state["rest"], xb, k_d, True)
            return loss_fn(out, yb), rest
        (value, rest), grads = jax.value_and_grad(loss, has_aux=True)(state["params"])
        updates, opt_state = tx_fn(hp).update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt_state": opt_state, "rest": rest}, {"loss": value}

    def metrics_on(x, y):
        def evaluate(state, hp):
            fwd = lambda xb: apply(hp, state["params"], state["rest"], xb, None, False)[0]
            n = x.shape[0]
            if eval_batch_size and n > eval_batch_size:
                m = n // eval_batch_size * eval_batch_size
                head = jax.lax.map(fwd, x[:m].reshape((-1, eval_batch_size) + x.shape[1:]))
                out = head.reshape((m,) + head.shape[2:])
                if m < n:
                    out = jnp.concatenate([out, fwd(x[m:])])
            else:
                out = fwd(x)
            m = {"loss": jnp.asarray(loss_fn(out, y), jnp.float32)}
            if jnp.issubdtype(y.dtype, jnp.integer) and out.ndim == 2:
                m["accuracy"] = jnp.mean(jnp.argmax(out, -1) == y)
            return m
        return evaluate

    splits = {"test": metrics_on(*test_xy)} if test_xy is not None else {}
    return TrainingProgram(init, step, metrics_on(*val_xy), splits=splits,
                           name=name or getattr(model_fn, "__name__", "flax_program"))
