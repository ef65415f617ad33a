"""Multi-objective demo: validation accuracy vs model size vs training cost on MNIST-1D.

NSGA-II proposes MLP configurations (learning rate, width, depth, batch size); each generation's
population is trained at once under vmap by ``jaxhpo.train``; the three objectives come from the
engine's metrics: ``val_accuracy`` (maximize), ``param_count`` (active parameters, minimize) and
``train_gflops`` = 3 x forward FLOPs x batch size x steps (minimize). Prints the Pareto front and
its hypervolume (objectives normalized to [0, 1] against the search's extremes).

    python scripts/demo_multiobjective.py [--population 24] [--generations 4] [--steps 600]
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import jaxhpo  # noqa: E402
from jaxhpo import Categorical, Float, Int, Space  # noqa: E402
from jaxhpo.train import Trainer, mlp, mnist1d  # noqa: E402

SPACE = Space({
    "lr": Float(3e-4, 3e-2, log=True),
    "width": Int(8, 128, log=True),
    "depth": Int(1, 3),
    "batch_size": Categorical([32, 64, 128]),
})


def make_objective(steps: int):
    trainer = Trainer(mlp(10, max_width=128, max_depth=3, activations=("gelu",)), mnist1d(),
                      space=SPACE, total_steps=steps,
                      defaults={"optimizer": "adamw", "schedule": "cosine",
                                "weight_decay": 0.01})
    train = trainer.objective(steps, splits=("val",))

    def objective(key, hp):
        m = train(key, hp)
        batch = trainer.hparams(hp)["batch_size"]
        return {**m, "train_gflops": 3.0 * m["flops"] * batch * steps / 1e9}

    return objective


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=24)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    metrics = ["val_accuracy", "param_count", "train_gflops"]
    t0 = time.perf_counter()
    res = jaxhpo.minimize(make_objective(args.steps), SPACE,
                          jaxhpo.strategies.nsga2(SPACE, args.population, num_objectives=3),
                          num_generations=args.generations, key=args.seed, metric=metrics,
                          direction=["maximize", "minimize", "minimize"])
    front = sorted(res.best_trials, key=lambda t: -t.values[0])
    print(f"{len(res.history)} models trained in {time.perf_counter() - t0:.1f} s; "
          f"Pareto front ({len(front)} of them):")
    print(f"  {'val_acc':>7}  {'params':>7}  {'GFLOPs':>7}  config")
    for t in front:
        print(f"  {t.values[0]:7.3f}  {t.values[1]:7.0f}  {t.values[2]:7.2f}  {t.params}")
    vals = res.history.minimization_values()
    lo, hi = vals.min(0), vals.max(0)
    hv = jaxhpo.hypervolume((vals - lo) / np.where(hi > lo, hi - lo, 1.0), np.full(3, 1.1))
    print(f"normalized hypervolume (reference 1.1^3): {hv:.3f}")
    return res


if __name__ == "__main__":
    main()
