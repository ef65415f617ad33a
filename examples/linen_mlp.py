"""Tune an unmodified Flax linen MLP on MNIST-1D: 16 configurations trained at once under vmap.

The model is a plain ``flax.linen`` module; ``jaxhpo.train.from_linen`` adapts it so a
``Trainer`` can give every population member its own optimizer settings. TPE proposes 16
configurations per generation and each generation trains as one vmapped, jit-compiled program.

    python examples/linen_mlp.py [--generations 3] [--population 16] [--steps 400]
"""

from __future__ import annotations

import argparse

import flax.linen as nn

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo.strategies import tpe
from jaxhpo.train import Trainer, from_linen, mnist1d


class MLP(nn.Module):
    """Two hidden layers with dropout; nothing jaxhpo-specific in it."""

    width: int = 64

    @nn.compact
    def __call__(self, x, train: bool = False):
        for _ in range(2):
            x = nn.gelu(nn.Dense(self.width)(x))
            x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(10)(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    space = Space({"lr": Float(1e-4, 3e-2, log=True),
                   "weight_decay": Float(1e-5, 1e-1, log=True),
                   "b1": Float(0.8, 0.99)})
    trainer = Trainer(from_linen(MLP(), train_kwarg="train"), mnist1d(2000), space=space,
                      defaults={"optimizer": "adamw", "schedule": "cosine"},
                      total_steps=args.steps, max_batch_size=64)
    result = jaxhpo.minimize(trainer.objective(args.steps), space,
                             tpe(space, args.population, n_startup_trials=args.population),
                             num_generations=args.generations, key=args.seed,
                             metric="val_accuracy", direction="maximize")
    best = result.best_trial
    print(f"{len(result.history)} trials; best val accuracy {best.value:.3f}, "
          f"test accuracy {best.metrics['test_accuracy']:.3f}")
    print("best params:", {k: round(float(v), 5) for k, v in best.params.items()})
    return result


if __name__ == "__main__":
    main()
