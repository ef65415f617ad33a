"""Hypergradient tuning of learning rate and weight decay on MNIST-1D, against random search and
GP-BO at equal total training steps; memory of reverse mode with and without rematerialization.

Accuracy part: a 2-layer MLP (64 wide, ReLU, AdamW, batch 64) on MNIST-1D, tuned over
``lr in [1e-4, 1e-1]`` and ``weight_decay in [1e-5, 1]`` (both log). Every method gets the same
total number of training steps ``trials * steps``:

* ``random``: ``trials`` random configurations trained ``steps`` steps each (one vmapped
  generation, ``jaxhpo.minimize`` with ``Trainer.objective``);
* ``gp_bo``: GP-BO (log EI), ``trials / q`` generations of ``q`` (``num_initial = q``);
* ``hypergrad``: ``members`` tuners from quasi-random start points, ``rounds`` rounds of
  ``trials * steps / (members * rounds)`` steps, a hypergradient step (Adam on log lr, log wd)
  after each round, weights kept (``jaxhpo.hypergrad.hyper_tune``);
* ``hypergrad+pbt``: the same with PBT every second round: the worst quarter (by validation
  loss) copies the best quarter's weights, hyperparameters and hyper-optimizer state, and
  perturbs the copied hyperparameters (``pbt_perturb``: x0.8 / x1.2, resample with p = 0.25).

Each method reports the validation accuracy of its best model (the one the method would pick)
and that model's test accuracy, median over seeds, plus wall time (a hypergradient step costs
about 3-4 plain steps: forward, backward, and the backward of the unrolled training). The
machine is usually shared: compare times within one run only.

Memory part: XLA's temp buffers (``jax.jit(f).lower(...).compile().memory_analysis()``) of one
member's reverse-mode hypergradient through ``T`` steps, without rematerialization, with a
checkpoint per step, and with segments of ``sqrt(T)`` steps; forward mode for comparison.

    python benchmarks/hypergrad.py [--seeds 3] [--trials 16] [--steps 800] [--members 8]
        [--rounds 4] [--methods random,gp_bo,hypergrad,hypergrad+pbt] [--memory-steps 256]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Space  # noqa: E402
from jaxhpo.hypergrad import hyper_tune, trainer_hypergradient, trainer_params  # noqa: E402
from jaxhpo.train import Trainer, mlp, mnist1d  # noqa: E402

METHODS = ("random", "gp_bo", "hypergrad", "hypergrad+pbt")
SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "weight_decay": Float(1e-5, 1.0, log=True)})


def make_trainer(data, steps=0):
    return Trainer(mlp(10, max_width=64, max_depth=2), data, space=SPACE,
                   defaults={"optimizer": "adamw"}, max_batch_size=64, total_steps=steps)


def black_box(name, trainer, seed, trials, steps, q):
    strategy = (jaxhpo.strategies.random_search(SPACE, trials) if name == "random" else
                jaxhpo.strategies.gp_bo(SPACE, q, num_initial=q))
    res = jaxhpo.minimize(trainer.objective(steps), SPACE, strategy,
                          num_generations=1 if name == "random" else trials // q, key=seed,
                          metric="val_accuracy", direction="maximize", progress=False)
    trials_ = res.history.completed()
    val = np.array([t.metrics["val_accuracy"] for t in trials_], np.float64)
    val = np.where(np.isfinite(val), val, -np.inf)
    best = int(np.argmax(val))
    return {"best_val": float(val[best]), "test_of_best": trials_[best].metrics["test_accuracy"],
            "params": trials_[best].params, "steps": len(trials_) * steps,
            "curve": np.maximum.accumulate(val).tolist()}


def hypergrad(trainer, seed, members, rounds, round_steps, pbt, hyper_lr):
    qr = jaxhpo.strategies.quasi_random(SPACE, members)
    x0, _ = qr.ask(jax.random.key(seed), qr.init(jax.random.key(seed)))
    res = hyper_tune(trainer, jax.random.key(seed + 1000), x0, rounds=rounds,
                     steps_per_round=round_steps, optimizer=optax.adam(hyper_lr),
                     exploit_every=2 if pbt else 0, explore=pbt)
    b = res.best
    return {"best_val": float(res.final["val_accuracy"][b]),
            "test_of_best": float(res.final["test_accuracy"][b]), "params": res.best_params,
            "steps": res.steps, "curve": np.nanmax(res.val_accuracy, 1).tolist(),
            "lr_trajectory": res.params["lr"].tolist(),
            "wd_trajectory": res.params["weight_decay"].tolist()}


def accuracy_part(args, data):
    budget = args.trials * args.steps
    round_steps = budget // (args.members * args.rounds)
    if round_steps * args.members * args.rounds != budget:
        raise SystemExit("--trials * --steps must be divisible by --members * --rounds")
    trainer = make_trainer(data, args.steps)
    hg_trainer = make_trainer(data)
    methods = args.methods.split(",")
    raw = {m: [] for m in methods}
    for seed in range(args.seeds):
        for m in methods:
            t0 = time.perf_counter()
            if m in ("random", "gp_bo"):
                r = black_box(m, trainer, seed, args.trials, args.steps, args.q)
            else:
                r = hypergrad(hg_trainer, seed, args.members, args.rounds, round_steps,
                              m == "hypergrad+pbt", args.hyper_lr)
            r["seconds"] = time.perf_counter() - t0
            raw[m].append(r)
            print(f"  seed {seed} {m}: val {r['best_val']:.3f} test {r['test_of_best']:.3f} "
                  f"({r['seconds']:.0f} s) {r['params']}", flush=True)
    rows = []
    for m in methods:
        rs = raw[m]
        rows.append({"method": m, "train steps": rs[0]["steps"],
                     "best val acc": float(np.median([r["best_val"] for r in rs])),
                     "test acc of best": float(np.median([r["test_of_best"] for r in rs])),
                     "val acc per seed": " ".join(f"{r['best_val']:.3f}" for r in rs),
                     "seconds": float(np.median([r["seconds"] for r in rs]))})
    print_table(rows, ["method", "train steps", "best val acc", "test acc of best",
                       "val acc per seed", "seconds"],
                f"MNIST-1D MLP, lr + weight decay, {args.trials} x {args.steps} steps = {budget} "
                f"training steps per method (hypergrad: {args.members} members x {args.rounds} "
                f"rounds x {round_steps} steps), median of {args.seeds} seeds")
    return {"rows": rows, "raw": raw, "round_steps": round_steps}


def memory_part(args, data):
    trainer = make_trainer(data)
    t = trainer_params(trainer)
    x = jnp.array([0.5, 0.5])
    state = trainer.init(jax.random.key(0), SPACE.decode(x))
    T = args.memory_steps
    seg = max(d for d in range(1, int(math.isqrt(T)) + 1) if T % d == 0)
    rows = []
    for label, kw in (("reverse, no remat", {"remat": False}),
                      ("reverse, remat every step", {"remat": True}),
                      (f"reverse, remat segments of {seg}", {"remat": seg}),
                      ("forward (2 tangents)", {"mode": "forward"})):
        fn = jax.jit(trainer_hypergradient(trainer, T, **kw))
        compiled = fn.lower(state, t.to_z(x), x).compile()
        ma = compiled.memory_analysis()
        jax.block_until_ready(compiled(state, t.to_z(x), x))
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, t.to_z(x), x))
        rows.append({"variant": label, "steps": T,
                     "temp MiB": ma.temp_size_in_bytes / 2**20 if ma else float("nan"),
                     "seconds": time.perf_counter() - t0})
    base = rows[0]["temp MiB"]
    for r in rows:
        r["vs no remat"] = r["temp MiB"] / base
    plain = jax.jit(lambda s: trainer.train(s, SPACE.decode(x), T)[0])
    jax.block_until_ready(plain(state))
    t0 = time.perf_counter()
    jax.block_until_ready(plain(state))
    rows.append({"variant": "plain training (no gradient)", "steps": T,
                 "temp MiB": float("nan"), "seconds": time.perf_counter() - t0})
    print_table(rows, ["variant", "steps", "temp MiB", "vs no remat", "seconds"],
                f"Memory of one member's hypergradient through {T} training steps (XLA temp "
                f"buffers) and time per call")
    return {"rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--q", type=int, default=4, help="GP-BO batch size")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--hyper-lr", type=float, default=0.3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--memory-steps", type=int, default=256)
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args(argv)
    data = mnist1d()
    out = {"args": vars(args)}
    if not args.skip_memory:
        out["memory"] = memory_part(args, data)
    if not args.skip_accuracy:
        out["accuracy"] = accuracy_part(args, data)
    print(f"\nwrote {write_result('hypergrad', out)}")


if __name__ == "__main__":
    main()
