"""Search quality: regret (best value found - known optimum) after N evaluations.

Strategies x test functions x seeds, jaxhpo strategies side by side with Optuna samplers on the
same functions and domains, and BoTorch's (q)LogEI as a batch-BO reference (``BOTORCH``; needs
``pip install botorch``, Optuna's ``GPSampler`` needs ``torch``). Later strategies join by adding
one line to ``JAXHPO_STRATEGIES`` (or ``OPTUNA_SAMPLERS``). Prints median regret [25%, 75%] at
each checkpoint and writes JSON under ``benchmarks/results/``.

    python benchmarks/quality.py                                  # defaults below
    python benchmarks/quality.py --functions branin --evals 128 --seeds 10 \
        --strategies quasi_random,random_search,optuna_random,optuna_qmc
    python benchmarks/quality.py --functions branin --evals 50 --batch 8 --checkpoints 25,50 \
        --strategies gp_bo,botorch_logei,botorch_logei_fixed_noise   # batch-BO reference
    python benchmarks/quality.py --functions hartmann6,ackley-5,levy-4,branin --evals 256 \
        --batch 32 --checkpoints 64,128,256 --strategies tpe,optuna_tpe_liar   # q = 32 (#23)
    python benchmarks/quality.py --quick                          # smoke test
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

# One OpenBLAS thread (GP solves; see tests/conftest.py): set before JAX loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import functions as F  # noqa: E402

# name -> factory(space, batch_size) -> Strategy
JAXHPO_STRATEGIES = {
    "random_search": lambda space, batch: jaxhpo.strategies.random_search(space, batch),
    "quasi_random": lambda space, batch: jaxhpo.strategies.quasi_random(space, batch),
    "cma_es": lambda space, batch: jaxhpo.strategies.cma_es(space, batch),
    "sep_cma_es": lambda space, batch: jaxhpo.strategies.sep_cma_es(space, batch),
    "ipop_cma_es": lambda space, batch: jaxhpo.strategies.cma_es_restarts(space, batch),
    "bipop_cma_es": lambda space, batch: jaxhpo.strategies.cma_es_restarts(space, batch,
                                                                           mode="bipop"),
    "ars": lambda space, batch: jaxhpo.strategies.ars(space, max(batch // 2, 1),
                                                      top_directions=max(batch // 4, 1)),
    "ars_critic": lambda space, batch: jaxhpo.strategies.ars_augmented(
        space, max(batch // 2, 1), top_directions=max(batch // 4, 1), prescreen=4),
    "differential_evolution": lambda space, batch: jaxhpo.strategies.differential_evolution(
        space, max(batch, 4)),
    "de_current_to_best": lambda space, batch: jaxhpo.strategies.differential_evolution(
        space, max(batch, 4), variant="current-to-best/1"),
    "particle_swarm": lambda space, batch: jaxhpo.strategies.particle_swarm(space, batch),
    "genetic_algorithm": lambda space, batch: jaxhpo.strategies.genetic_algorithm(space, batch),
    "simulated_annealing": lambda space, batch: jaxhpo.strategies.simulated_annealing(
        space, batch),
    "gp_bo": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch),
    # half of each batch by Thompson sampling, half by kriging believer (an ablation)
    "gp_bo_ts": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch,
                                                             thompson_fraction=0.5),
    # the output warp and plug-in incumbent (defaults from q = 32) one at a time, see README
    "gp_bo_yj": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch,
                                                             output_warp="yeo-johnson"),
    "gp_bo_copula": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch,
                                                                 output_warp="copula"),
    "gp_bo_plain": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch, output_warp="none"),
    "gp_bo_no_warp": lambda space, batch: jaxhpo.strategies.gp_bo(
        space, batch, output_warp="none", plug_in=False),
    # uniform candidates inside a TuRBO trust region around the incumbent (Eriksson et al.
    # 2019): gp_bo's default from batch 32 on; these arms force it on or off (ablations)
    "gp_bo_tr": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch, trust_region=True),
    "gp_bo_no_tr": lambda space, batch: jaxhpo.strategies.gp_bo(space, batch,
                                                                trust_region=False),
    "tpe": lambda space, batch: jaxhpo.strategies.tpe(space, batch),
}


def _optuna():
    """Import Optuna (an optional extra) quietly: no INFO logs, no ExperimentalWarning."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# name -> factory(seed) -> optuna sampler (Optuna is imported only when one is selected)
OPTUNA_SAMPLERS = {
    "optuna_random": lambda seed: _optuna().samplers.RandomSampler(seed=seed),
    "optuna_qmc": lambda seed: _optuna().samplers.QMCSampler(seed=seed, scramble=True),
    "optuna_cmaes": lambda seed: _optuna().samplers.CmaEsSampler(seed=seed),  # needs `cmaes`
    "optuna_tpe": lambda seed: _optuna().samplers.TPESampler(seed=seed),
    # Asked --batch trials at a time (study.ask() q times, then tell): the pending trials are
    # RUNNING, so the constant liar puts them in the "above" group (Optuna >= 5 default).
    "optuna_tpe_liar": lambda seed: _optuna().samplers.TPESampler(seed=seed, constant_liar=True),
    "optuna_gp": lambda seed: _optuna().samplers.GPSampler(seed=seed),  # needs torch
}


def _botorch_batch(model, best, q, d):
    """Next ``q`` points (unit cube, maximizing ``-f``): analytic LogEI for ``q = 1``, otherwise
    qLogEI optimized by BoTorch's sequential greedy ``optimize_acqf(sequential=True)``."""
    import torch
    from botorch.acquisition import LogExpectedImprovement, qLogExpectedImprovement
    from botorch.optim import optimize_acqf

    acqf = (LogExpectedImprovement(model, best_f=best) if q == 1
            else qLogExpectedImprovement(model, best_f=best))
    bounds = torch.stack([torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)])
    x, _ = optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=10, raw_samples=512,
                         sequential=q > 1)
    return x


def run_botorch(tf, evals: int, batch: int, seeds: list[int], fixed_noise: bool = False
                ) -> np.ndarray:
    """Best-so-far values ``f[seeds, evals]`` of BoTorch (an optional reference, ``pip install
    botorch``): ``SingleTaskGP`` with its default priors, outputs standardized, refitted each
    round, (q)LogEI as in :func:`_botorch_batch`; a scrambled Sobol warm-up of as many points as
    gp_bo's default (the whole batches that fit in ``max(10, d + 1)``, at least one; before
    2026-12-07 both rounded up instead); the same float32 objective as
    :func:`run_jaxhpo`. By default the GP infers its noise (BoTorch's default, which floors it at
    ``1e-4`` of the standardized variance); ``fixed_noise`` fixes it at ``1e-8`` of the
    variance of the observations, for these noise-free functions."""
    try:
        import torch
        from botorch.fit import fit_gpytorch_mll
    except ImportError as e:
        raise SystemExit(f"the BoTorch references need `pip install botorch` ({e})") from e
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    d = len(tf.space)
    f = jax.jit(lambda u: tf.fn(tf.from_unit(u)))
    n_init = max(1, max(10, d + 1) // batch) * batch  # gp_bo's default num_initial
    out = []
    for s in seeds:
        torch.manual_seed(s)
        x = torch.quasirandom.SobolEngine(d, scramble=True, seed=s).draw(n_init).double()
        y = torch.as_tensor(np.asarray(f(jnp.asarray(x.numpy(), jnp.float32)), np.float64))
        while len(y) < evals:
            ok = torch.isfinite(y)
            yo = -y[ok, None]
            yvar = torch.full_like(yo, 1e-8) * yo.var() if fixed_noise else None
            model = SingleTaskGP(x[ok], yo, yvar, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            xn = _botorch_batch(model, (-y[ok]).max(), batch, d).detach()
            xn = jnp.asarray(xn.numpy(), jnp.float32)  # evaluated where jaxhpo would evaluate
            x = torch.cat([x, torch.as_tensor(np.asarray(xn, np.float64))])
            y = torch.cat([y, torch.as_tensor(np.asarray(f(xn), np.float64))])
        out.append(np.fmin.accumulate(np.where(np.isfinite(y.numpy()), y.numpy(), np.inf))[:evals])
    return np.array(out)


# BoTorch references (:func:`run_botorch`; batch size from --batch, like the jaxhpo strategies)
BOTORCH = ("botorch_logei", "botorch_logei_fixed_noise")
# Optuna arms asked --batch trials per round (the others run study.optimize, one at a time)
OPTUNA_BATCHED = ("optuna_tpe_liar",)
FUNCTIONS = ["branin", "hartmann3", "hartmann6", "ackley-5", "levy-4", "rosenbrock-2",
             "styblinski_tang-4"]


def run_jaxhpo(make, tf, evals: int, batch: int, seeds: list[int]) -> np.ndarray:
    """Best-so-far values ``f[seeds, evals]`` of one jaxhpo strategy (one compile, all seeds).

    The trials are exactly those of ``jaxhpo.minimize_scan(tf.objective, tf.space, strategy,
    num_generations=ceil(evals / batch), key=seed)`` in trial order (same key derivation, same
    decoding), trimmed to ``evals``; the seed's key is an argument so one compile serves all seeds.
    """
    strategy = make(tf.space, batch)
    gens = math.ceil(evals / batch)

    @jax.jit
    def run(key):  # the driver's key derivation, as in jaxhpo.minimize_scan
        k_init, k_run = jax.random.split(key)

        def gen(state, g):
            k_ask, _ = jax.random.split(jax.random.fold_in(k_run, g))
            x, state = strategy.ask(k_ask, state)
            f = tf.fn(tf.from_unit(x))
            return strategy.tell(state, x, f), f

        state = strategy.init(k_init)
        if strategy.reserve is not None:  # as minimize_scan: room for the whole run
            state = strategy.reserve(state, gens * batch)
        _, fs = jax.lax.scan(gen, state, jnp.arange(gens))
        return fs.reshape(-1)[:evals]

    out = []
    for s in seeds:
        f = np.asarray(run(jax.random.key(s)), np.float64)
        out.append(np.fmin.accumulate(np.where(np.isfinite(f), f, np.inf)))
    return np.array(out)


def run_optuna(make_sampler, tf, evals: int, seeds: list[int], batch: int = 1) -> np.ndarray:
    """Best-so-far values ``f[seeds, evals]`` of an Optuna sampler on the same domain: with
    ``batch = 1`` ``study.optimize``; otherwise rounds of ``study.ask()`` ``batch`` times (those
    trials are RUNNING while the later ones of the round are sampled), then ``study.tell``."""
    optuna = _optuna()
    f = jax.jit(tf.fn)
    bounds = [(n, p.low, p.high) for n, p in tf.space.items()]
    dists = {n: optuna.distributions.FloatDistribution(lo, hi) for n, lo, hi in bounds}
    out = []
    for s in seeds:
        study = optuna.create_study(sampler=make_sampler(s))
        if batch == 1:
            study.optimize(lambda t: float(f(jnp.array([t.suggest_float(n, lo, hi)
                                                         for n, lo, hi in bounds]))),
                           n_trials=evals)
        else:
            while len(study.trials) < evals:
                trials = [study.ask(dists) for _ in range(min(batch, evals - len(study.trials)))]
                xs = jnp.array([[t.params[n] for n, _, _ in bounds] for t in trials])
                for t, v in zip(trials, np.asarray(jax.vmap(f)(xs), np.float64)):
                    study.tell(t, float(v))
        vals = np.array([t.value for t in study.trials], np.float64)
        out.append(np.fmin.accumulate(vals))
    return np.array(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first..first+seeds-1")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--strategies", default=",".join([*JAXHPO_STRATEGIES, *OPTUNA_SAMPLERS]))
    ap.add_argument("--checkpoints", default="25,50,100,128")
    ap.add_argument("--quick", action="store_true", help="2 seeds, 32 evals, 2 functions")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.evals, args.functions = 2, 32, "branin,hartmann3"
    if args.first_seed < 0 or args.seeds < 1:
        ap.error(f"--first-seed must be >= 0 and --seeds >= 1, got {args.first_seed}, "
                 f"{args.seeds}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    names = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in names
               if s not in JAXHPO_STRATEGIES and s not in OPTUNA_SAMPLERS and s not in BOTORCH]
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}")
    checkpoints = sorted({min(int(c), args.evals) for c in args.checkpoints.split(",")}
                         | {args.evals})

    results, rows = {}, []
    for fname in args.functions.split(","):
        tf = F.get(fname)
        row = {"function": tf.name}
        for name in names:
            t0 = time.perf_counter()
            if name in JAXHPO_STRATEGIES:
                best = run_jaxhpo(JAXHPO_STRATEGIES[name], tf, args.evals, args.batch, seeds)
            elif name in BOTORCH:
                best = run_botorch(tf, args.evals, args.batch, seeds,
                                   fixed_noise=name == "botorch_logei_fixed_noise")
            else:
                best = run_optuna(OPTUNA_SAMPLERS[name], tf, args.evals, seeds,
                                  args.batch if name in OPTUNA_BATCHED else 1)
            regret = best - tf.optimum_value
            stats = {}
            for c in checkpoints:
                r = regret[:, c - 1]
                stats[c] = {"median": float(np.median(r)), "q25": float(np.quantile(r, .25)),
                            "q75": float(np.quantile(r, .75))}
            grid = np.unique(np.r_[np.geomspace(1, args.evals, 24).round(), checkpoints])
            results.setdefault(tf.name, {})[name] = {
                "regret_at": stats, "per_seed_final": regret[:, -1].tolist(),
                "curve": {"evals": grid.astype(int).tolist(),  # per-seed, for jaxhpo.plot
                          "per_seed": regret[:, grid.astype(int) - 1].tolist()},
                "seconds": time.perf_counter() - t0}
            s = stats[args.evals]
            row[name] = f"{s['median']:.3g} [{s['q25']:.2g}, {s['q75']:.2g}]"
        rows.append(row)
    print_table(rows, ["function"] + names,
                f"median regret [q25, q75] after {args.evals} evaluations, {len(seeds)} seeds "
                f"(jaxhpo batch {args.batch})")
    path = write_result("quality", {"evals": args.evals, "seeds": seeds, "batch": args.batch,
                                    "checkpoints": checkpoints, "results": results})
    print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
