"""Constrained search quality: regret among feasible trials on Branin with a disk constraint.

Problem (Gelbart, Snoek & Adams, "Bayesian Optimization with Unknown Constraints", UAI 2014,
Sect. 5.1): minimize Branin-Hoo over ``[-5, 10] x [0, 15]`` subject to
``(x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50``, i.e. ``c(x) = (x1 - 2.5)^2 + (x2 - 7.5)^2 - 50 <= 0``
(Optuna's and jaxhpo's convention). Two of Branin's three global minima lie outside the disk, so
an optimizer that ignores the constraint spends evaluations where they do not count. The
constrained optimum is computed here on a dense grid (``--grid`` points per axis).

Regret after ``n`` evaluations = (best objective among the feasible trials so far) - (constrained
optimum); ``inf`` while no trial is feasible (the table counts those seeds). jaxhpo's gp_bo and
tpe are built with ``num_constraints=1`` and told the constraint values; for reference the same
strategies without constraints (they still only count feasible trials) and Optuna's GPSampler
and TPESampler, constrained (``trial.set_constraint``, or ``constraints_func`` before Optuna 5),
all in the same run, one evaluation at a time.
A jaxhpo factory without a ``num_constraints`` argument is reported and skipped.

    python benchmarks/constrained.py                 # 50 evaluations, 10 seeds
    python benchmarks/constrained.py --quick         # 2 seeds, 20 evaluations
    python benchmarks/constrained.py --jobs 3        # strategies in 3 processes at once
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # GP solves (see tests/conftest.py)

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402

LOW, HIGH = np.array([-5.0, 0.0]), np.array([10.0, 15.0])
SPACE = jaxhpo.Space({"x1": jaxhpo.Float(-5.0, 10.0), "x2": jaxhpo.Float(0.0, 15.0)})


def branin(x):
    """Branin-Hoo ``f(x)`` for ``x f[..., 2]`` in the original domain."""
    x1, x2 = x[..., 0], x[..., 1]
    b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * jnp.cos(x1) + 10


def disk(x):
    """``c(x) <= 0`` inside the disk of radius sqrt(50) around (2.5, 7.5)."""
    return (x[..., 0] - 2.5) ** 2 + (x[..., 1] - 7.5) ** 2 - 50.0


def constrained_optimum(n: int) -> float:
    """``min f`` over the feasible points of an ``n x n`` grid, then of a ``401 x 401`` grid
    spanning two cells around the best of them."""
    def best(x1, x2):
        g = np.stack(np.meshgrid(x1, x2), -1).reshape(-1, 2)
        f = np.where(np.asarray(disk(g)) <= 0, np.asarray(branin(g), np.float64), np.inf)
        return g[np.argmin(f)], float(f.min())

    (b1, b2), coarse = best(np.linspace(-5, 10, n), np.linspace(0, 15, n))
    h = 30.0 / (n - 1)
    _, fine = best(np.linspace(b1 - h, b1 + h, 401), np.linspace(b2 - h, b2 + h, 401))
    return min(coarse, fine)


def _supports_constraints(factory) -> bool:
    return "num_constraints" in inspect.signature(factory).parameters


# name -> (factory name in jaxhpo.strategies, num_constraints)
JAXHPO = {"gp_bo": ("gp_bo", 1), "tpe": ("tpe", 1),
          "gp_bo_unconstrained": ("gp_bo", 0), "tpe_unconstrained": ("tpe", 0)}


def run_jaxhpo(name: str, k: int, evals: int, seeds: list[int]):
    """``(f, c) f64[seeds, evals]`` of one jaxhpo strategy, one evaluation per generation, the
    trials of ``jaxhpo.minimize_scan(..., constraints=["c"], key=seed)`` (same key derivation);
    one compile serves every seed."""
    factory = getattr(jaxhpo.strategies, name)
    strategy = factory(SPACE, 1, num_constraints=k) if k else factory(SPACE, 1)

    @jax.jit
    def run(key):
        k_init, k_run = jax.random.split(key)

        def gen(state, g):
            k_ask, _ = jax.random.split(jax.random.fold_in(k_run, g))
            u, state = strategy.ask(k_ask, state)
            x = jnp.asarray(LOW) + u * jnp.asarray(HIGH - LOW)
            f, c = branin(x), disk(x)[:, None]
            state = strategy.tell(state, u, f, c) if k else strategy.tell(state, u, f)
            return state, (f, c[:, 0])

        state = strategy.init(k_init)
        if strategy.reserve is not None:
            state = strategy.reserve(state, evals)
        return jax.lax.scan(gen, state, jnp.arange(evals))[1]

    fs, cs = [], []
    for s in seeds:
        f, c = run(jax.random.key(s))
        fs.append(np.asarray(f, np.float64).ravel())
        cs.append(np.asarray(c, np.float64).ravel())
    return np.array(fs), np.array(cs)


def run_optuna(kind: str, evals: int, seeds: list[int]):
    """``(f, c) f64[seeds, evals]`` of Optuna's GPSampler / TPESampler, constrained: through
    ``trial.set_constraint`` where Optuna has it (>= 5.0, which deprecates
    ``constraints_func``), else ``constraints_func`` (both store the same system attribute)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    new_api = hasattr(optuna.trial.Trial, "set_constraint")
    kw = {} if new_api else {"constraints_func": lambda t: (t.user_attrs["c"],)}
    fs, cs = [], []
    for s in seeds:
        sampler = (optuna.samplers.GPSampler(seed=s, **kw) if kind == "gp"
                   else optuna.samplers.TPESampler(seed=s, **kw))
        study = optuna.create_study(sampler=sampler)

        def objective(t):
            x = np.array([t.suggest_float("x1", -5.0, 10.0), t.suggest_float("x2", 0.0, 15.0)])
            c = float(disk(x))
            t.set_user_attr("c", c)
            if new_api:
                t.set_constraint("c", c)
            return float(branin(x))

        study.optimize(objective, n_trials=evals)
        fs.append([t.value for t in study.trials])
        cs.append([t.user_attrs["c"] for t in study.trials])
    return np.array(fs, np.float64), np.array(cs, np.float64)


def source_digest() -> dict:
    """sha256 (first 12 hex digits) of the strategy sources measured, so a result can be tied
    to the commit whose files match."""
    import glob
    import hashlib

    root = os.path.dirname(os.path.abspath(jaxhpo.__file__))
    files = [os.path.join(root, "strategies", f) for f in
             ("_gp_bo.py", "_gp_bo_propose.py", "_tpe.py", "_parzen.py")]
    files += sorted(glob.glob(os.path.join(root, "gp", "*.py")))
    return {os.path.relpath(f, os.path.dirname(root)): hashlib.sha256(
        open(f, "rb").read()).hexdigest()[:12] for f in files if os.path.exists(f)}


def regret_curves(f, c, optimum) -> np.ndarray:
    """``f64[seeds, evals]`` best feasible value so far minus the optimum (``inf`` before the
    first feasible trial)."""
    return np.minimum.accumulate(np.where(c <= 0, f, np.inf), axis=1) - optimum


def measure(name: str, evals: int, seeds: list[int]):
    """``(f, c, seconds)`` of one strategy, or ``None`` (skipped: no ``num_constraints``)."""
    t0 = time.perf_counter()
    if name in JAXHPO:
        factory, k = JAXHPO[name]
        if k and not _supports_constraints(getattr(jaxhpo.strategies, factory)):
            return None
        f, c = run_jaxhpo(factory, k, evals, seeds)
    else:
        f, c = run_optuna(name[7:], evals, seeds)
    return f, c, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--grid", type=int, default=2001, help="points per axis for the optimum")
    ap.add_argument("--strategies", default=",".join([*JAXHPO, "optuna_gp", "optuna_tpe"]))
    ap.add_argument("--quick", action="store_true", help="2 seeds, 20 evaluations")
    ap.add_argument("--jobs", type=int, default=1,
                    help="strategies measured at once, each in its own process (regrets do not "
                         "depend on it; 'seconds' are then per process, not comparable)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.evals = 2, 20
    seeds = list(range(args.seeds))
    optimum = constrained_optimum(args.grid)
    print(f"Branin with a disk constraint: constrained optimum {optimum:.6f} "
          f"({args.grid}^2 grid + local refinement); {args.evals} evaluations, "
          f"{args.seeds} seeds")
    checkpoints = sorted({min(25, args.evals), args.evals})
    rows, results, skipped = [], {}, {}
    names = args.strategies.split(",")
    for name in names:
        if name not in JAXHPO and name not in ("optuna_gp", "optuna_tpe"):
            raise SystemExit(f"unknown strategy {name!r}; choose from "
                             f"{[*JAXHPO, 'optuna_gp', 'optuna_tpe']}")
    if args.jobs > 1:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(args.jobs, multiprocessing.get_context("spawn")) as ex:
            futures = [ex.submit(measure, n, args.evals, seeds) for n in names]
            measured = [fut.result() for fut in futures]
    else:
        measured = (measure(n, args.evals, seeds) for n in names)
    for name, out in zip(names, measured):
        if out is None:
            skipped[name] = f"jaxhpo.strategies.{JAXHPO[name][0]} has no num_constraints argument"
            print(f"skipping {name}: {skipped[name]}")
            continue
        f, c, wall = out
        r = regret_curves(f, c, optimum)
        row = {"strategy": name, "feasible %": 100.0 * float(np.mean(c <= 0)),
               "no feasible": int(np.sum(~np.isfinite(r[:, -1]))), "seconds": round(wall, 1)}
        for n in checkpoints:
            row[f"median@{n}"] = float(np.median(r[:, n - 1]))
            row[f"IQR@{n}"] = "[{:.3g}, {:.3g}]".format(*np.percentile(r[:, n - 1], [25, 75]))
        rows.append(row)
        results[name] = {"regret": r.tolist(), "feasible_fraction": float(np.mean(c <= 0)),
                         "median_final": row[f"median@{args.evals}"], "seconds": wall}
        print(f"{name}: median regret @{args.evals} {row[f'median@{args.evals}']:.4g} "
              f"({wall:.0f} s)")
    cols = ["strategy"] + [f"{p}@{n}" for n in checkpoints for p in ("median", "IQR")] + [
        "feasible %", "no feasible", "seconds"]
    print_table(rows, cols, "median regret among feasible trials (best feasible - optimum)")
    path = write_result("constrained", {
        "problem": "branin_disk (Gelbart et al. 2014)", "optimum": optimum,
        "evals": args.evals, "seeds": seeds, "checkpoints": checkpoints, "results": results,
        "skipped": skipped, "sources": source_digest()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
