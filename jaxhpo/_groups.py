"""Static hyperparameters: grouping a population by static values, a counted compile cache,
and tracer errors explained in terms of hyperparameters.

A *static* hyperparameter (``Int(..., static=True)``, ``Categorical(..., static=True)``) reaches
the user's code as a plain Python value, so it may set a shape or pick code. The engine splits a
population into groups of equal static values and runs one compiled, vmapped program per group;
group sizes are *bucketed* (next power of two, capped at the population size) so the number of
compilations stays bounded: at most one per distinct ``(static values, bucket size)`` and
program kind. Dummy members pad a group to its bucket; their results are dropped.

Used by :class:`jaxhpo.train.Population` and by the run layer (a JAX-native objective
``fn(key, hp)`` with static parameters: one vmapped jit per group).

Example:
  >>> groups = group_rows(space, x)                     # x: f32[P, d]
  >>> cache = CompileCache()
  >>> for g in groups:
  ...     fn = cache(("objective", g.static, g.bucket),
  ...                lambda: jax.vmap(lambda k, h: objective(k, {**h, **g.params})))
  ...     out = fn(keys[g.padded], traced_rows(hp, g.padded))
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import numpy as np

__all__ = ["CompileCache", "Group", "bucket_size", "explain_tracer_error", "group_rows",
           "group_values", "is_tracer_error", "static_names", "static_values_of_hp",
           "traced_names"]


class Group(NamedTuple):
    """Members sharing static values.

    Attributes:
      static: the static values, a hashable tuple in ``static_names`` order (``()`` if none).
      params: ``{name: Python value}`` of the static parameters (categoricals as the choice).
      rows: ``i64[n]`` the members' rows (slots) in the population, ascending.
      bucket: the compiled size ``>= n``; rows ``n..bucket-1`` are dummy members.
    """

    static: tuple
    params: dict
    rows: np.ndarray
    bucket: int

    @property
    def padded(self) -> np.ndarray:
        """``i32[bucket]``: ``rows`` padded with the first row (the dummies copy member 0)."""
        out = np.full(self.bucket, self.rows[0], np.int32)
        out[:len(self.rows)] = self.rows
        return out


def static_names(space) -> tuple[str, ...]:
    """The space's static parameter names (``()`` for ``None`` or a space without any)."""
    return tuple(getattr(space, "static_names", ()) or ()) if space is not None else ()


def traced_names(space, hp: Mapping[str, Any]) -> list[str]:
    """The names in ``hp`` that are not static."""
    st = set(static_names(space))
    return [n for n in hp if n not in st]


def bucket_size(n: int, cap: int | None = None, multiple: int = 1) -> int:
    """The next power of two ``>= n``, at most ``cap``, rounded up to a multiple of
    ``multiple`` (the device count when the population is sharded)."""
    b = 1 << max(0, int(n) - 1).bit_length()
    if cap is not None:
        b = min(b, int(cap))
    return -(-b // multiple) * multiple


def _python_value(space, name, v):
    from jaxhpo._space import Categorical, Int

    p = space[name]
    if isinstance(p, Categorical):
        return p.choices[int(v)]
    return int(v) if isinstance(p, Int) else float(v)


def static_values_of_hp(space, hp: Mapping[str, Any], size: int) -> list[tuple]:
    """Each member's static values from decoded hyperparameters ``hp`` (``{name: [P]}`` as
    ``space.decode`` returns them: categorical *indices*, ints, floats) as plain Python values
    (categoricals as their choices), the same tuples ``space.static_values`` gives for the cube
    rows. Only the static columns are read to the host."""
    names = static_names(space)
    if not names:
        return [()] * size
    missing = [n for n in names if n not in hp]
    if missing:
        raise ValueError(f"hp lacks the static hyperparameters {missing}; pass the whole "
                         f"space.decode(x)")
    cols = [np.asarray(hp[n]).reshape(-1) for n in names]
    return [tuple(_python_value(space, n, c[i]) for n, c in zip(names, cols))
            for i in range(size)]


def group_values(values: Sequence[tuple], names: Sequence[str] = (), *,
                 cap: int | None = None, multiple: int = 1) -> list[Group]:
    """Group members by their static ``values`` (one hashable tuple per member), in order of
    first appearance, each with its bucket size (see :func:`bucket_size`)."""
    rows = collections.defaultdict(list)
    for i, v in enumerate(values):
        rows[tuple(v)].append(i)
    cap = len(values) if cap is None else cap
    return [Group(k, dict(zip(names, k)), np.asarray(r, np.int64),
                  bucket_size(len(r), max(cap, len(r)), multiple))
            for k, r in rows.items()]


def group_rows(space, x, *, cap: int | None = None, multiple: int = 1) -> list[Group]:
    """Group the cube rows ``x: f32[P, d]`` by ``space.static_values(x_row)``.

    Returns ``[Group(static, params, rows, bucket)]``; a space without static parameters gives
    one group holding every row.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be f32[P, d], got shape {x.shape}")
    names = static_names(space)
    if not names:
        return group_values([()] * len(x), (), cap=cap, multiple=multiple)
    values = [tuple(space.static_values(r)) for r in x]
    groups = group_values(values, names, cap=cap, multiple=multiple)
    return [g._replace(params=dict(space.static_params(x[g.rows[0]]))) for g in groups]


class CompileCache:
    """Compiled functions keyed by e.g. ``(kind, static values, bucket size)``, counting traces.

    ``cache(key, build, **jit_kwargs)`` returns ``jax.jit(build(), **jit_kwargs)``, built once
    per key; ``cache.traces[key]`` counts how often that function was traced (compiled),
    ``cache.compilations`` the total. A function traced again for the same key and shapes would
    show up here, so tests can assert the bound.
    """

    def __init__(self):
        self._fns: dict = {}
        self.traces: collections.Counter = collections.Counter()

    def __call__(self, key, build: Callable[[], Callable], **jit_kwargs) -> Callable:
        fn = self._fns.get(key)
        if fn is None:
            inner = build()

            def counted(*args, **kwargs):
                self.traces[key] += 1  # runs only while tracing
                return inner(*args, **kwargs)
            fn = self._fns[key] = jax.jit(counted, **jit_kwargs)
        return fn

    @property
    def compilations(self) -> int:
        return sum(self.traces.values())

    def __len__(self) -> int:
        return len(self._fns)

    def __contains__(self, key) -> bool:
        return key in self._fns


# ------------------------------------------------------------------------- tracer errors
_TRACER_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                  jax.errors.TracerArrayConversionError)


def is_tracer_error(exc: BaseException) -> bool:
    """A JAX error raised because Python needed the value of a traced array (``int(x)``,
    ``if x:``, a shape, ``np.asarray(x)``, an index)."""
    if isinstance(exc, _TRACER_ERRORS):
        return True
    msg = str(exc)
    return isinstance(exc, TypeError) and ("concrete value" in msg or "Tracer" in msg)


def _declaration(space, name) -> str:
    from jaxhpo._space import Categorical, Float, Int

    p = space[name] if space is not None and name in space else None
    if isinstance(p, Categorical):
        return f"Categorical({list(p.choices)!r}, static=True)"
    if isinstance(p, (Int, Float)):
        log = ", log=True" if p.log else ""
        return f"{type(p).__name__}({p.low!r}, {p.high!r}{log}, static=True)"
    return "static=True"


def explain_tracer_error(exc: BaseException, space=None, hp_names: Sequence[str] = (),
                         probe: Callable[[frozenset], bool] | None = None,
                         where: str = "your code") -> BaseException:
    """A ``TypeError`` for people, from a tracer error raised inside a user's objective or
    training program; returns ``exc`` itself when it is not a tracer error.

    The hyperparameters that were traced (per-member JAX arrays) but used as Python values are
    named when ``probe`` is given: ``probe(names)`` re-traces the user's code with ``names``
    passed as Python values and says whether that succeeds (it is tried with all candidate names,
    then with one fewer at a time, so the culprits are exactly identified). Without ``probe``
    the integer and categorical candidates are listed. The message gives the fix: declare the
    parameter static (``Int(..., static=True)``), or use ``objective_type="python"``.

    Raise it ``from exc``: ``raise explain_tracer_error(e, space, hp, probe) from e``.
    """
    if not is_tracer_error(exc):
        return exc
    from jaxhpo._space import Categorical, Int

    st = set(static_names(space))
    names = [n for n in hp_names if n not in st]
    if space is not None:
        order = lambda n: 0 if n in space and isinstance(space[n], (Int, Categorical)) else 1
        names.sort(key=order)
    culprits = None
    if probe is not None and names:
        try:
            if not probe(frozenset(names)):
                return exc  # still fails with every hyperparameter concrete: not about them
            culprits = list(names)
            for n in names:
                rest = frozenset(c for c in culprits if c != n)
                if probe(rest):
                    culprits.remove(n)
        except Exception:  # the probe must never hide the original error
            culprits = None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if culprits:
        which = ", ".join(repr(n) for n in culprits)
        head = (f"{where} uses the hyperparameter{'s' if len(culprits) > 1 else ''} {which} as "
                f"a Python value (a shape, an index, an `if`, a Python int/str), but it is "
                f"traced: each member gets its own value as a JAX array under vmap.")
        fix = "; ".join(f"{n}={_declaration(space, n)}" for n in culprits)
    else:
        cands = [n for n in names if space is None or n not in space
                 or isinstance(space[n], (Int, Categorical))] or names
        which = ", ".join(repr(n) for n in cands) or "a hyperparameter"
        head = (f"{where} needs the Python value of a traced array; if it is a hyperparameter "
                f"(candidates: {which}), it is traced: each member gets its own value as a "
                f"JAX array under vmap.")
        fix = "; ".join(f"{n}={_declaration(space, n)}" for n in cands) or "static=True"
    msg = (f"{head}\nFix: declare it static in the Space ({fix}) so each group of members with "
           f"equal values gets its own compiled program and your code receives a plain Python "
           f"value; or, if the code cannot be traced at all, run it as a Python objective "
           f"(objective_type=\"python\").\nJAX said: {type(exc).__name__}: {first}")
    return TypeError(msg)
