"""Strategy overhead: wall time of ask + tell per generation vs population size.

Every strategy in ``jaxhpo.strategies.REGISTRY`` is jitted and timed after compilation, the way
the driver calls it (``ask``, ``tell``, waiting for the result each generation), on a space of
``d`` floats. Optuna's samplers are timed per trial in the same run with its ask-and-tell
interface, for reference.

    python benchmarks/overhead.py                     # populations 1..1024, d = 8
    python benchmarks/overhead.py --pops 64 --dims 8,32
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo.strategies import REGISTRY  # noqa: E402


def time_strategy(entry, space, pop: int, gens: int) -> tuple[float, int]:
    """Median seconds per generation (ask + tell, results awaited) after warm-up.

    Returns ``(seconds, population)``: the strategy's actual ``population_size`` (ARS's
    registry entry, for one, asks ``2 * (pop // 2)`` points). Each generation also evaluates a
    trivial jitted fitness (the sum of coordinates; ``m`` copies of it for multi-objective
    strategies), as a driver's loop would.
    """
    s = entry.make(space, pop)
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    m = entry.num_objectives
    state = s.init(jax.random.key(0))
    key = jax.random.key(1)
    fitness = lambda x: jnp.sum(x, axis=-1) if m == 1 else jnp.stack([x[:, 0]] * m, -1)
    f_jit = jax.jit(fitness)
    times = []
    for g in range(gens + 3):
        k = jax.random.fold_in(key, g)
        t0 = time.perf_counter()
        x, state = ask(k, state)
        f = f_jit(x)
        state = jax.block_until_ready(tell(state, x, f))
        if g >= 3:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)), s.population_size


def time_optuna(d: int, trials: int) -> dict[str, float]:
    """Median seconds per trial of ``study.ask(dists)`` + ``study.tell`` for Optuna samplers."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(d)}
    out = {}
    for name, sampler in [("optuna_random", optuna.samplers.RandomSampler(seed=0)),
                          ("optuna_qmc", optuna.samplers.QMCSampler(seed=0))]:
        study = optuna.create_study(sampler=sampler)
        times = []
        for _ in range(trials):
            t0 = time.perf_counter()
            trial = study.ask(dists)
            study.tell(trial, sum(trial.params.values()))
            times.append(time.perf_counter() - t0)
        out[name] = float(np.median(times[10:]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pops", default="1,8,64,256,1024")
    ap.add_argument("--dims", default="8")
    ap.add_argument("--gens", type=int, default=50)
    ap.add_argument("--optuna-trials", type=int, default=200)
    ap.add_argument("--strategies", default=",".join(REGISTRY))
    args = ap.parse_args(argv)
    pops = [int(p) for p in args.pops.split(",")]
    rows, results = [], []
    for d in (int(v) for v in args.dims.split(",")):
        space = jaxhpo.Space({f"x{i}": jaxhpo.Float(0.0, 1.0) for i in range(d)})
        try:
            ref = time_optuna(d, args.optuna_trials)
        except ImportError:
            ref = {}
        for name in args.strategies.split(","):
            for pop in pops:
                try:
                    sec, pop = time_strategy(REGISTRY[name], space, pop, args.gens)
                except ValueError as e:  # e.g. CMA-ES needs population >= 2
                    print(f"skip {name} pop={pop}: {e}", file=sys.stderr)
                    continue
                r = {"strategy": name, "d": d, "pop": pop, "us_per_gen": sec * 1e6,
                     "us_per_trial": sec * 1e6 / pop}
                for k, v in ref.items():
                    r[f"x_vs_{k}"] = v / (sec / pop)  # per-trial speed-up
                rows.append(r)
                results.append(r)
        for k, v in ref.items():
            results.append({"strategy": k, "d": d, "pop": 1, "us_per_trial": v * 1e6})
            rows.append({"strategy": k, "d": d, "pop": 1, "us_per_trial": v * 1e6,
                         "us_per_gen": v * 1e6})
    cols = ["strategy", "d", "pop", "us_per_gen", "us_per_trial"] + sorted(
        {k for r in rows for k in r if k.startswith("x_vs_")})
    print_table(rows, cols, "ask+tell wall time (median, after compilation); x_vs_*: per-trial "
                            "speed-up over that Optuna sampler")
    print(f"\nwrote {write_result('overhead', {'rows': results})}")


if __name__ == "__main__":
    main()
