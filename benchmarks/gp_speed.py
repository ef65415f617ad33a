"""GP-BO speed: wall time per ``ask`` and per ``tell`` vs the number of observations, jaxhpo
``gp_bo`` (q = 1 and q = 8) against Optuna's ``GPSampler`` in the same run.

For each size n the strategy is given n observations of Hartmann-6 (uniform points), then its
jitted ``ask`` and ``tell`` are timed after compilation (median of repeats, result awaited).
``tell`` refactors the posterior every time and refits the hyperparameters on the schedule of
``gp_bo`` (every tell up to 64 observations, then after 10% growth), so the *amortized* tell
cost is measured over ``--amortize`` consecutive tells. Optuna's cost per trial is the time of
``study.ask()`` (the GP fit and the acquisition optimization both happen there) once the study
holds n trials.

    python benchmarks/gp_speed.py                        # n = 50,100,200,300,1000
    python benchmarks/gp_speed.py --sizes 50,300 --optuna-repeats 3
    python benchmarks/gp_speed.py --rounds 256,1000   # ask + tell per round of 32 (issue #23)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# jax's CPU triangular solves with many right-hand sides call OpenBLAS trsm; on a small shared
# machine its worker threads oversubscribe the cores and a 128x128 solve takes ~60x longer
# (7.5 ms instead of 0.12 ms of CPU time). One BLAS thread, for jaxhpo and Optuna alike.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import functions as F  # noqa: E402


def _median_ms(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def time_jaxhpo(tf, n, q, repeats, amortize, room):
    s = jaxhpo.strategies.gp_bo(tf.space, q)
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    # room: observations added after the n, the same for every q so that both run at the same
    # buffer capacity (a larger one costs more per ask)
    st = s.reserve(s.init(jax.random.key(0)), n + room)
    x = jax.random.uniform(jax.random.key(1), (n, tf.space.dim))
    fill = jaxhpo.strategies.gp_bo(tf.space, n, capacity=st.x.shape[0], num_initial=1)
    st = fill.tell(st, x, tf.fn(tf.from_unit(x)))  # n observations in one tell
    st = jax.block_until_ready(st)
    xa, _ = ask(jax.random.key(2), st)  # compile
    fa = tf.fn(tf.from_unit(xa))
    jax.block_until_ready(tell(st, xa, fa))
    ask_ms = _median_ms(lambda: ask(jax.random.key(3), st)[0], repeats)
    t0 = time.perf_counter()
    cur = st
    for i in range(amortize):  # consecutive real steps: includes the scheduled refits
        xa, cur = ask(jax.random.key(10 + i), cur)
        cur = tell(cur, xa, tf.fn(tf.from_unit(xa)))
    jax.block_until_ready(cur)
    step_ms = 1e3 * (time.perf_counter() - t0) / amortize
    refit = jaxhpo.strategies.gp_bo(tf.space, q, refit_below=10**9)  # force a fit
    tell_fit = jax.jit(refit.tell)
    jax.block_until_ready(tell_fit(st, xa, fa))
    fit_ms = _median_ms(lambda: tell_fit(st, xa, fa), max(1, repeats // 2))
    return {"ask_ms": ask_ms, "ask_tell_amortized_ms": step_ms, "tell_with_fit_ms": fit_ms,
            "capacity": int(st.x.shape[0])}


def time_rounds(tf, n, q, rounds, **kwargs):
    """Wall time of whole rounds ``ask`` + ``tell`` of ``q`` points starting from ``n``
    observations (uniform points of Hartmann-6), as a driver runs them: jitted, the state
    carried, the hyperparameters refitted on ``gp_bo``'s schedule, the buffer sized once for
    the ``rounds`` (its capacity is reported). Returns per-round seconds after compilation."""
    s = jaxhpo.strategies.gp_bo(tf.space, q, **kwargs)
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    st = s.reserve(s.init(jax.random.key(0)), n + (rounds + 1) * q)
    x = jax.random.uniform(jax.random.key(1), (n, tf.space.dim))
    fill = jaxhpo.strategies.gp_bo(tf.space, n, capacity=st.x.shape[0], num_initial=1)
    st = jax.block_until_ready(fill.tell(st, x, tf.fn(tf.from_unit(x))))
    t0 = time.perf_counter()
    xa, cur = ask(jax.random.key(2), st)  # compile both (and run one round)
    cur = jax.block_until_ready(tell(cur, xa, tf.fn(tf.from_unit(xa))))
    compile_s = time.perf_counter() - t0
    ts = []
    for i in range(rounds):
        t0 = time.perf_counter()
        xa, cur = ask(jax.random.key(10 + i), cur)
        cur = jax.block_until_ready(tell(cur, xa, tf.fn(tf.from_unit(xa))))
        ts.append(time.perf_counter() - t0)
    return {"round_s": ts, "mean_s": float(np.mean(ts)), "max_s": float(np.max(ts)),
            "first_round_with_compile_s": compile_s, "capacity": int(st.x.shape[0]),
            "load_avg": os.getloadavg()}


def time_optuna(tf, n, repeats):
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    sampler = optuna.samplers.GPSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    dists = {name: optuna.distributions.FloatDistribution(p.low, p.high)
             for name, p in tf.space.items()}
    rng = np.random.default_rng(0)
    f = jax.jit(tf.fn)
    for _ in range(n):
        xs = {k: float(rng.uniform(d.low, d.high)) for k, d in dists.items()}
        value = float(f(jnp.array(list(xs.values()))))
        study.add_trial(optuna.trial.create_trial(params=xs, distributions=dists, value=value))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask(dists)  # GPSampler fits and optimizes the acquisition here
        ts.append(time.perf_counter() - t0)
        study.tell(trial, float(f(jnp.array([trial.params[k] for k in dists]))))
    return 1e3 * float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,100,200,300,1000")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--amortize", type=int, default=30)
    ap.add_argument("--optuna-repeats", type=int, default=5)
    ap.add_argument("--no-optuna", action="store_true")
    ap.add_argument("--rounds", default="", help="e.g. 256,1000: time rounds of --round-q "
                    "points (ask + tell) from these many observations instead")
    ap.add_argument("--round-q", type=int, default=32)
    ap.add_argument("--round-count", type=int, default=6)
    args = ap.parse_args(argv)
    tf = F.get("hartmann6")
    rows, out = [], {}
    if args.rounds:
        for n in [int(v) for v in args.rounds.split(",")]:
            r = time_rounds(tf, n, args.round_q, args.round_count)
            out[n] = {f"q{args.round_q}_rounds": r}
            rows.append({"n": n, "capacity": r["capacity"], "q": args.round_q,
                         "ask+tell per round, mean s": r["mean_s"], "max s": r["max_s"],
                         "rounds s": " ".join(f"{v:.3f}" for v in r["round_s"]),
                         "load avg 1m": r["load_avg"][0]})
            print(rows[-1], flush=True)
        print_table(rows, list(rows[0]), f"GP-BO ask + tell per round of {args.round_q} "
                    "(Hartmann-6, jitted, refits on gp_bo's schedule included)")
        path = write_result("gp_speed", {"rounds": out, "load_avg_end": os.getloadavg()})
        print(f"\nwrote {path}")
        return
    for n in [int(v) for v in args.sizes.split(",")]:
        am8 = max(4, args.amortize // 8)
        room = max(args.amortize + 1, 8 * (am8 + 1))
        r1 = time_jaxhpo(tf, n, 1, args.repeats, args.amortize, room)
        r8 = time_jaxhpo(tf, n, 8, args.repeats, am8, room)
        opt = None if args.no_optuna else time_optuna(tf, n, args.optuna_repeats)
        out[n] = {"q1": r1, "q8": r8, "optuna_gp_ask_ms": opt}
        row = {"n": n, "capacity": r1["capacity"], "ask q=1 ms": r1["ask_ms"],
               "ask q=8 ms": r8["ask_ms"], "q8/q1 ask": r8["ask_ms"] / r1["ask_ms"],
               "ask+tell q=1 (amortized) ms": r1["ask_tell_amortized_ms"],
               "tell with fit ms": r1["tell_with_fit_ms"]}
        if opt is not None:
            row["optuna ask ms"] = opt
            row["optuna / ask"] = opt / r1["ask_ms"]
            row["optuna / ask+tell"] = opt / r1["ask_tell_amortized_ms"]
        rows.append(row)
        print(row, flush=True)
    print_table(rows, list(rows[0]), "GP-BO time per ask / tell vs observations (Hartmann-6)")
    path = write_result("gp_speed", {"results": out})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
