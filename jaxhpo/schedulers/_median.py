"""The median stopping rule of Google Vizier (Golovin et al. 2017, Sec. 3.2.2).

"A trial is stopped at step s if the trial's best objective value by step s is strictly worse
than the median value of the running averages of all completed trials' objectives reported up to
step s." Here the comparison pool is every *other* trial that has reported at step ``s``
(completed or still running, selectable with ``reference``), which is what a population of
lock-step slots has; a grace period and a minimum pool size keep the rule from firing on too
little evidence.

Curves live in a fixed-capacity buffer ``f32[N, S]`` (trial x report index) with a mask, so the
rule compiles once however many trials have accumulated. Reports are indexed by a common grid
(the driver reports every ``eval_every`` steps), and each trial is judged at its latest report.

Reference:
  D. Golovin, B. Solnik, S. Moitra, G. Kochanski, J. Karro, D. Sculley. "Google Vizier: A
  Service for Black-Box Optimization." KDD 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxhpo._validate import check_int
from jaxhpo.schedulers._common import CONTINUE, STOP, check_curves, worst_if_nonfinite




def running_averages(curves: jax.Array, mask: jax.Array) -> jax.Array:
    """Running means of the observed values: ``f32[N, S]``, entry ``[j, s]`` is the mean of
    ``curves[j, :s+1]`` over ``mask`` (NaN before the first report, carried forward over
    gaps; once a value is diverged the mean is ``+inf``)."""
    curves, mask = check_curves(curves, mask)
    v = jnp.where(mask, worst_if_nonfinite(curves), 0.0)
    count = jnp.cumsum(mask, axis=1)
    # inf * 0 would be NaN: track divergence separately so a diverged prefix averages to +inf.
    bad = jnp.cumsum(mask & ~jnp.isfinite(v), axis=1) > 0
    total = jnp.cumsum(jnp.where(jnp.isfinite(v), v, 0.0), axis=1)
    mean = jnp.where(bad, jnp.inf, total / jnp.maximum(count, 1))
    return jnp.where(count > 0, mean, jnp.nan)


def median_stopping(curves: jax.Array, mask: jax.Array, active: jax.Array | None = None,
                    reference: jax.Array | None = None, *, grace_period: int = 1,
                    min_trials: int = 3) -> jax.Array:
    """Decide, per trial, whether the median stopping rule stops it at its latest report.

    Args:
      curves: ``f32[N, S]`` metric of trial ``j`` at report ``s`` (minimized), over a buffer of
        ``N`` trials (slots or the whole history).
      mask: ``bool[N, S]`` which reports exist.
      active: ``bool[N]`` trials to decide (default: every trial with a report). Others get
        ``CONTINUE`` (no-op).
      reference: ``bool[N]`` trials whose running averages form the median pool (default: all
        trials; the trial itself is always left out of its own pool).
      grace_period: never stop a trial before it has this many reports (>= 1).
      min_trials: the pool at the trial's latest report index must have at least this many
        trials, else it continues (>= 1).

    Returns:
      ``i32[N]`` codes ``STOP`` / ``CONTINUE``. A trial whose latest value is NaN/inf (diverged)
      is always stopped.
    """
    curves, mask = check_curves(curves, mask)
    n, steps = curves.shape
    grace_period = check_int(grace_period, "grace_period", 1)
    min_trials = check_int(min_trials, "min_trials", 1)
    has = jnp.any(mask, axis=1)
    active = has if active is None else jnp.asarray(active, bool) & has
    reference = jnp.ones((n,), bool) if reference is None else jnp.asarray(reference, bool)
    for name, a in (("active", active), ("reference", reference)):
        if a.shape != (n,):
            raise ValueError(f"{name} must be bool[{n}], got shape {a.shape}")

    avg = running_averages(curves, mask)
    clean = jnp.where(mask, worst_if_nonfinite(curves), jnp.inf)
    best = jax.lax.cummin(clean, axis=1)                              # best so far, f32[N, S]
    last = steps - 1 - jnp.argmax(mask[:, ::-1], axis=1)              # latest report index
    num_reports = jnp.sum(mask, axis=1)
    rows = jnp.arange(n)

    def decide(i):
        s = last[i]
        pool = reference & mask[:, s] & (rows != i)
        med = jnp.nanmedian(jnp.where(pool, avg[:, s], jnp.nan))
        worse = best[i, s] > med                                      # strictly worse
        enough = (num_reports[i] >= grace_period) & (jnp.sum(pool) >= min_trials)
        diverged = ~jnp.isfinite(curves[i, s])
        return jnp.where(diverged | (enough & worse), STOP, CONTINUE)

    out = jax.vmap(decide)(rows).astype(jnp.int32)
    return jnp.where(active, out, CONTINUE).astype(jnp.int32)
