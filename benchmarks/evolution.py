"""Evolution strategies: CMA-ES evaluations to reach f < 1e-8 against the ``cma`` package,
and wall time per generation at high dimension.

* Rosenbrock-10 (x0 = 0, sigma0 = 0.5 on the natural domain; jaxhpo searches the unit cube of
  ``[-5, 10]^10``, so x0 = 1/3 and sigma0 = 0.5/15 there) and Ellipsoid-10 (condition 1e6, on
  ``[0, 1]^10``, x0 = 0.5, sigma0 = 0.3), several seeds, the ``cma`` package
  (``pip install cma``) run in the same process. jaxhpo computes in float32.
* ask + tell time per generation of ``jaxhpo.strategies.cma_es`` at d = 100 and 1000
  (default population), and evosax's ``CMA_ES`` (``pip install evosax``) with the same
  population in the same process.
* Restarts: best value after ``--restart-evals`` evaluations on a shifted Rastrigin-10 of
  jaxhpo's ``cma_es`` and ``cma_es_restarts`` (IPOP, BIPOP), and the ``cma`` package's IPOP and
  BIPOP ``fmin`` in the same run.
* NSGA-II hypervolume (reference (1.1, 1.1)) on ZDT1 and ZDT2 (30-d) after ``--mo-evals``
  evaluations against Optuna's ``NSGAIISampler`` with the same population size.

    python benchmarks/evolution.py [--seeds 5] [--dims 100,1000] [--mo-evals 10000]
    (``--seeds 0``, ``--dims ""`` or ``--mo-evals 0`` skips that part)
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
from jaxhpo.strategies import cma_es, cma_es_restarts  # noqa: E402
from jaxhpo.strategies._cma_es import cma_params  # noqa: E402

D = 10
ELL_SCALES = 10 ** (6 * np.arange(D) / (D - 1))
PROBLEMS = {
    # name: (natural-domain numpy fn, jax fn on natural coords, x0, sigma0, low, high)
    "rosenbrock-10": (lambda x: float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2
                                             + (1 - x[:-1]) ** 2)),
                      lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
                      0.0, 0.5, -5.0, 10.0),
    # on [0, 1]^10: on a wider box, 1e-8 at condition 1e6 needs sub-ulp float32 steps
    "ellipsoid-10": (lambda x: float(np.sum(ELL_SCALES * (x - 0.4) ** 2)),
                     lambda x: jnp.sum(jnp.asarray(ELL_SCALES, jnp.float32) * (x - 0.4) ** 2),
                     0.5, 0.3, 0.0, 1.0),
}


def first_hit(s, jfn, low, span, seed, target=1e-8, max_gens=3000):
    """Evaluations until the best value is below ``target`` (``None`` if never)."""
    @jax.jit
    def trace(key):
        def gen(st, k):
            x, st = s.ask(k, st)
            fx = jax.vmap(lambda u: jfn(low + span * u))(x)
            return s.tell(st, x, fx), jnp.min(fx)

        return jax.lax.scan(gen, s.init(key), jax.random.split(key, max_gens))[1]

    curve = np.minimum.accumulate(np.asarray(trace(jax.random.key(seed))))
    hit = np.nonzero(curve < target)[0]
    return int((hit[0] + 1) * s.population_size) if hit.size else None


def cma_evals(fn, x0, sigma0, seed, target=1e-8):
    import cma

    es = cma.CMAEvolutionStrategy(D * [x0], sigma0, {"ftarget": target, "seed": seed + 1,
                                                      "verbose": -9})
    es.optimize(fn)
    return int(es.result.evaluations)


def _timed(step, state, gens, warmup=2):
    """Wall time of ``gens`` calls of ``state = step(g, state)`` after ``warmup`` calls (which
    compile), each awaited: ``(mean, median)`` seconds."""
    for g in range(warmup):
        state = jax.block_until_ready(step(g, state))
    times = []
    for g in range(warmup, warmup + gens):
        t0 = time.perf_counter()
        state = jax.block_until_ready(step(g, state))
        times.append(time.perf_counter() - t0)
    return float(np.mean(times)), float(np.median(times))


def time_per_generation(d, gens=36):
    """ask + tell (jitted, after compilation, awaited) of jaxhpo's cma_es and, when installed,
    evosax's ``CMA_ES`` with the same population size on the same sphere, same process.

    Means over ``gens`` generations include the amortized eigendecompositions (jaxhpo's every
    ``eig_every`` generations, evosax's in every ``ask``)."""
    space = jaxhpo.Space({f"x{i}": jaxhpo.Float(0.0, 1.0) for i in range(d)})
    s = cma_es(space)
    pop = s.population_size
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    f = jax.jit(lambda x: jnp.sum((x - 0.3) ** 2, axis=-1))

    def ours(g, st):
        x, st = ask(jax.random.key(g), st)
        return tell(st, x, f(x))

    row = {"d": d, "population": pop, "eig_every": cma_params(d, pop).eig_every.item()}
    row["jaxhpo_ms"], row["jaxhpo_median_ms"] = (1e3 * t for t in _timed(
        ours, s.init(jax.random.key(0)), gens))
    try:
        from evosax.algorithms import CMA_ES
    except ImportError:
        return row
    es = CMA_ES(population_size=pop, solution=jnp.zeros(d))
    params = es.default_params.replace(std_init=jnp.float32(0.3))

    def theirs(g, st):  # es.ask / es.tell are jitted by evosax
        key = jax.random.key(g)
        x, st = es.ask(key, st, params)
        return es.tell(key, x, f(x), st, params)[0]

    row["evosax_ms"], row["evosax_median_ms"] = (1e3 * t for t in _timed(
        theirs, es.init(jax.random.key(0), jnp.full(d, 0.5), params), gens))
    row["ratio"] = row["jaxhpo_ms"] / row["evosax_ms"]
    return row


def zdt(x, which):
    g = 1 + 9 * jnp.mean(x[1:])
    r = x[0] / g
    return jnp.stack([x[0], g * (1 - (jnp.sqrt(r) if which == 1 else r**2))])


def nsga2_hv(which, evals, pop, seed):
    space = jaxhpo.Space({f"x{i}": jaxhpo.Float(0.0, 1.0) for i in range(30)})
    s = jaxhpo.strategies.nsga2(space, pop)

    @jax.jit
    def go(key):
        k_init, key = jax.random.split(key)

        def gen(st, k):
            x, st = s.ask(k, st)
            f = jax.vmap(lambda v: zdt(v, which))(x)
            return s.tell(st, x, f), f

        return jax.lax.scan(gen, s.init(k_init), jax.random.split(key, evals // pop))[1]

    return jaxhpo.hypervolume(np.asarray(go(jax.random.key(seed))).reshape(-1, 2), (1.1, 1.1))


def optuna_hv(which, evals, pop, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f = jax.jit(lambda v: zdt(v, which))

    def objective(t):
        return tuple(float(v) for v in f(jnp.array([t.suggest_float(f"x{i}", 0.0, 1.0)
                                                     for i in range(30)])))

    study = optuna.create_study(directions=["minimize"] * 2,
                                sampler=optuna.samplers.NSGAIISampler(population_size=pop,
                                                                      seed=seed))
    study.optimize(objective, n_trials=evals)
    return jaxhpo.hypervolume(np.array([t.values for t in study.trials]), (1.1, 1.1))


def rastrigin(d, shift, xp=jnp):
    """Rastrigin on ``[-5.12, 5.12]^d`` with its optimum 0 at ``shift``."""
    return lambda z: 10 * d + xp.sum((z - shift) ** 2 - 10 * xp.cos(2 * np.pi * (z - shift)))


def restart_runs(d, evals, seeds):
    """Best Rastrigin-d values after ``evals`` evaluations, per seed (the optimum moves with the
    seed): jaxhpo cma_es, IPOP and BIPOP (default lambda0, sigma0 = 0.3 of the box, first mean
    at the centre, restarts at uniform points) and, when installed, the ``cma`` package's
    IPOP/BIPOP ``fmin`` with the same settings."""
    shifts = [np.random.default_rng(100 + s).uniform(-2.0, 2.0, d) for s in seeds]
    space = jaxhpo.Space({f"x{i}": jaxhpo.Float(-5.12, 5.12) for i in range(d)})
    out = [{} for _ in seeds]
    for name, s in [("cma_es", cma_es(space)), ("ipop", cma_es_restarts(space)),
                    ("bipop", cma_es_restarts(space, mode="bipop"))]:
        @jax.jit
        def go(key, shift, s=s):
            fn = rastrigin(d, shift)
            k_init, key = jax.random.split(key)

            def gen(st, k):
                x, st = s.ask(k, st)
                return s.tell(st, x, jax.vmap(lambda u: fn(-5.12 + 10.24 * u))(x)), None

            keys = jax.random.split(key, evals // s.population_size)
            return jax.lax.scan(gen, s.init(k_init), keys)[0].best_fitness

        for o, seed, shift in zip(out, seeds, shifts):
            o[name] = float(go(jax.random.key(seed), jnp.asarray(shift, jnp.float32)))
    try:
        import cma
    except ImportError:
        return out
    for o, seed, shift in zip(out, seeds, shifts):
        for name, bipop in [("cma_ipop", False), ("cma_bipop", True)]:
            rng, runs = np.random.default_rng(seed), []

            def x0():  # the first run at the centre, restarts at uniform points, as ours
                runs.append(None)
                return np.zeros(d) if len(runs) == 1 else rng.uniform(-5.12, 5.12, d)

            f64 = rastrigin(d, shift, np)
            res = cma.fmin(lambda x: float(f64(x)), x0, 0.3 * 10.24,
                           {"bounds": [-5.12, 5.12], "maxfevals": evals, "seed": seed + 1,
                            "verbose": -9}, restarts=9, incpopsize=2, bipop=bipop)
            o[name] = float(res[-2].all_best[0].f)  # res[1] is the last run's best only
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--dims", default="100,1000")
    ap.add_argument("--timing-gens", type=int, default=36)
    ap.add_argument("--restart-evals", type=int, default=20000)
    ap.add_argument("--restart-seeds", type=int, default=5)
    ap.add_argument("--mo-evals", type=int, default=10000)
    ap.add_argument("--mo-pop", type=int, default=100)
    ap.add_argument("--mo-seeds", type=int, default=5)
    args = ap.parse_args(argv)
    rows = []
    for name, (fn, jfn, x0, sigma0, low, high) in (PROBLEMS.items() if args.seeds else ()):
        span = high - low
        space = jaxhpo.Space({f"x{i}": jaxhpo.Float(low, high) for i in range(D)})
        strategy = cma_es(space, sigma0=sigma0 / span, mean0=np.full(D, (x0 - low) / span))
        ours = [first_hit(strategy, jfn, low, span, s) for s in range(args.seeds)]
        try:
            ref = [cma_evals(fn, x0, sigma0, s) for s in range(args.seeds)]
        except ImportError:
            ref = []
        med = float(np.median([o if o is not None else np.inf for o in ours]))
        row = {"problem": name, "jaxhpo_median_evals": med, "jaxhpo_evals": ours}
        if ref:
            row.update(cma_median_evals=float(np.median(ref)), cma_evals=ref,
                       ratio=med / float(np.median(ref)))
        rows.append(row)
    if rows:
        print_table(rows, ["problem", "jaxhpo_median_evals", "cma_median_evals", "ratio"],
                    f"CMA-ES evaluations to f < 1e-8 (median of {args.seeds} seeds)")
    timing = [time_per_generation(int(v), args.timing_gens) for v in args.dims.split(",") if v]
    if timing:
        print_table(timing, ["d", "population", "eig_every", "jaxhpo_ms", "jaxhpo_median_ms",
                             "evosax_ms", "evosax_median_ms", "ratio"],
                    f"CMA-ES ask+tell per generation, mean of {args.timing_gens} (jitted, after "
                    "compile, awaited): jaxhpo cma_es vs evosax CMA_ES, same population")
    restarts = []
    for d in ((10,) if args.restart_seeds else ()):
        per_seed = restart_runs(d, args.restart_evals, list(range(args.restart_seeds)))
        restarts.append({"problem": f"rastrigin-{d}", "evals": args.restart_evals,
                         **{k: float(np.median([r[k] for r in per_seed])) for k in per_seed[0]},
                         "per_seed": per_seed})
    if restarts:
        print_table(restarts, ["problem", "evals", "cma_es", "ipop", "bipop", "cma_ipop",
                               "cma_bipop"],
                    f"best value (optimum 0) after --restart-evals, median of "
                    f"{args.restart_seeds} seeds: jaxhpo cma_es / IPOP / BIPOP vs the cma "
                    "package's fmin restarts")
    mo = []
    for which in ((1, 2) if args.mo_evals else ()):
        ours = [nsga2_hv(which, args.mo_evals, args.mo_pop, s) for s in range(args.mo_seeds)]
        row = {"problem": f"zdt{which}", "jaxhpo_nsga2_median_hv": float(np.median(ours)),
               "jaxhpo_hv": ours}
        try:
            ref = [optuna_hv(which, args.mo_evals, args.mo_pop, s) for s in range(args.mo_seeds)]
            row.update(optuna_nsga2_median_hv=float(np.median(ref)), optuna_hv=ref)
        except ImportError:
            pass
        mo.append(row)
    if mo:
        print_table(mo, ["problem", "jaxhpo_nsga2_median_hv", "optuna_nsga2_median_hv"],
                    f"NSGA-II hypervolume after {args.mo_evals} evaluations (population "
                    f"{args.mo_pop}, median of {args.mo_seeds} seeds; optimum: zdt1 0.8767, "
                    "zdt2 0.5433)")
    print(f"\nwrote {write_result('evolution', {'evals': rows, 'timing': timing, 'restarts': restarts, 'nsga2': mo})}")


if __name__ == "__main__":
    main()
