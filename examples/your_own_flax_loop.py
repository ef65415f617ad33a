"""Your own Flax training loop, tuned: a vmapped population with static width and optimizer.

A new user's code: a plain Flax linen MLP on scikit-learn's ``load_digits``, trained by a
jitted step in a Python loop (``train`` below, unchanged). To tune it, the body of ``train``
becomes three functions of ``hp`` (``init``, ``step``, ``evaluate``: 10 lines, marked
``# tuned``); ``setup``, ``train_step`` and ``accuracy`` are reused as they are. ``width`` and
``optimizer`` are *static* hyperparameters: the code receives them as Python values
(``MLP(width)``, ``getattr(optax, optimizer)``), and jaxhpo trains one compiled, vmapped
program per group of equal static values. ``lr`` and ``wd`` are traced: each member's own.

``jaxhpo.minimize(TrainingProgram(init, step, evaluate), space, tpe, steps=...)`` trains each
generation as one vmapped population; ``jaxhpo.tune`` takes the same program for early stopping
(ASHA, HyperBand) and PBT.

    python examples/your_own_flax_loop.py [--members 32] [--steps 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import jaxhpo
from jaxhpo import Categorical, Float
from jaxhpo.train import TrainingProgram

# ----------------------------------------------------------------------------- the user's code
x, y = load_digits(return_X_y=True)
perm = np.random.default_rng(0).permutation(len(x))
x, y = jnp.asarray(x[perm] / 16.0, jnp.float32), jnp.asarray(y[perm], jnp.int32)
x_train, y_train, x_val, y_val = x[:1437], y[:1437], x[1437:], y[1437:]
BATCH = 64


class MLP(nn.Module):
    width: int = 64

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.width)(x))
        x = nn.relu(nn.Dense(self.width)(x))
        return nn.Dense(10)(x)


def setup(lr, wd, width, optimizer):
    model = MLP(width)
    tx = optax.chain(optax.add_decayed_weights(wd), getattr(optax, optimizer)(lr))
    return model, tx


def xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def train_step(model, tx, params, opt_state, key):
    i = jax.random.randint(key, (BATCH,), 0, len(x_train))
    loss, grads = jax.value_and_grad(
        lambda p: xent(model.apply({"params": p}, x_train[i]), y_train[i]))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def accuracy(model, params):
    return jnp.mean(jnp.argmax(model.apply({"params": params}, x_val), -1) == y_val)


def train(key, lr=3e-3, wd=1e-4, width=64, optimizer="adam", steps=600):  # the original
    model, tx = setup(lr, wd, width, optimizer)
    params = model.init(key, x_train[:1])["params"]
    opt_state = tx.init(params)
    step = jax.jit(lambda p, s, k: train_step(model, tx, p, s, k))
    for t in range(steps):
        params, opt_state, loss = step(params, opt_state, jax.random.fold_in(key, t))
    return float(accuracy(model, params))


# ----------------------------------------------------------------------------- tuned
def init(key, hp):                                                          # tuned
    model, tx = setup(hp["lr"], hp["wd"], hp["width"], hp["optimizer"])     # tuned
    params = model.init(key, x_train[:1])["params"]
    return params, tx.init(params)                                          # tuned


def step(state, key, hp):                                                   # tuned
    model, tx = setup(hp["lr"], hp["wd"], hp["width"], hp["optimizer"])     # tuned
    params, opt_state, loss = train_step(model, tx, *state, key)            # tuned
    return (params, opt_state), {"loss": loss}                              # tuned


def evaluate(state, hp):                                                    # tuned
    model, _ = setup(hp["lr"], hp["wd"], hp["width"], hp["optimizer"])      # tuned
    return {"accuracy": accuracy(model, state[0])}                          # tuned


space = jaxhpo.Space({
    "lr": Float(1e-3, 3e-1, log=True),
    "wd": Float(1e-6, 1e-3, log=True),
    "width": Categorical([32, 64, 128], static=True),   # a shape: one program per width
    "optimizer": Categorical(["adam", "sgd"], static=True),  # picks code
})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=32, help="configurations per generation")
    ap.add_argument("--generations", type=int, default=1)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-original", action="store_true",
                    help="also train the best configuration with the original loop")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    res = jaxhpo.minimize(TrainingProgram(init, step, evaluate), space,
                          jaxhpo.strategies.tpe(space, args.members),
                          num_generations=args.generations, steps=args.steps,
                          metric="accuracy", direction="maximize", key=args.seed,
                          progress=False)
    seconds = time.perf_counter() - t0
    widths = {(t.params["width"], t.params["optimizer"]) for t in res.history}
    print(f"{len(res.history)} configurations in {len(widths)} static groups, {args.steps} "
          f"steps each: {seconds:.1f} s (compilation included)")
    print(f"best validation accuracy {res.best_value:.4f} with {res.best_params}")
    out = {"best_accuracy": res.best_value, "best_params": res.best_params,
           "groups": len(widths), "seconds": seconds, "result": res}
    if args.check_original:
        out["original_accuracy"] = train(jax.random.key(args.seed), steps=args.steps,
                                         **res.best_params)
        print(f"the original loop with those hyperparameters: {out['original_accuracy']:.4f}")
    return out


if __name__ == "__main__":
    main()
