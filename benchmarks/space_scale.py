"""Space scale: building, decoding and compiling search spaces with thousands of parameters.

A mixed space of ``d`` parameters (linear and log floats, ints, categoricals, and every fifth one
conditional on a categorical) is built, a population of 64 cube points is decoded eagerly and
inside a jitted objective, and turned into Python dicts (``to_params_list``). Timed per ``d``:

* ``build_s``: ``Space(params)`` (was quadratic: 1000 parameters 5.3 s, 5000 > 45 s);
* ``decode_eager_s``: ``space.decode(x)`` outside ``jit`` (second call);
* ``objective_compile_s``: first call of ``jit(objective(space.decode(x)))`` with an objective
  that reads every hyperparameter (``stack(...) @ w``), and ``baseline_compile_s`` the same
  objective on the raw columns of ``x`` (no decode) in the same run: their ratio is decode's
  share of the compile;
* ``to_params_s``: ``space.to_params_list(x)`` for the 64 members.

``jit(space.decode)`` *returning* all ``d`` arrays is timed separately at ``--outputs-dims``
(default 500) with, as baseline, a jitted function returning the ``d`` raw columns of ``x``: on
CPU, XLA compiles one kernel per output array, so both grow with ``d`` at the same rate (decode
inside an objective has no such cost: its columns fuse into their consumers).

    python benchmarks/space_scale.py                # d = 1000, 10000; compiles timed at 1000
    python benchmarks/space_scale.py --dims 10000 --compile-dims 10000 --outputs-dims
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402

POP = 64


def mixed_params(d: int) -> dict:
    out = {}
    for i in range(d):
        k = i % 5
        if k == 0:
            out[f"p{i}"] = jaxhpo.Float(-1.0, 1.0)
        elif k == 1:
            out[f"p{i}"] = jaxhpo.Float(1e-5, 1.0, log=True)
        elif k == 2:
            out[f"p{i}"] = jaxhpo.Int(1, 512, log=i % 2 == 0)
        elif k == 3:
            out[f"p{i}"] = jaxhpo.Categorical(["sgd", "adam", "lion"])
        else:
            out[f"p{i}"] = jaxhpo.Float(0.0, 0.99, condition={f"p{i - 1}": ["sgd", "lion"]})
    return out


def timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


def measure(d: int, compile_objective: bool) -> dict:
    params = mixed_params(d)
    space, build = timed(lambda: jaxhpo.Space(params))
    x = space.sample(jax.random.key(0), POP)
    timed(lambda: space.decode(x))
    _, eager = timed(lambda: space.decode(x))
    w = jax.random.normal(jax.random.key(1), (d,))

    def objective(hp):
        return jnp.stack([hp[n].astype(jnp.float32) for n in space.names], -1) @ w

    compile_s = run_s = base_s = float("nan")
    if compile_objective:
        f = jax.jit(lambda x: objective(space.decode(x)))
        _, compile_s = timed(lambda: f(x))
        _, run_s = timed(lambda: f(x))
        g = jax.jit(lambda x: jnp.stack([x[:, j] for j in range(d)], -1) @ w)
        _, base_s = timed(lambda: g(x))
    _, to_params = timed(lambda: space.to_params_list(x))
    print(f"d={d}: build {build:.3f}s, eager decode {eager:.3f}s, objective compile "
          f"{compile_s:.1f}s (baseline {base_s:.1f}s), to_params_list {to_params:.3f}s",
          flush=True)
    return {"d": d, "build_s": build, "decode_eager_s": eager, "objective_compile_s": compile_s,
            "baseline_compile_s": base_s, "compile_ratio": compile_s / base_s,
            "objective_run_ms": 1e3 * run_s, "to_params_s": to_params}


def measure_outputs(d: int) -> dict:
    space = jaxhpo.Space(mixed_params(d))
    x = space.sample(jax.random.key(0), POP)
    _, dec = timed(lambda: jax.jit(space.decode)(x))
    names = space.names
    _, base = timed(lambda: jax.jit(lambda x: {n: x[:, j] for j, n in enumerate(names)})(x))
    return {"d": d, "jit_decode_compile_s": dec, "jit_columns_compile_s": base,
            "ratio": dec / base, "per_output_ms": 1e3 * dec / d}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--compile-dims", type=int, nargs="*", default=[1000],
                    help="the d of --dims whose jitted objective compile is timed")
    ap.add_argument("--outputs-dims", type=int, nargs="*", default=[500],
                    help="d for jit(space.decode) returning all d arrays (0 or none: skip)")
    args = ap.parse_args(argv)
    if any(d < 5 for d in args.dims):
        ap.error("--dims must be >= 5")
    rows = [measure(d, d in args.compile_dims) for d in args.dims]
    print_table(rows, ["d", "build_s", "decode_eager_s", "objective_compile_s",
                       "baseline_compile_s", "compile_ratio", "objective_run_ms", "to_params_s"],
                f"Space scale, population {POP}, {jax.devices()[0].platform}")
    out_rows = [measure_outputs(d) for d in args.outputs_dims if d >= 5]
    if out_rows:
        print_table(out_rows, ["d", "jit_decode_compile_s", "jit_columns_compile_s", "ratio",
                               "per_output_ms"], "jit(space.decode) returning all d arrays")
    path = write_result("space_scale", {"population": POP, "rows": rows,
                                        "jit_outputs": out_rows})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
