"""ARS ablation: plain ARS V1-t and each augmentation (replay + critic pre-screening, control
variate, actor-critic, reward shaping) against random search at equal evaluations.

Part 1, Hartmann6 (10 seeds, 512 evaluations, 8 antithetic pairs = 16 per generation, top 4):
evaluations to reach a regret of 0.05 and 0.01 (median [q25, q75]; ">N" for a quantile that
falls among the seeds that never get there) and the regret after 128 / 256 / 512 evaluations.
Trials are exactly those of ``jaxhpo.minimize_scan`` (``quality.run_jaxhpo``).

Part 2, MNIST-1D hyperparameters (lr, weight decay, width, dropout of a residual MLP) through the
population engine: ``jaxhpo.minimize(Trainer(...).objective(steps), ...)`` minimizing the
validation loss; best validation loss after 64 / 128 evaluations and the test accuracy of the
best-validation-loss trial (median over seeds). Small settings so it runs in minutes on 2 cores.

    python benchmarks/ars_ablation.py                       # both parts
    python benchmarks/ars_ablation.py --skip-mnist --seeds 10
    python benchmarks/ars_ablation.py --quick               # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Int  # noqa: E402
from jaxhpo import functions as F  # noqa: E402
from jaxhpo.strategies import ars, ars_augmented, random_search  # noqa: E402
from quality import run_jaxhpo  # noqa: E402


def variants(step_size=0.02, noise=0.03):
    """name -> factory(space, batch) -> Strategy. Every ARS variant: N = batch / 2, b = N / 2."""
    def aug(**kw):
        return lambda space, batch: ars_augmented(
            space, batch // 2, top_directions=max(batch // 4, 1), step_size=step_size,
            noise=noise, **kw)
    return {
        "random_search": lambda space, batch: random_search(space, batch),
        "ars V1-t": lambda space, batch: ars(space, batch // 2, top_directions=max(
            batch // 4, 1), step_size=step_size, noise=noise),
        "+prescreen": aug(prescreen=4),
        "+control variate": aug(control_variate=1.0),
        "+prescreen+cv": aug(prescreen=4, control_variate=1.0),
        "+actor-critic": aug(actor_critic=0.5),
        "+prescreen+ac": aug(prescreen=4, actor_critic=0.5),
        "+prescreen+cv+ac": aug(prescreen=4, control_variate=1.0, actor_critic=0.5),
        "+prescreen+ac+shaping": aug(prescreen=4, actor_critic=0.5, shaping=10.0),
        # the control variate's derivation holds for V1 (all directions, b = N)
        "ars V1 (b=N)": lambda space, batch: ars(space, batch // 2, step_size=step_size,
                                                 noise=noise),
        "V1 +control variate": lambda space, batch: ars_augmented(
            space, batch // 2, step_size=step_size, noise=noise, control_variate=1.0),
    }


MNIST_VARIANTS = ["random_search", "ars V1-t", "+prescreen", "+prescreen+cv", "+prescreen+ac",
                  "+prescreen+ac+shaping"]


def _quartiles(v):
    return float(np.median(v)), float(np.quantile(v, 0.25)), float(np.quantile(v, 0.75))


def _evals_to(regret, target):
    """Evaluations until the best-so-far regret first falls to ``target`` (inf if never)."""
    hit = regret <= target
    return np.where(hit.any(1), hit.argmax(1) + 1, np.inf)


def _fmt_evals(v, budget):
    """Median [q25, q75] of evaluations-to-target, ``>budget`` for seeds that never got there."""
    med, q25, q75 = _quartiles(np.where(np.isfinite(v), v, budget + 1))
    show = lambda q: f">{budget}" if q > budget else f"{q:.0f}"  # noqa: E731
    return f"{show(med)} [{show(q25)}, {show(q75)}]"


def hartmann_part(names, seeds, evals, batch, targets, checkpoints):
    tf = F.hartmann6()
    make = variants()
    rows, out = [], {}
    for name in names:
        t0 = time.perf_counter()
        regret = run_jaxhpo(make[name], tf, evals, batch, seeds) - tf.optimum_value
        res = {"seconds": time.perf_counter() - t0, "per_seed_final": regret[:, -1].tolist()}
        row = {"variant": name}
        for t in targets:
            e = _evals_to(regret, t)
            res[f"evals_to_{t}"] = [float(v) for v in e]
            row[f"evals to {t}"] = _fmt_evals(e, evals)
        for c in checkpoints:
            med, q25, q75 = _quartiles(regret[:, c - 1])
            res[f"regret_at_{c}"] = {"median": med, "q25": q25, "q75": q75}
            row[f"regret@{c}"] = f"{med:.3g} [{q25:.2g}, {q75:.2g}]"
        out[name] = res
        rows.append(row)
        print(f"  {name}: {res['seconds']:.0f} s", flush=True)
    cols = ["variant"] + [f"evals to {t}" for t in targets] + [f"regret@{c}" for c in checkpoints]
    print_table(rows, cols, f"Hartmann6, {len(seeds)} seeds, batch {batch}: evaluations to a "
                f"target regret and regret at a budget, median [q25, q75]")
    return out


def mnist_part(names, seeds, evals, batch, steps, checkpoints):
    from jaxhpo.train import Trainer, mlp, mnist1d

    space = jaxhpo.Space({"lr": Float(1e-4, 3e-2, log=True),
                          "weight_decay": Float(1e-5, 0.3, log=True),
                          "width": Int(16, 128, log=True), "dropout": Float(0.0, 0.5)})
    trainer = Trainer(mlp(10, max_width=128, max_depth=2), mnist1d(), space=space,
                      defaults={"optimizer": "adamw", "schedule": "cosine"}, total_steps=steps)
    objective = trainer.objective(steps)
    make = variants(step_size=0.05, noise=0.05)  # 4 parameters, few generations: larger steps
    rows, out = [], {}
    for name in names:
        t0 = time.perf_counter()
        best_loss, test_acc = [], []
        for s in seeds:
            res = jaxhpo.minimize(objective, space, make[name](space, batch),
                                  num_generations=evals // batch, key=s, metric="val_loss",
                                  progress=False)
            trials = res.history.completed()
            loss = np.array([t.metrics["val_loss"] for t in trials], np.float64)
            loss = np.where(np.isfinite(loss), loss, np.inf)
            best_loss.append(np.minimum.accumulate(loss))
            test_acc.append([trials[int(np.argmin(loss[:c]))].metrics["test_accuracy"]
                             for c in checkpoints])
        best_loss, test_acc = np.array(best_loss), np.array(test_acc)
        res = {"seconds": time.perf_counter() - t0, "best_val_loss": best_loss.tolist(),
               "test_accuracy_of_best": test_acc.tolist()}
        row = {"variant": name}
        for j, c in enumerate(checkpoints):
            row[f"val loss@{c}"] = f"{np.median(best_loss[:, c - 1]):.4f}"
            row[f"test acc@{c}"] = f"{np.median(test_acc[:, j]):.3f}"
        out[name] = res
        rows.append(row)
        print(f"  {name}: {res['seconds']:.0f} s", flush=True)
    cols = ["variant"] + [f"val loss@{c}" for c in checkpoints] + [f"test acc@{c}"
                                                                     for c in checkpoints]
    print_table(rows, cols, f"MNIST-1D MLP (lr, weight decay, width, dropout; {steps} steps), "
                f"{len(seeds)} seeds, batch {batch}: best validation loss and the test accuracy "
                f"of that trial, median")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--variants", default=",".join(variants()))
    ap.add_argument("--mnist-variants", default=",".join(MNIST_VARIANTS))
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--skip-hartmann", action="store_true")
    ap.add_argument("--mnist-seeds", type=int, default=3)
    ap.add_argument("--mnist-evals", type=int, default=128)
    ap.add_argument("--mnist-batch", type=int, default=16)
    ap.add_argument("--mnist-steps", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 64 evaluations, 2 MNIST "
                    "generations of 100 steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.evals, args.mnist_seeds = 2, 64, 1
        args.mnist_evals, args.mnist_steps = 32, 100
    names = [v for v in args.variants.split(",") if v]
    mnist_names = [v for v in args.mnist_variants.split(",") if v]
    unknown = sorted(set(names + mnist_names) - set(variants()))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(variants())}")
    payload = {"args": vars(args)}
    if not args.skip_hartmann:
        cps = sorted({min(c, args.evals) for c in (128, 256, 512)})
        payload["hartmann6"] = hartmann_part(names, list(range(args.seeds)), args.evals,
                                             args.batch, (0.05, 0.01), cps)
    if not args.skip_mnist:
        cps = sorted({min(c, args.mnist_evals) for c in (64, 128)})
        payload["mnist1d"] = mnist_part(mnist_names, list(range(args.mnist_seeds)),
                                        args.mnist_evals, args.mnist_batch, args.mnist_steps, cps)
    print(f"\nwrote {write_result('ars_ablation', payload)}")


if __name__ == "__main__":
    main()
