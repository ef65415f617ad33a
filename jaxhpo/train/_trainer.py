"""Per-member training as pure functions: ``init``, ``train`` (``lax.scan``), ``evaluate``.

A :class:`Trainer` binds a :class:`~jaxhpo.train.Model`, a :class:`~jaxhpo.train.Dataset` and
the mapping from a :class:`jaxhpo.Space`'s parameters to training hyperparameters. Its methods
work on *one* member; :class:`~jaxhpo.train.Population` vmaps and jit-compiles them.

Training hyperparameters (canonical names; ``lr`` and ``wd`` are accepted aliases). Any of them
may be a Space parameter (tuned per member) or a fixed ``defaults`` entry:

=================  ==========================================================================
learning_rate      peak step size (default 1e-3)
optimizer          one of ``sgd momentum adam adamw rmsprop`` (default ``adam``)
momentum           heavy-ball coefficient of ``momentum`` (0.9)
b1, b2, eps        Adam/AdamW moments and epsilon; ``b2`` is RMSProp's decay (0.9, 0.999, 1e-8)
weight_decay       L2 (decoupled for AdamW) (0)
clip_norm          global-norm gradient clipping, ``<= 0`` off (0)
warmup_steps       linear warmup length (0)
schedule           ``constant cosine linear`` decay after warmup (``constant``)
decay_steps        step at which the decay reaches 0 (default: ``total_steps``)
dropout            dropout rate in the zoo models (0)
label_smoothing    cross-entropy label smoothing (0)
init_scale         multiplies the initial weights (1)
batch_size         examples per step, ``<= max_batch_size`` (default ``max_batch_size``)
width, depth       zoo models: active hidden units / blocks (default the maximum)
activation         zoo models: one of the model's activation names (default the first)
=================  ==========================================================================

Batch size is implemented by *masking*: every step draws ``max_batch_size`` examples and
weights the first ``batch_size`` of them, so all members share one program; a member with a
smaller batch pays the compute of the maximum (the throughput benchmark reports this cost).
Minibatches are drawn uniformly with replacement from each member's own data stream.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxhpo._space import Categorical, Space
from jaxhpo.train._data import Dataset
from jaxhpo.train._models import Model
from jaxhpo.train._optim import OPTIMIZERS, SCHEDULES, make_population_optimizer, tree_norm

ALIASES = {"lr": "learning_rate", "wd": "weight_decay"}
_OPT_HPARAMS = ("learning_rate", "optimizer", "momentum", "b1", "b2", "eps", "weight_decay",
                "clip_norm", "warmup_steps", "schedule", "decay_steps")
_NAMED_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}


@struct.dataclass
class MemberState:
    """One member's training state (a population stacks these along axis 0)."""

    params: Any  # model parameters at maximum size
    model_state: Any  # non-trainable collections
    opt_state: Any  # optax.InjectHyperparamsState of the population optimizer
    key: jax.Array  # the member's stream key: minibatches and dropout
    step: jax.Array  # i32[] optimizer steps taken
    diverged: jax.Array  # bool[] loss or parameters became non-finite (frozen since)


class Trainer:
    """Pure per-member training functions for a model, a dataset and a search space.

    Args:
      model: a :class:`~jaxhpo.train.Model` (zoo model, ``from_linen`` or ``from_nnx``).
      data: a :class:`~jaxhpo.train.Dataset`.
      space: the search space whose parameters are training hyperparameters (see the module
        docstring for names); ``None`` if everything comes from ``defaults``.
      defaults: fixed values for hyperparameters not in the space.
      max_batch_size: examples drawn per step (the maximum ``batch_size``).
      total_steps: default ``decay_steps`` of the learning-rate schedule.
      eval_batch_size: evaluate in chunks of this many examples (``None``: all at once).

    Example:
      >>> data = jaxhpo.train.mnist1d()
      >>> model = jaxhpo.train.mlp(10, max_width=128)
      >>> trainer = jaxhpo.train.Trainer(model, data, space=space)
      >>> pop = jaxhpo.train.Population(trainer, 64)
    """

    def __init__(self, model: Model, data: Dataset, *, space: Space | None = None,
                 defaults: Mapping[str, Any] | None = None, max_batch_size: int = 128,
                 total_steps: int = 0, eval_batch_size: int | None = None):
        if not isinstance(model, Model):
            raise TypeError(f"model must be a jaxhpo.train.Model, got {type(model).__name__}")
        if isinstance(data, (tuple, list)) and not isinstance(data, Dataset) \
                and len(data) in (4, 6):
            data = Dataset.from_arrays(*data)
        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a jaxhpo.train.Dataset or a tuple of arrays "
                            f"(x_train, y_train, x_val, y_val[, x_test, y_test]), got "
                            f"{type(data).__name__}; build one with jaxhpo.train.Dataset."
                            f"from_arrays(x_train, y_train, x_val, y_val, x_test=None, "
                            f"y_test=None)")
        if space is not None and not isinstance(space, Space):
            raise TypeError(f"space must be a jaxhpo.Space or None, got {type(space).__name__}")
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) \
                or max_batch_size < 1:
            raise ValueError(f"max_batch_size must be a positive int, got {max_batch_size!r}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 0:
            raise ValueError(f"total_steps must be an int >= 0, got {total_steps!r}")
        if eval_batch_size is not None and (isinstance(eval_batch_size, bool) or not isinstance(
                eval_batch_size, int) or eval_batch_size < 1):
            raise ValueError(f"eval_batch_size must be None or a positive int, got "
                             f"{eval_batch_size!r}")
        if defaults is not None and not isinstance(defaults, Mapping):
            raise TypeError(f"defaults must be a mapping {{hyperparameter: value}}, got "
                            f"{defaults!r}")
        self.model, self.data, self.space = model, data, space
        self.max_batch_size = max_batch_size
        self.eval_batch_size = eval_batch_size
        self.classification = data.num_classes > 0
        self.defaults = self._resolve_defaults(dict(defaults or {}), total_steps)
        self._tables = self._categorical_tables()
        self.tuned = {self._canonical(n) for n in (space.names if space is not None else ())}
        # What is fixed for every member is specialized at trace time (no cost for unused
        # features): the optimizer kinds that can occur, clipping, masks, dropout.
        if "optimizer" in self.tuned:
            name = next(n for n in space.names if self._canonical(n) == "optimizer")
            kinds = [OPTIMIZERS.index(c) for c in space[name].choices]
        else:
            kinds = [OPTIMIZERS.index(self.defaults["optimizer"])]
        clip = "clip_norm" in self.tuned or self.defaults["clip_norm"] > 0
        self._make_tx = make_population_optimizer(kinds, clip)
        # Placeholder numbers: the real values are read from each member's opt_state.hyperparams.
        self._tx = self._make_tx(**{k: 0.0 for k in _OPT_HPARAMS})
        d = self.data
        self._device_data = tuple(jax.device_put(np.asarray(a)) for a in (
            d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test))

    # ------------------------------------------------------------------ hyperparameters
    def _canonical(self, name: str) -> str:
        return ALIASES.get(name, name)

    def _resolve_defaults(self, given: dict, total_steps: int) -> dict:
        m = self.model
        d = {"learning_rate": 1e-3, "optimizer": "adam", "momentum": 0.9, "b1": 0.9,
             "b2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "clip_norm": 0.0,
             "warmup_steps": 0, "schedule": "constant", "decay_steps": total_steps,
             "dropout": 0.0, "label_smoothing": 0.0, "init_scale": 1.0,
             "batch_size": self.max_batch_size, "width": m.max_width or 0,
             "depth": m.max_depth or 0, "activation": (m.activations or ("none",))[0]}
        for k, v in given.items():
            c = self._canonical(k)
            if c not in d:
                raise ValueError(f"defaults: {k!r} is not a training hyperparameter; known: "
                                 f"{sorted(d)}")
            d[c] = v
        for name in d:
            self._check_value(name, d[name], "defaults")
        if self.space is not None:
            for name, p in self.space.items():
                c = self._canonical(name)
                if c not in d:
                    raise ValueError(
                        f"space parameter {name!r} is not a training hyperparameter; known: "
                        f"{sorted(d)} (aliases {sorted(ALIASES)})")
                values = p.choices if isinstance(p, Categorical) else (p.low, p.high)
                for v in values:
                    self._check_value(c, v, f"space parameter {name!r}")
        return d

    def _choices_for(self, name):
        if name == "activation":
            return self.model.activations
        return _NAMED_CHOICES.get(name)

    def _check_value(self, name, v, where):
        choices = self._choices_for(name)
        if choices is not None:
            if name == "activation" and not self.model.activations:
                return
            if v not in choices:
                raise ValueError(f"{where}: {name} {v!r} is not one of {list(choices)}")
            return
        try:
            finite = not isinstance(v, (str, bool)) and np.ndim(v) == 0 and bool(np.isfinite(v))
        except TypeError:  # None, objects, ...
            finite = False
        if not finite:
            raise ValueError(f"{where}: {name} must be a finite number, got {v!r}")
        m = self.model
        limits = {"batch_size": (1, self.max_batch_size), "width": (1, m.max_width),
                  "depth": (0 if m.name.startswith("cnn") else 1, m.max_depth),
                  "dropout": (0.0, 0.95), "label_smoothing": (0.0, 1.0)}
        if name in ("width", "depth") and m.max_width is None:
            if where == "defaults" and v == 0:
                return
            raise ValueError(f"{where}: {name} needs a zoo model with a maximum size; "
                             f"{m.name} has a fixed architecture")
        lo, hi = limits.get(name, (None, None))
        if lo is not None and not lo <= v <= hi:
            raise ValueError(f"{where}: {name} must be in [{lo}, {hi}], got {v!r}")

    def _categorical_tables(self) -> dict[str, np.ndarray]:
        """For categorical space parameters: choice index -> numeric hyperparameter value."""
        tables = {}
        for name, p in (self.space.items() if self.space is not None else []):
            if isinstance(p, Categorical):
                c = self._canonical(name)
                choices = self._choices_for(c)
                vals = [choices.index(v) if choices is not None else v for v in p.choices]
                tables[name] = np.asarray(vals, np.float32)
        return tables

    def hparams(self, hp: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """Decoded space values (one member) -> every canonical hyperparameter as a scalar.

        Categorical names (optimizer, schedule, activation) become indices into
        ``OPTIMIZERS`` / ``SCHEDULES`` / ``model.activations``.
        """
        out = {}
        for c, v in self.defaults.items():
            choices = self._choices_for(c)
            out[c] = jnp.float32(choices.index(v) if choices and v in choices else
                                 (0 if choices is not None else v))
        for name, v in hp.items():
            c = self._canonical(name)
            if c not in out:
                continue
            if name in self._tables and not hasattr(v, "dtype"):
                v = self._tables[name][self.space[name].index(v)]  # a static choice
            v = jnp.asarray(v)
            if name in self._tables and jnp.issubdtype(v.dtype, jnp.integer):
                v = jnp.asarray(self._tables[name])[v]
            out[c] = v.astype(jnp.float32)
        for c in ("optimizer", "schedule", "activation", "width", "depth", "batch_size",
                  "warmup_steps", "decay_steps"):
            out[c] = out[c].astype(jnp.int32)
        return out

    def _arch(self, h):
        """Architecture values for the model; fixed ones become static (``None`` / int)."""
        m, d, t = self.model, self.defaults, self.tuned
        acts = m.activations
        return {
            "width": h["width"] if "width" in t or d["width"] != m.max_width else None,
            "depth": h["depth"] if "depth" in t or d["depth"] != m.max_depth else None,
            "activation": (h["activation"] if "activation" in t
                           else acts.index(d["activation"]) if acts else 0),
            "dropout": h["dropout"] if "dropout" in t or d["dropout"] > 0 else None,
        }

    def _opt_hparams(self, h):
        return {k: h[k] for k in _OPT_HPARAMS}

    # ------------------------------------------------------------------ per-member functions
    def init(self, key: jax.Array, hp: Mapping[str, jax.Array]) -> MemberState:
        """Fresh member: initial weights (scaled by ``init_scale``) and optimizer state."""
        h = self.hparams(hp)
        k_init, k_stream = jax.random.split(key)
        x0 = jnp.asarray(self.data.x_train[: self.max_batch_size])
        params, model_state = self.model.init(k_init, x0)
        params = jax.tree.map(lambda p: p * h["init_scale"].astype(p.dtype), params)
        tx = self._make_tx(**self._opt_hparams(h))
        return MemberState(params, model_state, tx.init(params), k_stream,
                           jnp.zeros((), jnp.int32), jnp.zeros((), bool))

    def _loss(self, out, y, smoothing):
        if self.classification:
            k = out.shape[-1]
            onehot = jax.nn.one_hot(y, k)
            target = onehot * (1.0 - smoothing) + smoothing / k
            return optax.softmax_cross_entropy(out, target)
        return jnp.mean((out.reshape(y.shape[0], -1) - y.reshape(y.shape[0], -1)) ** 2, -1)

    def _step(self, state: MemberState, h, x_train, y_train) -> tuple[MemberState, jax.Array]:
        k = jax.random.fold_in(state.key, state.step)
        k_idx, k_drop = jax.random.split(k)
        idx = jax.random.randint(k_idx, (self.max_batch_size,), 0, x_train.shape[0])
        xb, yb = x_train[idx], y_train[idx]
        bs = h["batch_size"]
        w = (jnp.arange(self.max_batch_size) < bs) / bs.astype(jnp.float32)
        arch = self._arch(h)

        def loss_fn(params):
            out, ms = self.model.apply(params, state.model_state, xb, arch, k_drop, True)
            return jnp.sum(self._loss(out, yb, h["label_smoothing"]) * w), ms

        (loss, ms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self._tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(tree_norm(params)) & ~state.diverged
        new = MemberState(params, ms, opt_state, state.key, state.step + 1, state.diverged)
        frozen = state.replace(diverged=True)
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, frozen), loss

    def _with_opt_hparams(self, state, h):
        hyper = dict(state.opt_state.hyperparams)
        for k, v in self._opt_hparams(h).items():
            hyper[k] = jnp.asarray(v, hyper[k].dtype)
        return state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))

    def step(self, state: MemberState, hp, data=None) -> tuple[MemberState, jax.Array]:
        """One optimizer step with hyperparameters ``hp``; returns ``(state, train_loss)``.

        Differentiable in the continuous values of ``hp`` (the optimizer hyperparameters are
        written into the state first, as in :meth:`train`), so :mod:`jaxhpo.hypergrad` can
        unroll it. ``data`` is ``(x_train, y_train, ...)`` (default: the dataset).
        """
        h = self.hparams(hp)
        x_tr, y_tr = (data if data is not None else self.device_data())[:2]
        return self._step(self._with_opt_hparams(state, h), h, x_tr, y_tr)

    def train(self, state: MemberState, hp, steps: int, data=None, *,
              eval_every: int | None = None):
        """Train ``steps`` optimizer steps under ``lax.scan``.

        The optimizer hyperparameters in the state are set from ``hp`` first, so a changed
        ``hp`` (PBT explore) takes effect without re-initializing.

        Args:
          state: the member's state.
          hp: decoded space values for this member.
          steps: static number of steps.
          data: ``(x_train, y_train, x_val, y_val)`` device arrays (default: the dataset).
          eval_every: if set (must divide ``steps``), also return the learning curve: the
            validation metrics every ``eval_every`` steps.

        Returns:
          ``(state, curve)``; ``curve`` is ``{metric: f32[steps // eval_every]}`` or ``{}``.
        """
        h = self.hparams(hp)
        x_tr, y_tr, x_va, y_va = data if data is not None else self.device_data()[:4]
        state = self._with_opt_hparams(state, h)

        def one(s, _):
            s, _ = self._step(s, h, x_tr, y_tr)
            return s, None

        if not eval_every:
            state, _ = jax.lax.scan(one, state, None, length=steps)
            return state, {}
        if steps % eval_every:
            raise ValueError(f"eval_every={eval_every} must divide steps={steps}")

        def chunk(s, _):
            s, _ = jax.lax.scan(one, s, None, length=eval_every)
            return s, self._metrics(s, h, x_va, y_va)

        return jax.lax.scan(chunk, state, None, length=steps // eval_every)

    def _metrics(self, state, h, x, y) -> dict[str, jax.Array]:
        def fwd(xb):
            out, _ = self.model.apply(state.params, state.model_state, xb, self._arch(h),
                                      state.key, False)
            return out

        if self.eval_batch_size and x.shape[0] > self.eval_batch_size:
            n = x.shape[0] // self.eval_batch_size * self.eval_batch_size
            head = jax.lax.map(fwd, x[:n].reshape((-1, self.eval_batch_size) + x.shape[1:]))
            out = head.reshape((n,) + head.shape[2:])
            if n < x.shape[0]:
                out = jnp.concatenate([out, fwd(x[n:])])
        else:
            out = fwd(x)
        loss = jnp.mean(self._loss(out, y, 0.0))
        m = {"loss": loss}
        if self.classification:
            m["accuracy"] = jnp.mean(jnp.argmax(out, -1) == y)
        nan = jnp.float32(jnp.nan)
        return {k: jnp.where(state.diverged, nan, v) for k, v in m.items()}

    def evaluate(self, state: MemberState, hp, split: str = "val", data=None):
        """Metrics of one member on ``split`` (``"train"``, ``"val"`` or ``"test"``).

        Returns ``loss``, ``accuracy`` (classification), the cost figures ``param_count``
        (active trainable parameters), ``flops`` (forward FLOPs per example), ``steps`` and
        ``diverged``; loss/accuracy are NaN for a diverged member.
        """
        h = self.hparams(hp)
        arrays = data if data is not None else self.device_data()
        pairs = {"train": (0, 1), "val": (2, 3), "test": (4, 5)}
        if split not in pairs:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        i, j = pairs[split]
        m = self._metrics(state, h, arrays[i], arrays[j])
        cost = self.model.cost(self._arch(h))
        return {**m, "param_count": cost["param_count"], "flops": cost["flops"],
                "steps": state.step.astype(jnp.float32),
                "diverged": state.diverged.astype(jnp.float32)}

    def device_data(self):
        """The dataset as device arrays ``(x_train, y_train, x_val, y_val, x_test, y_test)``."""
        return self._device_data

    # ------------------------------------------------------------------ driver integration
    def program(self):
        """This trainer as a :class:`~jaxhpo.train.TrainingProgram` (``init``, ``step``,
        ``evaluate`` on the validation split, a ``lax.scan`` ``train`` and a ``"test"`` /
        ``"train"`` split), the protocol every engine accepts. ``Population(trainer)`` runs the
        same functions with the dataset passed as arguments instead of closed over."""
        from jaxhpo.train._program import TrainingProgram

        splits = {"train": lambda s, hp: self.evaluate(s, hp, "train")}
        if len(self.data.x_test):
            splits["test"] = lambda s, hp: self.evaluate(s, hp, "test")
        return TrainingProgram(
            init=self.init,
            step=lambda s, key, hp: (lambda o: (o[0], {"loss": o[1]}))(self.step(s, hp)),
            evaluate=lambda s, hp: self.evaluate(s, hp, "val"),
            train=lambda s, hp, steps: self.train(s, hp, steps)[0],
            splits=splits, name=f"Trainer({self.model.name})")

    def objective(self, steps: int, *, splits=("val", "test")):
        """A JAX-native objective ``fn(key, hp) -> metrics`` for :func:`jaxhpo.minimize`.

        Each call trains a fresh member for ``steps`` steps and returns its metrics on each
        split, prefixed (``val_loss``, ``val_accuracy``, ``test_accuracy``, ...), plus
        ``param_count``, ``flops``, ``steps``. ``minimize`` vmaps it over the population.
        Optimize a validation metric; the test metrics are for reporting.
        """
        arrays = self.device_data()
        if not len(self.data.x_test):
            splits = tuple(s for s in splits if s != "test")

        def fn(key, hp):
            state, _ = self.train(self.init(key, hp), hp, steps, arrays[:4])
            out = {}
            for s in splits:
                m = self.evaluate(state, hp, s, arrays)
                out.update({f"{s}_{k}": v for k, v in m.items()
                            if k in ("loss", "accuracy")})
            out.update({k: m[k] for k in ("param_count", "flops", "steps")})
            return out
        return fn
