"""Tune a Flax NNX 1-D CNN on MNIST-1D with random search, the population trained under vmap.

``jaxhpo.train.from_nnx`` takes ``make_model(rngs) -> nnx.Module`` and splits the module into
trainable ``nnx.Param`` state and the rest, so each member carries its own weights.

    python examples/nnx_cnn.py [--population 8] [--generations 2] [--steps 300]
"""

from __future__ import annotations

import argparse

import jax
from flax import nnx

import jaxhpo
from jaxhpo import Categorical, Float, Space
from jaxhpo.strategies import random_search
from jaxhpo.train import Trainer, from_nnx, mnist1d


class CNN(nnx.Module):
    """Two strided 1-D convolutions, global average pooling, a linear head."""

    def __init__(self, rngs: nnx.Rngs, channels: int = 16):
        self.conv1 = nnx.Conv(1, channels, kernel_size=(5,), strides=(2,), rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, kernel_size=(5,), strides=(2,), rngs=rngs)
        self.head = nnx.Linear(channels, 10, rngs=rngs)

    def __call__(self, x):
        x = x[..., None]                      # (batch, 40) -> (batch, 40, 1)
        x = jax.nn.relu(self.conv1(x))
        x = jax.nn.relu(self.conv2(x))
        return self.head(x.mean(axis=-2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    space = Space({"lr": Float(3e-4, 3e-2, log=True),
                   "optimizer": Categorical(["adam", "momentum"]),
                   "momentum": Float(0.5, 0.95, condition={"optimizer": "momentum"})})
    trainer = Trainer(from_nnx(lambda rngs: CNN(rngs)), mnist1d(2000), space=space,
                      total_steps=args.steps, max_batch_size=64)
    result = jaxhpo.minimize(trainer.objective(args.steps), space,
                             random_search(space, args.population),
                             num_generations=args.generations, key=args.seed,
                             metric="val_accuracy", direction="maximize")
    best = result.best_trial
    print(f"{len(result.history)} CNNs trained; best val accuracy {best.value:.3f} with "
          f"{best.params}")
    return result


if __name__ == "__main__":
    main()
