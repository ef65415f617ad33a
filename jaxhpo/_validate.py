"""Argument checks shared by every public entry point.

Each check raises a ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
from a jaxhpo frame, naming the argument, the value received and what to pass instead; it
returns the value normalized to a plain Python type. JAX arrays passed where a float setting is
allowed to be traced (so a strategy's settings can be vmapped) go through unchecked.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    return (("(" if low_open or low is None else "[") + f"{lo}, {hi}"
            + (")" if high_open or high is None else "]"))


def is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def check_int(value, arg: str, low: int | None = None, high: int | None = None) -> int:
    """A static integer setting with ``low <= value <= high``; returns a Python ``int``."""
    if not is_int(value):
        raise TypeError(f"{arg} must be an int, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f">= {low}" if high is None else (
            f"<= {high}" if low is None else f"in [{low}, {high}]")
        raise ValueError(f"{arg} must be an int {rng}, got {value!r}")
    return int(value)


def check_optional_int(value, arg: str, low: int | None = None,
                       high: int | None = None) -> int | None:
    """``None`` or :func:`check_int`."""
    return None if value is None else check_int(value, arg, low, high)


def check_population_size(population_size, arg: str = "population_size") -> int:
    """A static population size (a Python int >= 1)."""
    return check_int(population_size, arg, 1)


def check_real(value, arg: str, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False):
    """A finite real number in ``[low, high]`` (ends open on request); returns a ``float``.

    JAX arrays pass through unchecked, so a strategy's float settings can be traced.
    """
    if isinstance(value, jax.Array):
        return value
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{arg} must be a finite number in "
                         f"{_interval(low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def check_optional_real(value, arg: str, low: float | None = None, high: float | None = None,
                        *, low_open: bool = False, high_open: bool = False):
    """``None`` or :func:`check_real`."""
    if value is None:
        return None
    return check_real(value, arg, low, high, low_open=low_open, high_open=high_open)


def check_bool(value, arg: str) -> bool:
    """``True`` or ``False`` (NumPy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, arg: str, choices: Iterable) -> object:
    """One of ``choices``; the error lists them and the closest spelling."""
    choices = list(choices)
    if value in choices:
        return value
    hint = closest(value, [c for c in choices if isinstance(c, str)])
    raise ValueError(f"{arg} must be one of {choices}, got {value!r}"
                     + (f"; did you mean {hint!r}?" if hint else ""))


def closest(name, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (``difflib``), or ``None``."""
    import difflib

    if not isinstance(name, str):
        return None
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def check_space(space) -> int:
    """``space`` must be a :class:`jaxhpo.Space`; returns its dimension."""
    from jaxhpo._space import Space

    if not isinstance(space, Space):
        raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
    return space.dim


def check_path(path, arg: str = "journal") -> str | None:
    """``None`` or a non-empty file path (``str`` or ``os.PathLike``) that is not a folder."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{arg} must be None or a file path (str or os.PathLike), got "
                        f"{path!r}")
    p = os.fspath(path)
    if not isinstance(p, str) or not p.strip():
        raise ValueError(f"{arg} must name a file, got {path!r}; pass e.g. {arg}='run.jsonl'")
    if os.path.isdir(p):
        raise ValueError(f"{arg} {p!r} is a folder; pass a file path inside it, e.g. "
                         f"{os.path.join(p, 'run.jsonl')!r}")
    return p


def as_key(key, arg: str = "key") -> jax.Array:
    """An int seed, a typed PRNG key or a raw ``uint32[2]`` key -> a typed PRNG key.

    Seeds must fit in 64 bits (``-2**63 <= seed < 2**64``).
    """
    if is_int(key):
        k = int(key)
        if not -2 ** 63 <= k < 2 ** 64:
            raise ValueError(f"{arg} must be a seed in [-2**63, 2**64), got {k}; pass a smaller "
                             f"int, e.g. {arg}={k % 2 ** 32}")
        if k >= 2 ** 63:  # jax.random.key takes int64 seeds: keep the same 64 bits
            k -= 2 ** 64
        return jax.random.key(k)
    if isinstance(key, jax.Array):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    raise TypeError(
        f"{arg} must be an int seed or a single JAX PRNG key (jax.random.key(0)), got {key!r}"
    )


def check_params(space, params) -> list[str]:
    """``params`` (a name or a list of names) as a list, each a parameter of ``space``."""
    if isinstance(params, str):
        params = [params]
    params = list(params)
    bad = [p for p in params if p not in space.names]
    if bad or not params:
        raise ValueError(f"params {bad or params} are not in the space {list(space.names)}")
    return params
