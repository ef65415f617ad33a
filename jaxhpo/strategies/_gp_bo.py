"""Bayesian optimization with a Gaussian process (GP-BO), batch proposals by kriging believer.

Each ``tell`` appends the new observations to a fixed-capacity buffer and refits the GP
hyperparameters on a schedule (MAP, multi-start L-BFGS warm-started from the previous fit; see
:mod:`jaxhpo.gp`); between refits it appends the new rows to the Cholesky factor (a block
update, :func:`jaxhpo.gp.append_rows`, ``O(q C^2)``) instead of refactoring (``O(C^3)``).
Each ``ask`` proposes from the model (:mod:`jaxhpo.strategies._gp_bo_propose`) once
``num_initial`` scrambled Halton points are in (for batches of 32 or more, drawing its
uniform candidates inside a TuRBO trust region around the incumbent, modelling Yeo-Johnson
transformed values and taking the lowest posterior mean as EI's incumbent). Failed trials
(NaN/inf fitness) are kept out of the objective's GP; "side" GPs over every told row model each
constraint (``num_constraints``) and, once a trial has failed, the failure indicator, and
weight the acquisition by the probability of feasibility and success (Gardner et al. 2014;
Gelbart et al. 2014). Pure functions over a static :class:`GPBOConfig` and the
:class:`GPBOState`; the GP runs in float64 (:mod:`jaxhpo.gp._precision`), the state holds
float32 observations and its float64 arrays as ``uint32`` bit pairs: no float64 leaf.

References:
  Jones, Schonlau & Welch, "Efficient global optimization of expensive black-box functions",
  J. Global Optim. 1998. Snoek, Larochelle & Adams, "Practical Bayesian optimization of machine
  learning algorithms", NeurIPS 2012.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo import gp
from jaxhpo._validate import (check_bool, check_choice, check_int, check_optional_int,
                              check_population_size, check_real, check_space)
from jaxhpo._space import Space
from jaxhpo._strategy import Strategy
from jaxhpo.gp import _precision as precision
from jaxhpo.gp._kernels import KERNELS
from jaxhpo.strategies._gp_bo_propose import EMPTY, FAILED, OK, prepare, propose, targets
from jaxhpo.strategies._quasi_random import QuasiRandomState, quasi_random


class GPBOConfig(NamedTuple):
    """Static settings of :func:`gp_bo` (see its docstring), validated."""

    space: Space
    spec: gp.InputSpec
    warmup: Strategy  # quasi-random proposals before the model is used
    q: int
    d: int
    acquisition: str
    num_initial: int
    capacity: int  # initial buffer size
    num_candidates: int
    num_polish: int  # <= num_candidates
    polish_steps: int
    num_restarts: int
    fit_steps: int
    ucb_beta: float
    min_noise: float
    thompson_candidates: int  # <= num_candidates
    refit_below: int
    refit_growth: float
    fit_capacity: int
    float64: bool  # the GP's numerics in float64 (inside precision.scope)
    gp_dtype: type  # float64 or float32
    screen_dtype: type  # float32, unless float64 and ask_float64
    batch_pool: int  # <= num_candidates
    discrete: np.ndarray  # bool[d]: integer and categorical coordinates
    num_constraints: int  # k: constraint GPs (one per constraint)
    failure_model: bool  # a GP on the failure indicator (the last side output)
    min_success: float  # soft floor of the probability of success
    thompson_batch: int  # batch members drawn by Thompson sampling (the rest: believer)
    incremental: bool  # append rows to the factor between refits (else refactor every tell)
    trust_region: bool  # uniform candidates inside a TuRBO trust region around the incumbent
    grows: bool  # capacity=None: ``reserve`` doubles the buffer; an int fixes it
    output_warp: str  # "none", "yeo-johnson" or "copula": the GP's targets (``targets``)
    plug_in: bool  # EI's incumbent: the lowest posterior mean at the observations

    @property
    def num_side(self) -> int:
        """Side GPs: one per constraint, then the failure indicator (when modelled)."""
        return self.num_constraints + int(self.failure_model)


@struct.dataclass
class GPBOState:
    x: jax.Array  # f32[C, d]  observed points (bins snapped, inactive coordinates neutral)
    y: jax.Array  # f32[C]     fitness as told (0 where not OK)
    status: jax.Array  # i32[C]  EMPTY / OK / FAILED
    count: jax.Array  # i32[]    observations told so far (all statuses)
    fitted_at: jax.Array  # i32[] OK observations at the last hyperparameter fit
    params: gp.GPParams  # last fit (warm start of the next), packed: u32[..., 2] per f64 leaf
    post: gp.Posterior  # factored posterior of the OK observations, packed likewise
    key: jax.Array  # PRNG key for the fit's restarts and subsets
    warmup: QuasiRandomState
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]
    c: jax.Array  # f32[C, k]  constraint values as told (NaN: violated)
    side_params: gp.GPParams  # [m] side GPs' hyperparameters (constraints, failure), packed
    side_post: gp.Posterior  # [m] their posteriors over every told row, packed
    tr: jax.Array  # f32[3]  trust region: side length, successes and failures in a row


def factor(cfg: GPBOConfig, params: gp.GPParams, x, y, status) -> gp.Posterior:
    """The posterior of the buffer's OK rows, packed (call inside the precision scope)."""
    ft = cfg.gp_dtype
    y = targets(cfg, y, status == OK)
    return precision.pack(gp.posterior(params, x.astype(ft), y.astype(ft), status == OK,
                                       cfg.spec, cfg.min_noise))


def side_targets(cfg: GPBOConfig, c, status):
    """Targets ``f32[C, m]`` and mask ``bool[C]`` of the side GPs: each constraint (a NaN
    value, i.e. violated, replaced by ``w + 1 + |w|`` for the column's largest finite value
    ``w``, which is > 0), then the failure indicator (1 failed, 0 not), over every told row."""
    told = status != EMPTY
    cols = []
    if cfg.num_constraints:
        fin = jnp.isfinite(c) & told[:, None]
        worst = jnp.max(jnp.where(fin, c, -jnp.inf), axis=0)
        bad = jnp.where(jnp.isfinite(worst), worst + 1.0 + jnp.abs(worst), 1.0)
        cols.append(jnp.where(fin, c, bad))
    if cfg.failure_model:
        cols.append((status == FAILED).astype(jnp.float32)[:, None])
    return jnp.concatenate(cols, axis=1), told


def side_noise(cfg: GPBOConfig) -> float:
    """Noise floor of the side GPs (step-like targets: a floor keeps their fit smooth)."""
    return max(cfg.min_noise, 1e-6)


def factor_side(cfg: GPBOConfig, params: gp.GPParams, x, ys, mask) -> gp.Posterior:
    """The side GPs' posteriors ``[m]`` (vmapped over outputs), packed (inside the scope)."""
    ft = cfg.gp_dtype
    return precision.pack(jax.vmap(lambda p, y: gp.posterior(
        p, x.astype(ft), y.astype(ft), mask, cfg.spec, side_noise(cfg)))(params, ys.T))


def side_active(cfg: GPBOConfig, status) -> jax.Array:
    """Whether the side GPs are in use: with constraints always, else once a trial failed."""
    return jnp.asarray(cfg.num_constraints > 0) | jnp.any(status == FAILED)


def init(cfg: GPBOConfig, key: jax.Array) -> GPBOState:
    k_warm, k_fit = jax.random.split(key)
    x, y, status = (jnp.zeros((cfg.capacity,) + s, t) for s, t in (
        ((cfg.d,), jnp.float32), ((), jnp.float32), ((), jnp.int32)))
    c = jnp.zeros((cfg.capacity, cfg.num_constraints), jnp.float32)
    side_params = side_post = None
    with precision.scope(cfg.float64):
        params = gp.GPParams.default(cfg.d, cfg.gp_dtype)
        post = factor(cfg, params, x, y, status)
        params = precision.pack(params)
        if cfg.num_side:
            sp = jax.tree.map(lambda a: jnp.stack([a] * cfg.num_side),
                              gp.GPParams.default(cfg.d, cfg.gp_dtype))
            side_post = factor_side(cfg, sp, x, *side_targets(cfg, c, status))
            side_params = precision.pack(sp)
    zero = jnp.zeros((), jnp.int32)
    return GPBOState(x, y, status, zero, zero, params, post, k_fit, cfg.warmup.init(k_warm),
                     jnp.full((cfg.d,), 0.5, jnp.float32), jnp.float32(np.finfo(np.float32).max),
                     c, side_params, side_post, jnp.asarray([TR_INIT, 0.0, 0.0], jnp.float32))


TR_INIT, TR_MIN, TR_MAX, TR_SUCCESSES = 0.8, 0.5**7, 1.6, 3  # Eriksson et al. 2019, Sect. 2
_TR_BATCH = 32  # batches of at least this size default to the trust region


def trust_region(cfg: GPBOConfig, tr: jax.Array, improved: jax.Array) -> jax.Array:
    """TuRBO's side-length rule (Eriksson, Pearce, Gardner, Turner & Poloczek, "Scalable
    global optimization via local Bayesian optimization", NeurIPS 2019): doubled (at most
    ``TR_MAX``) after ``TR_SUCCESSES`` improving batches in a row, halved after
    ``ceil(max(4, d) / q)`` failing ones, back to ``TR_INIT`` below ``TR_MIN``."""
    length, succ, fail = tr[0], tr[1], tr[2]
    succ, fail = jnp.where(improved, succ + 1, 0.0), jnp.where(improved, 0.0, fail + 1)
    grow, shrink = succ >= TR_SUCCESSES, fail >= float(-(-max(4, cfg.d) // cfg.q))
    length = jnp.where(grow, jnp.minimum(2 * length, TR_MAX), length)
    length = jnp.where(shrink, length / 2, length)
    length = jnp.where(length < TR_MIN, TR_INIT, length)
    return jnp.stack([length, jnp.where(grow, 0.0, succ), jnp.where(shrink, 0.0, fail)])


def reserve(cfg: GPBOConfig, state: GPBOState, n: int) -> GPBOState:
    """Grow the buffer (doubling) so it holds ``n`` observations; call outside ``jit``. A
    buffer whose size the user fixed (``capacity=int``) never grows: once full it keeps its
    best observations (:func:`insert`)."""
    if not cfg.grows:
        return state
    cap = new = state.x.shape[0]
    while new < n:
        new *= 2
    if new == cap:
        return state
    x, y, status, c = (jnp.pad(a, [(0, new - cap)] + [(0, 0)] * (a.ndim - 1))
                       for a in (state.x, state.y, state.status, state.c))
    side_post = None
    with precision.scope(cfg.float64):
        post = factor(cfg, precision.unpack(state.params), x, y, status)
        if cfg.num_side:
            side_post = factor_side(cfg, precision.unpack(state.side_params), x,
                                    *side_targets(cfg, c, status))
    return state.replace(x=x, y=y, status=status, c=c, post=post, side_post=side_post)


def insert(state: GPBOState, x, y, status, c):
    """The buffer ``(x, y, status, c)`` plus ``q`` rows; when full, the best OK rows, then
    failed."""
    cap, q = state.x.shape[0], x.shape[0]

    def append(_):
        i = jnp.minimum(state.count, cap - q).astype(jnp.int32)
        z = jnp.int32(0)
        return (jax.lax.dynamic_update_slice(state.x, x, (i, z)),
                jax.lax.dynamic_update_slice(state.y, y, (i,)),
                jax.lax.dynamic_update_slice(state.status, status, (i,)),
                jax.lax.dynamic_update_slice(state.c, c, (i, z)))

    def keep_best(_):
        xs, ys = jnp.concatenate([state.x, x]), jnp.concatenate([state.y, y])
        st, cs = jnp.concatenate([state.status, status]), jnp.concatenate([state.c, c])
        rank = jnp.where(st == OK, 0, jnp.where(st == FAILED, 1, 2))
        order = jnp.lexsort((ys, rank))[:cap]
        return xs[order], ys[order], st[order], cs[order]

    return jax.lax.cond(state.count + q <= cap, append, keep_best, None)


def fit_due(cfg: GPBOConfig, n_ok: jax.Array, fitted_at: jax.Array) -> jax.Array:
    """Refit at every tell up to ``refit_below`` OK points, then after ``refit_growth``."""
    return (n_ok >= 2) & ((n_ok <= cfg.refit_below)
                          | (n_ok >= (1.0 + cfg.refit_growth) * fitted_at))


def refit(cfg: GPBOConfig, params, x, y, mask, draws, min_noise) -> gp.GPParams:
    """MAP hyperparameters from the previous fit, the prior mode and prior draws (the first
    ``num_restarts`` of these starts), on at most ``fit_capacity`` random rows of ``mask``
    (subset of data, R&W Sect. 8.3.3), with noise floor ``min_noise``. ``draws``: the prior
    draws and ``f32[C]`` uniforms that pick the subset."""
    prior_draws, u_sub = draws
    if x.shape[0] > cfg.fit_capacity:
        idx = jnp.argsort(jnp.where(mask, u_sub, 2.0))[:cfg.fit_capacity]
        x, y, mask = x[idx], y[idx], mask[idx]
    ft = params.log_noise.dtype
    x, y = x.astype(ft), y.astype(ft)
    starts = jax.tree.map(lambda a, b, c: jnp.concatenate([a[None], b[None], c.astype(ft)]),
                          params, gp.GPParams.default(cfg.d, ft), prior_draws)
    starts = jax.tree.map(lambda a: a[:cfg.num_restarts], starts)
    return gp.fit(x, y, mask, cfg.spec, starts, num_steps=cfg.fit_steps, min_noise=min_noise)


KEEP, FULL, APPEND = 0, 1, 2  # what a tell does to a GP's factor


def refreshed(cfg: GPBOConfig, post_packed, params, x, y, mask, noise, start, mode):
    """The factored posterior (packed) after a tell: kept (``KEEP``), refactored (``FULL``:
    new hyperparameters or a reordered buffer) or with the told rows appended to the factor
    (``APPEND``, see :func:`jaxhpo.gp.append_rows`), refactored if that is not finite."""
    ft = cfg.gp_dtype
    x, y = x.astype(ft), y.astype(ft)
    if not cfg.incremental:
        mode = jnp.where(mode == APPEND, FULL, mode)
    old = precision.unpack(post_packed)
    post = jax.lax.cond(mode == APPEND,
                        lambda p: gp.append_rows(p, x, y, mask, start, cfg.q), lambda p: p, old)
    redo = (mode == FULL) | ((mode == APPEND) & ~jnp.all(jnp.isfinite(post.alpha)))
    return jax.lax.cond(redo, lambda _: precision.pack(gp.posterior(params, x, y, mask, cfg.spec,
                                                                    noise)),
                        lambda _: precision.pack(post), None)


def refit_all(cfg: GPBOConfig, state: GPBOState, xb, yb, sb, cb, due, appended, draws,
              side_draws):
    """Hyperparameters and factors of the objective's GP and the side GPs after a tell, as one
    ``lax.scan`` over the GPs (each traced and compiled once, whatever their number).

    The objective's GP is refitted when ``due`` and otherwise gets the told rows appended. The
    side GPs (over every told row) are refitted when the objective is or when they just switched
    on, otherwise get rows appended, and stay as they are while inactive. ``draws``: the
    objective's prior draws and the ``f32[C]`` uniforms that pick a fit's subset;
    ``side_draws``: ``[m]`` prior draws. Returns packed ``(params, post, side_params,
    side_post)``."""
    redo = due | ~appended
    ys, masks = [yb[None]], [(sb == OK)[None]]
    fit, mode = [due[None]], [jnp.where(redo, FULL, APPEND)[None]]
    params, posts, prior = state.params, state.post, draws[0]
    m = cfg.num_side
    if m:
        side_y, told = side_targets(cfg, cb, sb)
        on, was_on = side_active(cfg, sb), side_active(cfg, state.status)
        fit_side = on & (due | ~was_on)
        ys.append(side_y.T)
        masks.append(jnp.broadcast_to(told, (m,) + told.shape))
        fit.append(jnp.broadcast_to(fit_side, (m,)))
        mode.append(jnp.broadcast_to(
            jnp.where(on, jnp.where(fit_side | ~appended, FULL, APPEND), KEEP), (m,)))
        stack = lambda a, b: jnp.concatenate([a[None], b])  # noqa: E731
        params, posts = (jax.tree.map(stack, a, b) for a, b in
                         ((state.params, state.side_params), (state.post, state.side_post)))
        prior = jax.tree.map(stack, prior, side_draws)
    else:
        params, posts, prior = jax.tree.map(lambda a: a[None], (params, posts, prior))
    count = state.count
    with precision.scope(cfg.float64):
        noise = jnp.asarray([cfg.min_noise] + [side_noise(cfg)] * m, cfg.gp_dtype)

        def one(_, gp_in):
            p, post, y, mask, nz, pr, fit_j, mode_j = gp_in
            p = jax.lax.cond(fit_j, lambda p: refit(cfg, p, xb, y, mask, (pr, draws[1]), nz),
                             lambda p: p, precision.unpack(p))
            post = refreshed(cfg, post, p, xb, y, mask, nz, count, mode_j)
            return None, (precision.pack(p), post)

        _, (params, posts) = jax.lax.scan(one, None, (
            params, posts, jnp.concatenate(ys), jnp.concatenate(masks), noise, prior,
            jnp.concatenate(fit), jnp.concatenate(mode)))
    first = lambda t: jax.tree.map(lambda a: a[0], t)  # noqa: E731
    rest = lambda t: jax.tree.map(lambda a: a[1:], t) if m else None  # noqa: E731
    return first(params), first(posts), rest(params), rest(posts)


def tell(cfg: GPBOConfig, state: GPBOState, x, fitness, constraints=None) -> GPBOState:
    f = jnp.asarray(fitness).astype(jnp.float32).reshape(cfg.q)
    x = jnp.asarray(x).astype(jnp.float32)
    k = cfg.num_constraints
    cv = (jnp.zeros((cfg.q, 0), jnp.float32) if constraints is None
          else jnp.asarray(constraints).astype(jnp.float32).reshape(cfg.q, k))
    ok = jnp.isfinite(f)
    appended = state.count + cfg.q <= state.x.shape[0]
    xb, yb, sb, cb = insert(state, prepare(cfg, x), jnp.where(ok, f, 0.0),
                            jnp.where(ok, OK, FAILED).astype(jnp.int32), cv)
    mask = sb == OK
    n_ok = jnp.sum(mask, dtype=jnp.int32)
    due = fit_due(cfg, n_ok, state.fitted_at)
    key, k_fit, k_sub, k_side = jax.random.split(state.key, 4)
    n_draws = max(cfg.num_restarts - 2, 0)
    draws = (gp.sample_prior(k_fit, cfg.d, n_draws, jnp.float32),
             jax.random.uniform(k_sub, (xb.shape[0],), jnp.float32))  # outside the scope
    side_draws = jax.vmap(lambda k: gp.sample_prior(k, cfg.d, n_draws, jnp.float32))(
        jax.random.split(k_side, max(cfg.num_side, 1)))
    params, post, side_params, side_post = refit_all(
        cfg, state, xb, targets(cfg, yb, sb == OK), sb, cb, due, appended, draws, side_draws)
    feasible = ok & jnp.all(cv <= 0.0, axis=1)  # NaN constraint: violated
    fc = jnp.where(feasible, f, jnp.inf)
    i = jnp.argmin(fc)
    better = fc[i] < state.best_fitness
    tr = state.tr
    if cfg.trust_region:
        best = state.best_fitness
        tr = trust_region(cfg, tr, fc[i] < best - 1e-3 * jnp.abs(best))
    return state.replace(x=xb, y=yb, status=sb, c=cb, count=state.count + cfg.q,
                         fitted_at=jnp.where(due, n_ok, state.fitted_at), params=params,
                         post=post, key=key, side_params=side_params, side_post=side_post,
                         best_x=jnp.where(better, x[i], state.best_x), tr=tr,
                         best_fitness=jnp.where(better, fc[i], state.best_fitness))


def ask(cfg: GPBOConfig, key: jax.Array, state: GPBOState):
    ready = (state.count >= cfg.num_initial) & (jnp.sum(state.status == OK) >= 2)

    def from_warmup(st):
        x, w = cfg.warmup.ask(key, st.warmup)
        return x.astype(jnp.float32), st.replace(warmup=w)

    return jax.lax.cond(ready, lambda st: (propose(cfg, key, st), st), from_warmup, state)


def gp_bo(space, batch_size: int = 1, *, acquisition: str = "logei",
          kernel: str = "matern52", num_initial: int | None = None,
          capacity: int | None = None, num_candidates: int = 512, num_polish: int = 4,
          polish_steps: int = 6,
          num_restarts: int = 4, fit_steps: int = 30,
          ucb_beta: float = 4.0, min_noise: float = 1e-8, thompson_candidates: int = 512,
          refit_below: int = 64, refit_growth: float = 0.25, fit_capacity: int = 128,
          float64: bool = True, ask_float64: bool = False, batch_pool: int = 256,
          num_constraints: int = 0, failure_model: bool = True, min_success: float = 0.8,
          incremental: bool = True, thompson_fraction: float = 0.0,
          trust_region: bool | None = None, output_warp: str | None = None,
          plug_in: bool | None = None) -> Strategy:
    """GP-based Bayesian optimization proposing ``batch_size`` points per ``ask``.

    Args:
      space: the search space (integer / categorical / conditional parameters are modelled
        through the kernel, see :class:`jaxhpo.gp.InputSpec`).
      batch_size: ``q``, points per ``ask`` (the population size).
      acquisition: ``"logei"`` (default), ``"ei"``, ``"ucb"``, ``"pi"``, ``"logpi"`` or
        ``"thompson"``.
      kernel: ``"matern52"`` (default) or ``"rbf"``.
      num_initial: quasi-random observations before the model is used (default: the
        whole batches that fit in ``max(10, d + 1)``, at least one: for ``d < 10``, 10 points
        at ``q = 1``, two batches of 4 at ``q = 4``, one batch from ``q = 6``). A warm-up of
        one batch instead of two gave the batch model one more round: Hartmann-6 at
        ``q = 8``, 100 evaluations, seeds 10–29, global basin in 14 of 20 seeds instead of 9
        (``benchmarks/README.md``).
      capacity: observation buffer size. ``None`` (default): starts at
        ``max(64, 2 q)`` and doubles through :attr:`Strategy.reserve`, which drivers call
        outside ``jit`` (``minimize`` as the run grows — at most ``log2(n)`` compilations;
        ``minimize_scan`` once for the whole run; ``tune``'s proposer before each ``tell``).
        An int fixes it: ``ask`` and ``tell`` compile once however long the run (for your
        own ``lax.scan``, or a time-budgeted ``tune`` of many short trials, where each
        doubling compiles both again: about 7 s each for 8 proposals in 4-d on 2 CPU cores,
        ``benchmarks/e2e_mnist1d.py``). When a fixed buffer is full the worst observations
        are dropped first.
      num_candidates: random candidates scored per ``ask`` (half uniform, half local).
      num_polish: best candidates refined by gradient ascent (whatever ``q``: kriging
        believer picks the batch from the polished and the raw candidates).
      polish_steps: iterations of that refinement (steepest ascent, batched line search).
      num_restarts: L-BFGS starts of each hyperparameter fit (previous fit, prior mode, prior
        draws).
      fit_steps: at most this many L-BFGS iterations per start.
      refit_below, refit_growth: the hyperparameters are refitted at every ``tell`` while
        there are at most ``refit_below`` valid observations, then whenever their number has
        grown by the fraction ``refit_growth`` since the last fit (the posterior is refactored at
        every ``tell``): refitting a MAP estimate that barely moves dominates at hundreds.
      fit_capacity: the hyperparameters are fitted on at most this many observations (a
        random subset of the valid ones, drawn anew at each fit; subset-of-data, Rasmussen &
        Williams Sect. 8.3.3); the posterior always uses all of them.
      ucb_beta: ``beta`` of UCB.
      min_noise: floor of the noise variance in standardized units.
      thompson_candidates: candidates of the joint posterior draws of Thompson sampling.
      float64: the GP fit, posterior and acquisition in float64 (default; no global flag and
        no float64 state leaf, see :mod:`jaxhpo.gp._precision`). float32 loses the posterior
        variance near observed points, which limits how close to an optimum BO can steer.
      ask_float64: also screen the candidates in float64 (slower on CPU). By default the
        screening predicts in float32 from the factor cast once; the polish and the choice of
        the batch always use the GP's precision.
      batch_pool: ``q > 1``: kriging believer picks from the polished points, the
        ``batch_pool / 2`` best-scored candidates and ``batch_pool / 2`` uniform ones.
      num_constraints: ``k`` constraints: ``tell(state, x, fitness, constraints)`` takes
        ``f32[batch_size, k]`` (feasible when every value is ``<= 0``, NaN violated). One GP per
        constraint; the acquisition is multiplied by the probability of feasibility (Gardner,
        Kusner, Xu, Weinberger & Cunningham, "Bayesian optimization with inequality
        constraints", ICML 2014) and the incumbent is the best feasible observation.
      failure_model: once a trial has failed (NaN/inf fitness), a GP regression on the failure
        indicator weights the acquisition by the probability of success (Gelbart, Snoek &
        Adams, "Bayesian optimization with unknown constraints", UAI 2014).
      min_success: their requirement ``P(success) >= 1 - delta``, soft: below this
        probability its log is weighted 11 times, so a batch rarely spends points where
        failure is likely.
      thompson_fraction: with ``acquisition="logei"`` etc. and ``q > 1``, this fraction of
        each batch (rounded down, at most ``q - 1``) is drawn by Thompson sampling (joint
        posterior draws over the candidates, the minimizer of each; Kandasamy et al.,
        "Parallelised Bayesian optimisation via Thompson sampling", AISTATS 2018), the rest by
        kriging believer.
      incremental: between hyperparameter refits, append the told rows to the Cholesky factor
        (a block update, ``O(q C^2)``; see :func:`jaxhpo.gp.append_rows`) instead of
        refactoring (``O(C^3)``).
      trust_region: draw the uniform half of the candidates inside a box around the
        incumbent instead of the whole cube, with TuRBO's side length (``0.8`` at first,
        doubled after 3 improving batches in a row, halved after ``ceil(max(4, d) / q)``
        batches without improvement, reset below ``2^-7``) scaled per coordinate by the
        lengthscales over their geometric mean (Eriksson, Pearce, Gardner, Turner & Poloczek,
        "Scalable global optimization via local Bayesian optimization", NeurIPS 2019). The
        GP stays global and the local half of the candidates is unchanged. ``None``
        (default): on for batches of 32 or more (measured at q = 32, 256 evaluations, 10
        seeds: Levy-4 0.138 vs 0.741, Ackley-5 5.09 vs 5.76, Branin and Hartmann-6 at the
        same level; ``benchmarks/README.md``), off below.
      output_warp: the objective GP's targets: ``"none"`` (the told values), ``"yeo-johnson"``
        (a power transform of the standardized values whose exponent maximizes the profile
        likelihood, Yeo & Johnson 2000, as in HEBO: on skewed objectives it spreads the good
        end, where the bulk's scale would hide the differences) or ``"copula"`` (the normal
        scores of the ranks, Salinas et al. 2020: invariant to any increasing transform of the
        objective). ``None`` (default): ``"yeo-johnson"`` for batches of 32 or more, ``"none"``
        below (not measured there).
      plug_in: EI / PI's incumbent is the lowest posterior mean at the observations (Picheny
        et al. 2013) instead of the best target; they differ where the GP fits a noise, e.g. on
        a rugged objective, where the best target would make EI vanish around the data.
        ``None`` (default): on for batches of 32 or more, off below. With both defaults, q =
        32 at 256 evaluations, median regret over seeds 0-9 against the trust region alone:
        Ackley-5 2.05 vs 5.09, Levy-4 0.0383 vs 0.138, Hartmann-6 0.0598 vs 0.119, Branin
        2.3e-7 vs 1.5e-5, ahead of ``tpe`` and Optuna's constant liar on all four
        (``benchmarks/README.md``).

    Returns:
      A :class:`jaxhpo.Strategy` with a ``reserve`` function.

    Example:
      >>> strategy = jaxhpo.strategies.gp_bo(space, batch_size=8)
      >>> result = jaxhpo.minimize(objective, space, strategy, num_generations=20)
    """
    d = check_space(space)
    q = check_population_size(batch_size, "batch_size")
    n_cand = check_int(num_candidates, "num_candidates", 1)
    spec = gp.InputSpec.from_space(space, check_choice(kernel, "kernel", KERNELS))
    float64, ask64 = check_bool(float64, "float64"), check_bool(ask_float64, "ask_float64")
    cfg = GPBOConfig(
        space, spec, quasi_random(space, q), q, d,
        check_choice(acquisition, "acquisition", gp.ACQUISITIONS),
        max(1, max(10, d + 1) // q) * q if num_initial is None
        else check_int(num_initial, "num_initial", 1),
        check_optional_int(capacity, "capacity", q) or max(64, 2 * q), n_cand,
        min(check_int(num_polish, "num_polish", 1), n_cand),
        check_int(polish_steps, "polish_steps", 0), check_int(num_restarts, "num_restarts", 1),
        check_int(fit_steps, "fit_steps", 1), check_real(ucb_beta, "ucb_beta", 0.0, low_open=True),
        check_real(min_noise, "min_noise", 0.0),
        min(check_int(thompson_candidates, "thompson_candidates", 1), n_cand),
        check_int(refit_below, "refit_below"), check_real(refit_growth, "refit_growth", 0.0),
        check_int(fit_capacity, "fit_capacity", 1), float64, precision.dtype(float64),
        precision.dtype(float64 and ask64), min(check_int(batch_pool, "batch_pool", 1), n_cand),
        np.asarray(spec.num_bins) > 0, check_int(num_constraints, "num_constraints", 0),
        check_bool(failure_model, "failure_model"),
        check_real(min_success, "min_success", 0.0, 1.0, low_open=True),
        min(int(q * check_real(thompson_fraction, "thompson_fraction", 0.0, 1.0)), q - 1),
        check_bool(incremental, "incremental"),
        q >= _TR_BATCH if trust_region is None else check_bool(trust_region, "trust_region"),
        capacity is None,
        ("yeo-johnson" if q >= _TR_BATCH else "none") if output_warp is None
        else check_choice(output_warp, "output_warp", ("none", "yeo-johnson", "copula")),
        q >= _TR_BATCH if plug_in is None else check_bool(plug_in, "plug_in"))
    return Strategy(_bind(init, cfg), _bind(ask, cfg), _bind(tell, cfg), q, d, "gp_bo",
                    reserve=_bind(reserve, cfg), num_constraints=cfg.num_constraints)


def _bind(fn, cfg: GPBOConfig):
    """``fn(cfg, ...)`` as a plain function of the rest, keeping ``fn``'s name (jit caches and
    chex trace counters see a function, not a ``functools.partial``)."""
    def bound(*args):
        return fn(cfg, *args)
    bound.__name__ = bound.__qualname__ = fn.__name__
    return bound
