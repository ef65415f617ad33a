"""Tree-structured Parzen Estimator (TPE): J. Bergstra, R. Bardenet, Y. Bengio, B. Kegl,
"Algorithms for Hyper-Parameter Optimization", NeurIPS 2011, with Optuna's defaults as the
reference behaviour (S. Watanabe, "Tree-structured Parzen estimator: Understanding its algorithm
components and their roles for better empirical performance", arXiv:2304.11127, 2023).

Observations are split by rank into a "below" (good) group of ``gamma(n) = min(ceil(0.1 n),
25)`` trials and an "above" group (Bergstra et al. Sect. 4; Watanabe Sect. 3); a Parzen
estimator is fitted to each, ``l(x)`` and ``g(x)`` (``jaxhpo.strategies._parzen``), and each
proposal is the best of ``n_ei_candidates`` draws from ``l`` under ``log l(x) - log g(x)``, which
ranks candidates like expected improvement (Bergstra et al. Sect. 4.1).

Every other default is Optuna's (v5, one objective): 10 random start-up trials, multivariate
kernels, prior weight 1, magic clip, ``consider_endpoints=False``, ``default_weights``; only
``n_ei_candidates`` differs for ``batch_size = 1`` (64 instead of 24, see
``benchmarks/tpe_ablation.py``). Batches: each row draws its own candidates; for
``batch_size >= 32`` by default from a portfolio of below-group sizes, ``gamma(n) / 2`` to
``2 gamma(n)`` across the rows, each row with its own ``l``/``g`` and 24 candidates (smaller
batches: one shared ``l``/``g``, 64 candidates, as sequentially); with ``constant_liar=True``
rows are chosen one after another and earlier rows join the above group, as Optuna treats
running trials (measured worse in rounds of 32, so off; see ``tpe`` and
``benchmarks/tpe_ablation.py``).

Constraints (``num_constraints=k``): feasible trials rank before infeasible ones, which rank by
total violation, so an infeasible trial joins the below group only when every feasible one is
in it (Optuna's constrained TPE).

Fixed shapes: observations live in a buffer of static ``capacity``; a full buffer keeps the
``gamma_max`` best trials and overwrites the oldest of the rest. Failed (NaN/inf) trials are
kept in the above group and never in the below group. Inactive conditional coordinates are left
out: bandwidths and marginals use only the trials where a coordinate is active, and each
candidate is scored on its own active coordinates (see ``_parzen``).
"""

from __future__ import annotations

from fractions import Fraction

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._strategy import Strategy, check_population_size, check_space, sanitize_fitness
from jaxhpo._validate import check_int, check_real
from jaxhpo.strategies._parzen import (fit_parzen, log_pdf, log_pdf_marginal, parzen_spec,
                                       sample, snap)

_BIG = 2**30
# Batches of at least this many rows default to the gamma_spread portfolio and 24 candidates
# (measured better at q = 32, worse at q = 8; see tpe's docstring).
_WIDE_BATCH = 32


@struct.dataclass
class TPEState:
    x: jax.Array  # f32[cap, d]   observed points (cube)
    y: jax.Array  # f32[cap]      fitness (failed trials: a finite stand-in, see ok)
    ok: jax.Array  # bool[cap]    finite fitness
    valid: jax.Array  # bool[cap] slot holds an observation
    order: jax.Array  # i32[cap]  trial number of each slot (age)
    count: jax.Array  # i32[]     trials told so far
    # f32[cap] total violation sum_i max(c_i, 0) per slot (0: feasible; NaN constraint: the
    # largest float32); None without constraints, so the state has no extra leaf.
    viol: jax.Array | None = None


def default_weights(rank: jax.Array, m: jax.Array, flat: int = 25) -> jax.Array:
    """Optuna's ``default_weights(m)`` read at ``rank`` (0 = oldest of a group of ``m``):
    the newest ``flat`` trials weigh 1, older ones ramp linearly from ``1 / m`` up to 1."""
    mf = jnp.maximum(m, 1).astype(jnp.float32)
    num = m - flat
    ramp = jnp.where(num > 1, 1.0 / mf + rank * (1.0 - 1.0 / mf) / jnp.maximum(num - 1, 1),
                     1.0 / mf)
    return jnp.where(rank >= num, 1.0, ramp)


def _rank_in(mask: jax.Array, key: jax.Array) -> jax.Array:
    """Rank of each masked entry by ``key`` among masked entries (stable); others get cap."""
    n = key.shape[0]
    idx = jnp.argsort(jnp.where(mask, key, jnp.iinfo(key.dtype).max if key.dtype == jnp.int32
                                else jnp.inf), stable=True)
    rank = jnp.zeros(n, jnp.int32).at[idx].set(jnp.arange(n, dtype=jnp.int32))
    return jnp.where(mask, rank, n)


def quality_rank(y, ok, valid, viol=None) -> jax.Array:
    """Rank of each trial, best first: ``i32[n]``; slots outside ``valid & ok`` get ``n``.

    Without constraints the rank is by fitness. With ``viol`` (total constraint violation,
    ``0`` = feasible) it is Optuna's order for constrained TPE (``_split_trials`` in
    ``optuna/samplers/_tpe/sampler.py``, Optuna PR #3506): every feasible trial by fitness, then
    the infeasible ones by violation, so an infeasible trial never outranks a feasible one.
    """
    good = valid & ok
    if viol is None:
        return _rank_in(good, y)
    feas = good & (viol <= 0)
    infeas = good & (viol > 0)
    rank = jnp.where(feas, _rank_in(feas, y), jnp.sum(feas) + _rank_in(infeas, viol))
    return jnp.where(good, rank, y.shape[0])


def _n_below(n, gamma: float, gamma_max: int):
    """``min(ceil(gamma * n), gamma_max)`` in exact integer arithmetic (Optuna's default_gamma)."""
    frac = Fraction(gamma).limit_denominator(1000)
    return jnp.minimum((n * frac.numerator + frac.denominator - 1) // frac.denominator, gamma_max)


def split_below_above(y, ok, valid, gamma: float = 0.1, gamma_max: int = 25, viol=None):
    """The good ("below") and the rest ("above") of the observations (Watanabe Sect. 3).

    Args:
      y: ``f32[n]`` fitness (minimized); ok: ``bool[n]`` finite fitness; valid: ``bool[n]``
        filled slots.
      gamma, gamma_max: the below group has ``min(ceil(gamma * n), gamma_max)`` members
        (Optuna's ``default_gamma``), ``n`` counting failed trials too, and only finite ones.
      viol: optional ``f32[n]`` total constraint violation (``0`` = feasible). The below group
        then takes the best feasible trials, and infeasible ones (least violation first) only
        for the places left when every feasible trial is in it (Optuna's constrained TPE, see
        :func:`quality_rank`).

    Returns:
      ``(below, above)``: ``bool[n]`` masks; ties go to the older slot index.
    """
    good = valid & ok
    n_below = _n_below(jnp.sum(valid), gamma, gamma_max)
    below = good & (quality_rank(y, ok, valid, viol) < n_below)
    return below, valid & ~below


def constraint_violation(constraints: jax.Array) -> jax.Array:
    """Total violation ``f32[pop]`` of ``constraints: f32[pop, k]`` (feasible when every value
    is ``<= 0``): ``sum_i max(c_i, 0)``, Optuna's infeasibility score; a NaN value counts as
    the largest violation, so such a trial ranks after every other."""
    c = jnp.asarray(constraints, jnp.float32)
    v = jnp.sum(jnp.where(jnp.isnan(c), jnp.inf, jnp.maximum(c, 0.0)), axis=-1)
    return jnp.minimum(v, jnp.finfo(jnp.float32).max)


def tpe(space, batch_size: int, *, n_startup_trials: int = 10,
        n_ei_candidates: int | None = None,
        gamma: float = 0.1, gamma_max: int = 25, multivariate: bool = True,
        constant_liar: bool = False, prior_weight: float = 1.0, magic_clip: bool = True,
        consider_endpoints: bool = False, capacity: int = 1024,
        num_constraints: int = 0, gamma_spread: float | None = None) -> Strategy:
    """TPE (Optuna's estimator and settings, except where measured better below), as a
    fixed-shape jitted strategy.

    Args:
      space: the search space (float, log, int, categorical and conditional parameters).
      batch_size: proposals per ``ask``; each row draws its own candidates.
      n_startup_trials: proposals are uniform random while their trial number (trials told
        before the ``ask`` + row) is below this.
      n_ei_candidates: draws from ``l(x)`` scored per proposal. Default (``None``): 64, or 24
        (Optuna's) for ``batch_size >= 32``. Sequentially 64 (more exploitation) gave lower
        regret at 100 evaluations on Hartmann6 (and no worse on Ackley-5, Levy-4) over
        held-out seeds, and no clear difference on Branin, as it did in rounds of 8 (128
        evaluations); in rounds of 32 (256 evaluations) fewer candidates (more diverse rows)
        did better, 24 than 64 on all four (see ``benchmarks/tpe_ablation.py``); pass 24 for
        Optuna's behaviour.
      gamma, gamma_max: the below group has ``min(ceil(gamma * n), gamma_max)`` trials.
      multivariate: joint kernels over all coordinates (Optuna's default for one objective
        since v5; Falkner et al. 2018) instead of one independent estimator per coordinate.
      constant_liar: within a batch, add each row's proposal to the above group before the next
        row is chosen (Optuna's ``constant_liar`` for running trials); otherwise rows are
        independent draws. Off by default: in rounds of 32 (256 evaluations, seeds 100-109)
        it raised the median regret on Hartmann-6 and Ackley-5 with 12, 24 or 64 candidates,
        and on all four of those, Levy-4 and Branin with Optuna's 24.
      gamma_spread: batch rule: row ``b`` of an ``ask`` fits its own ``l``/``g`` with a below
        group of ``gamma(n) * gamma_spread ** t_b`` trials, ``t_b`` evenly spaced in
        ``[-1, 1]``: a portfolio from exploiting rows (half the usual group, ``l`` on the very
        best trials) to exploring ones (twice). This is jaxhpo's own rule, measured, not a
        published one; Watanabe (2023) discusses how gamma trades exploitation for exploration.
        ``1``: every row uses ``gamma(n)`` and one shared ``l``/``g``. Default (``None``): 2 for
        ``batch_size >= 32``, else 1. At 256 evaluations in rounds of 32 on 20 held-out seeds
        it (with 24 candidates) lowered the median regret on Hartmann-6, Ackley-5, Levy-4 and
        Branin, to below Optuna's TPE (constant liar, asked 32 at a time); in rounds of 8 (128
        evaluations) it raised it on Hartmann-6 (0.11-0.17 against 0.047 for the sequential
        defaults), so smaller batches keep those (``benchmarks/tpe_ablation.py``; batch sizes
        between 8 and 32 were not measured).
      prior_weight, magic_clip, consider_endpoints: Parzen estimator settings (Optuna: 1.0,
        True, False), see ``fit_parzen``.
      capacity: observation buffer size (static); at least ``batch_size + gamma_max``.
      num_constraints: ``k > 0``: ``tell(state, x, fitness, constraints)`` takes
        ``constraints: f32[batch_size, k]`` (feasible when every value is ``<= 0``, NaN =
        violated), handled as Optuna's constrained TPE: the below group holds the best feasible
        trials and infeasible ones (least total violation ``sum max(c, 0)`` first) only where
        fewer than ``gamma(n)`` trials are feasible; every other trial is above, so ``l(x)``
        models the good feasible region and ``g(x)`` the rest, infeasible trials included.

    Returns:
      A :class:`jaxhpo.Strategy`.

    Example:
      >>> s = jaxhpo.strategies.tpe(space, 1)
      >>> state = s.init(jax.random.key(0))
      >>> x, state = s.ask(jax.random.key(1), state)          # f32[1, d]
      >>> state = s.tell(state, x, fitness)
      >>> c = jaxhpo.strategies.tpe(space, 32, num_constraints=1)  # batch portfolio, constraints
      >>> x, st = c.ask(jax.random.key(2), c.init(jax.random.key(0)))   # f32[32, d]
      >>> st = c.tell(st, x, fitness32, constraint_values)  # f32[32, 1], feasible when <= 0

    References:
      J. Bergstra et al., "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011.
      S. Watanabe, arXiv:2304.11127, 2023. T. Akiba et al., "Optuna", KDD 2019.
      Constraints: Optuna's ``TPESampler(constraints_func=...)`` (PR #3506,
      ``optuna/samplers/_tpe/sampler.py`` ``_split_trials``), and S. Watanabe, F. Hutter,
      "c-TPE: Tree-structured Parzen Estimator with Inequality Constraints for Expensive
      Hyperparameter Optimization", IJCAI 2023 (arXiv:2211.14411), which motivates it.
    """
    d = check_space(space)
    B = check_population_size(batch_size, "batch_size")
    wide = B >= _WIDE_BATCH
    if n_ei_candidates is None:
        n_ei_candidates = 24 if wide else 64
    for name, v, lo in [("n_startup_trials", n_startup_trials, 0),
                        ("n_ei_candidates", n_ei_candidates, 1), ("gamma_max", gamma_max, 1),
                        ("capacity", capacity, 1), ("num_constraints", num_constraints, 0)]:
        check_int(v, name, lo)
    check_real(gamma, "gamma", 0.0, 1.0, low_open=True)
    check_real(prior_weight, "prior_weight", 0.0)
    if capacity < B + gamma_max:
        raise ValueError(f"capacity must be >= batch_size + gamma_max = {B + gamma_max}, got "
                         f"{capacity}; raise capacity")
    gamma_spread = (2.0 if wide else 1.0) if gamma_spread is None else gamma_spread
    check_real(gamma_spread, "gamma_spread", 1.0)
    liar = constant_liar
    spec = parzen_spec(space)
    fit = lambda x, w, act: fit_parzen(spec, x, w, act, prior_weight=prior_weight,
                                       magic_clip=magic_clip,
                                       consider_endpoints=consider_endpoints)

    def init(key):
        del key
        empty = jnp.zeros(capacity, bool)
        return TPEState(jnp.full((capacity, d), 0.5), jnp.zeros(capacity), empty, empty,
                        jnp.zeros(capacity, jnp.int32), jnp.zeros((), jnp.int32),
                        jnp.zeros(capacity) if num_constraints else None)

    def group_weights(group, order):
        return jnp.where(group, default_weights(_rank_in(group, order), jnp.sum(group)), 0.0)

    def score(l_est, g_est, c):
        """Acquisition log l - log g of candidates ``c: f32[m, d]``: f32[m] or f32[m, d]."""
        if multivariate:
            act = space.active_mask(c)
            s = log_pdf(l_est, c, act) - log_pdf(g_est, c, act)
        else:
            s = log_pdf_marginal(l_est, c) - log_pdf_marginal(g_est, c)
        return jnp.where(jnp.isnan(s), -jnp.inf, s)

    def pick(cands, s):
        """Best candidate per row: cands f32[B, m, d], s f32[B, m] or f32[B, m, d]."""
        if multivariate:
            return jnp.take_along_axis(cands, jnp.argmax(s, 1)[:, None, None], 1)[:, 0]
        return jnp.take_along_axis(cands, jnp.argmax(s, 1)[:, None, :], 1)[:, 0]

    def liar_rows(l_of, cands, above, state):
        """Constant liar: rows chosen one after another; earlier rows of the batch join the
        above group (newest, weight 1) before the next row's ``g`` is fitted, as Optuna treats
        RUNNING trials. ``l_of(b)``: row ``b``'s ``l``; ``above: bool[cap]`` or ``bool[B, cap]``."""
        xs = jnp.concatenate([state.x, jnp.full((B, d), 0.5)])
        orders = jnp.concatenate([state.order, state.count + jnp.arange(B, dtype=jnp.int32)])
        above = jnp.broadcast_to(above, (B, capacity))
        pending = jnp.zeros(B, bool)

        def row(carry, b):
            xs, pending = carry
            above_ext = jnp.concatenate([above[b], pending])
            g_est = fit(xs, group_weights(above_ext, orders), space.active_mask(xs))
            s = score(l_of(b), g_est, cands[b])
            xb = pick(cands[b][None], s[None])[0]
            return (xs.at[capacity + b].set(xb), pending.at[b].set(True)), xb

        return jax.lax.scan(row, (xs, pending), jnp.arange(B))[1]

    def propose(key, state):
        act = space.active_mask(state.x)
        if gamma_spread == 1.0 or B == 1:
            below, above = split_below_above(state.y, state.ok, state.valid, gamma, gamma_max,
                                             state.viol)
            l_est = fit(state.x, group_weights(below, state.order), act)
            cands = sample(key, l_est, B * n_ei_candidates, independent=not multivariate)
            cands = snap(spec, space.neutralize(cands)) if multivariate else cands
            cands = cands.reshape(B, n_ei_candidates, d)
            if not liar or B == 1:
                g_est = fit(state.x, group_weights(above, state.order), act)
                s = score(l_est, g_est, cands.reshape(-1, d)).reshape(B, n_ei_candidates, -1)
                return pick(cands, s.squeeze(-1) if multivariate else s)
            return liar_rows(lambda b: l_est, cands, above, state)
        # A portfolio of below-group sizes across the rows: row b's group is
        # n_below * gamma_spread ** t_b, t_b evenly spaced in [-1, 1] (small groups exploit,
        # large ones explore), each row its own l and g.
        n_below = _n_below(jnp.sum(state.valid), gamma, gamma_max)
        t = jnp.linspace(-1.0, 1.0, B)
        n_rows = jnp.maximum(jnp.round(n_below * gamma_spread ** t), 1).astype(jnp.int32)
        good = state.valid & state.ok
        below = good & (quality_rank(state.y, state.ok, state.valid, state.viol)[None]
                        < n_rows[:, None])  # bool[B, cap]
        above = state.valid & ~below
        w_rows = jax.vmap(group_weights, (0, None))(below, state.order)
        l_rows = jax.vmap(fit, (None, 0, None))(state.x, w_rows, act)
        keys = jax.random.split(key, B)
        cands = jax.vmap(lambda k, l: sample(k, l, n_ei_candidates,
                                             independent=not multivariate))(keys, l_rows)
        cands = snap(spec, space.neutralize(cands)) if multivariate else cands
        l_of = lambda b: jax.tree.map(lambda a: a[b], l_rows)
        if liar:
            return liar_rows(l_of, cands, above, state)
        g_rows = jax.vmap(fit, (None, 0, None))(
            state.x, jax.vmap(group_weights, (0, None))(above, state.order), act)
        s = jax.vmap(score)(l_rows, g_rows, cands)
        return pick(cands, s)

    def ask(key, state):
        k_rand, k_tpe = jax.random.split(key)
        rand = jax.random.uniform(k_rand, (B, d), jnp.float32)
        # Trial count + row < n_startup_trials: random, as Optuna decides trial by trial.
        is_rand = (state.count + jnp.arange(B) < n_startup_trials)[:, None]
        x = jax.lax.cond(jnp.all(is_rand), lambda: rand,
                         lambda: jnp.where(is_rand, rand, propose(k_tpe, state)))
        x = snap(spec, space.neutralize(x)) if not multivariate else x
        return jnp.clip(x, 0.0, 1.0), state

    def tell(state, x, fitness, constraints=None):
        y, ok = sanitize_fitness(fitness)
        protect = quality_rank(state.y, state.ok, state.valid, state.viol) < gamma_max
        # Eviction order: empty slots first, then the oldest unprotected trial.
        slot_key = jnp.where(~state.valid, -_BIG + jnp.arange(capacity),
                             jnp.where(protect, _BIG, state.order))
        slots = jnp.argsort(slot_key, stable=True)[:B]
        order = state.count + jnp.arange(B, dtype=jnp.int32)
        viol = (None if constraints is None else
                state.viol.at[slots].set(constraint_violation(constraints)))
        return TPEState(state.x.at[slots].set(jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)),
                        state.y.at[slots].set(y), state.ok.at[slots].set(ok),
                        state.valid.at[slots].set(True), state.order.at[slots].set(order),
                        state.count + B, viol)

    if num_constraints:
        return Strategy(init, ask, tell, B, d, "tpe", num_constraints=num_constraints)
    return Strategy(init, ask, lambda state, x, fitness: tell(state, x, fitness), B, d, "tpe")
