"""jaxhpo demo: tune a small MLP on a generated dataset with a vmapped population.

Every configuration of a generation is trained at once: the objective below trains one MLP for
300 full-batch steps under ``lax.scan`` and ``jaxhpo.minimize`` jit-compiles it once and
``vmap``s it over the population. The data (two interleaved spirals) is generated here, so
nothing is downloaded. A second part compares random and quasi-random search on Hartmann6.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxhpo
from jaxhpo import Categorical, Float, Space
from jaxhpo.strategies import quasi_random, random_search


def spirals(n_per_class: int, noise: float, seed: int):
    """Two interleaved spirals in 2-d, labels 0/1: ``(f32[2n, 2], i32[2n])``."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1.0, n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)]).astype(np.int32)
    perm = rng.permutation(2 * n_per_class)
    return x[perm].astype(np.float32), y[perm]


SPACE = Space({
    "lr": Float(1e-4, 1.0, log=True),
    "optimizer": Categorical(["sgd", "adam"]),
    "momentum": Float(0.0, 0.99, condition={"optimizer": "sgd"}),
    "weight_decay": Float(1e-6, 1e-1, log=True),
    "init_scale": Float(0.1, 3.0, log=True),
})


def make_objective(steps: int = 300, width: int = 32, seed: int = 0):
    x, y = spirals(300, 0.05, seed)
    x_tr, y_tr, x_va, y_va = x[:400], y[:400], x[400:], y[400:]

    def init(key, scale):
        k1, k2, k3 = jax.random.split(key, 3)
        he = lambda k, i, o: scale * jax.random.normal(k, (i, o)) * jnp.sqrt(1.0 / i)
        return {"w1": he(k1, 2, width), "b1": jnp.zeros(width),
                "w2": he(k2, width, width), "b2": jnp.zeros(width),
                "w3": he(k3, width, 2), "b3": jnp.zeros(2)}

    def logits(p, xb):
        h = jnp.tanh(xb @ p["w1"] + p["b1"])
        h = jnp.tanh(h @ p["w2"] + p["b2"])
        return h @ p["w3"] + p["b3"]

    def loss_fn(p, xb, yb, wd):
        ce = optax.softmax_cross_entropy_with_integer_labels(logits(p, xb), yb).mean()
        return ce + wd * sum(jnp.sum(w**2) for k, w in p.items() if k.startswith("w"))

    def objective(key, hp):
        """Train one MLP; hparams are scalars here, vmapped by jaxhpo over the population."""
        params = init(key, hp["init_scale"])
        sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=hp["lr"],
                                                  momentum=hp["momentum"])
        adam = optax.inject_hyperparams(optax.adam)(learning_rate=hp["lr"])
        use_adam = hp["optimizer"] == 1   # categoricals arrive as choice indices

        def step(carry, _):
            p, s_sgd, s_adam = carry
            g = jax.grad(loss_fn)(p, x_tr, y_tr, hp["weight_decay"])
            u_sgd, s_sgd = sgd.update(g, s_sgd, p)
            u_adam, s_adam = adam.update(g, s_adam, p)
            u = jax.tree.map(lambda a, b: jnp.where(use_adam, a, b), u_adam, u_sgd)
            return (optax.apply_updates(p, u), s_sgd, s_adam), None

        (params, _, _), _ = jax.lax.scan(step, (params, sgd.init(params), adam.init(params)),
                                         None, length=steps)
        val_logits = logits(params, x_va)
        return {
            "val_loss": optax.softmax_cross_entropy_with_integer_labels(val_logits, y_va).mean(),
            "val_acc": jnp.mean(jnp.argmax(val_logits, -1) == y_va),
        }

    return objective


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"jaxhpo {jaxhpo.__version__} on {jax.devices()[0].platform}\n")

    print(f"1) MLP on two spirals: {args.population} models per generation trained at once "
          f"(vmap), {args.generations} generations, quasi-random search")
    t0 = time.perf_counter()
    res = jaxhpo.minimize(make_objective(), SPACE, quasi_random(SPACE, args.population),
                          num_generations=args.generations, key=args.seed, metric="val_loss")
    dt = time.perf_counter() - t0
    best = res.best_trial
    n = len(res.history)
    print(f"   {n} models trained in {dt:.1f} s (compilation included)")
    print(f"   best val_loss {best.value:.4f}, val_acc {best.metrics['val_acc']:.3f}")
    print(f"   best params {best.params}")
    accs = np.array([t.metrics["val_acc"] for t in res.history])
    print(f"   median val_acc over all trials {np.nanmedian(accs):.3f}\n")

    print("2) Hartmann6 (optimum -3.32237), 256 evaluations, median regret of 5 seeds")
    from jaxhpo.functions import hartmann6

    tf = hartmann6()
    for name, make in [("random_search", random_search), ("quasi_random", quasi_random)]:
        regrets = []
        for seed in range(5):
            r = jaxhpo.minimize_scan(tf.objective, tf.space, make(tf.space, 32),
                                     num_generations=8, key=seed)
            regrets.append(tf.regret(r.best_value))
        print(f"   {name:14s} regret {np.median(regrets):.4f}")


if __name__ == "__main__":
    main()
