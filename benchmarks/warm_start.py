"""Warm starts: a strategy seeded with an earlier run's trials vs the same strategy unseeded.

For each seed, an earlier run of ``--earlier`` random-search trials on Hartmann-6 is the warm
start; TPE and GP-BO then run ``--evals`` new evaluations in batches of ``--batch``, seeded
(``minimize(..., warm_start=earlier)``) and unseeded, with the same key. The figure is the
median simple regret over seeds of the *new* evaluations, both arms in the same run.

    python benchmarks/warm_start.py                 # 10 seeds, 30 earlier trials, 30 new
"""

from __future__ import annotations

import argparse
import os
import sys

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import strategies as J  # noqa: E402

F = jaxhpo.functions.hartmann6()


def objective(key, hp):
    return F.fn(jnp.stack([hp[n] for n in F.space.names]))


def strategy(name, batch):
    if name == "tpe":
        return J.tpe(F.space, batch)
    return J.gp_bo(F.space, batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--earlier", type=int, default=30)
    ap.add_argument("--evals", type=int, default=30)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--strategies", default="tpe,gp_bo")
    args = ap.parse_args()
    rows, raw = [], {}
    for name in args.strategies.split(","):
        regrets = {"seeded": [], "unseeded": []}
        for s in range(args.seeds):
            earlier = jaxhpo.minimize(objective, F.space,
                                      J.random_search(F.space, args.earlier),
                                      num_generations=1, key=1000 + s, progress=False)
            for arm, ws in (("seeded", earlier), ("unseeded", None)):
                res = jaxhpo.minimize(objective, F.space, strategy(name, args.batch),
                                      num_generations=args.evals // args.batch, key=s,
                                      warm_start=ws, progress=False)
                regrets[arm].append(res.best_value - F.optimum_value)
        raw[name] = regrets
        rows.append({"strategy": name, "seeds": args.seeds,
                     "seeded regret": float(np.median(regrets["seeded"])),
                     "unseeded regret": float(np.median(regrets["unseeded"])),
                     "seeded better (seeds)": int(np.sum(np.array(regrets["seeded"])
                                                          < np.array(regrets["unseeded"])))})
        print(rows[-1], flush=True)
    cols = ["strategy", "seeds", "seeded regret", "unseeded regret", "seeded better (seeds)"]
    print_table(rows, cols, f"Hartmann-6: {args.evals} new evaluations in batches of "
                            f"{args.batch}, warm start = {args.earlier} random trials")
    print(write_result("warm_start", {"args": vars(args), "rows": rows, "regrets": raw}))


if __name__ == "__main__":
    main()
