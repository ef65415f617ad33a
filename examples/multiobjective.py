"""Two objectives at once: validation accuracy vs model size, NSGA-II, and the Pareto front.

Each generation of MLPs (learning rate, width, depth) trains as one vmapped population; the
engine reports ``param_count`` (active parameters) next to the accuracy, so the search trades
the two off. ``result.best_trials`` is the Pareto front (non-dominated trials).

    python examples/multiobjective.py [--population 16] [--generations 4] [--steps 300]
"""

from __future__ import annotations

import argparse

import numpy as np

import jaxhpo
from jaxhpo import Float, Int, Space
from jaxhpo.strategies import nsga2
from jaxhpo.train import Trainer, mlp, mnist1d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write the Pareto front to this PNG "
                    "(needs matplotlib)")
    args = ap.parse_args(argv)

    space = Space({"lr": Float(1e-3, 3e-2, log=True),
                   "width": Int(4, 64, log=True),
                   "depth": Int(1, 2)})
    trainer = Trainer(mlp(10, max_width=64, max_depth=2), mnist1d(2000), space=space,
                      total_steps=args.steps, max_batch_size=64)
    result = jaxhpo.minimize(trainer.objective(args.steps), space,
                             nsga2(space, args.population, num_objectives=2),
                             num_generations=args.generations, key=args.seed,
                             metric=["val_accuracy", "param_count"],
                             direction=["maximize", "minimize"])
    front = sorted(result.best_trials, key=lambda t: t.values[1])
    print(f"{len(result.history)} models; Pareto front of {len(front)}:")
    print(f"  {'val_acc':>7}  {'params':>7}  config")
    for t in front:
        print(f"  {t.values[0]:7.3f}  {t.values[1]:7.0f}  {t.params}")
    vals = result.history.minimization_values()
    lo, hi = vals.min(0), vals.max(0)
    hv = jaxhpo.hypervolume((vals - lo) / np.where(hi > lo, hi - lo, 1.0), np.full(2, 1.1))
    print(f"normalized hypervolume (reference point 1.1, 1.1): {hv:.3f}")
    if args.plot:
        from jaxhpo import plot
        plot.pareto(result).savefig(args.plot)
        print("wrote", args.plot)
    return result


if __name__ == "__main__":
    main()
