"""NaN/inf campaign: every registered strategy, half of its evaluations NaN or +/-inf.

Each strategy in ``jaxhpo.strategies.REGISTRY`` (with the registry's light settings) runs 20
generations of 16 on a 2-d sphere with its optimum 0 at ``x = 0.3`` (two objectives: a second
sphere at 0.7, Pareto set = the diagonal segment between them). In every generation a random
half of the rows, drawn from a fixed key (so the campaign is deterministic), return NaN, +inf or
-inf instead of their value; ``-inf`` is the nasty one, since a strategy that compares raw
fitness would take it for the best trial ever seen.

Checks (the truth is the known optimum; each can fail):

* every floating-point leaf of the final state is finite, every proposal finite and in [0, 1];
* progress, measured on the evaluations that came back finite: the best value <= 1e-2 (the
  conformance suite's bar for uncorrupted runs; a uniform point's expected value is ~0.25) and
  strictly below the first generation's best (for two objectives: the distance of the closest
  proposal to the Pareto set, <= 0.05 and below the first generation's). The script also reports
  ``median_ratio``, the median value of the last 5 generations over the first one's: far below 1
  where the population concentrates on the optimum (CMA-ES, DE, PSO), ~1 for non-adaptive and
  exploring strategies, so it is reported, not asserted.

``python tests/test_nan_campaign.py`` prints the per-strategy table and writes it to
``benchmarks/results/nan_campaign-*.json``.
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from jaxhpo import Float, Space, Strategy  # noqa: E402
from jaxhpo.strategies import REGISTRY  # noqa: E402

POP, GENS, DIM = 16, 20, 2


def sphere(x, m):
    f1 = jnp.sum((x - 0.3) ** 2, axis=-1)
    if m == 1:
        return f1
    return jnp.stack([f1, jnp.sum((x - 0.7) ** 2, axis=-1)], axis=-1)


def pareto_distance(x):
    """Distance of each point ``f[n, d]`` to the segment from 0.3 to 0.7 on the diagonal."""
    t = np.clip(x.mean(axis=1), 0.3, 0.7)
    return np.linalg.norm(x - t[:, None], axis=1)


def corrupt(key, f):
    """Half the rows (Bernoulli(1/2) per row) -> NaN, +inf or -inf; returns (f', bad bool[P])."""
    k_mask, k_kind = jax.random.split(key)
    bad = jax.random.bernoulli(k_mask, 0.5, (f.shape[0],))
    junk = jnp.array([jnp.nan, jnp.inf, -jnp.inf], jnp.float32)[
        jax.random.randint(k_kind, (f.shape[0],), 0, 3)]
    mask = bad if f.ndim == 1 else bad[:, None]
    return jnp.where(mask, junk if f.ndim == 1 else junk[:, None], f), bad


def campaign(name, seed=0, strategy=None):
    """Run one strategy under corruption; returns a dict of measurements."""
    m = 1 if strategy is not None else REGISTRY[name].num_objectives
    s = strategy or REGISTRY[name].make(Space({f"x{i}": Float(0.0, 1.0) for i in range(DIM)}),
                                        POP)
    ask, tell = jax.jit(s.ask), jax.jit(s.tell)
    key = jax.random.key(seed)
    k_init, k_run, k_bad = jax.random.split(key, 3)
    state = s.init(k_init)
    xs, oks = [], []
    for g in range(GENS):
        x, state = ask(jax.random.fold_in(k_run, g), state)
        f, bad = corrupt(jax.random.fold_in(k_bad, g), sphere(x, m))
        state = tell(state, x, f)
        xs.append(np.asarray(x))
        oks.append(~np.asarray(bad))
    xs, oks = np.stack(xs), np.stack(oks)
    finite_state = all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(state)
                       if jnp.issubdtype(leaf.dtype, jnp.floating))
    score = (lambda x: pareto_distance(x)) if m == 2 else (
        lambda x: np.sum((x - 0.3) ** 2, axis=-1))
    first = float(np.min(score(xs[0][oks[0]])))
    best = float(np.min(score(xs[oks])))
    late = xs[-5:][oks[-5:]]
    spread = float(np.median(score(late)) / np.median(score(xs[0][oks[0]])))
    return {"strategy": name, "objectives": m, "corrupted": int((~oks).sum()),
            "evaluations": int(oks.size), "finite_state": finite_state,
            "proposals_ok": bool(np.all(np.isfinite(xs)) and np.all((xs >= 0) & (xs <= 1))),
            "first_gen_best": first, "best": best, "median_ratio": spread, "bar": 0.05 if m == 2 else 1e-2}


def passed(r):
    return (r["finite_state"] and r["proposals_ok"] and r["best"] <= r["bar"]
            and r["best"] < r["first_gen_best"])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_half_nan_inf_evaluations(name):
    r = campaign(name)
    # About half the rows were corrupted (Binomial(320, 1/2): 160 +/- 9).
    assert 120 <= r["corrupted"] <= 200, r
    assert r["finite_state"], f"{name}: non-finite state leaf"
    assert r["proposals_ok"], f"{name}: proposals not finite or outside the cube"
    assert r["best"] <= r["bar"], r
    assert r["best"] < r["first_gen_best"], r


def test_campaign_catches_a_strategy_that_trusts_raw_fitness():
    """Negative control: a softmax-weighted mean of the proposals, fed raw NaN/-inf fitness,
    is poisoned (NaN state), and the campaign must say so."""
    def init(key):
        return jnp.full((DIM,), 0.5, jnp.float32)

    def ask(key, mean):
        x = jnp.clip(mean + 0.1 * jax.random.normal(key, (POP, DIM)), 0.0, 1.0)
        return x, mean

    def tell(mean, x, f):
        return jnp.sum(jax.nn.softmax(-f)[:, None] * x, axis=0)  # no sanitize_fitness

    naive = Strategy(init, ask, tell, POP, DIM, "naive")
    r = campaign("naive", strategy=naive)
    assert not r["finite_state"] and not passed(r)


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from benchmarks._common import print_table, write_result

    rows = []
    import time
    for n in sorted(REGISTRY):
        t0 = time.perf_counter()
        r = campaign(n)
        r["seconds"] = time.perf_counter() - t0
        r["pass"] = passed(r)
        rows.append(r)
        print(n, r, flush=True)
    cols = ["strategy", "objectives", "evaluations", "corrupted", "finite_state",
            "proposals_ok", "first_gen_best", "best", "bar", "median_ratio", "pass", "seconds"]
    print_table(rows, cols, "NaN/inf in half of the evaluations (20 x 16, 2-d sphere)")
    print(write_result("nan_campaign", {"rows": rows, "pop": POP, "generations": GENS,
                                        "dim": DIM}))
