"""Scheduler decision rules: overhead per rung and learning-curve prediction quality.

Part 1 times each rule jitted, the way a slot-based driver calls it once per rung (results
awaited), for ``P`` slots and history buffers of ``N`` trials x ``S`` reports, plus its compile
time. Part 2 measures the learning-curve extrapolation on synthetic curves from known families
with noise: the median absolute error of the predicted final value and the fraction of truths
inside the predicted mean +- 2 standard deviations, against the fraction of the curve observed.

    python benchmarks/schedulers.py                       # P = 64, N = 256, S = 50, 10 seeds
    python benchmarks/schedulers.py --slots 256 --seeds 3
    python benchmarks/schedulers.py --skip-overhead      # only the prediction quality
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
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Categorical, Float, Int, Space  # noqa: E402
from jaxhpo import schedulers as sch  # noqa: E402


def timed(fn, args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return compile_s, float(np.median(times))


def overhead(p, n, s, repeats):
    rng = np.random.default_rng(0)
    curves = jnp.asarray(np.cumsum(rng.uniform(-1, 0.2, (n, s)), 1), jnp.float32)
    mask = jnp.asarray(np.arange(s)[None, :] < rng.integers(1, s + 1, n)[:, None])
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "wd": Float(0.0, 0.3),
                   "width": Int(16, 256, log=True), "opt": Categorical(["sgd", "adam"])})
    x = space.sample(jax.random.key(0), p)
    fit = jnp.asarray(rng.uniform(size=p), jnp.float32)
    asha = sch.asha_init(4, n)
    for t in range(n):
        asha = sch.asha_report(asha, t % 4, t, float(rng.uniform()))

    def pbt_round(key, x, f):
        k1, k2 = jax.random.split(key)
        src, exploit = sch.pbt_exploit(k1, f)
        return src, jnp.where(exploit[:, None], sch.pbt_perturb(k2, x[src], space), x)

    cases = {
        f"median_stopping  [N={n}, S={s}]": (jax.jit(sch.median_stopping), (curves, mask)),
        f"successive_halving  [P={p}]": (jax.jit(sch.successive_halving_decision), (fit,)),
        f"asha_get_jobs x{p}  [4 rungs x {n}]": (
            jax.jit(lambda st: sch.asha_get_jobs(st, p)), (asha,)),
        f"asha_stop_decision  [4 rungs x {n}]": (
            jax.jit(sch.asha_stop_decision), (asha, 1, 7, 0.3)),
        f"pbt exploit+perturb  [P={p}, d=4]": (jax.jit(pbt_round),
                                               (jax.random.key(1), x, fit)),
        f"curve_extrapolation  [P={p}, S={s}]": (
            jax.jit(sch.curve_extrapolation_stopping),
            (curves[:p], mask[:p] | (jnp.arange(s) < 10), jnp.float32(-5.0))),
    }
    rows = []
    for name, (fn, args) in cases.items():
        c, t = timed(fn, args, repeats)
        rows.append({"rule": name, "compile_s": round(c, 2), "per_rung_ms": round(1e3 * t, 3)})
    return rows


FAMILIES = {
    "pow3": lambda x: 0.2 + 0.8 * x ** -0.7,
    "weibull": lambda x: 0.15 + 0.85 * np.exp(-(0.08 * x) ** 0.9),
    "mmf": lambda x: 0.1 + 0.8 / (1 + (0.15 * x) ** 1.2),
    "janoschek": lambda x: 0.3 + 0.7 * np.exp(-0.1 * x ** 0.8),
    "ilog2": lambda x: 0.05 + 0.5 / np.log(x + 1),
    "exp (janoschek, delta=1)": lambda x: 0.2 + 0.8 * np.exp(-0.06 * x),
}


def quality(s, seeds, noise, fractions):
    x = np.arange(1, s + 1, dtype=np.float64)
    truth = np.stack([f(x) for f in FAMILIES.values()])
    rng = np.random.default_rng(0)
    curves = np.concatenate([truth + noise * rng.normal(size=truth.shape)
                             for _ in range(seeds)]).astype(np.float32)
    fit = jax.jit(sch.fit_learning_curves)
    final = np.tile(truth[:, -1], seeds)
    rows = []
    for frac in fractions:
        k = max(5, int(round(frac * s)))
        mask = np.arange(s)[None, :] < k
        pred = fit(jnp.asarray(curves), jnp.asarray(np.broadcast_to(mask, curves.shape)))
        mean, std = np.asarray(pred.mean), np.asarray(pred.std)
        err = np.abs(mean - final).reshape(seeds, -1)
        cover = (np.abs(mean - final) <= 2 * std).reshape(seeds, -1)
        for j, name in enumerate(FAMILIES):
            rows.append({"family": name, "observed": f"{k}/{s}",
                         "median_abs_err": round(float(np.median(err[:, j])), 4),
                         "max_abs_err": round(float(np.max(err[:, j])), 4),
                         "within_2sd": round(float(np.mean(cover[:, j])), 2)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--trials", type=int, default=256)
    ap.add_argument("--reports", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    over = [] if args.skip_overhead else overhead(args.slots, args.trials, args.reports,
                                                  args.repeats)
    print_table(over, ["rule", "compile_s", "per_rung_ms"],
                f"Decision overhead per rung ({jax.devices()[0].platform}, median of "
                f"{args.repeats})")
    qual = quality(args.reports, args.seeds, args.noise, (0.2, 0.3, 0.5))
    print_table(qual, ["family", "observed", "median_abs_err", "max_abs_err", "within_2sd"],
                f"Learning-curve extrapolation: final value, {args.seeds} seeds, noise sd "
                f"{args.noise}")
    path = write_result("schedulers", {"args": vars(args), "overhead": over, "quality": qual})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
