"""Training programs: a user's own training code, per member, as pure functions.

The protocol (DESIGN.md, "Objectives"): ``init(key, hp) -> state``, ``step(state, key, hp) ->
(state, metrics)`` (or ``train(state, hp, steps) -> state``) and ``evaluate(state, hp) ->
metrics``, where ``state`` is any pytree (a dict, a Flax ``TrainState`` without callables in its
pytree leaves, an NNX ``nnx.State``) and ``metrics`` a dict of scalars. The functions describe
*one* member; :class:`~jaxhpo.train.Population` vmaps, scans, chunks and shards them, groups
members by static hyperparameters and compiles one program per group.

``hp`` is ``{name: value}``: *traced* hyperparameters are per-member scalars (``f32[]`` floats,
``i32[]`` ints, the ``i32[]`` index of a categorical choice), *static* ones (declared
``static=True`` in the Space) are plain Python values (a categorical's choice itself), so
``MLP(width=hp["width"])`` and ``getattr(optax, hp["optimizer"])`` work.

The built-in :class:`~jaxhpo.train.Trainer` is one implementation (``trainer.program()``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from flax import struct

# Folded into a member's key to derive its stream (the keys passed to ``step``), so the key
# ``init`` receives is exactly the member's key (as with the Trainer).
_STREAM = 0x5EED


@struct.dataclass
class ProgramState:
    """A member of a :class:`TrainingProgram` in a Population: the user's state plus the
    engine's per-member stream key and step count (``step`` gets ``fold_in(key, step)``)."""

    state: Any  # the user's state pytree
    key: jax.Array  # the member's stream key
    step: jax.Array  # i32[] optimizer steps taken


@dataclasses.dataclass(frozen=True)
class TrainingProgram:
    """A user's own training code as pure per-member functions.

    Args:
      init: ``init(key, hp) -> state``: a fresh member (weights, optimizer state, ...).
      step: ``step(state, key, hp) -> (state, metrics)``: one training step; ``key`` is a fresh
        key per member and step (minibatch order, dropout). ``metrics`` may be ``{}``.
      evaluate: ``evaluate(state, hp) -> {metric: scalar}`` on the validation data; the
        learning curves ``Population.train`` returns are these metrics.
      train: optional ``train(state, hp, steps) -> state`` (or ``(state, metrics)``) with a
        static ``steps``; used instead of scanning ``step`` when given (e.g. your own
        ``lax.scan`` with its own keys in ``state``). ``step`` or ``train`` is required.
      splits: optional evaluators for other splits, e.g. ``{"test": fn(state, hp)}``;
        ``Population.evaluate(state, hp, split)`` calls ``evaluate`` for ``"val"``.
      name: for messages.

    Example (plain JAX, a linear model; see :func:`flax_program` for Flax/Optax):
      >>> def init(key, hp):
      ...     return {"w": jax.random.normal(key, (8,)) * 0.1}
      >>> def step(state, key, hp):
      ...     i = jax.random.randint(key, (32,), 0, len(x))
      ...     loss, g = jax.value_and_grad(lambda w: jnp.mean((x[i] @ w - y[i]) ** 2))(state["w"])
      ...     return {"w": state["w"] - hp["lr"] * g}, {"loss": loss}
      >>> def evaluate(state, hp):
      ...     return {"loss": jnp.mean((x_val @ state["w"] - y_val) ** 2)}
      >>> program = TrainingProgram(init, step, evaluate)
      >>> pop = Population(program, 16, space=space)
    """

    init: Callable
    step: Callable | None = None
    evaluate: Callable | None = None
    train: Callable | None = None
    splits: Mapping[str, Callable] | None = None
    name: str = "program"

    def __post_init__(self):
        for arg in ("init", "evaluate"):
            if not callable(getattr(self, arg)):
                raise TypeError(f"TrainingProgram {arg} must be a function "
                                f"{'init(key, hp) -> state' if arg == 'init' else 'evaluate(state, hp) -> metrics'}"
                                f", got {getattr(self, arg)!r}")
        if self.step is None and self.train is None:
            raise TypeError("TrainingProgram needs step(state, key, hp) -> (state, metrics) or "
                            "train(state, hp, steps) -> state")
        for arg in ("step", "train"):
            v = getattr(self, arg)
            if v is not None and not callable(v):
                raise TypeError(f"TrainingProgram {arg} must be a function or None, got {v!r}")
        splits = dict(self.splits or {})
        for k, v in splits.items():
            if not isinstance(k, str) or not callable(v):
                raise TypeError(f"TrainingProgram splits must map split names to functions "
                                f"fn(state, hp) -> metrics, got {k!r}: {v!r}")
        if "val" in splits:
            raise ValueError("TrainingProgram splits: 'val' is evaluate itself; name others "
                             "('test', 'train', ...)")
        object.__setattr__(self, "splits", splits)

    @property
    def split_names(self) -> tuple[str, ...]:
        return ("val",) + tuple(self.splits)

    # ------------------------------------------------------------------ one member, engine side
    def member_init(self, key, hp) -> ProgramState:
        """The user's ``init`` plus the member's stream key and step count."""
        return ProgramState(self.init(key, hp), jax.random.fold_in(key, _STREAM),
                            jnp.zeros((), jnp.int32))

    def _evaluator(self, split):
        if split == "val":
            return self.evaluate
        if split not in self.splits:
            raise ValueError(f"split {split!r}: this training program evaluates "
                             f"{list(self.split_names)}; add others with "
                             f"TrainingProgram(..., splits={{{split!r}: fn(state, hp)}})")
        return self.splits[split]

    def member_evaluate(self, ps: ProgramState, hp, split: str = "val") -> dict:
        m = self._evaluator(split)(ps.state, hp)
        if not isinstance(m, Mapping):
            raise TypeError(f"{self.name}: evaluate must return a dict of scalar metrics, got "
                            f"{type(m).__name__}")
        out = {}
        for k, v in m.items():
            v = jnp.asarray(v)
            if v.shape != ():
                raise ValueError(f"{self.name}: metric {k!r} must be a scalar per member, got "
                                 f"shape {v.shape}")
            out[k] = v.astype(jnp.float32) if jnp.issubdtype(v.dtype, jnp.number) else v
        return out

    def _advance(self, ps: ProgramState, hp, n: int) -> ProgramState:
        if self.train is not None:
            out = self.train(ps.state, hp, n)
            state = out[0] if isinstance(out, tuple) and len(out) == 2 else out
            return ProgramState(state, ps.key, ps.step + n)

        def one(s, _):
            k = jax.random.fold_in(s.key, s.step)
            state, _ = self.step(s.state, k, hp)
            return ProgramState(state, s.key, s.step + 1), None
        return jax.lax.scan(one, ps, None, length=n)[0]

    def member_train(self, ps: ProgramState, hp, steps: int, eval_every: int | None = None):
        """``steps`` steps under ``lax.scan``; with ``eval_every``, the validation metrics every
        ``eval_every`` steps: ``(state, {metric: f32[steps // eval_every]})``."""
        if not eval_every:
            return self._advance(ps, hp, steps), {}

        def chunk(s, _):
            s = self._advance(s, hp, eval_every)
            return s, self.member_evaluate(s, hp, "val")
        return jax.lax.scan(chunk, ps, None, length=steps // eval_every)
