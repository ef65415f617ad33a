"""IPOP- and BIPOP-CMA-ES: CMA-ES restarted with increasing (or alternating) population sizes.

After A. Auger and N. Hansen, "A Restart CMA Evolution Strategy With Increasing Population
Size", CEC 2005 (IPOP), and N. Hansen, "Benchmarking a BI-Population CMA-ES on the BBOB-2009
Function Testbed", GECCO 2009 workshop (BIPOP). Each run is the active CMA-ES of
:mod:`jaxhpo.strategies._cma_es`; when a run stops (criteria below) a new one starts from a
uniform random mean with ``C = I``, and the best point ever told is kept.

**Fixed shapes with a growing population.** A :class:`jaxhpo.Strategy` returns
``f32[population_size, d]`` from every ``ask``, but IPOP doubles lambda at each restart. Here
``population_size`` is the base ``lambda0`` and a run at *level* ``k`` has
``lambda = 2**k * lambda0``: one of its generations spans ``2**k`` driver generations. Each
``ask`` samples the next chunk of ``lambda0`` steps from the (unchanged) distribution and writes
it into a buffer ``y: f32[lambda_max, d]`` (``lambda_max = 2**K * lambda0``, ``K =
max_doublings``); ``tell`` stores the chunk's fitness, and when the ``2**k``-th chunk is told the
CMA update runs on the whole generation (:func:`~jaxhpo.strategies._cma_es.cma_update`, shared
with ``cma_es``). Everything that depends on lambda (recombination weights, ``mu_eff``, ``c1``,
``c_mu``, ``c_sigma``, ``d_sigma``, ``c_c``, the eigendecomposition interval and the windows of
the stopping criteria) is precomputed for ``k = 0..K`` as tables indexed by the traced level;
weights beyond lambda are zero and the unused buffer rows rank last with fitness ``+inf``. So
``ask``/``tell`` compile once whatever the restarts do. With ``max_restarts=0`` the wrapper runs
exactly ``cma_es`` (same proposals, bit for bit).

**Stopping criteria** (Hansen 2009, Sect. 2; defaults of the ``cma`` package), checked after
each CMA generation ``g`` of a run:

* TolHistFun: the best values of the last ``10 + ceil(30 d / lambda)`` generations span less
  than ``tol_fun`` (1e-12). (Auger & Hansen's TolFun additionally asks the same of the current
  generation's values; that case is contained in this one.)
* EqualFunVals: in more than a third of the last ``d`` generations the best and the
  ``(1 + ceil(0.1 + lambda / 4))``-th best value were equal.
* TolX: every ``sigma * sqrt(C_ii)`` and ``sigma * |p_c,i|`` is below ``1e-12 * sigma0``.
* NoEffectAxis: adding ``0.1 sigma D_ii b_i`` (``i = g mod d``) leaves the mean unchanged.
* NoEffectCoord: adding ``0.2 sigma sqrt(C_jj)`` to some coordinate leaves it unchanged.
* ConditionCov: ``cond(C) > 1e14``.
* Stagnation: over the last ``120 + ceil(30 d / lambda)`` generations, the median of the most
  recent 30% of both the best and the median values is not better than that of the oldest 30%.
  (Hansen lets this window grow to 20% of the run, up to 20000 generations; a fixed-capacity
  ring buffer keeps its minimum length.)
* TolUpSigma, adapted to the cube: ``sigma * max(D) > 100``, the search distribution is a
  hundred times wider than the cube. (The paper's ``sigma / sigma0 > 1e20 sqrt(max eig C)`` can
  not trigger here, as ``cma_es`` keeps ``sigma <= 1e3``.)
* A non-finite update (``cma_update`` fell back to the previous state).
* BIPOP only: a small-population run has used half of the large-population budget.

**Restart schedule.** IPOP: run ``r`` uses level ``min(r, K)`` and ``sigma0``. BIPOP (budget
bookkeeping as in the ``cma`` package): the first run is at level 0 and counts as "small";
before each restart the regime whose evaluations so far are fewer runs next (ties go to the
large regime). A large run doubles the population of the previous large run (IPOP). A small run
has ``lambda_s = lambda0 * (lambda_l / (2 lambda0)) ** (U**2)`` with ``lambda_l`` the last large
population and step size ``sigma0 * 10 ** (-2 U')`` (``U, U'`` uniform on ``[0, 1]``); here
``log2(lambda_s / lambda0)`` is rounded to an integer level, so ``lambda_s`` is also a power of
two times ``lambda0`` and the same tables serve.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import Strategy, check_int, check_real, sanitize_fitness
from jaxhpo.strategies._cma_es import (
    CMAESState, CMAParams, check_cma_args, cma_params, cma_update, init_cma_state,
    sample_steps, update_best)

# bits of RestartCMAState.stop_flags, one per stopping criterion
STOP_CRITERIA = ("tol_hist_fun", "equal_fun_vals", "tol_x", "no_effect_axis",
                 "no_effect_coord", "condition_cov", "stagnation", "tol_up_sigma",
                 "non_finite", "small_budget")


@struct.dataclass
class RestartCMAState:
    core: CMAESState  # the current run; core.y: f32[lambda_max, d], core.generation: of the run
    fit: jax.Array  # f32[lambda_max]     fitness told in this generation (0 where failed)
    ok: jax.Array  # bool[lambda_max]     finite fitness
    pen: jax.Array  # f32[lambda_max]     box penalty of each told proposal
    chunk: jax.Array  # i32[]             next chunk of lambda0 rows within the generation
    level: jax.Array  # i32[]             lambda = 2**level * lambda0
    hist_best: jax.Array  # f32[H]        ring buffers over the run's generations:
    hist_median: jax.Array  # f32[H]        best, median, and best == k-th best
    hist_equal: jax.Array  # f32[H]
    pending: jax.Array  # bool[]          restart at the next ask
    small: jax.Array  # bool[]            current run in BIPOP's small regime
    num_large: jax.Array  # i32[]         large-population runs started (IPOP: restarts)
    restarts: jax.Array  # i32[]
    stop_flags: jax.Array  # i32[]        criteria (bits, see STOP_CRITERIA) of the last stop
    run_evals: jax.Array  # i32[]         evaluations of the current run
    budget_small: jax.Array  # i32[]      evaluations spent in each regime (BIPOP)
    budget_large: jax.Array  # i32[]
    best_x: jax.Array  # f32[d]           best over all runs
    best_fitness: jax.Array  # f32[]


def _level_tables(d: int, lam0: int, levels: int) -> tuple[CMAParams, dict]:
    """Per-level constants, stacked on a leading axis of length ``levels + 1``."""
    lam_max = lam0 * 2**levels
    lams = [lam0 * 2**k for k in range(levels + 1)]
    rows = [cma_params(d, lam, pad_to=lam_max) for lam in lams]
    params = CMAParams(*(np.stack(col) for col in zip(*rows)))
    windows = dict(
        lam=np.array(lams, np.int32),
        hist=np.array([10 + math.ceil(30 * d / lam) for lam in lams], np.int32),
        stag=np.array([120 + math.ceil(30 * d / lam) for lam in lams], np.int32),
        kth=np.array([math.ceil(0.1 + lam / 4) for lam in lams], np.int32),  # 0-based index
    )
    return params, windows


def _window_median(hist, age, lo, hi):
    """Median of the ring-buffer entries whose age is in ``[lo, hi)``."""
    return jnp.nanmedian(jnp.where((age >= lo) & (age < hi), hist, jnp.nan))


def cma_es_restarts(space, population_size: int | None = None, *, mode: str = "ipop",
                    max_doublings: int = 6, max_restarts: int | None = None,
                    sigma0: float = 0.3, mean0=None, penalty: float = 1e3,
                    tol_fun: float = 1e-12, tol_x: float = 1e-12,
                    tol_condition: float = 1e14) -> Strategy:
    """CMA-ES with IPOP or BIPOP restarts (Auger & Hansen 2005; Hansen 2009) on the unit cube.

    Args:
      space: the search space.
      population_size: the base population ``lambda0`` returned by every ``ask``; default
        ``4 + floor(3 ln d)``. A run with ``2**k * lambda0`` members spans ``2**k`` asks.
      mode: ``"ipop"`` (double the population at each restart) or ``"bipop"`` (interleave
        small-population runs with random step sizes).
      max_doublings: ``K``; populations go up to ``2**K * lambda0`` (later restarts stay
        there). Memory holds ``2**K * lambda0`` steps of dimension ``d``.
      max_restarts: stop restarting after this many restarts (``None``: never stop);
        ``0`` runs plain :func:`~jaxhpo.strategies.cma_es`.
      sigma0: initial step size of each run in cube units (BIPOP's small runs scale it).
      mean0: mean of the first run (default: the centre); restarts draw a uniform mean.
      penalty: box penalty weight, as in ``cma_es``.
      tol_fun, tol_x, tol_condition: TolHistFun, TolX (times ``sigma0``) and ConditionCov.

    Returns:
      A :class:`jaxhpo.Strategy` with state :class:`RestartCMAState`; ``state.best_x`` holds
      the best point told so far, ``state.restarts`` counts restarts and ``state.level`` is
      the current population level.

    Example:
      >>> s = jaxhpo.strategies.cma_es_restarts(space, 8, mode="bipop")
      >>> state = s.init(jax.random.key(0))
      >>> x, state = s.ask(jax.random.key(1), state)   # f32[8, d]; tell 8 values back

    References:
      A. Auger and N. Hansen, "A Restart CMA Evolution Strategy With Increasing Population
      Size", IEEE CEC 2005. N. Hansen, "Benchmarking a BI-Population CMA-ES on the BBOB-2009
      Function Testbed", GECCO 2009 workshops.
    """
    d, lam0, m0 = check_cma_args(space, population_size, sigma0, mean0, penalty)
    if mode not in ("ipop", "bipop"):
        raise ValueError(f"mode must be 'ipop' or 'bipop', got {mode!r}")
    max_doublings = check_int(max_doublings, "max_doublings", 0, 16)
    if max_restarts is not None and (isinstance(max_restarts, bool) or not isinstance(
            max_restarts, int) or max_restarts < 0):
        raise ValueError(f"max_restarts must be None or an int >= 0, got {max_restarts!r}")
    for name, v in (("tol_fun", tol_fun), ("tol_x", tol_x), ("tol_condition", tol_condition)):
        check_real(v, name, 0.0)
    big = np.iinfo(np.int32).max
    restarts_cap = big if max_restarts is None else max_restarts
    levels = 0 if max_restarts == 0 else max_doublings
    lam_max = lam0 * 2**levels
    params, win = _level_tables(d, lam0, levels)
    params = jax.tree.map(jnp.asarray, params)
    win = {name: jnp.asarray(t) for name, t in win.items()}
    cap = max(int(win["stag"][0]), int(win["hist"][0]), d)  # ring buffer length H
    bipop = mode == "bipop"

    def init(key):
        del key
        hist = jnp.zeros(cap, jnp.float32)  # entries older than the run are masked
        zero = jnp.zeros((), jnp.int32)
        core = init_cma_state(m0, sigma0, lam_max)
        return RestartCMAState(
            core, jnp.zeros(lam_max), jnp.zeros(lam_max, bool), jnp.zeros(lam_max), zero,
            zero, hist, hist, hist,
            jnp.bool_(False), jnp.bool_(bipop), zero, zero, zero, zero, zero, zero,
            core.best_x, core.best_fitness)

    def restart(key, state):
        k_mean, k_u = jax.random.split(key)
        u = jax.random.uniform(k_u, (2,))
        large_level = jnp.minimum(state.num_large, levels)
        small_level = jnp.round(u[0] ** 2 * jnp.maximum(large_level - 1, 0)).astype(jnp.int32)
        level = jnp.where(state.small, small_level, large_level)
        sigma = jnp.where(state.small, sigma0 * 10.0 ** (-2.0 * u[1]), sigma0)
        fresh = init_cma_state(jax.random.uniform(k_mean, (d,)), sigma0, lam_max)
        core = fresh.replace(sigma=sigma.astype(jnp.float32), y=state.core.y,
                             best_x=state.core.best_x, best_fitness=state.core.best_fitness)
        return state.replace(core=core, level=level, pending=jnp.bool_(False))

    def ask(key, state):
        # the sample uses `key` itself, as cma_es does; restart draws an independent stream
        state = jax.lax.cond(state.pending, restart, lambda k, s: s,
                             jax.random.fold_in(key, 1), state)
        core = state.core
        y = sample_steps(key, core, lam0)
        x = core.mean + core.sigma * y
        y_buf = jax.lax.dynamic_update_slice(core.y, y, (state.chunk * lam0, 0))
        return jnp.clip(x, 0.0, 1.0), state.replace(core=core.replace(y=y_buf))

    def stop_criteria(state, core, g):
        """``i32[]`` bit mask of the criteria met after generation ``g`` of a run."""
        lv = state.level
        n_hist, n_stag = win["hist"][lv], win["stag"][lv]
        age = (g - 1 - jnp.arange(cap)) % cap  # 0 = this generation
        seen = age < g
        hb = jnp.where(seen, state.hist_best, jnp.nan)
        in_hist = age < n_hist
        hist_range = (jnp.nanmax(jnp.where(in_hist, hb, jnp.nan))
                      - jnp.nanmin(jnp.where(in_hist, hb, jnp.nan)))
        diag = jnp.diagonal(core.cov)
        sd = core.sigma * jnp.sqrt(jnp.maximum(diag, 0.0))
        i = g % d
        axis = 0.1 * core.sigma * core.eig_vals[i] * core.eig_vecs[:, i]
        n30 = jnp.ceil(0.3 * n_stag).astype(jnp.int32)
        med = lambda h, lo, hi: _window_median(jnp.where(seen, h, jnp.nan), age, lo, hi)
        stagnant = (g >= n_stag) & (med(state.hist_best, 0, n30)
                                    >= med(state.hist_best, n_stag - n30, n_stag)) & (
            med(state.hist_median, 0, n30) >= med(state.hist_median, n_stag - n30, n_stag))
        equal = jnp.sum(jnp.where(seen & (age < d), state.hist_equal, 0.0))
        cond = (jnp.max(core.eig_vals) / jnp.min(core.eig_vals)) ** 2
        flags = jnp.stack([
            (g >= n_hist) & (hist_range < tol_fun),
            (g >= d) & (equal > d / 3),
            jnp.all(sd < tol_x * sigma0) & jnp.all(core.sigma * jnp.abs(core.p_c)
                                                    < tol_x * sigma0),
            jnp.all(core.mean + axis == core.mean),
            jnp.any(core.mean + 0.2 * sd == core.mean),
            cond > tol_condition,
            stagnant,
            core.sigma * jnp.max(core.eig_vals) > 100.0,
        ])
        return jnp.sum(flags.astype(jnp.int32) << jnp.arange(flags.shape[0]))

    def generation_end(state):
        """The CMA update on the completed generation, history, and the restart decision."""
        lv = state.level
        lam = win["lam"][lv]
        valid = jnp.arange(lam_max) < lam
        f_clean, _ = sanitize_fitness(jnp.where(valid & state.ok, state.fit, jnp.nan))
        f = jnp.where(valid, f_clean + state.pen, jnp.inf)
        p = jax.tree.map(lambda t: t[lv], params)
        core, ok = cma_update(state.core, f, p)
        g = core.generation
        f_sorted = jnp.sort(f)
        slot = (g - 1) % cap
        state = state.replace(
            core=core,
            hist_best=state.hist_best.at[slot].set(f_sorted[0]),
            hist_median=state.hist_median.at[slot].set(f_sorted[(lam - 1) // 2]),
            hist_equal=state.hist_equal.at[slot].set(
                (f_sorted[0] == f_sorted[win["kth"][lv]]).astype(jnp.float32)))
        flags = stop_criteria(state, core, g)
        over_budget = state.small & (state.num_large > 0) & (
            state.run_evals >= state.budget_large // 2)
        flags = flags | ((~ok).astype(jnp.int32) << 8) | (over_budget.astype(jnp.int32) << 9)
        stop = (flags != 0) & (state.restarts < restarts_cap)
        # budget bookkeeping (Hansen 2009; the cma package's fmin): the next regime is the
        # one with fewer evaluations so far
        b_small = state.budget_small + jnp.where(state.small, state.run_evals, 0)
        b_large = state.budget_large + jnp.where(state.small, 0, state.run_evals)
        next_small = jnp.bool_(bipop) & (b_small < b_large)
        restarted = state.replace(
            pending=jnp.bool_(True), small=next_small, restarts=state.restarts + 1,
            num_large=state.num_large + (~next_small).astype(jnp.int32), stop_flags=flags,
            run_evals=jnp.zeros((), jnp.int32), budget_small=b_small, budget_large=b_large)
        return jax.tree.map(lambda a, b: jnp.where(stop, a, b), restarted, state)

    def tell(state, x, fitness):
        core = state.core
        row = state.chunk * lam0
        y = jax.lax.dynamic_slice(core.y, (row, 0), (lam0, d))
        pen = penalty * jnp.sum((core.mean + core.sigma * y - x) ** 2, axis=-1)
        f_chunk, ok = sanitize_fitness(fitness)
        state = state.replace(
            core=update_best(core, x, f_chunk + pen),
            fit=jax.lax.dynamic_update_slice(state.fit, jnp.where(ok, f_chunk, 0.0), (row,)),
            ok=jax.lax.dynamic_update_slice(state.ok, ok, (row,)),
            pen=jax.lax.dynamic_update_slice(state.pen, pen, (row,)),
            chunk=state.chunk + 1, run_evals=state.run_evals + lam0)
        complete = state.chunk == 2**state.level
        state = jax.lax.cond(complete, lambda s: generation_end(s.replace(chunk=0 * s.chunk)),
                             lambda s: s, state)
        return state.replace(best_x=state.core.best_x, best_fitness=state.core.best_fitness)

    return Strategy(init, ask, tell, lam0, d, f"{mode}_cma_es")
