"""End to end: tune an MLP on MNIST-1D with jaxhpo.tune vs Optuna, best accuracy vs wall-clock.

Same model (residual MLP, 2 hidden layers up to ``--max-width`` = 64 wide, batch 64, AdamW), same data (MNIST-1D, 3600/400/1000 split), same
search space (learning rate, weight decay, width, dropout), same budget per trial
(``--max-steps`` optimizer steps, reports every ``--min-steps``), same training code
(``jaxhpo.train.Trainer``):

* jaxhpo: ``jaxhpo.tune`` on ``--slots`` vmapped slots with ASHA (TPE or GP-BO refills),
  HyperBand (random), BOHB, PBT; each arm gets ``--jax-budget`` seconds (compilation included).
  The ``*_user`` arms (``asha_tpe_user``, ``pbt_user``) run the same scheduler and strategy on
  a training program a user writes (a plain Flax linen MLP, ``optax.adamw``, turned into a
  program by ``jaxhpo.train.flax_program``) instead of the built-in ``Trainer``; its width is
  a *static* hyperparameter (``--user-widths``, default ``Categorical([32, 64], static=True)``:
  one compiled program per width group and group size, no masking; one value fixes the width)
  and the rest of the space is the same.
* Optuna: ``TPESampler`` + ``MedianPruner`` (and + ``HyperbandPruner``), the trial trained
  sequentially by the same jitted training functions in chunks of ``--min-steps`` steps, one
  report per chunk, ``--optuna-budget`` seconds per study (compilation included).

Compilation: both sides compile before their clocks start (Optuna: its three jitted functions;
jaxhpo: one untimed round per arm, with a persistent compilation cache so later runs load the
programs); the warm-up seconds are reported separately.

Per seed: Optuna's best validation accuracy among completed trials at the end of its budget
(``A``); for each jaxhpo arm the wall-clock seconds until its best completed trial reaches
``A`` and the test accuracy of the configuration it has chosen by ``--target-seconds`` (30 s), vs
the test accuracy of Optuna's chosen configuration. Also the slot utilization and where a
round's time goes: the scheduler's decisions, the strategy (ask/tell through the proposer),
and the rest (training + evaluation of the slots); compilation is the warm-up column.

    python benchmarks/e2e_mnist1d.py [--seeds 3] [--optuna-budget 300] [--jax-budget 45]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Int, Space  # noqa: E402
from jaxhpo import schedulers as S  # noqa: E402
from jaxhpo.train import Trainer, mlp, mnist1d  # noqa: E402

FIXED = {"optimizer": "adamw"}
# ASHA with a model-based strategy runs in "stopping" mode: a trial leaves its slot when it
# stops at a rung or finishes, so the strategy is told the value at the last rung it reached;
# in "promotion" mode every trial pauses at the first rung and the strategy learns 40-step
# accuracies only (ASHA + TPE, 5 seeds: 0.6025 vs 0.64 best validation accuracy at 30 s).
ASHA_MODE = "stopping"
SPACE = None  # set in main() from --max-width
USER = (None, None)  # (the user's training program, its space), set in main()


def make_space(max_width):
    return Space({"learning_rate": Float(1e-4, 1e-1, log=True),
                  "weight_decay": Float(1e-6, 1e-1, log=True),
                  "width": Int(16, max_width), "dropout": Float(0.0, 0.5)})


def make_user_space(widths):
    """The Trainer arms' space with ``width`` a static choice among ``widths`` (one value: the
    width is fixed, not tuned)."""
    params = {"learning_rate": Float(1e-4, 1e-1, log=True),
              "weight_decay": Float(1e-6, 1e-1, log=True), "dropout": Float(0.0, 0.5)}
    if len(widths) > 1:
        params["width"] = jaxhpo.Categorical(sorted(widths), static=True)
    return Space(params)


def make_user_program(data, batch, widths):
    """What a user writes: a linen MLP with dropout, AdamW, cross-entropy (flax_program)."""
    import flax.linen as nn
    import optax

    from jaxhpo.train import flax_program

    class MLP(nn.Module):
        width: int
        rate: jax.Array  # a traced per-member dropout rate

        @nn.compact
        def __call__(self, x, train: bool = False):
            for _ in range(2):
                x = nn.relu(nn.Dense(self.width)(x))
                if train:  # inverted dropout with a traced rate
                    keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.rate,
                                                x.shape)
                    x = jnp.where(keep, x / (1.0 - self.rate), 0.0)
            return nn.Dense(10)(x)

    return flax_program(
        lambda hp: MLP(hp.get("width", widths[0]), hp["dropout"]),
        lambda hp: optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"]),
        lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean(),
        data, batch_size=batch, train_kwarg="train")


def make_trainer(data, max_width, batch):
    return Trainer(mlp(10, max_width=max_width, max_depth=2), data, space=SPACE,
                   defaults=FIXED, max_batch_size=batch)


# ---------------------------------------------------------------------------- jaxhpo arms
def jax_arm(arm, trainer, seed, args, budget=None):
    lo, hi, p = args.min_steps, args.max_steps, args.slots
    space = SPACE
    if arm.endswith("_user"):  # the same arm on the user's own training program
        arm, trainer, space = arm[:-len("_user")], USER[0], USER[1]
    if arm == "asha_tpe":
        # capacity 256 (not the default 1024): TPE's ask cost is linear in the buffer
        # (~60 vs ~280 ms for 8 proposals here), and a round trains in ~400 ms.
        strat = jaxhpo.strategies.tpe(space, 8, capacity=256)
        sched = S.ASHA(lo, hi, mode=ASHA_MODE)
    elif arm == "asha_gp":
        # capacity 512 fixed (default: 64, doubling): each doubling compiles ask and tell
        # again (~7 s each here), inside the timed run; a fixed buffer compiles once, in the
        # warm-up, and keeps its 512 best observations (ask ~20 ms for 8 proposals).
        strat = jaxhpo.strategies.gp_bo(space, 8, capacity=512)
        sched = S.ASHA(lo, hi, mode=ASHA_MODE)
    elif arm == "hyperband":
        strat, sched = jaxhpo.strategies.random_search(space, 8), S.HyperBand(lo, hi)
    elif arm == "bohb":
        strat, sched = jaxhpo.strategies.random_search(space, 8), S.BOHB(lo, hi)
    elif arm == "pbt":
        strat = jaxhpo.strategies.random_search(space, p)
        sched = S.PBT(hi, 3 * lo)
    else:
        raise ValueError(arm)
    overhead = [0.0, 0.0]  # seconds in the scheduler's decisions, in the strategy

    def timed(fn, k):
        def wrapper(self, *a, **kw):
            t0 = time.perf_counter()
            out = fn(self, *a, **kw)
            overhead[k] += time.perf_counter() - t0
            return out
        return wrapper

    # Time the scheduler's decisions (tune works on a deep copy of it: patch its class) and
    # the strategy's ask/tell (through the proposer that feeds it trials).
    from jaxhpo._proposer import Proposer

    cls = type(sched)
    sched.__class__ = type(cls.__name__, (cls,), {"report": timed(cls.report, 0),
                                                  "next_job": timed(cls.next_job, 0)})
    saved = Proposer.next, Proposer.result
    Proposer.next, Proposer.result = timed(Proposer.next, 1), timed(Proposer.result, 1)
    res = jaxhpo.tune(trainer, space, strat, sched, max_trials=p if arm == "pbt" else 100000,
                      population_size=p, eval_every=lo, metric="accuracy",
                      direction="maximize", key=seed, progress=False,
                      time_budget=budget if budget is not None else args.jax_budget)
    Proposer.next, Proposer.result = saved
    return res, overhead


# ---------------------------------------------------------------------------- Optuna
def optuna_run(pruner, trainer, seed, args):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    arrays = trainer.device_data()
    chunk = args.min_steps

    @jax.jit
    def init(key, hp):
        return trainer.init(key, hp)

    @jax.jit
    def train_chunk(state, hp):
        state, _ = trainer.train(state, hp, chunk, arrays[:4])
        return state, trainer.evaluate(state, hp, "val", arrays)["accuracy"]

    @jax.jit
    def test_accuracy(state, hp):
        return trainer.evaluate(state, hp, "test", arrays)["accuracy"]

    # Warm-up (untimed, reported): compile the three programs once.
    t0 = time.perf_counter()
    hp0 = {k: jnp.asarray(v) for k, v in SPACE.decode(jnp.full((SPACE.dim,), 0.5)).items()}
    s0, _ = train_chunk(init(jax.random.key(0), hp0), hp0)
    jax.block_until_ready(test_accuracy(s0, hp0))
    warmup = time.perf_counter() - t0
    t_start = time.perf_counter()
    trace, best = [], {"val": -1.0, "test": float("nan")}

    def objective(trial):
        hp = {"learning_rate": jnp.float32(trial.suggest_float("learning_rate", 1e-4, 1e-1,
                                                                log=True)),
              "weight_decay": jnp.float32(trial.suggest_float("weight_decay", 1e-6, 1e-1,
                                                               log=True)),
              "width": jnp.int32(trial.suggest_int("width", 16, args.max_width)),
              "dropout": jnp.float32(trial.suggest_float("dropout", 0.0, 0.5))}
        state = init(jax.random.key(seed * 100003 + trial.number), hp)
        acc = 0.0
        for k in range(args.max_steps // chunk):
            state, acc = train_chunk(state, hp)
            acc = float(acc)
            trial.report(acc, (k + 1) * chunk)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if acc > best["val"]:
            best["val"], best["test"] = acc, float(test_accuracy(state, hp))
            trace.append((time.perf_counter() - t_start, acc))
        return acc

    if pruner == "median":
        p = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=chunk)
    else:
        p = optuna.pruners.HyperbandPruner(min_resource=chunk, max_resource=args.max_steps,
                                           reduction_factor=3)
    study = optuna.create_study(direction="maximize", pruner=p,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=args.optuna_budget)
    n_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"best_val": best["val"], "test_of_best": best["test"], "trace": trace,
            "trials": len(study.trials), "pruned": n_pruned, "warmup_s": warmup}


def time_to_reach(trace, target):
    for t, v in trace:
        if v >= target - 1e-9:
            return t
    return float("inf")


def chosen_at(res, seconds):
    """(val, test) of the best full-budget trial that completed within ``seconds``."""
    best = None
    for t in res.history:
        if t.status == "ok" and t.timestamp - res._t0 <= seconds:
            if best is None or t.values[0] > best.values[0]:
                best = t
    if best is None:
        return float("nan"), float("nan")
    return best.values[0], best.metrics.get("test_accuracy", float("nan"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--optuna-budget", type=float, default=300.0)
    ap.add_argument("--jax-budget", type=float, default=45.0)
    ap.add_argument("--target-seconds", type=float, default=30.0)
    ap.add_argument("--min-steps", type=int, default=40)
    ap.add_argument("--max-steps", type=int, default=1080)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--max-width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arms", default="asha_tpe,asha_gp,hyperband,bohb,pbt,asha_tpe_user,"
                                      "pbt_user")
    ap.add_argument("--user-widths", default="32,64",
                    help="the *_user arms' static width choices (one value: fixed width)")
    ap.add_argument("--optuna", default="median,hyperband")
    ap.add_argument("--hb-seeds", type=int, default=1,
                    help="seeds for the Optuna HyperbandPruner study (the median-pruner study "
                         "runs for every seed)")
    ap.add_argument("--optuna-from", default=None,
                    help="reuse the Optuna studies of an earlier result JSON (same settings)")
    ap.add_argument("--no-cache", dest="cache", action="store_false",
                    help="no persistent compilation cache: every jaxhpo run compiles again")
    args = ap.parse_args(argv)
    global SPACE
    SPACE = make_space(args.max_width)
    data = mnist1d()
    trainer = make_trainer(data, args.max_width, args.batch)
    global USER
    widths = [int(w) for w in args.user_widths.split(",")]
    USER = (make_user_program(data, args.batch, widths), make_user_space(widths))
    if args.cache:
        # Compiled programs go to a fresh persistent cache, so each tune call after an arm's
        # warm-up loads them instead of compiling again (what a user's second run gets).
        import tempfile

        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jaxhpo-e2e-"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    rows, per_seed, warm = [], [], {}
    previous = None
    if args.optuna_from:
        import json

        with open(args.optuna_from) as f:
            previous = {o["seed"]: o for o in json.load(f)["seeds"]}
    for seed in range(args.seeds):
        out = {"seed": seed}
        if previous is not None:  # Optuna's studies from an earlier run with the same settings
            out.update({k: v for k, v in previous[seed].items() if k.startswith("optuna_")})
        for pr in args.optuna.split(","):
            if previous is not None:
                break
            if pr and (pr == "median" or seed < args.hb_seeds):
                out[f"optuna_{pr}"] = optuna_run(pr, trainer, seed, args)
                o = out[f"optuna_{pr}"]
                print(f"seed {seed} optuna+{pr}: best val {o['best_val']:.4f} test "
                      f"{o['test_of_best']:.4f} trials {o['trials']} pruned {o['pruned']}",
                      flush=True)
        target = out["optuna_median"]["best_val"]
        for arm in args.arms.split(","):
            t0 = time.time()
            if arm not in warm:  # one untimed round: compiles (into the disk cache) and times it
                jax_arm(arm, trainer, 1000 + seed, args, budget=1e-9)
                warm[arm] = time.time() - t0
                t0 = time.time()
            res, overhead = jax_arm(arm, trainer, seed, args)
            res._t0 = t0
            val30, test30 = chosen_at(res, args.target_seconds)
            reach = time_to_reach(res.trace, target)
            n_ok = sum(t.status == "ok" for t in res.history)
            out[arm] = {"reach_s": reach, "val_at_target_s": val30, "test_at_target_s": test30,
                        "best_val": res.best_value if n_ok else float("nan"),
                        "utilization": res.utilization, "rounds": res.rounds,
                        "trials": len(res.history), "completed": n_ok,
                        "overhead_ms_per_round": 1e3 * overhead[0] / max(1, res.rounds),
                        "strategy_ms_per_round": 1e3 * overhead[1] / max(1, res.rounds),
                        "round_ms": 1e3 * res.wall_time / max(1, res.rounds),
                        "trace": res.trace, "warmup_s": warm[arm]}
            print(f"seed {seed} {arm}: reach {reach:.1f}s val@{args.target_seconds:.0f}s "
                  f"{val30:.4f} test {test30:.4f} util {res.utilization:.3f} trials "
                  f"{len(res.history)} completed {n_ok} sched {out[arm]['overhead_ms_per_round']:.2f}"
                  f" + strategy {out[arm]['strategy_ms_per_round']:.1f} ms/round of "
                  f"{out[arm]['round_ms']:.0f}", flush=True)
        per_seed.append(out)
    for arm in args.arms.split(","):
        med = lambda k: float(np.median([o[arm][k] for o in per_seed]))
        opt_test = float(np.median([o["optuna_median"]["test_of_best"] for o in per_seed]))
        rows.append({"arm": arm, "reach Optuna-5min (s, median)": med("reach_s"),
                     f"val@{args.target_seconds:.0f}s": med("val_at_target_s"),
                     f"test@{args.target_seconds:.0f}s": med("test_at_target_s"),
                     "optuna test": opt_test, "utilization": med("utilization"),
                     "sched ms/round": med("overhead_ms_per_round"),
                     "strategy ms/round": med("strategy_ms_per_round"),
                     "round ms": med("round_ms"), "warm-up s": warm[arm]})
    for pr in args.optuna.split(","):
        os_ = [o[f"optuna_{pr}"] for o in per_seed if f"optuna_{pr}" in o]
        if os_:
            rows.append({"arm": f"optuna_tpe+{pr} ({args.optuna_budget:.0f}s)",
                         f"val@{args.target_seconds:.0f}s": float(np.median(
                             [max([v for t, v in o["trace"] if t <= args.target_seconds],
                                  default=float("nan")) for o in os_])),
                         "optuna test": float(np.median([o["test_of_best"] for o in os_])),
                         "reach Optuna-5min (s, median)": float(np.median(
                             [time_to_reach(o["trace"], o["best_val"]) for o in os_])),
                         "warm-up s": float(np.median([o["warmup_s"] for o in os_]))})
    cols = ["arm", "reach Optuna-5min (s, median)", f"val@{args.target_seconds:.0f}s",
            f"test@{args.target_seconds:.0f}s", "optuna test", "utilization",
            "sched ms/round", "strategy ms/round", "round ms", "warm-up s"]
    print_table(rows, cols, f"MNIST-1D MLP, {args.seeds} seeds, Optuna budget "
                            f"{args.optuna_budget:.0f}s, jaxhpo budget {args.jax_budget:.0f}s")
    path = write_result("e2e_mnist1d", {"args": vars(args), "seeds": per_seed, "table": rows})
    print("wrote", path)


if __name__ == "__main__":
    main()
