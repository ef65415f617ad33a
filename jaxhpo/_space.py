"""Search spaces: typed hyperparameters <-> the unit cube ``[0, 1]^d``.

Every parameter owns exactly one coordinate of the unit cube, in declaration order:

* ``Float(low, high, log=False)``: affine (or log-affine) map of the coordinate.
* ``Int(low, high, log=False)``: the interval ``[low - 0.5, high + 0.5]`` (in log space when
  ``log=True``) is mapped to the coordinate and rounded, so every integer owns a bin of equal
  width (equal log-width for ``log=True``) and uniform sampling of the cube is uniform over ints.
* ``Categorical(choices)``: ``k`` equal bins, bin ``i`` is choice ``i``.

A parameter may be *conditional* on earlier categorical parameters:
``Float(0.0, 0.99, condition={"optimizer": ["sgd", "momentum"]})`` is active only when the
parameter ``optimizer`` is active and takes one of the listed values.

JAX-side :meth:`Space.decode` works under ``jit``/``vmap`` and returns ``{name: array}`` with
``float32`` floats, ``int32`` ints and the ``int32`` *index* of categorical choices (JAX arrays
cannot hold strings; ``space.choices(name)`` maps an index back). Inactive parameters decode to
their *neutral value*: the parameter's ``default`` if one was given, otherwise the value at the
centre of its coordinate (the geometric mean of the bounds for log scales; the first choice for a
categorical). The Python-side :meth:`Space.to_params` returns plain dicts that hold only the
active parameters, with categorical choices as their original Python values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FLOAT, INT, CATEGORICAL = 0, 1, 2
KIND_NAMES = {FLOAT: "float", INT: "int", CATEGORICAL: "categorical"}
_MAX_GRID = 10_000_000


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _normalize_condition(condition) -> tuple[tuple[str, tuple], ...]:
    if condition is None:
        return ()
    if not isinstance(condition, Mapping):
        raise TypeError(
            f"condition must be a mapping {{parent_name: value or list of values}}, got "
            f"{type(condition).__name__}; e.g. condition={{'optimizer': ['sgd']}}"
        )
    out = []
    for parent, values in condition.items():
        if not isinstance(parent, str):
            raise TypeError(f"condition keys must be parameter names (str), got {parent!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = (values,)
        values = tuple(values)
        if not values:
            raise ValueError(f"condition on {parent!r} lists no values; give at least one")
        out.append((parent, values))
    return tuple(out)


@dataclass(frozen=True)
class _Param:
    condition: Any = field(default=None, kw_only=True)

    def _finish(self):
        object.__setattr__(self, "condition", _normalize_condition(self.condition))


@dataclass(frozen=True)
class Float(_Param):
    """A real-valued parameter in ``[low, high]``, log-uniform in the cube when ``log=True``."""

    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self):
        for arg in ("low", "high"):
            v = getattr(self, arg)
            if not _is_number(v) or not math.isfinite(v):
                raise TypeError(f"Float {arg} must be a finite number, got {v!r}")
        if not isinstance(self.log, bool):
            raise TypeError(f"Float log must be True or False, got {self.log!r}")
        if not self.low < self.high:
            raise ValueError(f"Float needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(
                f"Float(log=True) needs low > 0, got low={self.low}; use a positive lower bound "
                "or log=False"
            )
        if self.default is not None and not (
            _is_number(self.default) and self.low <= self.default <= self.high
        ):
            raise ValueError(
                f"Float default must be a number in [low, high] = [{self.low}, {self.high}], "
                f"got {self.default!r}"
            )
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        self._finish()


@dataclass(frozen=True)
class Int(_Param):
    """An integer parameter in ``[low, high]`` (both inclusive), log-scaled when ``log=True``."""

    low: int
    high: int
    log: bool = False
    default: int | None = None

    def __post_init__(self):
        for arg in ("low", "high"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Int {arg} must be an int, got {v!r}; use Float for reals")
        if not isinstance(self.log, bool):
            raise TypeError(f"Int log must be True or False, got {self.log!r}")
        if not self.low <= self.high:
            raise ValueError(f"Int needs low <= high, got low={self.low}, high={self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"Int(log=True) needs low >= 1, got low={self.low}")
        if self.default is not None and not (
            isinstance(self.default, (int, np.integer))
            and not isinstance(self.default, bool)
            and self.low <= self.default <= self.high
        ):
            raise ValueError(
                f"Int default must be an int in [{self.low}, {self.high}], got {self.default!r}"
            )
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))
        self._finish()

    @property
    def num_values(self) -> int:
        return self.high - self.low + 1


@dataclass(frozen=True)
class Categorical(_Param):
    """One of a finite list of choices (any hashable Python values: str, int, float, bool, None)."""

    choices: tuple
    default: Any = None

    def __post_init__(self):
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence):
            raise TypeError(
                f"Categorical choices must be a list or tuple, got {type(self.choices).__name__}"
            )
        choices = tuple(self.choices)
        if not choices:
            raise ValueError("Categorical needs at least one choice")
        try:
            unique = len(set(choices)) == len(choices)
        except TypeError:
            raise TypeError("Categorical choices must be hashable (str, int, float, bool, None)")
        if not unique:
            raise ValueError(f"Categorical choices must be distinct, got {choices!r}")
        object.__setattr__(self, "choices", choices)
        if self.default is not None and self.default not in choices:
            raise ValueError(f"Categorical default {self.default!r} is not one of {choices!r}")
        self._finish()

    def index(self, value) -> int:
        for i, c in enumerate(self.choices):
            if c == value:
                return i
        raise ValueError(f"{value!r} is not one of the choices {self.choices!r}")


Param = Float | Int | Categorical


class Space:
    """An ordered mapping of named parameters, each owning one coordinate of ``[0, 1]^d``.

    Args:
      params: a mapping ``{name: Float | Int | Categorical}`` (order is kept), and/or the same
        as keyword arguments.

    Example:
      >>> import jaxhpo, jax
      >>> space = jaxhpo.Space({
      ...     "lr": jaxhpo.Float(1e-4, 1e-1, log=True),
      ...     "width": jaxhpo.Int(16, 256, log=True),
      ...     "opt": jaxhpo.Categorical(["sgd", "adam"]),
      ...     "momentum": jaxhpo.Float(0.0, 0.99, condition={"opt": "sgd"}),
      ... })
      >>> x = space.sample(jax.random.key(0), 8)     # f32[8, 4]
      >>> hp = space.decode(x)                       # {"lr": f32[8], "width": i32[8], ...}
      >>> space.to_params(x[0])                      # {'lr': 0.003..., 'width': 41, ...}
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kwargs: Param):
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(
                f"Space(params) must be a mapping name -> parameter, got {type(params).__name__}"
            )
        items = list((params or {}).items()) + list(kwargs.items())
        if not items:
            raise ValueError("Space needs at least one parameter")
        self._params: dict[str, Param] = {}
        for name, p in items:
            if not isinstance(name, str) or not name:
                raise TypeError(f"parameter names must be non-empty str, got {name!r}")
            if name in self._params:
                raise ValueError(f"parameter {name!r} is defined twice")
            if not isinstance(p, (Float, Int, Categorical)):
                raise TypeError(
                    f"parameter {name!r} must be Float, Int or Categorical, got {p!r}"
                )
            for parent, values in p.condition:
                if parent not in self._params:
                    raise ValueError(
                        f"parameter {name!r} is conditional on {parent!r}, which must be "
                        "declared before it"
                    )
                pp = self._params[parent]
                if not isinstance(pp, Categorical):
                    raise ValueError(
                        f"parameter {name!r}: condition parent {parent!r} must be Categorical"
                    )
                for v in values:
                    if v not in pp.choices:
                        raise ValueError(
                            f"parameter {name!r}: condition value {v!r} is not a choice of "
                            f"{parent!r} {pp.choices!r}"
                        )
            self._params[name] = p
        self.names: tuple[str, ...] = tuple(self._params)
        self.dim = len(self.names)
        plist = list(self._params.values())
        self.kinds = np.array(
            [FLOAT if isinstance(p, Float) else INT if isinstance(p, Int) else CATEGORICAL
             for p in plist], np.int32)
        # Number of distinct values per coordinate: k for categoricals, high-low+1 for ints,
        # 0 for floats. Model-based strategies use it to round or bin coordinates.
        self.num_choices = np.array(
            [len(p.choices) if isinstance(p, Categorical) else
             p.num_values if isinstance(p, Int) else 0 for p in plist], np.int32)
        self.is_log = np.array([bool(getattr(p, "log", False)) for p in plist])
        self.is_conditional = np.array([bool(p.condition) for p in plist])
        self._neutral_u = np.array([self._encode_one(n, self._neutral_value(n)) for n in
                                    self.names], np.float32)

    # ------------------------------------------------------------------ mapping protocol
    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return self.dim

    def __contains__(self, name) -> bool:
        return name in self._params

    def items(self):
        return self._params.items()

    def __eq__(self, other) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {p!r}" for n, p in self._params.items())
        return f"Space({{{inner}}})"

    def choices(self, name: str) -> tuple:
        """The choices of categorical parameter ``name`` (maps decoded indices to values)."""
        p = self._params[name]
        if not isinstance(p, Categorical):
            raise ValueError(f"parameter {name!r} is not Categorical")
        return p.choices

    # ------------------------------------------------------------------ sampling and grids
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` points uniform in the cube: ``f32[n, d]``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"sample(n) needs a positive int, got {n!r}")
        return jax.random.uniform(key, (int(n), self.dim), dtype=jnp.float32)

    def grid(self, points_per_axis: int | Mapping[str, int]) -> np.ndarray:
        """All points of a regular grid over the space, in the cube: ``f32[N, d]``.

        Floats get ``points_per_axis`` evenly spaced values including both bounds (evenly spaced
        in log space for ``log=True``); ints the same rounded to distinct ints (all of them when
        there are fewer); categoricals every choice. Points that differ only in inactive
        conditional parameters are merged, so each distinct configuration appears exactly once.
        ``points_per_axis`` may be a mapping name -> count (names missing from it get 5).
        """
        if isinstance(points_per_axis, Mapping):
            unknown = set(points_per_axis) - set(self.names)
            if unknown:
                raise ValueError(f"points_per_axis names unknown parameters {sorted(unknown)}")
        per = {}
        for name in self.names:
            if isinstance(points_per_axis, Mapping):
                p = points_per_axis.get(name, 5)
            else:
                p = points_per_axis
            if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
                raise ValueError(f"points_per_axis for {name!r} must be a positive int, got {p!r}")
            per[name] = int(p)
        axes = []
        for name in self.names:
            prm, p = self._params[name], per[name]
            if isinstance(prm, Categorical):
                vals = list(prm.choices)
            elif isinstance(prm, Int):
                if prm.num_values <= p:
                    vals = list(range(prm.low, prm.high + 1))
                else:
                    space = np.geomspace if prm.log else np.linspace
                    vals = sorted(set(int(round(v)) for v in space(prm.low, prm.high, p)))
            else:
                if p == 1:
                    vals = [self._decode_np_one(name, 0.5)]
                else:
                    space = np.geomspace if prm.log else np.linspace
                    vals = list(space(prm.low, prm.high, p))
            axes.append([self._encode_one(name, v) for v in vals])
        total = math.prod(len(a) for a in axes)
        if total > _MAX_GRID:
            raise ValueError(
                f"the grid has {total} points (> {_MAX_GRID}); lower points_per_axis"
            )
        pts = np.array(list(itertools.product(*axes)), np.float32).reshape(total, self.dim)
        pts = self.neutralize(pts)
        _, first = np.unique(pts, axis=0, return_index=True)
        return pts[np.sort(first)]

    # ------------------------------------------------------------------ decode (JAX + numpy)
    def _decode_values(self, x, xp):
        """Per-parameter values (ignoring conditions) with array module ``xp``."""
        out = {}
        for j, (name, p) in enumerate(self._params.items()):
            u = xp.clip(x[..., j], 0.0, 1.0)
            if isinstance(p, Float):
                if p.log:
                    lo, hi = math.log(p.low), math.log(p.high)
                    v = xp.exp(lo + u * (hi - lo))
                else:
                    v = p.low + u * (p.high - p.low)
                out[name] = xp.clip(v, p.low, p.high)
            elif isinstance(p, Int):
                a, b = p.low - 0.5, p.high + 0.5
                if p.log:
                    t = xp.exp(math.log(a) + u * (math.log(b) - math.log(a)))
                else:
                    t = a + u * (b - a)
                out[name] = xp.clip(xp.floor(t + 0.5), p.low, p.high).astype(xp.int32)
            else:
                k = len(p.choices)
                out[name] = xp.clip(xp.floor(u * k), 0, k - 1).astype(xp.int32)
        return out

    def _active_from_values(self, vals, xp):
        active = {}
        for name, p in self._params.items():
            a = None
            for parent, values in p.condition:
                pp = self._params[parent]
                idx = [pp.choices.index(v) for v in values]
                hit = xp.zeros(vals[parent].shape, bool)
                for i in idx:
                    hit = hit | (vals[parent] == i)
                hit = hit & active[parent]
                a = hit if a is None else a & hit
            active[name] = xp.ones(vals[name].shape, bool) if a is None else a
        return active

    def _check_x(self, x, where: str):
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{where}: x must have last axis of size d={self.dim} (one coordinate per "
                f"parameter {list(self.names)}), got shape {tuple(x.shape)}"
            )

    def decode(self, x: jax.Array) -> dict[str, jax.Array]:
        """Cube points ``f32[..., d]`` -> ``{name: f32/i32[...]}``; jit/vmap compatible.

        Categorical parameters decode to the ``int32`` index of the choice. Inactive conditional
        parameters decode to their neutral value (see the module docstring); use
        :meth:`active` to get the masks.
        """
        x = jnp.asarray(x, jnp.float32)
        self._check_x(x, "Space.decode")
        vals = self._decode_values(x, jnp)
        if not self.is_conditional.any():
            return vals
        active = self._active_from_values(vals, jnp)
        neutral = self._decode_values(jnp.asarray(self._neutral_u), jnp)
        return {n: jnp.where(active[n], v, neutral[n]) for n, v in vals.items()}

    def active(self, x: jax.Array) -> dict[str, jax.Array]:
        """``{name: bool[...]}``: which parameters are active at each cube point (JAX)."""
        x = jnp.asarray(x, jnp.float32)
        self._check_x(x, "Space.active")
        return self._active_from_values(self._decode_values(x, jnp), jnp)

    def active_mask(self, x: jax.Array) -> jax.Array:
        """``bool[..., d]``: per-coordinate activity, in coordinate order (JAX)."""
        act = self.active(x)
        return jnp.stack([act[n] for n in self.names], axis=-1)

    def neutralize(self, x):
        """Set the coordinates of inactive parameters to their neutral value's coordinate.

        Works on numpy and JAX arrays ``f32[..., d]``; points equal as configurations become
        equal as arrays (used by grids and by model-based strategies).
        """
        if not self.is_conditional.any():
            return x
        xp = jnp if isinstance(x, jax.Array) else np
        xx = xp.asarray(x, xp.float32)
        self._check_x(xx, "Space.neutralize")
        act = self._active_from_values(self._decode_values(xx, xp), xp)
        mask = xp.stack([act[n] for n in self.names], axis=-1)
        return xp.where(mask, xx, xp.asarray(self._neutral_u))

    # ------------------------------------------------------------------ Python side
    def to_params_list(self, x) -> list[dict[str, Any]]:
        """Cube points ``f32[n, d]`` -> list of plain dicts holding only active parameters."""
        xx = np.asarray(x, np.float64)
        if xx.ndim == 1:
            xx = xx[None]
        if xx.ndim != 2:
            raise ValueError(f"to_params_list: x must be [n, d], got shape {xx.shape}")
        self._check_x(xx, "Space.to_params_list")
        vals = self._decode_values(xx, np)
        act = self._active_from_values(vals, np)
        out = []
        for i in range(xx.shape[0]):
            d = {}
            for name, p in self._params.items():
                if not act[name][i]:
                    continue
                v = vals[name][i]
                if isinstance(p, Categorical):
                    d[name] = p.choices[int(v)]
                elif isinstance(p, Int):
                    d[name] = int(v)
                else:
                    d[name] = float(v)
            out.append(d)
        return out

    def to_params(self, x) -> dict[str, Any]:
        """One cube point ``f32[d]`` -> plain dict of the active parameters' values."""
        xx = np.asarray(x)
        if xx.ndim != 1:
            raise ValueError(f"to_params takes one point f32[d], got shape {xx.shape}; "
                             "use to_params_list for a batch")
        return self.to_params_list(xx[None])[0]

    def inactive_names(self, params: Mapping[str, Any]) -> list[str]:
        """Names of the parameters that are inactive given a params dict from ``to_params``."""
        return [n for n in self.names if n not in params]

    def _neutral_value(self, name):
        p = self._params[name]
        if p.default is not None:
            return p.default
        if isinstance(p, Categorical):
            return p.choices[0]
        return self._decode_np_one(name, 0.5)

    def _decode_np_one(self, name, u):
        j = self.names.index(name)
        x = np.full((self.dim,), 0.5)
        x[j] = u
        v = self._decode_values(x[None], np)[name][0]
        return int(v) if isinstance(self._params[name], Int) else float(v)

    def _encode_one(self, name: str, v) -> float:
        p = self._params[name]
        if isinstance(p, Categorical):
            return (p.index(v) + 0.5) / len(p.choices)
        if not _is_number(v) or not math.isfinite(v):
            raise ValueError(f"parameter {name!r}: value must be a finite number, got {v!r}")
        if isinstance(p, Int):
            if int(v) != v:
                raise ValueError(f"parameter {name!r}: Int value must be integral, got {v!r}")
            if not p.low <= v <= p.high:
                raise ValueError(f"parameter {name!r}: {v} outside [{p.low}, {p.high}]")
            a, b = p.low - 0.5, p.high + 0.5
            if p.log:
                return (math.log(v) - math.log(a)) / (math.log(b) - math.log(a))
            return (v - a) / (b - a)
        if not p.low <= v <= p.high:
            raise ValueError(f"parameter {name!r}: {v} outside [{p.low}, {p.high}]")
        if p.log:
            return (math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
        return (v - p.low) / (p.high - p.low)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """A params dict -> its cube point ``f32[d]`` (inverse of :meth:`to_params`).

        Inactive parameters may be omitted (they encode to their neutral coordinate); active
        ones are required. Unknown names raise ``ValueError``.
        """
        if not isinstance(params, Mapping):
            raise TypeError(f"encode(params) needs a dict, got {type(params).__name__}")
        unknown = set(params) - set(self.names)
        if unknown:
            raise ValueError(f"encode: unknown parameters {sorted(unknown)}; "
                             f"the space has {list(self.names)}")
        u = self._neutral_u.astype(np.float64).copy()
        for j, name in enumerate(self.names):
            if name in params:
                u[j] = self._encode_one(name, params[name])
        x = u.astype(np.float32)
        act = self._active_from_values(self._decode_values(x[None], np), np)
        missing = [n for n in self.names if act[n][0] and n not in params]
        if missing:
            raise ValueError(f"encode: active parameters {missing} are missing")
        return self.neutralize(x[None])[0]

    def encode_many(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """A list of params dicts -> ``f32[n, d]``."""
        return np.stack([self.encode(p) for p in params_list]).astype(np.float32)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """A JSON-compatible description (used by the journal to check a resumed run)."""
        out = {}
        for name, p in self._params.items():
            d = {"type": type(p).__name__}
            if isinstance(p, Categorical):
                d["choices"] = list(p.choices)
            else:
                d.update(low=p.low, high=p.high, log=p.log)
            if p.default is not None:
                d["default"] = p.default
            if p.condition:
                d["condition"] = {k: list(v) for k, v in p.condition}
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, spec: Mapping) -> "Space":
        """Inverse of :meth:`to_dict`."""
        params = {}
        for name, d in spec.items():
            d = dict(d)
            kind = d.pop("type")
            cls_ = {"Float": Float, "Int": Int, "Categorical": Categorical}.get(kind)
            if cls_ is None:
                raise ValueError(f"parameter {name!r}: unknown type {kind!r}")
            params[name] = cls_(**d)
        return cls(params)
