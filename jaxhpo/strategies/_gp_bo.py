"""Bayesian optimization with a Gaussian process (GP-BO), batch proposals by kriging believer.

Each ``tell`` appends the new observations to a fixed-capacity buffer, refits the GP
hyperparameters (MAP, multi-start L-BFGS warm-started from the previous fit; see
:mod:`jaxhpo.gp`) and factors the posterior once. Each ``ask`` scores a pool of candidates —
uniform points plus Gaussian perturbations of the best observations — with the acquisition
function, polishes the best few of them by steepest ascent with a batched line search on the
continuous coordinates in lengthscale units (integer and categorical coordinates keep their
candidate bins), and selects the batch from the polished and the raw candidates:

* ``q = 1``: the maximizer of the acquisition;
* ``q > 1``, EI/PI/UCB: *kriging believer* (Ginsbourger, Le Riche & Carraro, "Kriging is
  well-suited to parallelize optimization", 2010) over the candidate pool. A fantasized
  observation equal to the posterior mean leaves the mean unchanged and lowers the variance
  by a rank-one update, so after choosing ``p_j``

      cov_j(c, p) = cov_{j-1}(c, p) - w_j(c) w_j(p),  w_j(c) = cov_{j-1}(c, p_j) / sqrt(var_{j-1}(p_j) + noise)

  and the incumbent becomes ``min(best, mu(p_j))``. Every step costs ``O(N (C + q))`` for a
  pool of ``N`` candidates and ``C`` observations — no refit, no new Cholesky factor — so a
  batch of 64 costs little more than one proposal;
* Thompson sampling: ``q`` joint posterior draws over a candidate subset, the minimizer of each.

Failed trials (NaN/inf fitness) are kept out of the GP fit but recorded; candidates are
discouraged from their neighbourhood by the factor ``1 - 0.99 * max_f rho(x, x_f)`` on EI/PI
(added as its log to logEI/logPI), where ``rho`` is the fitted kernel's correlation with a
failed point (for UCB and Thompson sampling ``3 * max_f rho`` standardized units are
subtracted).

The first ``num_initial`` observations come from a scrambled Halton sequence.

The GP state (observations, hyperparameters, Cholesky factor) and the acquisition are float64
by default, traced under ``jax.enable_x64`` inside ``init``/``ask``/``tell`` whatever the global
setting; the points ``ask`` returns are float32 like every strategy's.

References:
  Jones, Schonlau & Welch, "Efficient global optimization of expensive black-box functions",
  J. Global Optim. 1998. Snoek, Larochelle & Adams, "Practical Bayesian optimization of machine
  learning algorithms", NeurIPS 2012. Ament et al., NeurIPS 2023 (logEI). Ginsbourger et al.
  2010 (kriging believer).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo import gp
from jaxhpo.gp._gp import argmax, argmin
from jaxhpo._strategy import Strategy, check_population_size, check_space
from jaxhpo.strategies._quasi_random import QuasiRandomState, quasi_random

EMPTY, OK, FAILED = 0, 1, 2
_BIG = 1e10
# distances (in lengthscales) tried along the gradient at each polish iteration
_STEPS = tuple(float(v) for v in np.geomspace(1.0, 1e-3, 6))


@struct.dataclass
class GPBOState:
    x: jax.Array  # f32[C, d]   observed points (bins snapped, inactive coordinates neutral)
    y: jax.Array  # f32[C]      fitness as told (0 where not OK)
    status: jax.Array  # i32[C]  EMPTY / OK / FAILED
    count: jax.Array  # i32[]    observations told so far (all statuses)
    fitted_at: jax.Array  # i32[] OK observations at the last hyperparameter fit
    params: gp.GPParams  # current hyperparameters (warm start of the next fit)
    post: gp.Posterior  # the factored posterior of the OK observations
    key: jax.Array  # PRNG key for the fit's random restarts
    warmup: QuasiRandomState
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]


def gp_bo(space, batch_size: int = 1, *, acquisition: str = "logei",
          kernel: str = "matern52", num_initial: int | None = None,
          capacity: int | None = None, num_candidates: int = 512, num_polish: int = 4,
          polish_steps: int = 6,
          num_restarts: int = 4, fit_steps: int = 30,
          ucb_beta: float = 4.0, min_noise: float = 1e-8, thompson_candidates: int = 512,
          refit_below: int = 64, refit_growth: float = 0.1, fit_capacity: int = 128,
          float64: bool = True, ask_float64: bool = False, batch_pool: int = 256
          ) -> Strategy:
    """GP-based Bayesian optimization proposing ``batch_size`` points per ``ask``.

    Args:
      space: the search space (integer / categorical / conditional parameters are modelled
        through the kernel, see :class:`jaxhpo.gp.InputSpec`).
      batch_size: ``q``, points per ``ask`` (the population size).
      acquisition: ``"logei"`` (default), ``"ei"``, ``"ucb"``, ``"pi"``, ``"logpi"`` or
        ``"thompson"``.
      kernel: ``"matern52"`` (default) or ``"rbf"``.
      num_initial: quasi-random observations before the model is used (default
        ``max(10, d + 1)``, at least one batch).
      capacity: observation buffer size. ``None`` (default): starts at
        ``max(64, 2 q)`` and doubles through :attr:`Strategy.reserve`, which drivers call
        outside ``jit`` (``minimize`` as the run grows — at most ``log2(n)`` compilations;
        ``minimize_scan`` once for the whole run). An int fixes it (e.g. for your own
        ``lax.scan``). When the buffer is full the worst observations are dropped first.
      num_candidates: random candidates scored per ``ask`` (half uniform, half local).
      num_polish: best candidates refined by gradient ascent (whatever ``q``: kriging
        believer picks the batch from the polished and the raw candidates).
      polish_steps: iterations of that refinement (steepest ascent, batched line search).
      num_restarts: L-BFGS starts of each hyperparameter fit (previous fit, prior mode, prior
        draws).
      fit_steps: at most this many L-BFGS iterations per start.
      refit_below, refit_growth: the hyperparameters are refitted at every ``tell`` while
        there are at most ``refit_below`` valid observations, then whenever their number has
        grown by the fraction ``refit_growth`` since the last fit (the posterior itself is
        refactored at every ``tell``). Refitting a MAP estimate that barely moves is the
        dominant cost at hundreds of observations; this keeps it amortized.
      fit_capacity: the hyperparameters are fitted on at most this many observations (a
        random subset of the valid ones, drawn anew at each fit; subset-of-data, Rasmussen &
        Williams Sect. 8.3.3); the posterior always uses all of them.
      ucb_beta: ``beta`` of UCB.
      min_noise: floor of the noise variance in standardized units.
      thompson_candidates: candidates of the joint posterior draws of Thompson sampling.
      float64: keep the observations, the GP fit and posterior and the acquisition in float64
        (default; traced under ``jax.enable_x64`` so it needs no global flag). float32 loses
        the posterior variance near observed points (``s - k^T K^-1 k`` cancels), which
        limits how close to an optimum the acquisition can steer.
      ask_float64: also screen the candidates in float64 (slower on CPU). By default the
        screening predicts in float32 from the factor cast once; the polish and the choice of
        the batch always use the GP's precision.
      batch_pool: ``q > 1``: kriging believer picks from the polished points, the
        ``batch_pool / 2`` best-scored candidates and ``batch_pool / 2`` uniform ones.

    Returns:
      A :class:`jaxhpo.Strategy` with a ``reserve`` function.

    Example:
      >>> strategy = jaxhpo.strategies.gp_bo(space, batch_size=8)
      >>> result = jaxhpo.minimize(objective, space, strategy, num_generations=20)
    """
    d = check_space(space)
    q = check_population_size(batch_size, "batch_size")
    if acquisition not in gp.ACQUISITIONS:
        raise ValueError(f"acquisition must be one of {gp.ACQUISITIONS}, got {acquisition!r}")
    spec = gp.InputSpec.from_space(space, kernel)
    n_init = max(10, d + 1) if num_initial is None else check_population_size(
        num_initial, "num_initial")
    for name, v in (("num_candidates", num_candidates), ("num_polish", num_polish),
                    ("num_restarts", num_restarts), ("fit_steps", fit_steps),
                    ("thompson_candidates", thompson_candidates),
                    ("fit_capacity", fit_capacity), ("batch_pool", batch_pool)):
        check_population_size(v, name)
    if isinstance(polish_steps, bool) or not isinstance(polish_steps, int) or polish_steps < 0:
        raise ValueError(f"polish_steps must be an int >= 0, got {polish_steps!r}")
    cap0 = max(64, 2 * q) if capacity is None else check_population_size(capacity, "capacity")
    if cap0 < q:
        raise ValueError(f"capacity={cap0} must be >= batch_size={q}")
    if not refit_growth >= 0 or isinstance(refit_below, bool) or not isinstance(refit_below,
                                                                                  int):
        raise ValueError(f"refit_below must be an int and refit_growth >= 0, got "
                         f"{refit_below!r}, {refit_growth!r}")
    if not ucb_beta > 0 or not min_noise >= 0:
        raise ValueError(f"ucb_beta must be > 0 and min_noise >= 0, got {ucb_beta}, {min_noise}")
    num_polish = min(num_polish, num_candidates)
    n_ts = min(thompson_candidates, num_candidates)
    warm = quasi_random(space, q)
    ft = jnp.float64 if float64 else jnp.float32
    fa = jnp.float64 if float64 and ask_float64 else jnp.float32
    n_pool = min(batch_pool, num_candidates)
    is_log_acq = acquisition in ("logei", "logpi")
    discrete = jnp.asarray(np.asarray(spec.num_bins) > 0)

    def cast(tree, dtype):
        return jax.tree.map(
            lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)

    def prepare(x):
        return space.neutralize(gp.snap_to_bins(spec, x)).astype(x.dtype)

    # ------------------------------------------------------------------ state and buffer
    def empty_posterior(cap):
        eye = jnp.eye(cap, dtype=ft)
        p = gp.GPParams.default(d, ft)
        one = jnp.ones((), ft)
        return gp.Posterior(jnp.zeros((cap, d), ft), jnp.zeros(cap, bool), eye, eye,
                            jnp.zeros(cap, ft), jnp.exp(p.log_lengthscale), one, 1e-2 * one,
                            0.0 * one, one, spec)

    def init(key):
        with _outer_precision():
            k_warm, k_fit = jax.random.split(key)
            w0 = warm.init(k_warm)
        return GPBOState(jnp.zeros((cap0, d), ft), jnp.zeros(cap0, ft), jnp.zeros(cap0, jnp.int32),
                         jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                         gp.GPParams.default(d, ft),
                         empty_posterior(cap0), k_fit, w0,
                         jnp.full((d,), 0.5, ft), jnp.asarray(np.finfo(np.float32).max, ft))

    def reserve(state, n):
        """Grow the buffer (doubling) so it holds ``n`` observations; call outside ``jit``."""
        cap = state.x.shape[0]
        if n <= cap:
            return state
        new = cap
        while new < n:
            new *= 2
        pad = new - cap
        post = state.post
        eye = jnp.eye(new, dtype=post.chol.dtype)
        post = post.replace(u=jnp.pad(post.u, ((0, pad), (0, 0))),
                            mask=jnp.pad(post.mask, (0, pad)),
                            chol=eye.at[:cap, :cap].set(post.chol),
                            chol_inv=eye.at[:cap, :cap].set(post.chol_inv),
                            alpha=jnp.pad(post.alpha, (0, pad)))
        return state.replace(x=jnp.pad(state.x, ((0, pad), (0, 0))),
                             y=jnp.pad(state.y, (0, pad)), status=jnp.pad(state.status, (0, pad)),
                             post=post)

    def insert(state, x, y, status):
        cap = state.x.shape[0]

        def append(_):
            i = jnp.minimum(state.count, cap - q).astype(jnp.int32)
            return (jax.lax.dynamic_update_slice(state.x, x, (i, jnp.int32(0))),
                    jax.lax.dynamic_update_slice(state.y, y, (i,)),
                    jax.lax.dynamic_update_slice(state.status, status, (i,)))

        def keep_best(_):  # full: keep OK points by fitness, then failed ones, drop the rest
            xs = jnp.concatenate([state.x, x])
            ys = jnp.concatenate([state.y, y])
            st = jnp.concatenate([state.status, status])
            rank = jnp.where(st == OK, 0, jnp.where(st == FAILED, 1, 2))
            order = jnp.lexsort((ys, rank))[:cap]
            return xs[order], ys[order], st[order]

        return jax.lax.cond(state.count + q <= cap, append, keep_best, None)

    # ------------------------------------------------------------------ tell
    def tell(state, x, fitness):
        state = cast(state, ft)  # e.g. a state restored from a journal as float32
        f = jnp.asarray(fitness).astype(ft).reshape(q)
        x = jnp.asarray(x).astype(ft)
        ok = jnp.isfinite(f)
        xb, yb, sb = insert(state, prepare(x), jnp.where(ok, f, 0.0),
                            jnp.where(ok, OK, FAILED).astype(jnp.int32))
        mask = sb == OK
        with _outer_precision():  # random draws in the caller's precision, then cast
            key, k_fit, k_sub = jax.random.split(state.key, 3)
            u_sub = jax.random.uniform(k_sub, mask.shape)
            draws = gp.sample_prior(k_fit, d, max(num_restarts - 2, 0), jnp.float32)
        draws = jax.tree.map(lambda a: a.astype(ft), draws)

        def refit(params):
            if xb.shape[0] > fit_capacity:  # a random subset of the OK points (all if fewer)
                prio = jnp.where(mask, u_sub, 2.0)
                idx = jnp.argsort(prio)[:fit_capacity]
                xf, yf, mf = xb[idx], yb[idx], mask[idx]
            else:
                xf, yf, mf = xb, yb, mask
            starts = jax.tree.map(
                lambda a, b, c: jnp.concatenate([a[None], b[None], c]), params,
                gp.GPParams.default(d, ft),
                draws)
            starts = jax.tree.map(lambda a: a[:num_restarts], starts)
            return gp.fit(xf, yf, mf, spec, starts, num_steps=fit_steps, min_noise=min_noise)

        n_ok = jnp.sum(mask).astype(jnp.int32)
        due = (n_ok >= 2) & ((n_ok <= refit_below) | (n_ok >= (1.0 + refit_growth)
                                                       * state.fitted_at))
        params = jax.lax.cond(due, refit, lambda p: p, state.params)
        post = gp.posterior(params, xb, yb, mask, spec, min_noise)
        fc = jnp.where(ok, f, jnp.inf)
        i = argmin(fc)
        better = fc[i] < state.best_fitness
        return state.replace(x=xb, y=yb, status=sb, count=state.count + q,
                             fitted_at=jnp.where(due, n_ok, state.fitted_at), params=params,
                             post=post, key=key,
                             best_x=jnp.where(better, x[i], state.best_x),
                             best_fitness=jnp.where(better, fc[i], state.best_fitness))

    # ------------------------------------------------------------------ ask
    def incumbent(state):
        z = (state.y - state.post.y_mean) / state.post.y_std
        return jnp.min(jnp.where(state.status == OK, z, jnp.inf))

    def failure_corr(state, xc):
        """max over failed observations of the kernel correlation, f32[n]."""
        uq = gp.transform_inputs(spec, xc)
        uf = gp.transform_inputs(spec, state.x)
        r = gp.correlation(spec, gp.scaled_sq_dist(spec, state.post.lengthscale, uq, uf))
        return jnp.max(jnp.where(state.status == FAILED, r, 0.0), axis=-1, initial=0.0)

    def penalize(score, corr):
        if is_log_acq:
            return score + jnp.log1p(-0.99 * corr)
        if acquisition in ("ei", "pi"):
            return score * (1.0 - 0.99 * corr)
        return score - 3.0 * corr

    def score_points(state, xc, best):
        mean, var = gp.predict(state.post, xc)
        s = gp.acquisition_value(acquisition, mean, var, best, ucb_beta)
        return penalize(s, failure_corr(state, xc))

    def candidates(key, state):
        n_u = num_candidates - num_candidates // 2
        n_l = num_candidates // 2
        n_top = jnp.clip(jnp.sum(state.status == OK), 1, 5).astype(jnp.int32)
        with _outer_precision():
            k_u, k_par, k_step, k_len, k_flip, k_new = jax.random.split(key, 6)
            uniform = jax.random.uniform(k_u, (n_u, d))
            which = jax.random.randint(k_par, (n_l,), 0, n_top)
            noise = jax.random.normal(k_step, (n_l, d)) * jnp.exp(
                jax.random.uniform(k_len, (n_l, 1), minval=-3.0, maxval=0.0))
            flip = jax.random.uniform(k_flip, (n_l, d)) < 1.0 / d
            fresh = jax.random.uniform(k_new, (n_l, d))
        # local: perturb the best OK observations (top 5) on the lengthscale's scale
        z = jnp.where(state.status == OK, state.y, jnp.inf)
        top = jnp.argsort(z)[:5]
        parent = state.x[top[which]]
        scale = jnp.clip(0.2 * state.post.lengthscale, 1e-3, 0.2)
        step = scale * noise.astype(fa)
        local = jnp.where(discrete, jnp.where(flip, fresh.astype(fa), parent), parent + step)
        uniform = uniform.astype(fa)
        return prepare(jnp.clip(jnp.concatenate([uniform, local]), 0.0, 1.0))

    def polish(state, x0, best):
        """Refine each row of ``x0`` by steepest ascent of the acquisition with a batched
        line search (all starts and all trial steps scored in one matrix product).

        The continuous coordinates move in lengthscale units, ``x = clip(z * l)`` (the
        preconditioning of Optuna's GPSampler: every direction has a similar curvature scale).
        Each of ``polish_steps`` iterations takes the gradient at every start and scores the
        points at distances ``_STEPS`` (lengthscale units) along it, and along the previous
        move (a pattern move that cuts the zig-zag of steepest ascent); a start moves to the
        best of them if it improves. Integer and categorical coordinates keep their bins.
        A fixed iteration count with no data-dependent loop keeps ``ask`` time predictable.
        """
        if polish_steps == 0:
            return x0
        ls = jnp.clip(state.post.lengthscale, 1e-2, 1.0).astype(x0.dtype)
        steps = jnp.asarray(_STEPS, x0.dtype)
        m = x0.shape[0]

        def to_x(z, base):
            return prepare(jnp.where(discrete, base, jnp.clip(z * ls, 0.0, 1.0)))

        def score(z, base):
            s = score_points(state, to_x(z, base), best)
            return jnp.where(jnp.isfinite(s), s, -_BIG)

        def step(_, carry):
            z, s, move = carry
            g = jax.grad(lambda z: jnp.sum(score(z, x0)))(z)
            g = jnp.where(discrete | ~jnp.isfinite(g), 0.0, g)
            gdir = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-30)
            mnorm = jnp.linalg.norm(move, axis=-1, keepdims=True)
            mdir = move / (mnorm + 1e-30)
            # trial points: along the gradient at the fixed distances, along the last move at
            # 1 and 2 times its length
            tg = z[:, None, :] + steps[None, :, None] * gdir[:, None, :]
            tm = z[:, None, :] + (jnp.asarray([1.0, 2.0], z.dtype)[None, :, None]
                                  * mnorm[:, None, :]) * mdir[:, None, :]
            trial = jnp.concatenate([tg, tm], axis=1)  # f[m, ns + 2, d]
            k = trial.shape[1]
            st = score(trial.reshape(m * k, d), jnp.repeat(x0, k, axis=0)).reshape(m, k)
            j = argmax(st, axis=1)
            better = st[jnp.arange(m), j] > s
            znew = jnp.where(better[:, None], trial[jnp.arange(m), j], z)
            return znew, jnp.where(better, st[jnp.arange(m), j], s), znew - z

        z0 = x0 / ls
        s0 = score(z0, x0)
        z, _, _ = jax.lax.fori_loop(0, polish_steps, step, (z0, s0, jnp.zeros_like(z0)))
        return to_x(z, x0)

    def kriging_believer(state, xc, mean, var, v, corr, best):
        """Greedy batch of q rows of the pool xc (see module docstring); mean, var, v and corr
        are the pool's posterior, its solves L^-1 k(X, xc) and its failure correlation."""
        post = state.post
        uc = gp.transform_inputs(spec, xc)
        n = xc.shape[0]

        def pick(carry, j):
            var, w, best, taken = carry
            s = penalize(gp.acquisition_value(acquisition, mean, var, best, ucb_beta), corr)
            s = jnp.where(taken | ~jnp.isfinite(s), -jnp.inf, s)
            p = argmax(s)
            k_cp = gp.kernel_matrix(spec, post.lengthscale, post.signal, uc, uc[p][None])[:, 0]
            cov = k_cp - v.T @ v[:, p] - w @ w[p]
            wj = cov / jnp.sqrt(var[p] + post.noise)
            var = jnp.maximum(var - wj * wj, 1e-12 * post.signal)
            # polished starts often converge to the same maximum: drop its copies from the pool
            same = jnp.max(jnp.abs(xc - xc[p]), axis=-1) < 1e-5
            return (var, w.at[:, j].set(wj), jnp.minimum(best, mean[p]), taken | same), p

        init = (var, jnp.zeros((n, q), var.dtype), best, jnp.zeros(n, bool))
        _, picks = jax.lax.scan(pick, init, jnp.arange(q))
        return xc[picks]

    def thompson(key, state, xc):
        post = state.post
        xc = xc[:n_ts]
        mean, _, v = gp.predict(post, xc, return_solve=True)
        uc = gp.transform_inputs(spec, xc)
        cov = gp.kernel_matrix(spec, post.lengthscale, post.signal, uc, uc) - v.T @ v
        chol = gp.cholesky_with_retries(cov + 1e-6 * post.signal * jnp.eye(n_ts),
                                        1e-5 * post.signal)
        with _outer_precision():
            normal = jax.random.normal(key, (q, n_ts))
        draws = mean + normal.astype(fa) @ chol.T  # f[q, n]
        draws = draws + 3.0 * failure_corr(state, xc)

        def pick(taken, f):
            p = argmin(jnp.where(taken, jnp.inf, f))
            return taken.at[p].set(True), p

        _, picks = jax.lax.scan(pick, jnp.zeros(n_ts, bool), draws)
        return xc[picks]

    def model_ask(key, state):
        with _outer_precision():
            k_cand, k_ts = jax.random.split(key)
        # Screening in float32 (a ranking: cast the float64 factor once), the polish and the
        # final choice in the GP's precision ft, where variances near observed points survive.
        screen = cast(state, fa)
        xc = candidates(k_cand, screen)
        if acquisition == "thompson":
            return thompson(k_ts, screen, xc)

        def evaluate(st, x):  # posterior, solves and penalized score of a set of points
            best = incumbent(st)
            mean, var, v = gp.predict(st.post, x, return_solve=True)
            corr = failure_corr(st, x)
            s = penalize(gp.acquisition_value(acquisition, mean, var, best, ucb_beta), corr)
            return mean, var, v, corr, jnp.where(jnp.isfinite(s), s, -jnp.inf)

        scores = evaluate(screen, xc)[-1]
        top = xc[jax.lax.top_k(scores, max(num_polish, n_pool))[1]].astype(ft)
        xp = polish(state, top[:num_polish], incumbent(state))
        if q == 1:
            return xp[argmax(evaluate(state, xp)[-1])][None]
        # batch pool: the polished points, the best raw candidates and some uniform ones
        pool = jnp.concatenate([xp, top[:n_pool // 2], xc[:n_pool // 2].astype(ft)])
        mean, var, v, corr, _ = evaluate(state, pool)
        return kriging_believer(state, pool, mean, var, v, corr, incumbent(state))

    def ask(key, state):
        state = cast(state, ft)
        ready = (state.count >= n_init) & (jnp.sum(state.status == OK) >= 2)

        def from_model(st):
            return model_ask(key, st).astype(jnp.float32), st

        def from_warmup(st):
            with _outer_precision():
                x, w = warm.ask(key, st.warmup)
            return x.astype(jnp.float32), st.replace(warmup=w)

        return jax.lax.cond(ready, from_model, from_warmup, state)

    return Strategy(_in_precision(init, float64), _in_precision(ask, float64),
                    _in_precision(tell, float64), q, d, "gp_bo",
                    reserve=_in_precision(reserve, float64))


_CALLER = threading.local()  # the caller's jax_enable_x64 while a float64 gp_bo traces


def _in_precision(fn, float64: bool):
    """``fn`` run (and traced) with 64-bit types enabled when ``float64``: the GP state is
    float64 whatever the global ``jax_enable_x64`` setting; ``x`` of ``ask`` stays float32.

    Only primitives whose lowering does not re-trace Python code may be traced this way
    (the program is compiled under the caller's setting): random draws, the warm-up sampler
    and ``argmax`` run in :func:`_outer_precision` or use :func:`jaxhpo.gp._gp.argmax`.
    """
    if not float64:
        return fn

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        prev = getattr(_CALLER, "x64", None)
        _CALLER.x64 = bool(jax.config.read("jax_enable_x64"))
        try:
            with jax.enable_x64(True):
                return fn(*args, **kwargs)
        finally:
            _CALLER.x64 = prev

    return wrapped


@contextlib.contextmanager
def _outer_precision():
    """Inside :func:`_in_precision`, trace with the caller's x64 setting (else no-op)."""
    x64 = getattr(_CALLER, "x64", None)
    if x64 is None:
        yield
    else:
        with jax.enable_x64(x64):
            yield
