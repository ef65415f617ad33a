"""Append-only JSON Lines journal of a run, so a killed run resumes with nothing lost.

Records, one JSON object per line:

* ``{"type": "header", ...}``: format version, the space, strategy name and sizes, objectives,
  directions and the run key, checked on resume;
* ``{"type": "trial", ...}``: one completed trial (see :class:`jaxhpo.Trial`);
* ``{"type": "state", "generation": g, "leaves": [...]}``: the strategy state after ``tell`` of
  generation ``g``, bit-exact (raw bytes, base64);
* ``{"type": "pbt", "round": i, "step", "src", "exploit", "x"}`` (``jaxhpo.tune`` with PBT): round
  ``i``'s copies and the unit-cube hyperparameters after it; round 0 also holds ``x0``, those
  before it. :func:`jaxhpo.schedulers.pbt_schedules` rebuilds the schedules from them.

Every write is flushed and ``fsync``-ed. A line cut short by a crash is dropped on reopening.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import jax
import numpy as np

FORMAT = "jaxhpo-journal"
VERSION = 1


def encode_state(state) -> list[dict]:
    """Serialize a pytree of arrays (PRNG key arrays included) to JSON-able dicts, bit-exact."""
    out = []
    for leaf in jax.tree.leaves(state):
        is_key = isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
            leaf.dtype, jax.dtypes.prng_key)
        arr = np.asarray(jax.random.key_data(leaf) if is_key else leaf)
        out.append({"dtype": arr.dtype.str, "shape": list(arr.shape), "key": is_key,
                    "data": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()})
    return out


def decode_state(leaves: list[dict], template):
    """Inverse of :func:`encode_state`, with the tree structure of ``template``."""
    tmpl_leaves, treedef = jax.tree.flatten(template)
    if len(tmpl_leaves) != len(leaves):
        raise ValueError(
            f"journal state has {len(leaves)} arrays but the strategy's state has "
            f"{len(tmpl_leaves)}; the journal was written by a different strategy"
        )
    new = []
    for rec, tmpl in zip(leaves, tmpl_leaves):
        arr = np.frombuffer(base64.b64decode(rec["data"]), np.dtype(rec["dtype"]))
        arr = arr.reshape(rec["shape"])
        if rec["key"]:
            new.append(jax.random.wrap_key_data(arr, impl=jax.random.key_impl(tmpl)))
        else:
            if tuple(arr.shape) != tuple(np.shape(tmpl)):
                raise ValueError("journal state shapes differ from the strategy's state")
            # 64-bit leaves (e.g. gp_bo's float64 GP state) stay 64-bit whatever the global
            # x64 setting, so a resumed state is bit-exact.
            with jax.enable_x64(arr.dtype.itemsize == 8 and arr.dtype.kind in "fiuc"):
                new.append(jax.numpy.asarray(arr))
    return jax.tree.unflatten(treedef, new)


def check_journal(journal) -> None:
    """``journal`` must be ``None`` or a file path (``str`` or ``os.PathLike``)."""
    if journal is not None and not isinstance(journal, (str, os.PathLike)):
        raise TypeError(f"journal must be None or a file path (str or os.PathLike), got "
                        f"{journal!r}")


class Journal:
    """A JSON Lines file written with flush + fsync after every record."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._f = None

    def exists(self) -> bool:
        return os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def read(self) -> list[dict]:
        """All complete records; a torn last line (from a crash) is removed from the file."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            raw = f.read()
        records, good_end, pos = [], 0, 0
        for line in raw.split(b"\n"):
            end = pos + len(line) + 1
            if end > len(raw):  # last piece had no newline: written partially
                break
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break
            good_end, pos = end, end
        if good_end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())
        return records

    def open(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, *records: dict[str, Any]) -> None:
        """Append records and make them durable before returning."""
        if self._f is None:
            self.open()
        self._f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
