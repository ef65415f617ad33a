"""Render one PNG per ``jaxhpo.plot`` function into ``docs/_static/plots/`` (for the docs).

Small runs, seeded, on the CPU in about a minute: a TPE run on a 4-parameter space with a
log float, a log int, a categorical and a conditional parameter (history, parallel
coordinates, slices, contour, importance, EDF against random search), a two-objective run
(Pareto), a HyperBand and a PBT ``tune`` run of a small training program (learning curves,
timelines, PBT schedules) and the newest ``benchmarks/results/quality-*.json`` with per-seed
curves (regret). Each figure is checked for overlapping or over-long tick labels before it is
written.

    python scripts/plots_gallery.py                     # -> docs/_static/plots/*.png
    python scripts/plots_gallery.py --out /tmp/plots --dpi 100
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import jax.numpy as jnp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import jaxhpo  # noqa: E402
import jaxhpo.plot as P  # noqa: E402
from jaxhpo import Categorical, Float, Int, Space  # noqa: E402
from jaxhpo import schedulers as S  # noqa: E402
from jaxhpo.strategies import nsga2, random_search, tpe  # noqa: E402

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "width": Int(16, 256, log=True),
               "optimizer": Categorical(["sgd", "adam"]),
               "momentum": Float(0.0, 0.99, condition={"optimizer": "sgd"})})


def objective(key, hp):
    """A made-up validation loss: best near lr = 3e-3, width = 64; sgd needs momentum."""
    loss = (jnp.log10(hp["lr"]) + 2.5) ** 2 + 0.3 * (jnp.log2(hp["width"]) - 6.0) ** 2
    sgd = hp["optimizer"] == 0
    return loss + jnp.where(sgd, 0.8 * (hp["momentum"] - 0.9) ** 2 + 0.2, 0.0)


def two_objectives(key, hp):
    loss = objective(key, hp)
    return {"loss": loss, "cost": hp["width"] * (1.0 + 0.2 * hp["optimizer"])}


def decay_program():
    """w <- (1 - lr) w: the loss after t steps is 0.5 |w|^2 (1 - lr)^(2t)."""
    from jaxhpo.train import TrainingProgram

    return TrainingProgram(
        init=lambda key, hp: {"w": jnp.ones((4,))},
        step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
        evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2) + 0.01 / hp["lr"]})


def newest_quality() -> str | None:
    for path in sorted(glob.glob(os.path.join(ROOT, "benchmarks/results/quality-*.json")),
                       reverse=True):
        with open(path) as f:
            doc = json.load(f)
        if any("curve" in e for by in doc.get("results", {}).values() for e in by.values()):
            return path
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/_static/plots"))
    ap.add_argument("--dpi", type=int, default=72)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_plot import assert_readable

    def write(name, fig):
        assert_readable(fig)
        path = os.path.join(args.out, f"{name}.png")
        fig.savefig(path, dpi=args.dpi)
        print(f"{path} ({os.path.getsize(path) // 1024} KiB)")

    res = jaxhpo.minimize(objective, SPACE, tpe(SPACE, 8), num_generations=10, key=0,
                          progress=False)
    rnd = jaxhpo.minimize(objective, SPACE, random_search(SPACE, 8), num_generations=10, key=0,
                          progress=False)
    write("history", P.history(res))
    write("parallel_coordinates", P.parallel_coordinates(res))
    write("slices", P.slices(res))
    write("contour", P.contour(res, params=("lr", "width")))
    write("contour_grid", P.contour(res))
    write("importance", P.importance(res, method="ped_anova"))
    write("edf", P.edf({"tpe": res, "random search": rnd}))
    mo = jaxhpo.minimize(two_objectives, SPACE, nsga2(SPACE, 16), num_generations=6, key=0,
                         metric=["loss", "cost"], progress=False)
    write("pareto", P.pareto(mo))
    space = Space({"lr": Float(0.005, 0.2, log=True)})
    prog = decay_program()
    for n in (4, 6):  # compile first, so the timelines show training, not compilation
        jaxhpo.tune(prog, space, random_search(space, n), S.PBT(20, 10, fraction=0.34),
                    max_trials=n, population_size=n, eval_every=10, metric="loss", key=0,
                    progress=False, test_split=False)
    hb = jaxhpo.tune(prog, space, random_search(space, 4), S.HyperBand(10, 90, eta=3),
                     max_trials=17, population_size=4, eval_every=10, metric="loss", key=1,
                     progress=False, test_split=False)
    write("learning_curves", P.learning_curves(hb, rungs=[10, 30, 90]))
    write("timeline", P.timeline(hb))
    pbt = jaxhpo.tune(prog, space, random_search(space, 6), S.PBT(80, 10,
                                                                            fraction=0.34),
                      max_trials=6, population_size=6, eval_every=10, metric="loss", key=2,
                      progress=False, test_split=False)
    write("pbt_schedules", P.pbt_schedules(pbt))
    write("timeline_pbt", P.timeline(pbt))
    quality = newest_quality()
    if quality is not None:
        write("regret", P.regret(quality))
    else:
        print("no benchmarks/results/quality-*.json with per-seed curves: regret skipped")


if __name__ == "__main__":
    main()
