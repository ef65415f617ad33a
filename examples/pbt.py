"""Population based training on the vmapped engine, and each member's learning-rate schedule.

Every ``interval`` steps the bottom quarter of the 16 members copy the weights and optimizer
state of a top member and perturb its hyperparameters (x0.8 / x1.2 or resample), so the
hyperparameters become schedules. ``result.schedules`` holds each final member's lineage.

    python examples/pbt.py [--slots 16] [--max-steps 600] [--interval 100]
"""

from __future__ import annotations

import argparse

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo import schedulers as S
from jaxhpo.strategies import random_search
from jaxhpo.train import Trainer, mlp, mnist1d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=600)
    ap.add_argument("--interval", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    space = Space({"lr": Float(1e-4, 3e-2, log=True),
                   "weight_decay": Float(1e-5, 1e-1, log=True)})
    trainer = Trainer(mlp(10, max_width=64), mnist1d(2000), space=space, max_batch_size=64,
                      defaults={"optimizer": "adamw"})
    result = jaxhpo.tune(trainer, space, random_search(space, args.slots),
                         S.PBT(max_steps=args.max_steps, interval=args.interval),
                         max_trials=args.slots, population_size=args.slots,
                         metric="accuracy", direction="maximize", key=args.seed, progress=False)
    best = result.best_trial
    print(f"best val accuracy {best.value:.3f} (test {best.metrics['test_accuracy']:.3f})")
    slot = best.member
    if result.schedules and slot in result.schedules:
        print(f"lineage of the best member (slot {slot}):")
        for seg in result.schedules[slot]:
            hp = space.to_params(seg["x"])
            came = "" if seg["copied_from"] is None else f" (copied from slot {seg['copied_from']})"
            print(f"   from step {seg['step']:4d}: lr {hp['lr']:.2e}, weight_decay "
                  f"{hp['weight_decay']:.2e}{came}")
    return result


if __name__ == "__main__":
    main()
