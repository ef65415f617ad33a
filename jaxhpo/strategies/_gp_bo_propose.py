"""GP-BO proposals: candidate generation, polish and batch selection (see ``_gp_bo``).

``ask`` scores a pool of candidates — uniform points plus Gaussian perturbations of the best
observations — with the acquisition function, polishes the best few by steepest ascent with a
batched line search on the continuous coordinates in lengthscale units (integer and
categorical coordinates keep their candidate bins), and selects the batch from the polished
and the raw candidates:

* ``q = 1``: the maximizer of the acquisition;
* ``q > 1``, EI/PI/UCB: *kriging believer* (Ginsbourger, Le Riche & Carraro 2010) over the
  candidate pool. A fantasized observation equal to the posterior mean leaves the mean
  unchanged and lowers the variance by a rank-one update, so after choosing ``p_j``

      cov_j(c, p) = cov_{j-1}(c, p) - w_j(c) w_j(p),  w_j(c) = cov_{j-1}(c, p_j) / sqrt(var_{j-1}(p_j) + noise)

  and the incumbent becomes ``min(best, mu(p_j))``. Every step costs ``O(N (C + q))`` for a
  pool of ``N`` candidates and ``C`` observations — no refit, no new Cholesky factor;
* Thompson sampling: ``q`` joint posterior draws over a candidate subset, the minimizer of each
  (with ``thompson_fraction``, that share of a kriging-believer batch; Kandasamy et al. 2018).

Constraints and failures: the acquisition is weighted by the probability that a point is
feasible and does not fail, ``prod_j P(c_j(x) <= t_j)`` from one GP per constraint (``t = 0``,
Gardner et al. 2014) and one GP regression on the 0/1 failure indicator (``t = 1/2``, the
probability of success of Gelbart, Snoek & Adams 2014), once any trial has failed; in logs,
``logEI + sum_j log P_j``. Until a feasible point is observed the score is that probability
alone. Kriging believer does not fantasize the side GPs (their probabilities stay fixed
through a batch).

Random numbers are drawn in float32 before the numerics enter ``jaxhpo.gp._precision.scope``;
the buffer stays float32 there (mixed with the float64 posterior, it promotes exactly).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtri

from jaxhpo import gp
from jaxhpo.gp import _precision as precision
from jaxhpo.gp._gp import jitter_for

EMPTY, OK, FAILED = 0, 1, 2  # status of a buffer row
_BIG = 1e10
# distances (in lengthscales) tried along the gradient at each polish iteration
_STEPS = tuple(float(v) for v in np.geomspace(1.0, 1e-3, 6))


def prepare(cfg, x: jax.Array) -> jax.Array:
    """Points as the GP stores them: bins snapped, inactive coordinates neutral."""
    return cfg.space.neutralize(gp.snap_to_bins(cfg.spec, x)).astype(x.dtype)


def targets(cfg, y, mask) -> jax.Array:
    """The objective GP's targets over the OK rows ``mask`` (0 elsewhere): the told values
    (``output_warp="none"``), their Yeo-Johnson transform (:func:`yeo_johnson`) or their normal
    scores ``Phi^-1((rank + 1/2) / n)`` (``"copula"``, a Gaussian copula: Salinas, Shen &
    Perrone, "A quantile-based approach for hyperparameter transfer learning", ICML 2020)."""
    if cfg.output_warp == "none":
        return y
    n = jnp.maximum(jnp.sum(mask), 1).astype(jnp.float32)
    if cfg.output_warp == "yeo-johnson":
        return yeo_johnson(y, mask, n)
    rank = jnp.argsort(jnp.argsort(jnp.where(mask, y, jnp.inf))).astype(jnp.float32)
    return jnp.where(mask, ndtri((rank + 0.5) / n), 0.0).astype(y.dtype)


YJ_LAMBDAS = np.linspace(-2.0, 3.0, 51)  # the grid of the Yeo-Johnson exponent


def yeo_johnson(y, mask, n) -> jax.Array:
    """The Yeo-Johnson power transform (Yeo & Johnson, "A new family of power transformations
    to improve normality or symmetry", Biometrika 2000) of the standardized ``y`` over the
    ``n`` rows of ``mask``, with the exponent of largest profile likelihood
    ``-n/2 log var(t_lambda) + (lambda - 1) sum sign(u) log(1 + |u|)`` on the grid
    ``YJ_LAMBDAS``; 0 outside ``mask``. On a right-skewed objective (a few good values far below
    the bulk) it spreads the good end, so the GP resolves differences near the optimum that
    the bulk's scale hides (as HEBO does: Cowen-Rivers et al., "HEBO: pushing the limits of
    sample-efficient hyper-parameter optimisation", JAIR 2022). Computed in float32."""
    dt, y = y.dtype, y.astype(jnp.float32)
    mean = jnp.sum(jnp.where(mask, y, 0.0)) / n
    sd = jnp.sqrt(jnp.sum(jnp.where(mask, (y - mean) ** 2, 0.0)) / n)
    u = jnp.where(mask, (y - mean) / jnp.maximum(sd, 1e-30), 0.0)
    lam = jnp.asarray(YJ_LAMBDAS, jnp.float32)[:, None]
    # u >= 0: ((1 + u)^l - 1) / l;  u < 0: -((1 - u)^(2 - l) - 1) / (2 - l)
    a = jnp.log1p(jnp.abs(u))
    expo = jnp.where(u >= 0, lam, 2.0 - lam)
    safe = jnp.where(jnp.abs(expo) < 1e-6, 1.0, expo)
    t = jnp.sign(u) * jnp.where(jnp.abs(expo) < 1e-6, a, jnp.expm1(safe * a) / safe)
    tm = jnp.sum(jnp.where(mask, t, 0.0), axis=1, keepdims=True) / n
    var = jnp.sum(jnp.where(mask, (t - tm) ** 2, 0.0), axis=1) / n
    loglik = (-0.5 * n * jnp.log(jnp.maximum(var, 1e-30))
              + (lam[:, 0] - 1.0) * jnp.sum(jnp.where(mask, jnp.sign(u) * a, 0.0)))
    return jnp.where(mask, t[precision.argmax(loglik)], 0.0).astype(dt)


def candidates(cfg, key: jax.Array, state, lengthscale: jax.Array) -> jax.Array:
    """The pool ``f32[num_candidates, d]``: uniform points (with ``trust_region``, uniform in
    TuRBO's box around the incumbent), then the best 5 OK (feasible first) observations moved on
    the scale of ``lengthscale: f32[d]`` (discrete coordinates resampled with probability
    ``1 / d``). Drawn in float32, outside the precision scope."""
    n_l = cfg.num_candidates // 2
    n_u, d, f32 = cfg.num_candidates - n_l, cfg.d, jnp.float32
    k_u, k_par, k_step, k_len, k_flip, k_new = jax.random.split(key, 6)
    n_top = jnp.clip(jnp.sum(state.status == OK), 1, 5).astype(jnp.int32)
    # the best feasible observations first (with constraints), then the best infeasible ones
    top = jnp.lexsort((jnp.where(state.status == OK, state.y, jnp.inf),
                       ~feasible_rows(cfg, state)))[:5]
    parent = state.x[top[jax.random.randint(k_par, (n_l,), 0, n_top, jnp.int32)]]
    noise = jax.random.normal(k_step, (n_l, d), f32) * jnp.exp(
        jax.random.uniform(k_len, (n_l, 1), f32, -3.0, 0.0))
    flip = jax.random.uniform(k_flip, (n_l, d), f32) < 1.0 / d
    fresh = jax.random.uniform(k_new, (n_l, d), f32)
    local = jnp.where(cfg.discrete, jnp.where(flip, fresh, parent),
                      parent + jnp.clip(0.2 * lengthscale, 1e-3, 0.2) * noise)
    uniform = jax.random.uniform(k_u, (n_u, d), f32)
    if cfg.trust_region:  # TuRBO's box: side tr * ls / geomean(ls) around the incumbent
        w = lengthscale / jnp.exp(jnp.mean(jnp.log(lengthscale)))
        half = 0.5 * state.tr[0] * w
        lo = jnp.clip(state.best_x - half, 0.0, 1.0)
        uniform = lo + (jnp.clip(state.best_x + half, 0.0, 1.0) - lo) * uniform
    return prepare(cfg, jnp.clip(jnp.concatenate([uniform, local]), 0.0, 1.0))


def side_thresholds(cfg) -> np.ndarray:
    """A side output is satisfied below its threshold: 0 for constraints, 1/2 for failure."""
    return np.array([0.0] * cfg.num_constraints + [0.5] * int(cfg.failure_model))


def feasible_rows(cfg, state) -> jax.Array:
    """``bool[C]``: OK rows whose every constraint value is ``<= 0`` (NaN: violated)."""
    ok = state.status == OK
    if cfg.num_constraints:
        ok = ok & jnp.all(state.c <= 0.0, axis=1)
    return ok


def incumbent(cfg, post: gp.Posterior, state) -> jax.Array:
    """The incumbent of EI / PI in standardized units (``inf`` without a feasible OK
    observation): the best feasible OK target or, with ``plug_in``, the lowest posterior mean
    over those observations (the "plug-in" incumbent of Picheny, Wagner & Ginsbourger, "A
    benchmark of kriging-based infill criteria for noisy optimization", Struct. Multidiscip.
    Optim. 2013). Where the GP interpolates the two agree; where the fit smooths (a fitted
    noise, e.g. on a rugged objective) the best target lies below the posterior mean everywhere
    near it, so EI against it vanishes around the data and a batch goes to unexplored corners."""
    z = (targets(cfg, state.y, state.status == OK) - post.y_mean) / post.y_std
    if cfg.plug_in:  # the mean at the data, K alpha = z - (noise + jitter) alpha, in O(C);
        # the jitter the factor was built with (the GP's dtype, also for the float32 screen)
        z = z - (post.noise + jitter_for(cfg.gp_dtype) * post.signal) * post.alpha
    return jnp.min(jnp.where(feasible_rows(cfg, state), z, jnp.inf))


class Model(NamedTuple):
    """What the acquisition needs: the objective's posterior, the side GPs' (``[m]``, or
    ``None``), per side output whether it counts (``bool[m]``) and the incumbent."""

    post: gp.Posterior
    side: gp.Posterior | None
    side_on: jax.Array | None
    best: jax.Array


def model(cfg, post: gp.Posterior, side, state) -> Model:
    on = None
    if side is not None:
        on = jnp.asarray([True] * cfg.num_constraints
                         + [True] * int(cfg.failure_model))
        if cfg.failure_model:
            on = on.at[-1].set(jnp.any(state.status == FAILED))
    return Model(post, side, on, incumbent(cfg, post, state))


def log_feasible(cfg, m: Model, xq: jax.Array) -> jax.Array:
    """``sum_j log P(c_j(x) <= t_j)`` over the side GPs that count (0 without any): the
    probability of feasibility of Gardner et al., "Bayesian optimization with inequality
    constraints", ICML 2014, and of success (Gelbart, Snoek & Adams, "Bayesian optimization
    with unknown constraints", UAI 2014) with a GP regression on the 0/1 failure indicator.
    Gelbart et al. require the probability of success to reach ``1 - delta``; here, below
    ``min_success`` its log counts 11 times (a soft, differentiable form of that rule)."""
    if m.side is None:
        return jnp.zeros(xq.shape[0], xq.dtype)
    thr = jnp.asarray(side_thresholds(cfg), xq.dtype)

    def on(_):
        mean, var = jax.vmap(lambda p: gp.predict(p, xq))(m.side)  # [m, n]
        mu = m.side.y_mean[:, None] + m.side.y_std[:, None] * mean
        sd = m.side.y_std[:, None] * jnp.sqrt(var)
        lp = log_ndtr((thr[:, None] - mu) / sd).astype(xq.dtype)
        if cfg.failure_model:  # below min_success, log P falls 11x as fast (soft barrier)
            excess = jnp.minimum(lp[-1] - math.log(cfg.min_success), 0.0)
            lp = lp.at[-1].add(10.0 * excess)
        return jnp.sum(jnp.where(m.side_on[:, None], lp, 0.0), axis=0)

    return jax.lax.cond(jnp.any(m.side_on), on, lambda _: jnp.zeros(xq.shape[0], xq.dtype),
                        None)


def penalized(cfg, mean, var, best, logpf) -> jax.Array:
    """The acquisition weighted by the probability of feasibility ``exp(logpf)`` (its log
    added to logEI/logPI); with no feasible observation yet, ``logpf`` alone (Gardner et al.
    2014: find a feasible point first). UCB adds ``logpf``."""
    has = jnp.isfinite(best)
    s = gp.acquisition_value(cfg.acquisition, mean, var, jnp.where(has, best, 0.0),
                             cfg.ucb_beta)
    if cfg.acquisition in ("ei", "pi"):
        return jnp.where(has, s, 1.0) * jnp.exp(logpf)
    return jnp.where(has | (cfg.acquisition == "ucb"), s, 0.0) + logpf


def evaluate(cfg, m: Model, xc: jax.Array):
    """Mean, variance, solves ``L^-1 k(X, xc)``, log feasibility and score of ``xc``."""
    mean, var, v = gp.predict(m.post, xc, return_solve=True)
    lpf = log_feasible(cfg, m, xc)
    s = penalized(cfg, mean, var, m.best, lpf)
    return mean, var, v, lpf, jnp.where(jnp.isfinite(s), s, -jnp.inf)


def polish(cfg, m: Model, x0: jax.Array, frozen: jax.Array) -> jax.Array:
    """Refine each row of ``x0`` by steepest ascent of the acquisition, every start and trial
    step scored in one batch. Continuous coordinates move in lengthscale units, ``x = clip(z l)``
    (the preconditioning of Optuna's GPSampler). Each of ``polish_steps`` iterations tries the
    distances ``_STEPS`` along the gradient and 1 and 2 times the previous move (a pattern move
    against zig-zag); a start moves to the best if it improves. A fixed iteration count keeps
    ``ask`` time predictable. ``frozen: bool[n, d]``: discrete or inactive coordinates, kept."""
    if cfg.polish_steps == 0:
        return x0
    ls = jnp.clip(m.post.lengthscale, 1e-2, 1.0).astype(x0.dtype)
    steps = jnp.asarray(_STEPS, x0.dtype)
    n, d = x0.shape
    rows = jnp.arange(n)

    def to_x(z, base, frozen):
        return jnp.where(frozen, base, jnp.clip(z * ls, 0.0, 1.0))

    def score(z, base, frozen):
        x = to_x(z, base, frozen)
        mean, var = gp.predict(m.post, x)
        s = penalized(cfg, mean, var, m.best, log_feasible(cfg, m, x))
        return jnp.where(jnp.isfinite(s), s, -_BIG)

    def step(_, carry):
        z, s, move = carry
        g = jax.grad(lambda z: jnp.sum(score(z, x0, frozen)))(z)
        g = jnp.where(frozen | ~jnp.isfinite(g), 0.0, g)
        gdir = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-30)
        mnorm = jnp.linalg.norm(move, axis=-1, keepdims=True)
        mdir = move / (mnorm + 1e-30)
        # trial points: along the gradient at the fixed distances, along the last move at
        # 1 and 2 times its length
        tg = z[:, None, :] + steps[None, :, None] * gdir[:, None, :]
        tm = z[:, None, :] + (jnp.asarray([1.0, 2.0], z.dtype)[None, :, None]
                              * mnorm[:, None, :]) * mdir[:, None, :]
        trial = jnp.concatenate([tg, tm], axis=1)  # f[n, ns + 2, d]
        k = trial.shape[1]
        st = score(trial.reshape(n * k, d), jnp.repeat(x0, k, axis=0),
                   jnp.repeat(frozen, k, axis=0)).reshape(n, k)
        j = precision.argmax(st, axis=1)
        better = st[rows, j] > s
        znew = jnp.where(better[:, None], trial[rows, j], z)
        return znew, jnp.where(better, st[rows, j], s), znew - z

    z0 = x0 / ls
    z, _, _ = jax.lax.fori_loop(0, cfg.polish_steps, step, (z0, score(z0, x0, frozen), 0 * z0))
    return to_x(z, x0, frozen)


def kriging_believer(cfg, m: Model, xc, mean, var, v, lpf, q: int) -> jax.Array:
    """Greedy batch of ``q`` rows of the pool ``xc`` (module docstring) from the pool's
    posterior ``mean, var``, solves ``v`` and log feasibility ``lpf`` (not fantasized)."""
    post = m.post
    uc, n = gp.transform_inputs(cfg.spec, xc), xc.shape[0]

    def pick(carry, j):
        var, w, best, taken = carry
        s = penalized(cfg, mean, var, best, lpf)
        p = precision.argmax(jnp.where(taken | ~jnp.isfinite(s), -jnp.inf, s))
        k_cp = gp.kernel_matrix(cfg.spec, post.lengthscale, post.signal, uc, uc[p][None])[:, 0]
        wj = (k_cp - v.T @ v[:, p] - w @ w[p]) / jnp.sqrt(var[p] + post.noise)
        var = jnp.maximum(var - wj * wj, 1e-12 * post.signal)
        # polished starts often converge to the same maximum: drop its copies from the pool
        same = jnp.max(jnp.abs(xc - xc[p]), axis=-1) < 1e-5
        return (var, w.at[:, j].set(wj), jnp.minimum(best, mean[p]), taken | same), p

    init = (var, jnp.zeros((n, q), var.dtype), m.best, jnp.zeros(n, bool))
    _, picks = jax.lax.scan(pick, init, jnp.arange(q))
    return xc[picks]


def thompson(cfg, m: Model, xc: jax.Array, normal: jax.Array) -> jax.Array:
    """``q`` joint posterior draws over the first ``thompson_candidates`` rows of ``xc``
    (``normal: f32[q, n]`` standard draws), the minimizer of each, without repeats; the
    negated log feasibility is added to the draws."""
    n, xc = cfg.thompson_candidates, xc[:cfg.thompson_candidates]
    post = m.post
    mean, _, v = gp.predict(post, xc, return_solve=True)
    uc = gp.transform_inputs(cfg.spec, xc)
    cov = gp.kernel_matrix(cfg.spec, post.lengthscale, post.signal, uc, uc) - v.T @ v
    eye = jnp.eye(n, dtype=cfg.gp_dtype)  # float64 in the GP's precision, whatever xc's type
    chol = gp.cholesky_with_retries(cov + 1e-6 * post.signal * eye, 1e-5 * post.signal)
    draws = mean + normal.astype(mean.dtype) @ chol.T - log_feasible(cfg, m, xc)

    def pick(taken, f):
        p = precision.argmin(jnp.where(taken, jnp.inf, f))
        return taken.at[p].set(True), p

    _, picks = jax.lax.scan(pick, jnp.zeros(n, bool), draws)
    return xc[picks]


def select(cfg, m: Model, screen: Model, xc, frozen) -> jax.Array:
    """Screen the pool with ``screen`` (float32 by default), polish the best and choose the
    batch with ``m`` (the GP's precision, where variances near observed points survive)."""
    n_pool, ft = cfg.batch_pool, m.post.alpha.dtype
    idx = jax.lax.top_k(evaluate(cfg, screen, xc)[-1], max(cfg.num_polish, n_pool))[1]
    top = xc[idx].astype(ft)
    xp = polish(cfg, m, top[:cfg.num_polish], frozen[idx[:cfg.num_polish]])
    if cfg.q - cfg.thompson_batch == 1:
        return xp[precision.argmax(evaluate(cfg, m, xp)[-1])][None]
    # batch pool: the polished points, the best raw candidates and some uniform ones
    pool = jnp.concatenate([xp, top[:n_pool // 2], xc[:n_pool // 2].astype(ft)])
    mean, var, v, lpf, _ = evaluate(cfg, m, pool)
    return kriging_believer(cfg, m, pool, mean, var, v, lpf, cfg.q - cfg.thompson_batch)


def propose(cfg, key: jax.Array, state) -> jax.Array:
    """``f32[q, d]`` points from the GP of ``state`` (a ``GPBOState``)."""
    k_cand, k_ts = jax.random.split(key)
    with precision.scope(cfg.float64):
        ls = precision.unpack(state.post.lengthscale).astype(jnp.float32)
    xc = candidates(cfg, k_cand, state, ls)
    frozen = cfg.discrete | ~cfg.space.active_mask(xc)  # Space code stays out of the scope
    n_ts = cfg.q if cfg.acquisition == "thompson" else cfg.thompson_batch
    if n_ts:
        normal = jax.random.normal(k_ts, (n_ts, cfg.thompson_candidates), jnp.float32)
    with precision.scope(cfg.float64):
        post = precision.cast(precision.unpack(state.post), cfg.gp_dtype)
        side = (None if state.side_post is None
                else precision.cast(precision.unpack(state.side_post), cfg.gp_dtype))
        m = model(cfg, post, side, state)
        screen = model(cfg, precision.cast(post, cfg.screen_dtype),
                       None if side is None else precision.cast(side, cfg.screen_dtype), state)
        xc = xc.astype(cfg.screen_dtype)
        if cfg.acquisition == "thompson":
            return thompson(cfg, screen, xc, normal).astype(jnp.float32)
        x = select(cfg, m, screen, xc, frozen)
        if cfg.thompson_batch:  # the rest of the batch: Thompson draws
            x = jnp.concatenate([x, thompson(cfg, screen, xc, normal).astype(x.dtype)])
        return x.astype(jnp.float32)
