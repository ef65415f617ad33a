"""Failure-aware search: Hartmann-6 with NaN wherever ``x0 > 0.5`` (half the cube fails; the
global minimum, at ``x0 = 0.20169``, does not).

Per strategy and seed: the fraction of failed (NaN) trials in each generation and the best
value found. The figure of issue #23: ``gp_bo``'s NaN fraction over the last 5 generations
<= 25% and its best within 0.1 of ``tpe``'s (population 16, 15 generations, 5 seeds).
``gp_bo_blind`` is ``gp_bo(failure_model=False)``: failed trials are only left out of its GP.

    python benchmarks/failures.py                     # defaults: 16 x 15, seeds 0-4
    python benchmarks/failures.py --strategies gp_bo,tpe --seeds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import functions as F  # noqa: E402

STRATEGIES = {
    "gp_bo": lambda space, pop: jaxhpo.strategies.gp_bo(space, pop),
    "gp_bo_blind": lambda space, pop: jaxhpo.strategies.gp_bo(space, pop, failure_model=False),
    "tpe": lambda space, pop: jaxhpo.strategies.tpe(space, pop),
    "random_search": lambda space, pop: jaxhpo.strategies.random_search(space, pop),
}


def run(make, tf, pop: int, gens: int, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(nan_fraction f[seeds, gens], best f[seeds])`` of one strategy on the failing
    function (the driver's key derivation, as in ``benchmarks/quality.py``)."""
    strategy = make(tf.space, pop)

    def failing(u):
        return jnp.where(u[:, 0] > 0.5, jnp.nan, tf.fn(tf.from_unit(u)))

    @jax.jit
    def go(key):
        k_init, k_run = jax.random.split(key)

        def gen(state, g):
            k_ask, _ = jax.random.split(jax.random.fold_in(k_run, g))
            x, state = strategy.ask(k_ask, state)
            f = failing(x)
            return strategy.tell(state, x, f), f

        state = strategy.init(k_init)
        if strategy.reserve is not None:
            state = strategy.reserve(state, gens * pop)
        return jax.lax.scan(gen, state, jnp.arange(gens))[1]

    fracs, bests = [], []
    for s in seeds:
        f = np.asarray(go(jax.random.key(s)), np.float64)  # [gens, pop]
        fracs.append(np.mean(~np.isfinite(f), axis=1))
        bests.append(np.min(np.where(np.isfinite(f), f, np.inf)))
    return np.array(fracs), np.array(bests)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", default="gp_bo,gp_bo_blind,tpe")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--generations", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--last", type=int, default=5, help="generations of the NaN-fraction figure")
    args = ap.parse_args(argv)
    tf = F.get("hartmann6")
    seeds = list(range(args.seeds))
    rows, out = [], {}
    for name in args.strategies.split(","):
        t0 = time.perf_counter()
        frac, best = run(STRATEGIES[name], tf, args.population, args.generations, seeds)
        last = frac[:, -args.last:].mean(axis=1)
        out[name] = {"nan_fraction": frac.tolist(), "nan_fraction_last": last.tolist(),
                     "best": best.tolist(), "seconds": time.perf_counter() - t0}
        rows.append({"strategy": name, f"NaN frac, last {args.last} (mean)": float(last.mean()),
                     "per seed": " ".join(f"{v:.2f}" for v in last),
                     "best (median)": float(np.median(best)),
                     "best per seed": " ".join(f"{v:.3f}" for v in best),
                     "s": out[name]["seconds"]})
        print(rows[-1], flush=True)
    print_table(rows, list(rows[0]), f"Hartmann-6, NaN where x0 > 0.5: population "
                f"{args.population}, {args.generations} generations, {len(seeds)} seeds "
                f"(optimum {tf.optimum_value})")
    path = write_result("failures", {"population": args.population,
                                     "generations": args.generations, "seeds": seeds,
                                     "results": out})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
