"""TPE speed: wall time of one ask + tell at n observations, jaxhpo vs Optuna's TPESampler.

jaxhpo's ``tpe`` (jitted, batch 1, buffer capacity 1024) is timed with its buffer pre-filled with
``n`` random observations; Optuna's ``TPESampler`` (default settings, multivariate) with a study
of ``n`` random trials, in the same run, on ``d`` float parameters. Also jaxhpo with a batch of
``q`` proposals per ask (time per ask, not per trial), with the default batch rule (a
``gamma_spread`` portfolio: one ``l``/``g`` fit per row) and with one shared ``l``/``g``.

    python benchmarks/tpe_speed.py                        # n = 10, 100, 300, 1000; d = 6
    python benchmarks/tpe_speed.py --ns 100 --dim 10 --batch 8
    python benchmarks/tpe_speed.py --ns 256 --batch 32     # a round of 32 at 256 observations
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


def time_jaxhpo(d: int, n: int, batch: int, reps: int, capacity: int = 1024, **kw) -> float:
    """Median seconds of ``ask`` + ``tell`` (results awaited) with ``n`` observations told;
    ``kw``: further ``tpe`` settings."""
    space = jaxhpo.Space({f"x{i}": jaxhpo.Float(0.0, 1.0) for i in range(d)})
    s = jaxhpo.strategies.tpe(space, batch, capacity=capacity, **kw)
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    st = s.init(jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (n, d))
    valid = jnp.arange(capacity) < n
    st = st.replace(x=st.x.at[:n].set(x), y=st.y.at[:n].set(jnp.sum((x - 0.3) ** 2, -1)),
                    ok=valid, valid=valid, order=jnp.arange(capacity, dtype=jnp.int32),
                    count=jnp.int32(n))
    times = []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        xb, _ = ask(jax.random.key(r), st)
        jax.block_until_ready(tell(st, xb, jnp.sum(xb, -1)))
        if r >= 2:  # the first calls compile
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_optuna(d: int, n: int, reps: int) -> float:
    """Median seconds of ``study.ask`` + ``study.tell`` with TPESampler after ``n`` trials."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(d)}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        t = study.ask(dists)
        study.tell(t, sum((v - 0.3) ** 2 for v in t.params.values()))
    study.sampler = optuna.samplers.TPESampler(seed=0)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        t = study.ask(dists)
        study.tell(t, sum(t.params.values()))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", default="10,100,300,1000")
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    rows, out = [], {}
    for n in [int(v) for v in args.ns.split(",")]:
        j1 = time_jaxhpo(args.dim, n, 1, args.reps)
        jq = time_jaxhpo(args.dim, n, args.batch, args.reps)
        # the batch rule before the gamma_spread portfolio: one l/g, 64 candidates per row
        jq1 = time_jaxhpo(args.dim, n, args.batch, args.reps, gamma_spread=1.0,
                          n_ei_candidates=64)
        op = time_optuna(args.dim, n, args.reps)
        out[n] = {"jaxhpo_q1_s": j1, f"jaxhpo_q{args.batch}_s": jq,
                  f"jaxhpo_q{args.batch}_single_gamma_s": jq1, "optuna_s": op}
        rows.append({"observations": n, "jaxhpo tpe q=1 (ms)": f"{1e3 * j1:.2f}",
                     f"jaxhpo tpe q={args.batch} per ask (ms)": f"{1e3 * jq:.2f}",
                     f"q={args.batch}, one gamma (ms)": f"{1e3 * jq1:.2f}",
                     "optuna TPESampler (ms)": f"{1e3 * op:.2f}",
                     f"optuna x {args.batch} (ms)": f"{1e3 * op * args.batch:.1f}",
                     "speed-up q=1": f"{op / j1:.1f}x"})
    print_table(rows, list(rows[0]), f"TPE ask + tell time, d = {args.dim} floats")
    path = write_result("tpe_speed", {"dim": args.dim, "batch": args.batch, "results": out})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
