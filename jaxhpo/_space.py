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

A parameter may be *static* (``static=True``): the user's code receives it as a plain Python
value (a width used as a shape, an optimizer name), and the run layer groups the population by
the static values (:attr:`Space.static_names`, :meth:`Space.static_values`).

JAX-side :meth:`Space.decode` works under ``jit``/``vmap`` and returns ``{name: array}`` (an
:class:`HParams` dict, whose missing-key error lists the names) with ``float32`` floats, ``int32``
ints and the ``int32`` *index* of categorical choices (JAX arrays cannot hold strings;
``space.choices(name)`` maps an index back). Inactive parameters decode to their *neutral value*:
the parameter's ``default`` if one was given, otherwise the value at the centre of its coordinate
(the geometric mean of the bounds for log scales; the first choice for a categorical). The
Python-side :meth:`Space.to_params` returns plain dicts that hold only the active parameters,
with categorical choices as the user's own Python objects.

**Representable ranges.** ``decode`` computes in ``float32`` and returns ``int32``, and every
decoded value lies inside the declared bounds (also at ``x = 0`` and ``x = 1``). So a ``Float``'s
bounds must be ``0`` or normal float32 numbers (magnitude in ``[1.2e-38, 3.4e38]``), its span
``high - low`` at most ``3.4e38``, and ``[low, high]`` must hold at least two float32 numbers.
An ``Int``'s bounds must lie in int32 ``[-2**31, 2**31 - 1]`` and it may hold at most ``2**24``
integers (``log=True``: ``high <= 2**24``), the integers a float32 represents exactly. Anything
else is rejected when the parameter is constructed, with the representable range in the message.
Ints and categoricals decode identically on both sides (the Python side repeats the float32
arithmetic); Python-side floats are computed in float64 from the same float32 coordinate.

**Choices and JSON.** :meth:`Space.to_dict` is always JSON-serializable (``allow_nan=False``) and
``Space.from_dict(json.loads(json.dumps(space.to_dict()))) == space``. Categorical choices may be
``None``, ``bool``, ``int``, ``float`` (``inf`` included, ``nan`` not: it is not equal to
itself), ``str``, ``bytes``, NumPy scalars (bool, integer, float16/32/64, str, bytes) and tuples
or frozensets of these. JSON-native ones are written as they are; the others as a tagged object
``{"$type": "tuple" | "frozenset" | "bytes" | "float" | "numpy", ...}`` that :meth:`from_dict`
turns back into the same type. Any other object (a function, a class, an enum member that is not
a str/int) is rejected at construction: use its name as the choice and look the object up in
your code (``getattr(optax, hp["optimizer"])``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._validate import check_bool, closest

FLOAT, INT, CATEGORICAL = 0, 1, 2
KIND_NAMES = {FLOAT: "float", INT: "int", CATEGORICAL: "categorical"}
_MAX_GRID = 10_000_000

F32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38
F32_TINY = float(np.finfo(np.float32).tiny)  # 1.1754944e-38, the smallest normal float32
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
MAX_INT_VALUES = 2 ** 24  # float32 represents every integer up to 2**24 exactly


# ---------------------------------------------------------------------------- errors
class UnknownNameError(KeyError):
    """A ``KeyError`` whose message lists the known names and the closest match.

    ``str()`` of a plain ``KeyError`` is the repr of the missing key; this one prints its
    message as written.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def unknown_name_message(what: str, name, names, limit: int = 30) -> str:
    """``"<what> 'lrr' is not defined; the names are [...]; did you mean 'lr'?"``."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    hint = closest(name, [n for n in names if isinstance(n, str)])
    return (f"{what} {name!r} is not defined; the names are [{shown}]"
            + (f"; did you mean {hint!r}?" if hint else ""))


class HParams(dict):
    """The ``{name: array}`` dict returned by :meth:`Space.decode`.

    A plain ``dict`` except that a missing name raises :class:`UnknownNameError` (a
    ``KeyError``) listing the space's names and the closest one, so a typo inside a jitted
    objective says what was meant. Registered as a pytree (flattened like a ``dict``: sorted
    keys), so it passes through ``jit``, ``vmap`` and ``jax.tree`` functions.
    """

    __slots__ = ()

    def __missing__(self, key):
        raise UnknownNameError(unknown_name_message("hyperparameter", key, self))


def _hparams_flatten_with_keys(d):
    keys = tuple(sorted(d))
    return [(jax.tree_util.DictKey(k), d[k]) for k in keys], keys


def _hparams_flatten(d):
    keys = tuple(sorted(d))
    return [d[k] for k in keys], keys


def _hparams_unflatten(keys, children):
    return HParams(zip(keys, children))


jax.tree_util.register_pytree_with_keys(HParams, _hparams_flatten_with_keys, _hparams_unflatten,
                                        _hparams_flatten)


# Row ``i`` of ``a``: one compiled program per shape, dispatched per column by eager decode.
_take = jax.jit(lambda a, i: jax.lax.dynamic_index_in_dim(a, i, 0, keepdims=False))


# ---------------------------------------------------------------------------- choice <-> JSON
_NUMPY_CHOICE_DTYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "str", "bytes"}
_CHOICE_TYPES = ("None, bool, int, float (not nan), str, bytes, NumPy scalars, or tuples or "
                 "frozensets of these")


def _choice_problem(c) -> str | None:
    """Why ``c`` cannot be a choice (``None`` if it can)."""
    if isinstance(c, np.generic):
        if np.dtype(type(c)).name.rstrip("0123456789") in ("str", "bytes"):
            return None
        if np.dtype(type(c)).name not in _NUMPY_CHOICE_DTYPES:
            return f"NumPy {np.dtype(type(c)).name} scalars are not supported"
        if isinstance(c, np.floating) and math.isnan(c):
            return "nan is not equal to itself, so it cannot be looked up"
        return None
    if c is None or isinstance(c, (bool, int, str, bytes)):
        return None
    if isinstance(c, float):
        return "nan is not equal to itself, so it cannot be looked up" if math.isnan(c) else None
    if isinstance(c, (tuple, frozenset)):
        for e in c:
            why = _choice_problem(e)
            if why is not None:
                return why
        return None
    return f"{type(c).__name__} objects cannot be written to the run's JSON journal"


def _eq(a, b) -> bool:
    """``a == b`` as a bool (NumPy scalars compared with tuples give arrays, not bools)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _encode_choice(c):
    """A choice -> JSON-native data (tagged for what JSON cannot hold faithfully)."""
    if isinstance(c, np.generic):
        name = np.dtype(type(c)).name
        if isinstance(c, np.bytes_):
            return {"$type": "numpy", "dtype": "bytes", "hex": bytes(c).hex()}
        if isinstance(c, np.str_):
            return {"$type": "numpy", "dtype": "str", "value": str(c)}
        return {"$type": "numpy", "dtype": name, "value": _encode_choice(c.item())}
    if c is None or isinstance(c, (bool, str)):
        return c if type(c) in (bool, str) or c is None else str(c)
    if isinstance(c, int):
        return int(c)
    if isinstance(c, float):
        if math.isinf(c):
            return {"$type": "float", "value": "inf" if c > 0 else "-inf"}
        return float(c)
    if isinstance(c, bytes):
        return {"$type": "bytes", "hex": bytes(c).hex()}
    if isinstance(c, tuple):
        return {"$type": "tuple", "items": [_encode_choice(e) for e in c]}
    if isinstance(c, frozenset):
        items = [_encode_choice(e) for e in c]
        items.sort(key=lambda e: json.dumps(e, sort_keys=True))
        return {"$type": "frozenset", "items": items}
    raise TypeError(f"cannot encode choice {c!r}")


def _decode_choice(d):
    """Inverse of :func:`_encode_choice`."""
    if isinstance(d, list):  # written by an older jaxhpo for tuple choices
        return tuple(_decode_choice(e) for e in d)
    if not isinstance(d, Mapping):
        return d
    kind = d.get("$type")
    if kind == "tuple":
        return tuple(_decode_choice(e) for e in d["items"])
    if kind == "frozenset":
        return frozenset(_decode_choice(e) for e in d["items"])
    if kind == "bytes":
        return bytes.fromhex(d["hex"])
    if kind == "float":
        return float(d["value"])
    if kind == "numpy":
        if d["dtype"] == "bytes":
            return np.bytes_(bytes.fromhex(d["hex"]))
        if d["dtype"] == "str":
            return np.str_(d["value"])
        return np.dtype(d["dtype"]).type(_decode_choice(d["value"]))
    raise ValueError(f"unknown encoded choice {d!r}")


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


def _f32_up(v: float) -> float:
    """The smallest float32 >= ``v`` (``v`` within the float32 range)."""
    f = np.float32(v)
    if float(f) < v:
        f = np.nextafter(f, np.float32(np.inf))
    return float(f)


def _f32_down(v: float) -> float:
    """The largest float32 <= ``v``."""
    f = np.float32(v)
    if float(f) > v:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


@dataclass(frozen=True)
class _Param:
    condition: Any = field(default=None, kw_only=True)
    static: bool = field(default=False, kw_only=True)

    def _finish(self):
        object.__setattr__(self, "static", check_bool(self.static,
                                                      f"{type(self).__name__} static"))
        object.__setattr__(self, "condition", _normalize_condition(self.condition))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


@dataclass(frozen=True)
class Float(_Param):
    """A real-valued parameter in ``[low, high]``, log-uniform in the cube when ``log=True``.

    The bounds must be ``0`` or normal float32 numbers with ``high - low <= 3.4e38`` (decode
    works in float32); ``log=True`` needs ``low > 0``.
    """

    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self):
        for arg in ("low", "high"):
            v = getattr(self, arg)
            if not _is_number(v) or not math.isfinite(v):
                raise TypeError(f"Float {arg} must be a finite number, got {v!r}")
        object.__setattr__(self, "log", check_bool(self.log, "Float log"))
        low, high = float(self.low), float(self.high)
        if not low < high:
            raise ValueError(f"Float needs low < high, got low={self.low}, high={self.high}")
        if self.log and low <= 0:
            raise ValueError(
                f"Float(log=True) needs low > 0, got low={self.low}; use a positive lower bound "
                "or log=False"
            )
        for arg, v in (("low", low), ("high", high)):
            if v != 0 and not F32_TINY <= abs(v) <= F32_MAX:
                raise ValueError(
                    f"Float {arg}={v!r} is not representable: decode computes in float32, so "
                    f"bounds must be 0 or have a magnitude in [{F32_TINY:.8g}, {F32_MAX:.8g}]")
        if high - low > F32_MAX:
            raise ValueError(
                f"Float span high - low = {high - low:.6g} is larger than float32's largest "
                f"number {F32_MAX:.8g} (decode computes low + u * (high - low) in float32); "
                "narrow [low, high]")
        if not _f32_up(low) < _f32_down(high):
            raise ValueError(
                f"Float [low, high] = [{low!r}, {high!r}] holds fewer than two float32 numbers "
                "(decode returns float32); widen the range")
        if self.default is not None:
            if not (_is_number(self.default) and low <= self.default <= high):
                raise ValueError(
                    f"Float default must be a number in [low, high] = [{self.low}, "
                    f"{self.high}], got {self.default!r}"
                )
            object.__setattr__(self, "default", float(self.default))
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        self._finish()


@dataclass(frozen=True)
class Int(_Param):
    """An integer parameter in ``[low, high]`` (both inclusive), log-scaled when ``log=True``.

    The bounds must lie in int32 and the range hold at most ``2**24`` integers (``log=True``:
    ``1 <= low`` and ``high <= 2**24``).
    """

    low: int
    high: int
    log: bool = False
    default: int | None = None

    def __post_init__(self):
        for arg in ("low", "high"):
            v = getattr(self, arg)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Int {arg} must be an int, got {v!r}; use Float for reals")
        object.__setattr__(self, "log", check_bool(self.log, "Int log"))
        low, high = int(self.low), int(self.high)
        if not low <= high:
            raise ValueError(f"Int needs low <= high, got low={self.low}, high={self.high}")
        for arg, v in (("low", low), ("high", high)):
            if not INT32_MIN <= v <= INT32_MAX:
                raise ValueError(
                    f"Int {arg}={v} is outside int32 [-2**31, 2**31 - 1] = [{INT32_MIN}, "
                    f"{INT32_MAX}], the dtype decode returns; use a smaller range or Float")
        if self.log and low < 1:
            raise ValueError(f"Int(log=True) needs low >= 1, got low={self.low}")
        if self.log and high > MAX_INT_VALUES:
            raise ValueError(
                f"Int(log=True) needs high <= 2**24 = {MAX_INT_VALUES} (decode computes in "
                f"float32, which holds every integer only up to 2**24), got high={high}; "
                "use Float(log=True) and round in your code")
        if high - low + 1 > MAX_INT_VALUES:
            raise ValueError(
                f"Int(low={low}, high={high}) holds {high - low + 1} integers; a float32 "
                f"unit-cube coordinate addresses at most 2**24 = {MAX_INT_VALUES}; narrow "
                "[low, high], use log=True, or use Float and round in your code")
        if self.default is not None:
            if not (isinstance(self.default, (int, np.integer))
                    and not isinstance(self.default, (bool, np.bool_))
                    and low <= self.default <= high):
                raise ValueError(
                    f"Int default must be an int in [{self.low}, {self.high}], got "
                    f"{self.default!r}"
                )
            object.__setattr__(self, "default", int(self.default))
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        self._finish()

    @property
    def num_values(self) -> int:
        return self.high - self.low + 1


@dataclass(frozen=True)
class Categorical(_Param):
    """One of a finite list of choices.

    Choices may be ``None``, ``bool``, ``int``, ``float`` (not nan), ``str``, ``bytes``, NumPy
    scalars, or tuples/frozensets of these (what the journal can write faithfully); use a name
    for anything else and look the object up in your code.
    """

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
            raise TypeError(f"Categorical choices must be hashable ({_CHOICE_TYPES})") from None
        for c in choices:
            why = _choice_problem(c)
            if why is not None:
                raise TypeError(
                    f"Categorical choice {c!r} is not supported: {why}. Choices may be "
                    f"{_CHOICE_TYPES}; for other objects use a name as the choice and look "
                    "it up in your code, e.g. getattr(optax, hp['optimizer'])")
        if not unique:
            raise ValueError(f"Categorical choices must be distinct, got {choices!r}")
        object.__setattr__(self, "choices", choices)
        if self.default is not None and not any(_eq(c, self.default) for c in choices):
            raise ValueError(f"Categorical default {self.default!r} is not one of {choices!r}")
        self._finish()

    def index(self, value) -> int:
        for i, c in enumerate(self.choices):
            if c is value:
                return i
        for i, c in enumerate(self.choices):
            if _eq(c, value):
                return i
        raise ValueError(f"{value!r} is not one of the choices {self.choices!r}")


Param = Float | Int | Categorical

# Coordinate groups decoded together, vectorized: linear/log floats, linear/log ints,
# categoricals. Each holds its coordinates' indices and per-coordinate constants.
_FLIN, _FLOG, _ILIN, _ILOG, _CAT = range(5)


def _group_of(p) -> int:
    if isinstance(p, Float):
        return _FLOG if p.log else _FLIN
    if isinstance(p, Int):
        return _ILOG if p.log else _ILIN
    return _CAT


class _Group:
    """Constants of one group: ``idx`` int[g] coordinates; float32 ``a``/``b`` for the
    ``a + u * b`` map in JAX, float64 ``a64``/``b64`` for the Python side, ``lo``/``hi`` the
    float32 clip bounds (inside the declared bounds) and ``lo64``/``hi64`` the declared ones."""

    def __init__(self, kind: int, idx: list[int], params: list):
        self.kind, self.idx = kind, np.asarray(idx, np.int64)
        g = len(params)
        a64, b64 = np.zeros(g), np.zeros(g)
        lo64, hi64 = np.zeros(g), np.zeros(g)
        for j, p in enumerate(params):
            if kind == _FLIN:
                a64[j], b64[j] = p.low, p.high - p.low
            elif kind == _FLOG:
                a64[j], b64[j] = math.log(p.low), math.log(p.high) - math.log(p.low)
            elif kind == _ILIN:
                b64[j] = p.num_values
            elif kind == _ILOG:
                lo_, hi_ = math.log(p.low - 0.5), math.log(p.high + 0.5)
                a64[j], b64[j] = lo_, hi_ - lo_
            else:
                b64[j] = len(p.choices)
            if kind != _CAT:
                lo64[j], hi64[j] = p.low, p.high
        self.a64, self.b64, self.lo64, self.hi64 = a64, b64, lo64, hi64
        self.a, self.b = a64.astype(np.float32), b64.astype(np.float32)
        if kind in (_FLIN, _FLOG):
            self.lo = np.array([_f32_up(v) for v in lo64], np.float32)
            self.hi = np.array([_f32_down(v) for v in hi64], np.float32)
        else:  # exact in float32: ints and counts up to 2**24
            self.lo, self.hi = lo64.astype(np.float32), hi64.astype(np.float32)
        self.low_i = lo64.astype(np.int32) if kind == _ILIN else None

    def decode_jax(self, u):
        """``u: f32[..., g]`` in [0, 1] -> f32/i32[..., g], exactly as documented."""
        if self.kind == _FLIN:
            return jnp.clip(self.a + u * self.b, self.lo, self.hi)
        if self.kind == _FLOG:
            return jnp.clip(jnp.exp(self.a + u * self.b), self.lo, self.hi)
        if self.kind == _ILOG:
            t = jnp.floor(jnp.exp(self.a + u * self.b) + 0.5)
            return jnp.clip(t, self.lo, self.hi).astype(jnp.int32)
        i = jnp.clip(jnp.floor(u * self.b), 0.0, self.b - 1.0).astype(jnp.int32)
        return i + self.low_i if self.kind == _ILIN else i

    def decode_np(self, u32):
        """The Python-side twin of :meth:`decode_jax`: ``u32: f32[n, g]`` -> float64 for floats
        (from the same float32 coordinate), int64 for ints and categorical indices, computed with
        the same float32 arithmetic as JAX (so both sides agree exactly)."""
        if self.kind in (_FLIN, _FLOG):
            s = self.a64 + u32.astype(np.float64) * self.b64
            v = np.clip(np.exp(s) if self.kind == _FLOG else s, self.lo64, self.hi64)
            return np.where(u32 >= 1, self.hi64, np.where(u32 <= 0, self.lo64, v))  # exact ends
        if self.kind == _ILOG:
            t = np.floor(np.exp(self.a64 + u32.astype(np.float64) * self.b64) + 0.5)
            return np.clip(t, self.lo64, self.hi64).astype(np.int64)
        i = np.clip(np.floor(u32 * self.b), np.float32(0.0), self.b - np.float32(1.0))
        i = i.astype(np.int64)
        return i + self.low_i.astype(np.int64) if self.kind == _ILIN else i


class _Conditions:
    """Activity of conditional parameters, vectorized per nesting level.

    Level ``L`` holds the parameters whose deepest parent is at level ``L - 1``. For each, up to
    ``m`` conditions (padded): ``parent`` coordinate, ``cat`` its position among the categorical
    coordinates and ``table[c, m, k]`` whether choice ``k`` of that parent satisfies it.
    """

    def __init__(self, space: "Space"):
        self.levels = []
        level = {}
        cat_pos = {int(j): i for i, j in enumerate(space._groups[_CAT].idx)} \
            if _CAT in space._groups else {}
        by_level: dict[int, list] = {}
        for j, (name, p) in enumerate(space._params.items()):
            if not p.condition:
                level[name] = 0
                continue
            lv = 1 + max(level[parent] for parent, _ in p.condition)
            level[name] = lv
            by_level.setdefault(lv, []).append((j, p))
        for lv in sorted(by_level):
            items = by_level[lv]
            m = max(len(p.condition) for _, p in items)
            kmax = max(len(space._params[parent].choices) for _, p in items
                       for parent, _ in p.condition)
            c = len(items)
            child = np.array([j for j, _ in items], np.int64)
            parent = np.zeros((c, m), np.int64)
            cat = np.zeros((c, m), np.int64)
            table = np.ones((c, m, kmax), bool)
            for r, (_, p) in enumerate(items):
                for s, (pname, values) in enumerate(p.condition):
                    pp = space._params[pname]
                    pj = space._index[pname]
                    parent[r, s], cat[r, s] = pj, cat_pos[pj]
                    table[r, s, :] = False
                    for v in values:
                        table[r, s, pp.index(v)] = True
                for s in range(len(p.condition), m):  # padding (parent -1) always passes
                    parent[r, s], cat[r, s] = -1, cat[r, 0]
            self.levels.append((child, parent, cat, table))

    def active(self, cat_idx, xp, batch_shape, d):
        """``cat_idx: int[..., n_cat]`` (choice indices) -> ``bool[..., d]``."""
        act = xp.ones(batch_shape + (d,), bool)
        for child, parent, cat, table in self.levels:
            c, m, _ = table.shape
            choice = cat_idx[..., cat]  # [..., c, m]
            hit = xp.asarray(table)[np.arange(c)[:, None], np.arange(m)[None, :], choice]
            pad = parent < 0
            pact = act[..., np.where(pad, 0, parent)]
            ok = xp.all(hit & (pact | pad), axis=-1)  # [..., c]
            if xp is jnp:
                act = act.at[..., child].set(ok)
            else:
                act[..., child] = ok
        return act


class Space:
    """An ordered mapping of named parameters, each owning one coordinate of ``[0, 1]^d``.

    Args:
      params: a mapping ``{name: Float | Int | Categorical}`` (order is kept), and/or the same
        as keyword arguments.

    Example:
      >>> import jaxhpo, jax
      >>> space = jaxhpo.Space({
      ...     "lr": jaxhpo.Float(1e-4, 1e-1, log=True),
      ...     "width": jaxhpo.Int(16, 256, log=True, static=True),
      ...     "opt": jaxhpo.Categorical(["sgd", "adam"]),
      ...     "momentum": jaxhpo.Float(0.0, 0.99, condition={"opt": "sgd"}),
      ... })
      >>> x = space.sample(jax.random.key(0), 8)     # f32[8, 4]
      >>> hp = space.decode(x)                       # {"lr": f32[8], "width": i32[8], ...}
      >>> space.to_params(x[0])                      # {'lr': 0.003..., 'width': 41, ...}
      >>> space.static_values(x[0])                  # (41,)
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
                    if not any(_eq(c, v) for c in pp.choices):
                        raise ValueError(
                            f"parameter {name!r}: condition value {v!r} is not a choice of "
                            f"{parent!r} {pp.choices!r}"
                        )
            self._params[name] = p
        self.names: tuple[str, ...] = tuple(self._params)
        self._index = {n: j for j, n in enumerate(self.names)}
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
        self.is_static = np.array([p.static for p in plist], bool)
        self.static_names: tuple[str, ...] = tuple(
            n for n, s in zip(self.names, self.is_static) if s)
        members: dict[int, tuple[list, list]] = {}
        for j, p in enumerate(plist):
            idx, ps = members.setdefault(_group_of(p), ([], []))
            idx.append(j)
            ps.append(p)
        self._groups = {k: _Group(k, idx, ps) for k, (idx, ps) in sorted(members.items())}
        self._cond = _Conditions(self) if self.is_conditional.any() else None
        # Neutral values: the default, else the centre of the coordinate (first choice).
        center = self._decode_np(np.full((1, self.dim), 0.5, np.float32))
        self._neutral: list = [None] * self.dim
        self._neutral_u = np.zeros(self.dim, np.float32)
        for k, g in self._groups.items():
            vals = center[k][0].copy()
            if k == _CAT:
                vals[:] = 0
            for c, j in enumerate(g.idx.tolist()):
                p = plist[j]
                if p.default is not None:
                    vals[c] = p.index(p.default) if k == _CAT else p.default
            self._neutral_u[g.idx] = self._encode_group(k, g, vals)
            for c, j in enumerate(g.idx.tolist()):
                self._neutral[j] = (plist[j].choices[int(vals[c])] if k == _CAT
                                    else vals[c].item())
        # Inactive parameters decode to these, per group: f32 floats, i32 ints/indices.
        nu = self._decode_np(self._neutral_u[None])
        self._neutral_dec = {
            k: (np.clip(nu[k][0], g.lo, g.hi).astype(np.float32) if k in (_FLIN, _FLOG)
                else nu[k][0].astype(np.int32)) for k, g in self._groups.items()}

    # ------------------------------------------------------------------ mapping protocol
    def __getitem__(self, name: str) -> Param:
        try:
            return self._params[name]
        except (KeyError, TypeError):
            raise UnknownNameError(unknown_name_message("parameter", name, self.names)) from None

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return self.dim

    def __contains__(self, name) -> bool:
        try:
            return name in self._params
        except TypeError:
            return False

    def items(self):
        return self._params.items()

    def __eq__(self, other) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {p!r}" for n, p in self._params.items())
        return f"Space({{{inner}}})"

    def choices(self, name: str) -> tuple:
        """The choices of categorical parameter ``name`` (maps decoded indices to values)."""
        p = self[name]
        if not isinstance(p, Categorical):
            raise ValueError(f"parameter {name!r} is not Categorical")
        return p.choices

    # ------------------------------------------------------------------ sampling and grids
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` points uniform in the cube: ``f32[n, d]``."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
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
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or p < 1:
                raise ValueError(f"points_per_axis for {name!r} must be a positive int, got {p!r}")
            per[name] = int(p)
        axes = []
        total = 1
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
                    vals = [min(max(float(v), prm.low), prm.high)
                            for v in space(prm.low, prm.high, p)]
            axes.append([self._encode_one(name, v) for v in vals])
            total *= len(axes[-1])
            if total > _MAX_GRID:
                break
        if total > _MAX_GRID:
            raise ValueError(
                f"the grid has more than {_MAX_GRID} points; lower points_per_axis"
            )
        pts = np.array(list(itertools.product(*axes)), np.float32).reshape(total, self.dim)
        pts = self.neutralize(pts)
        _, first = np.unique(pts, axis=0, return_index=True)
        return pts[np.sort(first)]

    # ------------------------------------------------------------------ decode (JAX + numpy)
    def _check_x(self, x, where: str):
        if x.ndim < 1 or x.shape[-1] != self.dim:
            names = list(self.names[:30]) + (["..."] if self.dim > 30 else [])
            raise ValueError(
                f"{where}: x must have last axis of size d={self.dim} (one coordinate per "
                f"parameter {names}), got shape {tuple(x.shape)}"
            )

    def _decode_jax(self, x):
        """``{group: f32/i32[..., g]}`` (conditions ignored) and the activity ``bool[..., d]``
        (``None`` when nothing is conditional)."""
        u = jnp.clip(x, 0.0, 1.0)
        out = {k: g.decode_jax(u[..., g.idx]) for k, g in self._groups.items()}
        act = None
        if self._cond is not None:
            act = self._cond.active(out[_CAT], jnp, x.shape[:-1], self.dim)
        return out, act

    def _decode_np(self, x):
        """numpy twin of :meth:`_decode_jax` (without the activity)."""
        u = np.clip(np.asarray(x, np.float32), np.float32(0.0), np.float32(1.0))
        return {k: g.decode_np(u[..., g.idx]) for k, g in self._groups.items()}

    def _active_np(self, vals, batch_shape):
        if self._cond is None:
            return np.ones(batch_shape + (self.dim,), bool)
        return self._cond.active(vals[_CAT], np, batch_shape, self.dim)

    def _decode_where(self, x):
        """``{group: f32/i32[..., g]}`` with inactive parameters at their neutral value."""
        out, act = self._decode_jax(x)
        if act is not None:
            out = {k: jnp.where(act[..., g.idx], out[k], self._neutral_dec[k])
                   for k, g in self._groups.items()}
        return out

    def _split(self, out: dict, traced: bool) -> HParams:
        """Group arrays -> ``{name: column}``. Traced: one ``lax.unstack`` per group, which
        XLA fuses into the columns' consumers. Eager: one cached indexing program dispatched per
        column (an eager program with ``d`` outputs compiles one kernel per output)."""
        cols: list = [None] * self.dim
        for k, g in self._groups.items():
            a = jnp.moveaxis(out[k], -1, 0)
            parts = jax.lax.unstack(a, 0) if traced else [_take(a, c) for c in range(len(g.idx))]
            for j, col in zip(g.idx.tolist(), parts):
                cols[j] = col
        return HParams(zip(self.names, cols))

    def decode(self, x: jax.Array) -> HParams:
        """Cube points ``f32[..., d]`` -> ``{name: f32/i32[...]}``; jit/vmap compatible.

        Categorical parameters decode to the ``int32`` index of the choice. Inactive conditional
        parameters decode to their neutral value (see the module docstring); use
        :meth:`active` to get the masks. Static parameters decode like the others here (the run
        layer passes their plain Python values, :meth:`static_params`, to the user's code).
        The result is an :class:`HParams` dict: a typo'd name raises a ``KeyError`` that lists
        the names.
        """
        x = jnp.asarray(x, jnp.float32)
        self._check_x(x, "Space.decode")
        if isinstance(x, jax.core.Tracer):
            return self._split(self._decode_where(x), traced=True)
        return self._split(self._decode_where(x), traced=False)

    def active(self, x: jax.Array) -> HParams:
        """``{name: bool[...]}``: which parameters are active at each cube point (JAX)."""
        act = self.active_mask(x)
        return HParams((n, act[..., j]) for j, n in enumerate(self.names))

    def active_mask(self, x: jax.Array) -> jax.Array:
        """``bool[..., d]``: per-coordinate activity, in coordinate order (JAX)."""
        x = jnp.asarray(x, jnp.float32)
        self._check_x(x, "Space.active")
        _, act = self._decode_jax(x)
        return jnp.ones(x.shape, bool) if act is None else act

    def neutralize(self, x):
        """Set the coordinates of inactive parameters to their neutral value's coordinate.

        Works on numpy and JAX arrays ``f32[..., d]``; points equal as configurations become
        equal as arrays (used by grids and by model-based strategies).
        """
        if self._cond is None:
            return x
        if isinstance(x, jax.Array):
            xx = jnp.asarray(x, jnp.float32)
            self._check_x(xx, "Space.neutralize")
            _, act = self._decode_jax(xx)
            return jnp.where(act, xx, jnp.asarray(self._neutral_u))
        xx = np.asarray(x, np.float32)
        self._check_x(xx, "Space.neutralize")
        act = self._active_np(self._decode_np(xx), xx.shape[:-1])
        return np.where(act, xx, self._neutral_u)

    # ------------------------------------------------------------------ Python side
    def _columns(self, xx):
        """``f32[n, d]`` -> per-coordinate lists of Python values (choices as the user's
        objects, conditions ignored) and the activity ``bool[n, d]``."""
        vals = self._decode_np(xx)
        act = self._active_np(vals, xx.shape[:-1])
        cols: list = [None] * self.dim
        plist = list(self._params.values())
        for k, g in self._groups.items():
            arr = vals[k]
            for c, j in enumerate(g.idx.tolist()):
                col = arr[:, c].tolist()
                if k == _CAT:
                    ch = plist[j].choices
                    col = [ch[i] for i in col]
                cols[j] = col
        return cols, act

    def _as_batch(self, x, where: str) -> np.ndarray:
        xx = np.asarray(x, np.float32)
        if xx.ndim == 1:
            xx = xx[None]
        if xx.ndim != 2:
            raise ValueError(f"{where}: x must be [n, d], got shape {xx.shape}")
        self._check_x(xx, f"Space.{where}")
        return xx

    def to_params_list(self, x) -> list[dict[str, Any]]:
        """Cube points ``f32[n, d]`` -> list of plain dicts holding only active parameters.

        Categorical values are the user's own choice objects; ints are Python ``int`` and floats
        Python ``float``, always within the declared bounds.
        """
        xx = self._as_batch(x, "to_params_list")
        cols, act = self._columns(xx)
        names = self.names
        if self._cond is None:
            return [dict(zip(names, row)) for row in zip(*cols)]
        out = []
        for i, a in enumerate(act.tolist()):
            out.append({n: col[i] for n, col, on in zip(names, cols, a) if on})
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

    # ------------------------------------------------------------------ static parameters
    def static_values(self, x_row) -> tuple:
        """The static parameters' plain Python values at one cube point ``f32[d]``, in
        :attr:`static_names` order: a hashable tuple (the run layer's group key).

        Categorical values are the user's own choice objects. An inactive static parameter
        takes its neutral value (what :meth:`decode` gives it), so members that differ only in
        inactive parameters share a group.
        """
        row = np.asarray(x_row, np.float32)
        if row.ndim != 1:
            raise ValueError(f"static_values takes one point f32[d], got shape {row.shape}")
        self._check_x(row, "Space.static_values")
        if not self.static_names:
            return ()
        cols, act = self._columns(row[None])
        out = []
        for n in self.static_names:
            j = self._index[n]
            out.append(cols[j][0] if act[0, j] else self._neutral_value(n))
        return tuple(out)

    def static_params(self, x_row) -> dict[str, Any]:
        """``{name: plain Python value}`` of the static parameters at one cube point ``f32[d]``
        (see :meth:`static_values`)."""
        return dict(zip(self.static_names, self.static_values(x_row)))

    # ------------------------------------------------------------------ encode
    def _neutral_value(self, name):
        return self._neutral[self._index[name]]

    def _encode_group(self, k: int, g: _Group, vals: np.ndarray) -> np.ndarray:
        """Values of group ``k`` (choice indices for categoricals) -> coordinates ``f32[g]``
        (vectorized :meth:`_encode_one` for valid values)."""
        vals = np.asarray(vals, np.float64)
        if k == _FLIN:
            u = (vals - g.lo64) / (g.hi64 - g.lo64)
        elif k == _FLOG:
            u = (np.log(vals) - np.log(g.lo64)) / (np.log(g.hi64) - np.log(g.lo64))
        elif k == _ILIN:
            u = (vals - g.lo64 + 0.5) / g.b64
        elif k == _ILOG:
            u = (np.log(vals) - g.a64) / g.b64
        else:
            u = (vals + 0.5) / g.b64
        u32 = np.clip(u, 0.0, 1.0).astype(np.float32)
        if k in (_ILIN, _ILOG):
            for c in np.nonzero(g.decode_np(u32[None])[0] != vals)[0]:
                j = int(g.idx[c])
                u32[c] = self._snap_int(self.names[j], self._params[self.names[j]],
                                        int(vals[c]), float(u[c]))
        return u32

    def _decode_np_one(self, name, u):
        """Python value of parameter ``name`` at coordinate ``u`` (conditions ignored)."""
        j = self._index[name]
        p = self._params[name]
        g = _Group(_group_of(p), [j], [p])
        v = g.decode_np(np.array([[u]], np.float32))[0, 0]
        return p.choices[int(v)] if isinstance(p, Categorical) else (
            int(v) if isinstance(p, Int) else float(v))

    def _encode_one(self, name: str, v) -> float:
        p = self._params[name]
        if isinstance(p, Categorical):
            return float(np.float32((p.index(v) + 0.5) / len(p.choices)))
        if not _is_number(v) or not math.isfinite(v):
            raise ValueError(f"parameter {name!r}: value must be a finite number, got {v!r}")
        if isinstance(p, Int):
            if int(v) != v:
                raise ValueError(f"parameter {name!r}: Int value must be integral, got {v!r}")
            v = int(v)
            if not p.low <= v <= p.high:
                raise ValueError(f"parameter {name!r}: {v} outside [{p.low}, {p.high}]")
            a, b = p.low - 0.5, p.high + 0.5
            if p.log:
                u = (math.log(v) - math.log(a)) / (math.log(b) - math.log(a))
            else:
                u = (v - a) / (b - a)
            return self._snap_int(name, p, v, u)
        if not p.low <= v <= p.high:
            raise ValueError(f"parameter {name!r}: {v} outside [{p.low}, {p.high}]")
        if p.log:
            return (math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
        return (v - p.low) / (p.high - p.low)

    def _snap_int(self, name, p, v: int, u: float) -> float:
        """A float32 coordinate that decodes to exactly ``v`` (searching a few float32 steps
        around ``u``): decoding the encoded point must give the value back."""
        g = _Group(_group_of(p), [0], [p])
        f = np.float32(min(max(u, 0.0), 1.0))
        for _ in range(64):
            got = int(g.decode_np(np.array([[f]], np.float32))[0, 0])
            if got == v:
                return float(f)
            f = np.nextafter(f, np.float32(1.0 if got < v else 0.0))
        raise ValueError(
            f"parameter {name!r}: {v} cannot be addressed exactly by a float32 coordinate of "
            f"Int({p.low}, {p.high}, log={p.log}) (its bins near {v} are narrower than float32 "
            "resolution); use a nearby value or a narrower range")

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """A params dict -> its cube point ``f32[d]`` (inverse of :meth:`to_params`).

        Inactive parameters may be omitted (they encode to their neutral coordinate); active
        ones are required. Unknown names raise ``ValueError``.
        """
        if not isinstance(params, Mapping):
            raise TypeError(f"encode(params) needs a dict, got {type(params).__name__}")
        unknown = [n for n in params if n not in self._index]
        if unknown:
            hint = closest(unknown[0], self.names)
            raise ValueError(f"encode: unknown parameters {sorted(map(str, unknown))}"
                             + (f" (did you mean {hint!r}?)" if hint else "")
                             + f"; the space has {list(self.names[:30])}")
        u = self._neutral_u.astype(np.float64).copy()
        for name, v in params.items():
            u[self._index[name]] = self._encode_one(name, v)
        x = u.astype(np.float32)
        act = self._active_np(self._decode_np(x[None]), (1,))[0]
        missing = [n for j, n in enumerate(self.names) if act[j] and n not in params]
        if missing:
            raise ValueError(f"encode: active parameters {missing} are missing")
        return self.neutralize(x[None])[0]

    def encode_many(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """A list of params dicts -> ``f32[n, d]``."""
        return np.stack([self.encode(p) for p in params_list]).astype(np.float32)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """A JSON description: ``json.dumps(space.to_dict(), allow_nan=False)`` always works and
        :meth:`from_dict` of its ``json.loads`` equals the space (the journal stores it and a
        resumed run compares it). Choices JSON cannot hold are tagged (module docstring)."""
        out = {}
        for name, p in self._params.items():
            d = {"type": type(p).__name__}
            if isinstance(p, Categorical):
                d["choices"] = [_encode_choice(c) for c in p.choices]
                if p.default is not None:
                    d["default"] = _encode_choice(p.default)
            else:
                d.update(low=p.low, high=p.high, log=p.log)
                if p.default is not None:
                    d["default"] = p.default
            if p.condition:
                d["condition"] = {k: [_encode_choice(c) for c in v] for k, v in p.condition}
            if p.static:
                d["static"] = True
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, spec: Mapping) -> "Space":
        """Inverse of :meth:`to_dict` (also reads what it wrote after a JSON round trip)."""
        if not isinstance(spec, Mapping):
            raise TypeError(f"Space.from_dict needs a mapping, got {type(spec).__name__}")
        params = {}
        for name, d in spec.items():
            d = dict(d)
            kind = d.pop("type", None)
            cls_ = {"Float": Float, "Int": Int, "Categorical": Categorical}.get(kind)
            if cls_ is None:
                raise ValueError(f"parameter {name!r}: unknown type {kind!r}")
            if kind == "Categorical":
                d["choices"] = [_decode_choice(c) for c in d.get("choices", ())]
                if "default" in d:
                    d["default"] = _decode_choice(d["default"])
            if d.get("condition"):
                d["condition"] = {k: [_decode_choice(c) for c in v]
                                  for k, v in d["condition"].items()}
            params[name] = cls_(**d)
        return cls(params)
