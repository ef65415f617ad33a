"""Accuracy reached by tuned populations on MNIST-1D (the engine's quality figures).

* MLP: a population of 64 residual MLPs (up to 256 wide, 3 hidden layers, GELU, AdamW with a
  cosine schedule, dropout 0.25, label smoothing 0.1), tuned over learning rate, width and
  weight decay by one quasi-random generation; the member with the best validation accuracy is
  reported with its test accuracy. The MNIST-1D paper reports 68% for its MLP.
* CNN: 16 1-D CNNs (32 channels) tuned over learning rate and weight decay the same way
  (paper: 94%).

    python benchmarks/mnist1d_accuracy.py [--mlp-steps 3000] [--cnn-steps 2000] [--seeds 1]
"""

from __future__ import annotations

import os

# One XLA host device per core, so populations shard over the cores (see
# jaxhpo.train.auto_mesh); must be set before JAX starts. No effect on GPU/TPU devices.
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Int, Space  # noqa: E402
from jaxhpo.train import Population, Trainer, cnn, mlp, mnist1d  # noqa: E402

FIXED = {"optimizer": "adamw", "schedule": "cosine"}


def tune(model, space, defaults, members, steps, seed, data):
    tr = Trainer(model, data, space=space, defaults={**FIXED, **defaults}, total_steps=steps)
    pop = Population(tr, members)
    strategy = jaxhpo.strategies.quasi_random(space, members)
    x, _ = strategy.ask(jax.random.key(seed), strategy.init(jax.random.key(seed)))
    hp = space.decode(x)
    t0 = time.perf_counter()
    state, _ = pop.train(pop.init(jax.random.key(seed + 1), hp), hp, steps)
    val = np.asarray(pop.evaluate(state, hp, "val")["accuracy"])
    test = np.asarray(pop.evaluate(state, hp, "test")["accuracy"])
    best = int(np.nanargmax(val))
    return {"members": members, "steps": steps, "seed": seed,
            "seconds": time.perf_counter() - t0, "best_val": float(val[best]),
            "test_of_best_val": float(test[best]), "median_test": float(np.nanmedian(test)),
            "best_params": space.to_params(np.asarray(x[best]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mlp-steps", type=int, default=3000)
    ap.add_argument("--cnn-steps", type=int, default=2000)
    ap.add_argument("--mlp-members", type=int, default=64)
    ap.add_argument("--cnn-members", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--models", default="mlp,cnn")
    args = ap.parse_args(argv)
    data = mnist1d()
    rows = []
    for seed in range(args.seeds):
        if "mlp" in args.models:
            space = Space({"lr": Float(1e-4, 1e-2, log=True), "width": Int(32, 256, log=True),
                           "weight_decay": Float(1e-4, 3e-1, log=True)})
            model = mlp(10, max_width=256, max_depth=3, activations=("gelu",))
            r = tune(model, space, {"dropout": 0.25, "label_smoothing": 0.1}, args.mlp_members,
                     args.mlp_steps, seed, data)
            rows.append({"model": "mlp", **r})
        if "cnn" in args.models:
            space = Space({"lr": Float(3e-4, 1e-2, log=True),
                           "weight_decay": Float(1e-5, 1e-1, log=True)})
            model = cnn(10, ndim=1, max_width=32, max_depth=1, activations=("gelu",))
            r = tune(model, space, {}, args.cnn_members, args.cnn_steps, seed, data)
            rows.append({"model": "cnn", **r})
    print_table(rows, ["model", "seed", "members", "steps", "best_val", "test_of_best_val",
                       "median_test", "seconds"], "MNIST-1D: test accuracy of the member with "
                                                  "the best validation accuracy")
    for r in rows:
        print(f"  {r['model']} seed {r['seed']}: {r['best_params']}")
    print(f"\nwrote {write_result('mnist1d_accuracy', {'rows': rows})}")


if __name__ == "__main__":
    main()
