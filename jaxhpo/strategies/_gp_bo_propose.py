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
* Thompson sampling: ``q`` joint posterior draws over a candidate subset, the minimizer of each.

Candidates near failed observations are discouraged by the factor ``1 - 0.99 max_f rho(x, x_f)``
on EI/PI (its log added to logEI/logPI), where ``rho`` is the fitted kernel's correlation with
a failed point; UCB and Thompson sampling subtract ``3 max_f rho`` standardized units.

Random numbers are drawn in float32 before the numerics enter ``jaxhpo.gp._precision.scope``;
the buffer stays float32 there (mixed with the float64 posterior, it promotes exactly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo import gp
from jaxhpo.gp import _precision as precision

EMPTY, OK, FAILED = 0, 1, 2  # status of a buffer row
_BIG = 1e10
# distances (in lengthscales) tried along the gradient at each polish iteration
_STEPS = tuple(float(v) for v in np.geomspace(1.0, 1e-3, 6))


def prepare(cfg, x: jax.Array) -> jax.Array:
    """Points as the GP stores them: bins snapped, inactive coordinates neutral."""
    return cfg.space.neutralize(gp.snap_to_bins(cfg.spec, x)).astype(x.dtype)


def candidates(cfg, key: jax.Array, state, lengthscale: jax.Array) -> jax.Array:
    """The pool ``f32[num_candidates, d]``: uniform points, then the best 5 OK observations
    moved on the scale of ``lengthscale: f32[d]`` (discrete coordinates resampled with
    probability ``1 / d``). Drawn in float32, outside the precision scope."""
    n_l = cfg.num_candidates // 2
    n_u, d, f32 = cfg.num_candidates - n_l, cfg.d, jnp.float32
    k_u, k_par, k_step, k_len, k_flip, k_new = jax.random.split(key, 6)
    n_top = jnp.clip(jnp.sum(state.status == OK), 1, 5).astype(jnp.int32)
    top = jnp.argsort(jnp.where(state.status == OK, state.y, jnp.inf))[:5]
    parent = state.x[top[jax.random.randint(k_par, (n_l,), 0, n_top, jnp.int32)]]
    noise = jax.random.normal(k_step, (n_l, d), f32) * jnp.exp(
        jax.random.uniform(k_len, (n_l, 1), f32, -3.0, 0.0))
    flip = jax.random.uniform(k_flip, (n_l, d), f32) < 1.0 / d
    fresh = jax.random.uniform(k_new, (n_l, d), f32)
    local = jnp.where(cfg.discrete, jnp.where(flip, fresh, parent),
                      parent + jnp.clip(0.2 * lengthscale, 1e-3, 0.2) * noise)
    uniform = jax.random.uniform(k_u, (n_u, d), f32)
    return prepare(cfg, jnp.clip(jnp.concatenate([uniform, local]), 0.0, 1.0))


def incumbent(post: gp.Posterior, state) -> jax.Array:
    """The best OK observation in standardized units."""
    z = (state.y - post.y_mean) / post.y_std
    return jnp.min(jnp.where(state.status == OK, z, jnp.inf))


def failure_corr(cfg, post: gp.Posterior, state, xc: jax.Array) -> jax.Array:
    """Max over failed observations of the kernel correlation with each row of ``xc``, f[n]."""
    uq, uf = gp.transform_inputs(cfg.spec, xc), gp.transform_inputs(cfg.spec, state.x)
    r = gp.correlation(cfg.spec, gp.scaled_sq_dist(cfg.spec, post.lengthscale, uq, uf))
    return jnp.max(jnp.where(state.status == FAILED, r, 0.0), axis=-1, initial=0.0)


def penalized(cfg, mean, var, best, corr) -> jax.Array:
    """The acquisition, discouraged near failed observations (module docstring)."""
    s = gp.acquisition_value(cfg.acquisition, mean, var, best, cfg.ucb_beta)
    if cfg.acquisition in ("logei", "logpi"):
        return s + jnp.log1p(-0.99 * corr)
    if cfg.acquisition in ("ei", "pi"):
        return s * (1.0 - 0.99 * corr)
    return s - 3.0 * corr


def evaluate(cfg, post: gp.Posterior, state, xc: jax.Array):
    """Mean, variance, solves ``L^-1 k(X, xc)``, failure correlation and score of ``xc``."""
    mean, var, v = gp.predict(post, xc, return_solve=True)
    corr = failure_corr(cfg, post, state, xc)
    s = penalized(cfg, mean, var, incumbent(post, state), corr)
    return mean, var, v, corr, jnp.where(jnp.isfinite(s), s, -jnp.inf)


def polish(cfg, post: gp.Posterior, state, x0: jax.Array, frozen: jax.Array) -> jax.Array:
    """Refine each row of ``x0`` by steepest ascent of the acquisition, every start and trial
    step scored in one batch. Continuous coordinates move in lengthscale units, ``x = clip(z l)``
    (the preconditioning of Optuna's GPSampler). Each of ``polish_steps`` iterations tries the
    distances ``_STEPS`` along the gradient and 1 and 2 times the previous move (a pattern move
    against zig-zag); a start moves to the best if it improves. A fixed iteration count keeps
    ``ask`` time predictable. ``frozen: bool[n, d]``: discrete or inactive coordinates, kept."""
    if cfg.polish_steps == 0:
        return x0
    ls = jnp.clip(post.lengthscale, 1e-2, 1.0).astype(x0.dtype)
    steps = jnp.asarray(_STEPS, x0.dtype)
    n, d = x0.shape
    rows = jnp.arange(n)
    best = incumbent(post, state)

    def to_x(z, base, frozen):
        return jnp.where(frozen, base, jnp.clip(z * ls, 0.0, 1.0))

    def score(z, base, frozen):
        x = to_x(z, base, frozen)
        mean, var = gp.predict(post, x)
        s = penalized(cfg, mean, var, best, failure_corr(cfg, post, state, x))
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


def kriging_believer(cfg, post: gp.Posterior, state, xc, mean, var, v, corr) -> jax.Array:
    """Greedy batch of ``q`` rows of the pool ``xc`` (module docstring) from the pool's
    posterior ``mean, var``, solves ``v`` and failure correlation ``corr``."""
    uc, n = gp.transform_inputs(cfg.spec, xc), xc.shape[0]

    def pick(carry, j):
        var, w, best, taken = carry
        s = penalized(cfg, mean, var, best, corr)
        p = precision.argmax(jnp.where(taken | ~jnp.isfinite(s), -jnp.inf, s))
        k_cp = gp.kernel_matrix(cfg.spec, post.lengthscale, post.signal, uc, uc[p][None])[:, 0]
        wj = (k_cp - v.T @ v[:, p] - w @ w[p]) / jnp.sqrt(var[p] + post.noise)
        var = jnp.maximum(var - wj * wj, 1e-12 * post.signal)
        # polished starts often converge to the same maximum: drop its copies from the pool
        same = jnp.max(jnp.abs(xc - xc[p]), axis=-1) < 1e-5
        return (var, w.at[:, j].set(wj), jnp.minimum(best, mean[p]), taken | same), p

    init = (var, jnp.zeros((n, cfg.q), var.dtype), incumbent(post, state), jnp.zeros(n, bool))
    _, picks = jax.lax.scan(pick, init, jnp.arange(cfg.q))
    return xc[picks]


def thompson(cfg, post: gp.Posterior, state, xc: jax.Array, normal: jax.Array) -> jax.Array:
    """``q`` joint posterior draws over the first ``thompson_candidates`` rows of ``xc``
    (``normal: f32[q, n]`` standard draws), the minimizer of each, without repeats."""
    n, xc = cfg.thompson_candidates, xc[:cfg.thompson_candidates]
    mean, _, v = gp.predict(post, xc, return_solve=True)
    uc = gp.transform_inputs(cfg.spec, xc)
    cov = gp.kernel_matrix(cfg.spec, post.lengthscale, post.signal, uc, uc) - v.T @ v
    eye = jnp.eye(n, dtype=cfg.gp_dtype)  # float64 in the GP's precision, whatever xc's type
    chol = gp.cholesky_with_retries(cov + 1e-6 * post.signal * eye, 1e-5 * post.signal)
    draws = mean + normal.astype(mean.dtype) @ chol.T + 3.0 * failure_corr(cfg, post, state, xc)

    def pick(taken, f):
        p = precision.argmin(jnp.where(taken, jnp.inf, f))
        return taken.at[p].set(True), p

    _, picks = jax.lax.scan(pick, jnp.zeros(n, bool), draws)
    return xc[picks]


def select(cfg, post: gp.Posterior, screen: gp.Posterior, state, xc, frozen) -> jax.Array:
    """Screen the pool with ``screen`` (float32 by default), polish the best and choose the
    batch with ``post`` (the GP's precision, where variances near observed points survive)."""
    n_pool, ft = cfg.batch_pool, post.alpha.dtype
    idx = jax.lax.top_k(evaluate(cfg, screen, state, xc)[-1], max(cfg.num_polish, n_pool))[1]
    top = xc[idx].astype(ft)
    xp = polish(cfg, post, state, top[:cfg.num_polish], frozen[idx[:cfg.num_polish]])
    if cfg.q == 1:
        return xp[precision.argmax(evaluate(cfg, post, state, xp)[-1])][None]
    # batch pool: the polished points, the best raw candidates and some uniform ones
    pool = jnp.concatenate([xp, top[:n_pool // 2], xc[:n_pool // 2].astype(ft)])
    mean, var, v, corr, _ = evaluate(cfg, post, state, pool)
    return kriging_believer(cfg, post, state, pool, mean, var, v, corr)


def propose(cfg, key: jax.Array, state) -> jax.Array:
    """``f32[q, d]`` points from the GP of ``state`` (a ``GPBOState``)."""
    k_cand, k_ts = jax.random.split(key)
    with precision.scope(cfg.float64):
        ls = precision.unpack(state.post.lengthscale).astype(jnp.float32)
    xc = candidates(cfg, k_cand, state, ls)
    frozen = cfg.discrete | ~cfg.space.active_mask(xc)  # Space code stays out of the scope
    if cfg.acquisition == "thompson":
        normal = jax.random.normal(k_ts, (cfg.q, cfg.thompson_candidates), jnp.float32)
    with precision.scope(cfg.float64):
        post = precision.cast(precision.unpack(state.post), cfg.gp_dtype)
        screen = precision.cast(post, cfg.screen_dtype)
        xc = xc.astype(cfg.screen_dtype)
        if cfg.acquisition == "thompson":
            return thompson(cfg, screen, state, xc, normal).astype(jnp.float32)
        return select(cfg, post, screen, state, xc, frozen).astype(jnp.float32)
