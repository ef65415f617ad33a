"""Shared helpers for the benchmarks: result JSON with machine metadata, plain-text tables."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys

import jax

# JAXHPO_BENCH_RESULTS redirects every benchmark's JSON (scripts/bench.py --results, tests).
RESULTS = os.environ.get("JAXHPO_BENCH_RESULTS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results")


def device_tag() -> str:
    d = jax.devices()[0]
    kind = getattr(d, "device_kind", d.platform) or d.platform
    return f"{d.platform}-{kind}".replace(" ", "_").replace("/", "_").lower()


def metadata() -> dict:
    d = jax.devices()[0]
    meta = {"jax": jax.__version__, "platform": d.platform,
            "device_kind": getattr(d, "device_kind", ""), "device_count": jax.device_count(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine(),
            "utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    try:
        import optuna

        meta["optuna"] = optuna.__version__
    except ImportError:
        pass
    return meta


def write_result(name: str, payload: dict) -> str:
    """Write ``payload`` + metadata to ``results/<name>-<device>-<utc time>.json``."""
    os.makedirs(RESULTS, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = os.path.join(RESULTS, f"{name}-{device_tag()}-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"benchmark": name, "meta": metadata(), **payload}, f, indent=1,
                  default=float)
    return path


def print_table(rows: list[dict], columns: list[str], title: str = "") -> None:
    """Print ``rows`` (dicts) as an aligned table: first column left-aligned, others right."""
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if title:
        print(f"\n{title}")
    for j, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
