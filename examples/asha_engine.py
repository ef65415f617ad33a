"""ASHA on the vmapped engine: 16 slots train in lock-step, freed slots are refilled at once.

Each round trains every busy slot ``eval_every`` steps in one compiled call; ASHA pauses trials
at its rungs (40, 120, 360 steps), promotes the best third, and the strategy (TPE) refills freed
slots with new configurations. Prints the slot utilization and how far trials got.

    python examples/asha_engine.py [--trials 48] [--slots 16] [--max-steps 360]
"""

from __future__ import annotations

import argparse
import collections

import jaxhpo
from jaxhpo import Float, Int, Space
from jaxhpo import schedulers as S
from jaxhpo.strategies import tpe
from jaxhpo.train import Trainer, mlp, mnist1d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=48)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=360)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--journal", default=None, help="JSON Lines journal (resumable)")
    args = ap.parse_args(argv)

    space = Space({"lr": Float(1e-4, 3e-2, log=True),
                   "weight_decay": Float(1e-5, 1e-1, log=True),
                   "width": Int(8, 64, log=True)})
    trainer = Trainer(mlp(10, max_width=64), mnist1d(2000), space=space, max_batch_size=64,
                      defaults={"optimizer": "adamw"})
    result = jaxhpo.tune(trainer, space, tpe(space, 8, capacity=128),
                         S.ASHA(min_steps=40, max_steps=args.max_steps, eta=3),
                         max_trials=args.trials, population_size=args.slots,
                         metric="accuracy", direction="maximize", key=args.seed,
                         journal=args.journal, progress=False)
    reached = collections.Counter(int(t.fidelity) for t in result.history)
    print(f"{len(result.history)} trials in {result.rounds} rounds, utilization "
          f"{result.utilization:.0%}; trials ending at each budget: {dict(sorted(reached.items()))}")
    best = result.best_trial
    print(f"best val accuracy {best.value:.3f} (test {best.metrics['test_accuracy']:.3f}) "
          f"with {best.params}")
    return result


if __name__ == "__main__":
    main()
