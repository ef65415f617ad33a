"""Gradient-based tuning: descend the validation loss through the unrolled training.

Eight members start from quasi-random learning rates and weight decays; every round each trains
``--steps`` steps and then takes an Adam step on its (log) hyperparameters using the
hypergradient of the validation loss, differentiated through the training ``lax.scan`` with
rematerialization.

    python examples/hypergradients.py [--members 8] [--rounds 5] [--steps 80] [--hyper-lr 0.3]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import optax

from jaxhpo import Float, Space, hypergrad
from jaxhpo.strategies import quasi_random
from jaxhpo.train import Trainer, mlp, mnist1d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--hyper-lr", type=float, default=0.3,
                    help="Adam step size on the log hyperparameters")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    space = Space({"lr": Float(1e-4, 1e-1, log=True),
                   "weight_decay": Float(1e-5, 1e-1, log=True)})
    trainer = Trainer(mlp(10, max_width=32), mnist1d(2000), space=space, max_batch_size=64,
                      defaults={"optimizer": "adamw"})
    strategy = quasi_random(space, args.members)
    x0, _ = strategy.ask(jax.random.key(args.seed + 1), strategy.init(jax.random.key(args.seed)))
    res = hypergrad.hyper_tune(trainer, jax.random.key(args.seed), x0, rounds=args.rounds,
                               steps_per_round=args.steps, remat=True,
                               optimizer=optax.adam(args.hyper_lr))
    print(f"{args.members} members x {args.rounds} rounds x {args.steps} steps "
          f"in {res.seconds:.1f} s (compilation included)")
    print(f"  {'member':>6}  {'lr start -> end':>22}  {'val loss start -> end':>22}")
    for i in range(args.members):
        lr = res.params["lr"][:, i]
        print(f"  {i:6d}  {lr[0]:9.2e} -> {lr[-1]:9.2e}  "
              f"{res.val_loss[0, i]:9.3f} -> {res.val_loss[-1, i]:9.3f}")
    print(f"best member {res.best}: test accuracy {res.final['test_accuracy'][res.best]:.3f}, "
          f"params {res.best_params}")
    print(f"median val loss after round 1 {np.median(res.val_loss[0]):.3f}, after the last "
          f"{np.median(res.val_loss[-1]):.3f}")
    return res


if __name__ == "__main__":
    main()
