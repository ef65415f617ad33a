"""Hyperparameter importance on functions with analytic Sobol indices: jaxhpo's fANOVA,
PED-ANOVA and GP-Sobol against Optuna's fANOVA and PED-ANOVA on the same trials.

For each seed, ``--trials`` uniform random-search trials (``jaxhpo.minimize`` with
``random_search``) are the data; every method reads the same History (Optuna's evaluators read
it through ``History.to_optuna``). Functions, with ``g(u) = sin(2 pi u)`` (mean 0, variance
1/2) of unit-cube coordinates:

* ``additive-w10``: ``f = 10 g(x0) + g(x1) + 0 x2``: first-order indices
  ``(100, 1, 0) / 101``;
* ``additive-v10``: ``f = sqrt(10) g(x0) + g(x1) + 0 x2``: variances 10 : 1 : 0, indices
  ``(10, 1, 0) / 11``;
* ``mixed``: a log float ``lr``, an int ``width`` in 1..8, a categorical ``opt``
  (``sgd, adam, rms``), ``mom`` active only when ``opt == "sgd"``, a dummy ``noise``:
  ``f = 3 g(u_lr) + c[opt] + 2 (width - 1) / 7 + [opt == sgd] 2 g(mom)``, ``c = (0, 1.5, -1)``.
  Its first-order variances in closed form: ``V_lr = 9/2``, ``V_width = 4 * 63 / (12 * 49)``,
  ``V_opt = Var(c)``, ``V_mom = (1/3)^2 * 4 / 2``, total ``V = V_lr + V_width + Var(c) +
  (1/3) * 4 / 2`` (the opt x mom interaction is not first-order).

Reported per function and method: the median over seeds of each parameter's normalized
importance, the fraction of seeds whose ranking is the analytic one (parameters with index 0
may come in any order after the others), and for GP-Sobol the largest ``|S_i - S_i^true|`` of
its raw (unnormalized) first-order indices (median and max over seeds).

    python benchmarks/importance.py                  # 5 seeds x 100 trials, all functions
    python benchmarks/importance.py --seeds 2 --functions additive-v10
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Categorical, Float, Int, Space  # noqa: E402
from jaxhpo.strategies import random_search  # noqa: E402


def g(u):
    return jnp.sin(2.0 * jnp.pi * u)


UNIT3 = Space({"x0": Float(0.0, 1.0), "x1": Float(0.0, 1.0), "x2": Float(0.0, 1.0)})
MIXED = Space({"lr": Float(1e-4, 1e-1, log=True), "width": Int(1, 8),
               "opt": Categorical(["sgd", "adam", "rms"]),
               "mom": Float(0.0, 1.0, condition={"opt": "sgd"}), "noise": Float(0.0, 1.0)})
C_OPT = np.array([0.0, 1.5, -1.0])


def _mixed_truth() -> dict:
    v = {"lr": 9 / 2, "width": 4 * 63 / (12 * 49), "opt": float(np.var(C_OPT)),
         "mom": (1 / 3) ** 2 * 4 / 2, "noise": 0.0}
    total = v["lr"] + v["width"] + v["opt"] + (1 / 3) * 4 / 2
    return {k: x / total for k, x in v.items()}


FUNCTIONS = {
    "additive-w10": (UNIT3, lambda key, hp: 10.0 * g(hp["x0"]) + g(hp["x1"]) + 0.0 * hp["x2"],
                     {"x0": 100 / 101, "x1": 1 / 101, "x2": 0.0}),
    "additive-v10": (UNIT3, lambda key, hp: math.sqrt(10.0) * g(hp["x0"]) + g(hp["x1"])
                     + 0.0 * hp["x2"], {"x0": 10 / 11, "x1": 1 / 11, "x2": 0.0}),
    "mixed": (MIXED, lambda key, hp: 3.0 * g((jnp.log10(hp["lr"]) + 4.0) / 3.0)
              + jnp.asarray(C_OPT, jnp.float32)[hp["opt"]] + 2.0 * (hp["width"] - 1) / 7.0
              + jnp.where(hp["opt"] == 0, 2.0 * g(hp["mom"]), 0.0) + 0.0 * hp["noise"],
              _mixed_truth()),
}
METHODS = ("fanova", "ped_anova", "gp_sobol", "optuna_fanova", "optuna_ped_anova")


def ranking_ok(imp: dict, truth: dict) -> bool:
    """The parameters with a positive true index come first, in the true order."""
    pos = [k for k in sorted(truth, key=lambda k: -truth[k]) if truth[k] > 0]
    return list(imp)[:len(pos)] == pos


def optuna_importance(history, space, method, seed):
    import optuna
    from optuna.importance import (FanovaImportanceEvaluator, PedAnovaImportanceEvaluator,
                                   get_param_importances)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = history.to_optuna(optuna.create_study(), space)
    ev = (FanovaImportanceEvaluator(seed=seed) if method == "optuna_fanova"
          else PedAnovaImportanceEvaluator())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = get_param_importances(study, evaluator=ev, params=list(space.names))
    return {k: float(v) for k, v in imp.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    methods = args.methods.split(",")
    results, rows = {}, []
    for fname in args.functions.split(","):
        space, fn, truth = FUNCTIONS[fname]
        per = {m: {"importance": [], "ranking_ok": [], "seconds": []} for m in methods}
        sobol_err = []
        for seed in range(args.seeds):
            res = jaxhpo.minimize(fn, space, random_search(space, args.trials),
                                  num_generations=1, key=seed, progress=False)
            for m in methods:
                t0 = time.perf_counter()
                if m.startswith("optuna_"):
                    imp = optuna_importance(res.history, space, m, seed)
                else:
                    imp = jaxhpo.importance(res, m, seed=seed, normalize=False)
                per[m]["seconds"].append(time.perf_counter() - t0)
                if m == "gp_sobol":
                    sobol_err.append(max(abs(imp[k] - truth[k]) for k in truth))
                    per[m].setdefault("raw", []).append(imp)
                if not m.startswith("optuna_"):  # normalized as importance(normalize=True)
                    tot = sum(imp.values())
                    imp = {k: v / tot for k, v in imp.items()}
                per[m]["importance"].append(imp)
                per[m]["ranking_ok"].append(ranking_ok(imp, truth))
            print(f"{fname} seed {seed}: " + ", ".join(
                f"{m} {'ok' if per[m]['ranking_ok'][-1] else 'WRONG'}" for m in methods),
                flush=True)
        out = {"truth": truth, "methods": {}}
        for m in methods:
            med = {k: float(np.median([imp.get(k, 0.0) for imp in per[m]["importance"]]))
                   for k in space.names}
            entry = {"median_importance": med,
                     "ranking_ok_fraction": float(np.mean(per[m]["ranking_ok"])),
                     "median_seconds": float(np.median(per[m]["seconds"])),
                     "per_seed": per[m]["importance"]}
            row = {"function": fname, "method": m,
                   "ranking ok": f"{sum(per[m]['ranking_ok'])}/{args.seeds}",
                   **{k: f"{med[k]:.3f}" for k in space.names},
                   "s": f"{entry['median_seconds']:.2f}"}
            if m == "gp_sobol":
                entry["raw_per_seed"] = per[m]["raw"]
                entry["max_abs_error"] = {"median": float(np.median(sobol_err)),
                                          "max": float(np.max(sobol_err)),
                                          "per_seed": sobol_err}
                row["max|S-S*|"] = f"{np.median(sobol_err):.3f} (max {np.max(sobol_err):.3f})"
            out["methods"][m] = entry
            rows.append(row)
        rows.append({"function": fname, "method": "analytic S_i",
                     **{k: f"{truth[k]:.3f}" for k in space.names}})
        results[fname] = out
    cols = ["function", "method", "ranking ok"]
    for fname in args.functions.split(","):
        cols += [k for k in FUNCTIONS[fname][0].names if k not in cols]
    print_table(rows, cols + ["max|S-S*|", "s"],
                f"importance after {args.trials} random trials ({args.seeds} seeds; median "
                "normalized importance; max|S-S*|: GP-Sobol raw indices vs analytic)")
    path = write_result("importance", {"trials": args.trials, "seeds": args.seeds,
                                       "results": results})
    print("wrote", path)


if __name__ == "__main__":
    main()
