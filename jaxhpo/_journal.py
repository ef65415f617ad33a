"""The run's persistence: one append-only JSON Lines journal, one encoding, one reader.

Records, one JSON object per line:

* ``{"type": "header", "format", "version", "driver", ...}``: the run's settings (space, strategy
  and scheduler with their settings, objectives, directions, key; ``constraints``, the
  constraint metric names, only when the run has some, so older headers still match), compared
  on resume;
* ``{"type": "trial", ...}``: one completed trial (see :class:`jaxhpo.Trial`; ``tune`` adds its
  learning ``curve``; ``constraints`` holds its constraint values, absent or ``null`` in
  journals of runs without constraints);
* ``{"type": "state", "generation": g, "leaves": [...]}`` (``minimize``): the strategy state
  after ``tell`` of generation ``g``, bit-exact;
* ``{"type": "pbt", "round": i, "step", "src", "exploit", "x"}`` (``tune`` with PBT): round
  ``i``'s copies and the unit-cube hyperparameters after it; round 0 also holds ``x0``.

``tune`` also keeps its whole run state (slot weights, parked trials, scheduler, strategy) in
``<journal>.ckpt``: one JSON document in the same encoding (:func:`encode`), replaced atomically.

Every write is flushed and ``fsync``-ed. Reading (:func:`read_journal`): a line cut short by a
crash (the last line, without its newline) is dropped; any other line that is not a valid record
is skipped with a warning naming its line number and left in the file; nothing is ever deleted.

The encoding (:func:`encode` / :func:`decode`) is plain JSON with tagged values for what JSON
lacks: arrays (dtype, shape and raw bytes in base64, so states restore bit-exactly, PRNG keys
included), tuples, sets, dicts with non-string keys, non-finite floats, and the records of
jaxhpo's own classes (NamedTuples, dataclasses, plain objects, by module path, restricted to
``jaxhpo.*``). There is no pickle: reading a journal never runs code from it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None
from typing import Any

import jax
import numpy as np

FORMAT = "jaxhpo-journal"
VERSION = 2

_TRIAL_FIELDS = ("number", "generation", "member", "x", "params", "metrics", "status")


# ---------------------------------------------------------------------------- encoding
def _is_key(a) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _encode_array(a) -> dict:
    is_key = _is_key(a)
    arr = np.asarray(jax.random.key_data(a) if is_key else a)
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "key": is_key,
            "data": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()}


def _decode_array(rec: dict, impl=None):
    arr = np.frombuffer(base64.b64decode(rec["data"]), np.dtype(rec["dtype"]))
    arr = arr.reshape(rec["shape"]).copy()
    if rec["key"]:
        return jax.random.wrap_key_data(arr, impl=impl) if impl is not None else \
            jax.random.wrap_key_data(arr)
    return arr


def _class_path(obj) -> str:
    cls = type(obj)
    if not cls.__module__.startswith("jaxhpo"):
        raise TypeError(f"cannot journal a {cls.__module__}.{cls.__qualname__}: only numbers, "
                        "strings, arrays, containers and jaxhpo's own records are encoded")
    return f"{cls.__module__}:{cls.__qualname__}"


def _class(path: str):
    module, _, qual = path.partition(":")
    if not (module == "jaxhpo" or module.startswith("jaxhpo.")):
        raise ValueError(f"journal names class {path!r} outside jaxhpo; refusing to load it")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def encode(obj) -> Any:
    """A JSON-able form of ``obj`` (see the module docstring); :func:`decode` inverts it."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)) and np.ndim(obj) == 0 and not isinstance(
            obj, np.ndarray):
        f = float(obj)
        return f if math.isfinite(f) else {"__float": repr(f)}
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        return {"__array": _encode_array(obj)}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {"__record": _class_path(obj), "fields": [encode(v) for v in obj]}
    if isinstance(obj, tuple):
        return {"__tuple": [encode(v) for v in obj]}
    if isinstance(obj, (set, frozenset)):
        return {"__set": [encode(v) for v in sorted(obj, key=repr)]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v) for k, v in obj.items()}
        return {"__dict": [[encode(k), encode(v)] for k, v in obj.items()]}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__dataclass": _class_path(obj),
                "fields": {f.name: encode(getattr(obj, f.name))
                           for f in dataclasses.fields(obj)}}
    if hasattr(obj, "__dict__") and not callable(obj):
        return {"__object": _class_path(obj), "fields": encode(vars(obj))}
    raise TypeError(f"cannot journal a value of type {type(obj).__name__}: {obj!r}")


def decode(obj) -> Any:
    """Inverse of :func:`encode` (arrays come back as NumPy arrays, keys as PRNG keys)."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__float" in obj:
        return float(obj["__float"])
    if "__array" in obj:
        return _decode_array(obj["__array"])
    if "__tuple" in obj:
        return tuple(decode(v) for v in obj["__tuple"])
    if "__set" in obj:
        return {decode(v) for v in obj["__set"]}
    if "__dict" in obj:
        return {_hashable(decode(k)): decode(v) for k, v in obj["__dict"]}
    if "__record" in obj:
        return _class(obj["__record"])(*[decode(v) for v in obj["fields"]])
    if "__dataclass" in obj:
        return _class(obj["__dataclass"])(**{k: decode(v) for k, v in obj["fields"].items()})
    if "__object" in obj:
        cls = _class(obj["__object"])
        inst = cls.__new__(cls)
        inst.__dict__.update(decode(obj["fields"]))
        return inst
    return {k: decode(v) for k, v in obj.items()}


def _hashable(k):
    return k.item() if isinstance(k, np.ndarray) and k.ndim == 0 else k


def encode_state(state) -> list[dict]:
    """The leaves of a pytree of arrays (PRNG keys included), bit-exact, JSON-able."""
    return [_encode_array(leaf) for leaf in jax.tree.leaves(state)]


def decode_state(leaves: list[dict], template):
    """Inverse of :func:`encode_state`, with the tree structure and key types of ``template``."""
    tmpl_leaves, treedef = jax.tree.flatten(template)
    if len(tmpl_leaves) != len(leaves):
        raise ValueError(
            f"journal state has {len(leaves)} arrays but the strategy's state has "
            f"{len(tmpl_leaves)}; the journal was written by a different strategy"
        )
    new = []
    for rec, tmpl in zip(leaves, tmpl_leaves):
        if rec["key"]:
            new.append(_decode_array(rec, jax.random.key_impl(tmpl)))
            continue
        arr = _decode_array(rec)
        if tuple(arr.shape) != tuple(np.shape(tmpl)):
            raise ValueError("journal state shapes differ from the strategy's state; the journal "
                             "was written with other settings")
        # 64-bit leaves stay 64-bit whatever the global x64 setting, so a resumed state is
        # bit-exact.
        with jax.enable_x64(arr.dtype.itemsize == 8 and arr.dtype.kind in "fiuc"):
            new.append(jax.numpy.asarray(arr))
    return jax.tree.unflatten(treedef, new)


def fingerprint(header: dict) -> str:
    """A short hash identifying a run by its header (ties a checkpoint to its journal)."""
    blob = json.dumps({k: v for k, v in header.items() if k != "type"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def normalized(value) -> Any:
    """``value`` as it reads back from a journal (JSON round trip of :func:`encode`)."""
    return json.loads(json.dumps(encode(value), sort_keys=True))


# ---------------------------------------------------------------------------- reading
@dataclass
class JournalContents:
    """What :func:`read_journal` found.

    Attributes:
      header: the header record.
      records: every valid record after the header, in file order.
      skipped: ``(line number, reason)`` of lines that were not valid records (kept in the file).
      torn_at: byte offset of a torn last line (a crash mid-append), else ``None``.
    """

    header: dict
    records: list[dict] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    torn_at: int | None = None

    def of_type(self, kind: str) -> list[dict]:
        return [r for r in self.records if r.get("type") == kind]


def _check_record(rec) -> str | None:
    if not isinstance(rec, dict):
        return f"not a record but {type(rec).__name__}"
    kind = rec.get("type")
    if kind == "trial":
        missing = [k for k in _TRIAL_FIELDS if k not in rec]
        if missing:
            return f"trial record without {missing}"
        if not isinstance(rec["metrics"], dict) or not isinstance(rec["x"], list):
            return "trial record with malformed metrics or x"
    elif kind == "state":
        if not isinstance(rec.get("generation"), int) or not isinstance(rec.get("leaves"), list):
            return "state record without generation/leaves"
    elif kind == "pbt":
        if not all(k in rec for k in ("round", "step", "src", "exploit", "x")):
            return "pbt record with missing fields"
    elif kind not in ("header",):
        return f"unknown record type {kind!r}"
    return None


def read_journal(path: str | os.PathLike, *, warn: bool = True) -> JournalContents:
    """Read and validate a journal without changing it.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file has no jaxhpo header (not a journal), or was written by a newer
        version of jaxhpo.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"journal {path!r} does not exist")
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    out: JournalContents | None = None
    header, records, skipped, torn_at, pos = None, [], [], None, 0
    for n, line in enumerate(lines, 1):
        start, pos = pos, pos + len(line) + 1
        if pos > len(raw):  # the last piece has no newline
            if line.strip():
                torn_at = start
            break
        if not line.strip():
            continue
        try:
            rec = json.loads(line.decode("utf-8"))
            problem = _check_record(rec)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            rec, problem = None, f"not valid JSON ({type(e).__name__})"
        if problem is None and header is None:
            if rec.get("type") != "header":
                problem = "records before the header"
            else:
                header = rec
                continue
        if problem is not None:
            skipped.append((n, problem))
            continue
        if rec.get("type") == "header":
            skipped.append((n, "a second header"))
            continue
        records.append(rec)
    if header is None or header.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a jaxhpo journal (no header line); journals are "
                         "written by jaxhpo.minimize(..., journal=path) or jaxhpo.tune")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"journal {path!r} was written by a newer jaxhpo (journal version "
                         f"{version!r}; this jaxhpo reads versions 1-{VERSION}); upgrade jaxhpo")
    out = JournalContents(header, records, skipped, torn_at)
    if warn:
        for n, why in skipped:
            warnings.warn(f"journal {path!r}: line {n} skipped ({why}); it is kept in the file",
                          stacklevel=2)
    return out


def trials_by_number(contents: JournalContents) -> dict:
    """``{number: (Trial, record)}``; a trial recorded twice keeps its last record."""
    from jaxhpo._history import Trial

    out = {}
    for r in contents.of_type("trial"):
        out[r["number"]] = (Trial.from_record(r), r)
    return out


# ---------------------------------------------------------------------------- writing
class JournalInUse(RuntimeError):
    """Another running process holds the journal (see :meth:`Journal.open`)."""


class Journal:
    """An append-only JSON Lines file written with flush + fsync after every append."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._f = None

    def exists(self) -> bool:
        return os.path.exists(self.path) and os.path.getsize(self.path) > 0

    def open(self) -> None:
        """Open for appending and lock the file for this process.

        Opening early makes an unwritable path fail before any evaluation. The lock (an
        exclusive ``flock``, released when the journal is closed or the process dies, even by
        SIGKILL) makes a second process pointed at a running journal stop at once with
        :class:`JournalInUse` instead of evaluating the same trials again.
        """
        if self._f is not None:
            return
        d = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(d, exist_ok=True)
            f = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise ValueError(f"journal {self.path!r} cannot be written ({e.strerror}); choose a "
                             "writable path") from None
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                raise JournalInUse(
                    f"journal {self.path!r} is in use by another running process (jaxhpo locks "
                    "a journal while a run writes it); wait for that run to end, or give this "
                    "one its own journal") from None
        self._f = f

    def drop_torn_tail(self, offset: int) -> None:
        """Cut a torn last line (a crash mid-append) so the next append starts a new line."""
        with open(self.path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())

    def write(self, *records: dict[str, Any]) -> None:
        """Append records (one write) and make them durable before returning."""
        self.open()
        self._f.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def write_json_atomic(path: str, doc: dict) -> None:
    """Write ``doc`` to ``path`` as JSON, atomically (temporary file, fsync, rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str, what: str) -> dict:
    """A JSON document written by :func:`write_json_atomic`, or a clear error."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {path!r} is corrupt ({e}); delete it to restart the run from "
                         "the journal's trials") from None
