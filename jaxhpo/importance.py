"""Hyperparameter importance of a finished run: fANOVA, PED-ANOVA and GP-Sobol.

``jaxhpo.importance(run, method=...)`` reads the completed trials of a run (their unit-cube
points ``Trial.x`` and objective values) and says how much each parameter matters:

* ``"fanova"``: functional ANOVA of a random forest (Hutter, Hoos & Leyton-Brown, "An Efficient
  Approach for Assessing Hyperparameter Importance", ICML 2014): the fraction of the forest's
  variance over the unit cube explained by each parameter's marginal, computed exactly from
  the trees' leaf boxes and averaged over trees. Needs scikit-learn for the trees
  (``pip install 'jaxhpo[importance]'``).
* ``"ped_anova"``: PED-ANOVA (Watanabe, Bansal & Hutter, "PED-ANOVA: Efficiently Quantifying
  Hyperparameter Importance in Arbitrary Subspaces", IJCAI 2023): per parameter, the Pearson
  divergence between the Parzen density of the top-``quantile`` trials and that of all trials,
  on a grid. Closed form, no model, milliseconds.
* ``"gp_sobol"``: first-order Sobol indices (Sobol' 2001) of the posterior mean of jaxhpo's GP
  (:mod:`jaxhpo.gp`, the model of ``gp_bo``) fitted to the trials, by Monte Carlo with the
  estimator of Saltelli et al., "Variance based sensitivity analysis of model output", Comput.
  Phys. Commun. 181 (2010), Table 2 (b): ``V_i = mean(f(B) * (f(A_B^i) - f(A)))``. The fit and
  the ``(d + 2) * num_samples`` predictions are one ``jit``-compiled function.

The data are the run's completed trials (status ``ok`` with finite values; a ``tune`` run's
trials stopped early by the scheduler are left out, their values being at a smaller budget).

How the space's kinds are treated (the same way by every method): each parameter is one
coordinate of the unit cube, which is the measure the importances are taken over, so a
``log=True`` parameter is uniform in its logarithm; integers and categoricals sit at the
centres of their equal-width bins (the cube measure gives every choice the same weight). A
categorical is split by the forest as an ordered index (successive splits isolate any set of
choices), gets one grid cell per choice in PED-ANOVA and the GP's overlap kernel (distance 0
for the same choice, 1 otherwise) in GP-Sobol.

Conditional parameters: where a parameter is inactive the objective does not depend on its
coordinate, so fANOVA and GP-Sobol redraw its coordinate uniformly (seeded by ``seed``) in
those trials before fitting: the model then sees a function flat in that coordinate there, and
the importance is the parameter's share of the variance over the whole space (it acts only
where its condition holds; the condition's parent carries the rest). PED-ANOVA splits each
parameter's trials by regime (active/inactive) and weights the active regime's divergence by
``alpha^2 / beta`` (share of the top trials / of all trials in that regime), the conditional
form of Watanabe et al.'s Theorem (as in Optuna's ``PedAnovaImportanceEvaluator``); the
inactive regime contributes nothing.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo._space import CATEGORICAL, INT
from jaxhpo._validate import check_bool, check_choice, check_int, check_params, check_real

METHODS = ("fanova", "ped_anova", "gp_sobol")


def importance(run, method: str = "ped_anova", *, params=None, objective=0, space=None,
               normalize: bool = True, seed: int = 0, quantile: float = 0.1,
               region_quantile: float = 1.0, num_trees: int = 64, max_depth: int = 64,
               num_samples: int = 16384) -> dict[str, float]:
    """How much each hyperparameter matters in a run.

    Args:
      run: a :class:`jaxhpo.Result`, :class:`jaxhpo.TuneResult` (anything with ``.history``
        and ``.space``), the path of a journal, or a :class:`jaxhpo.History` with ``space=``.
      method: ``"fanova"``, ``"ped_anova"`` or ``"gp_sobol"`` (see the module docstring).
      params: names of the parameters to report (default: all). The model always uses every
        coordinate; the importances of the named ones are normalized among themselves.
      objective: which objective (index or name) of a multi-objective run.
      space: the search space (needed with a bare History).
      normalize: scale the importances to sum to 1 (when they are all 0, each gets ``1/k``).
        With ``False``: fANOVA's variance fractions, PED-ANOVA's ``v^2`` and GP-Sobol's
        first-order Sobol indices ``S_i`` as estimated (negative Monte Carlo estimates of a
        zero index are clipped to 0).
      seed: seeds the forest, the redraw of inactive coordinates, the GP's restarts and the
        Monte Carlo samples.
      quantile: PED-ANOVA's ``gamma'``: the fraction of best trials whose density is compared.
      region_quantile: PED-ANOVA's ``gamma``: the region of trials compared against (1 = all).
      num_trees: fANOVA's forest size.
      max_depth: fANOVA's tree depth.
      num_samples: GP-Sobol's Monte Carlo base sample size ``N`` (``(d + 2) N`` predictions).

    Returns:
      ``{name: importance}``, sorted from the most to the least important (ties by the space's
      order); normalized to sum to 1 unless ``normalize=False``.

    Raises:
      ValueError: unknown method or parameter, fewer than 2 completed trials (fANOVA/PED-ANOVA)
        or 3 (GP-Sobol), bad settings.
      ImportError: ``method="fanova"`` without scikit-learn.

    Example:
      >>> res = jaxhpo.minimize(fn, space, jaxhpo.strategies.random_search(space, 20),
      ...                       num_generations=5)
      >>> jaxhpo.importance(res, method="gp_sobol")
      {'lr': 0.81, 'width': 0.17, 'opt': 0.02}
    """
    from jaxhpo.plot._inputs import as_run, need_space, objective_index, ok_trials

    method = check_choice(method, "method", METHODS)
    normalize = check_bool(normalize, "normalize")
    seed = check_int(seed, "seed", 0)
    view = as_run(run, space)
    sp = need_space(view, "importance")
    h = view.history
    names = list(sp.names) if params is None else check_params(sp, params)
    j = objective_index(h, objective)
    trials = [t for t in ok_trials(h) if len(t.x) == sp.dim]
    need = 3 if method == "gp_sobol" else 2
    if len(trials) < need:
        raise ValueError(f"importance needs at least {need} completed trials with finite values; "
                         f"the run has {len(trials)}")
    x = np.array([t.x for t in trials], np.float64)
    inactive = np.array([[n in t.inactive for n in sp.names] for t in trials], bool)
    sign = 1.0 if h.directions[j] == "minimize" else -1.0
    y = sign * np.array([t.values[j] for t in trials], np.float64)  # smaller is better
    x = np.clip(x, 0.0, 1.0)
    if method == "ped_anova":
        q = check_real(quantile, "quantile", 0.0, 1.0, low_open=True, high_open=True)
        rq = check_real(region_quantile, "region_quantile", 0.0, 1.0, low_open=True)
        if q >= rq:
            raise ValueError(f"quantile ({q}) must be below region_quantile ({rq})")
        raw = ped_anova(x, y, inactive, sp, q, rq)
    else:
        rng = np.random.default_rng(seed)
        x = np.where(inactive, rng.uniform(size=x.shape), x)  # see the module docstring
        x = _snap(x, sp)
        if method == "fanova":
            raw = fanova(x, y, sp, check_int(num_trees, "num_trees", 1),
                         check_int(max_depth, "max_depth", 1), seed)
        else:
            raw = gp_sobol(x, y, sp, check_int(num_samples, "num_samples", 16), seed)
    vals = np.array([max(0.0, float(raw[sp.names.index(n)])) for n in names])
    if normalize:
        tot = vals.sum()
        vals = vals / tot if tot > 0 else np.full(len(names), 1.0 / len(names))
    order = sorted(range(len(names)), key=lambda i: -vals[i])
    return {names[i]: float(vals[i]) for i in order}


def _bins(sp) -> np.ndarray:
    """``int[d]``: bins of each coordinate (0 for floats)."""
    kinds = np.asarray(sp.kinds)
    return np.where((kinds == INT) | (kinds == CATEGORICAL), np.asarray(sp.num_choices), 0)


def _snap(x: np.ndarray, sp) -> np.ndarray:
    """Integer and categorical coordinates to their bins' centres (as ``Space.decode`` bins)."""
    b = _bins(sp)
    m = np.maximum(b, 1)
    return np.where(b > 0, (np.clip(np.floor(x * m), 0, m - 1) + 0.5) / m, x)


# ---------------------------------------------------------------------------- fANOVA
def fanova(x: np.ndarray, y: np.ndarray, sp, num_trees: int = 64, max_depth: int = 64,
           seed: int = 0) -> np.ndarray:
    """``f64[d]``: fANOVA first-order importances (Hutter et al. 2014) of a random forest.

    For each tree, the leaves partition the unit cube into boxes with constant predictions.
    Under the uniform measure the tree's mean is ``sum_l vol_l v_l`` and its variance ``V =
    sum_l vol_l (v_l - mean)^2`` (their Eq. 2); the marginal of coordinate ``i`` is constant
    between consecutive split points of ``i`` and equals ``sum_l v_l vol_l / w_li`` over the
    leaves whose box covers the point (``w_li``: the box's width in ``i``), so its variance
    ``V_i`` (their Eq. 3, Theorem 2) is exact. Returns the mean over trees of ``V_i / V``.

    Args:
      x: ``f[n, d]`` unit-cube points (bins snapped to centres, inactive coordinates redrawn).
      y: ``f[n]`` objective values.
      sp: the :class:`jaxhpo.Space` (for its dimension).
      num_trees: trees in the forest; max_depth: their depth; seed: the forest's seed.
    """
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError as e:
        raise ImportError("importance(method='fanova') needs scikit-learn: pip install "
                          "'jaxhpo[importance]' (or pip install scikit-learn); "
                          "method='ped_anova' and 'gp_sobol' need nothing more") from e
    forest = RandomForestRegressor(n_estimators=num_trees, max_depth=max_depth,
                                   min_samples_split=2, min_samples_leaf=1, random_state=seed)
    forest.fit(x, y)
    d = x.shape[1]
    out = np.zeros(d)
    used = 0
    for est in forest.estimators_:
        v = _tree_fractions(est.tree_, d)
        if v is not None:
            out += v
            used += 1
    return out / max(used, 1)


def _tree_fractions(tree, d: int) -> np.ndarray | None:
    """``V_i / V`` of one fitted sklearn tree over the unit cube (``None`` if ``V = 0``)."""
    left, right = tree.children_left, tree.children_right
    feat, thr, value = tree.feature, tree.threshold, tree.value.reshape(tree.node_count, -1)[:, 0]
    lo, hi, vals = [], [], []
    stack = [(0, np.zeros(d), np.ones(d))]
    while stack:
        node, a, b = stack.pop()
        if left[node] < 0:
            lo.append(a)
            hi.append(b)
            vals.append(value[node])
            continue
        f, t = feat[node], min(max(thr[node], a[feat[node]]), b[feat[node]])
        b_left, a_right = b.copy(), a.copy()
        b_left[f], a_right[f] = t, t
        stack.append((left[node], a, b_left))
        stack.append((right[node], a_right, b))
    lo, hi, vals = np.array(lo), np.array(hi), np.array(vals)
    width = hi - lo
    vol = np.prod(width, axis=1)
    mean = vol @ vals
    total = vol @ (vals - mean) ** 2
    if not total > 1e-300:
        return None
    frac = np.zeros(d)
    for i in range(d):
        cuts = np.unique(np.concatenate([[0.0, 1.0], lo[:, i], hi[:, i]]))
        mid, w = 0.5 * (cuts[1:] + cuts[:-1]), np.diff(cuts)
        keep = w > 0
        mid, w = mid[keep], w[keep]
        cover = (lo[:, i, None] <= mid) & (mid < hi[:, i, None])  # [leaves, intervals]
        safe = np.where(width[:, i] > 0, width[:, i], 1.0)
        marginal = (vals * vol / safe) @ cover
        frac[i] = (w @ (marginal - mean) ** 2) / total
    return frac


# ---------------------------------------------------------------------------- PED-ANOVA
PED_GRID = 50  # grid points of a float coordinate (and the most of an integer's)
PED_PRIOR_WEIGHT = 1.0


def ped_anova(x: np.ndarray, y: np.ndarray, inactive: np.ndarray, sp, quantile: float = 0.1,
              region_quantile: float = 1.0) -> np.ndarray:
    """``f64[d]``: PED-ANOVA importances ``v^2`` (Watanabe et al. 2023, Theorem 1).

    ``v_d^2 = (gamma' / gamma)^2 * sum_k p_region(k) (p_top(k) / p_region(k) - 1)^2`` over a
    grid of the coordinate, where ``p_top`` and ``p_region`` are Parzen densities of the
    top-``quantile`` and top-``region_quantile`` trials. Numerical coordinates use Gaussian
    kernels with Scott's bandwidth (``1.059 min(sd, IQR / 1.34) n^(-1/5)``, at least 0.3 of a
    grid step) discretized on the grid, plus one uniform-like prior kernel; categoricals use
    the choice frequencies smoothed by a uniform prior of weight 1. A conditional parameter's
    active regime is weighted by ``alpha^2 / beta`` (see the module docstring).

    Args:
      x: ``f[n, d]`` unit-cube points; y: ``f[n]`` values (smaller is better);
      inactive: ``bool[n, d]``; sp: the space; quantile, region_quantile: ``gamma'``,
      ``gamma``.
    """
    n, d = x.shape
    order = np.argsort(y, kind="stable")
    n_top = max(1, math.ceil(quantile * n))
    n_reg = max(n_top, math.ceil(region_quantile * n))
    top = np.zeros(n, bool)
    top[order[:n_top]] = True
    reg = np.zeros(n, bool)
    reg[order[:n_reg]] = True
    kinds, bins = np.asarray(sp.kinds), _bins(sp)
    out = np.zeros(d)
    for i in range(d):
        act = ~inactive[:, i]
        t, r = top & act, reg & act
        if t.sum() < 2 or r.sum() < 2:
            continue
        alpha, beta = t.sum() / top.sum(), r.sum() / reg.sum()
        if kinds[i] == CATEGORICAL:
            k = int(bins[i])
            p_t, p_r = (_cat_pdf(x[m, i], k) for m in (t, r))
        else:
            k = int(min(bins[i], PED_GRID)) if kinds[i] == INT else PED_GRID
            if k < 2:
                continue
            binned = kinds[i] == INT and bins[i] <= PED_GRID  # one grid point per integer
            p_t, p_r = (_parzen_pdf(x[m, i], k, binned) for m in (t, r))
        p_t, p_r = p_t + 1e-12, p_r + 1e-12
        out[i] = alpha ** 2 / beta * float(p_r @ (p_t / p_r - 1.0) ** 2)
    return out * (n_top / n_reg) ** 2


def _grid_pos(u: np.ndarray, k: int, binned: bool = False) -> np.ndarray:
    """Unit coordinates -> grid positions ``0..k-1``: the nearest of ``k`` evenly spaced
    points, or (``binned``, an integer with ``k`` values) the bin ``u`` falls in."""
    if binned:
        return np.clip(np.floor(u * k), 0, k - 1)
    return np.clip(np.round(u * (k - 1)), 0, k - 1)


def _parzen_pdf(u: np.ndarray, k: int, binned: bool = False) -> np.ndarray:
    """``f64[k]``: a Gaussian Parzen mixture discretized on ``k`` grid points (sums to 1)."""
    mu = _grid_pos(u, k, binned)
    n = mu.size
    sd = mu.std(ddof=1) if n > 1 else 0.0
    q1, q3 = np.quantile(mu, [0.25, 0.75])
    sigma = 1.059 * min((q3 - q1) / 1.34, sd) * n ** -0.2
    sigma = max(sigma, 0.5 / 1.64)  # 1.64 sigma (90%) of a kernel inside its grid cell
    grid = np.arange(k, dtype=np.float64)
    mus = np.append(mu, (k - 1) / 2.0)
    sigmas = np.append(np.full(n, sigma), float(k))  # the last kernel is the wide prior
    dens = np.exp(-0.5 * ((grid[None, :] - mus[:, None]) / sigmas[:, None]) ** 2)
    dens /= dens.sum(axis=1, keepdims=True)  # each kernel truncated to the grid
    w = np.append(np.ones(n), PED_PRIOR_WEIGHT)
    return (w @ dens) / w.sum()


def _cat_pdf(u: np.ndarray, k: int) -> np.ndarray:
    """``f64[k]``: choice frequencies smoothed by a uniform prior of weight 1."""
    idx = np.clip(np.floor(u * k), 0, k - 1).astype(int)
    counts = np.bincount(idx, minlength=k).astype(np.float64)
    return (counts + PED_PRIOR_WEIGHT / k) / (counts.sum() + PED_PRIOR_WEIGHT)


# ---------------------------------------------------------------------------- GP-Sobol
GP_RESTARTS = 4
GP_FIT_STEPS = 30


def gp_sobol(x: np.ndarray, y: np.ndarray, sp, num_samples: int = 16384,
             seed: int = 0) -> np.ndarray:
    """``f64[d]``: first-order Sobol indices of a fitted GP's posterior mean.

    The GP (ARD Matern-5/2 with the space's integer and categorical handling,
    :func:`jaxhpo.gp.fit` MAP hyperparameters from ``GP_RESTARTS`` starts, float64 inside
    :func:`jaxhpo.gp._precision.scope`) is fitted to the standardized values; the observation
    buffer is padded to a multiple of 64 rows with a mask, so runs of similar size share one
    compilation. With ``A, B ~ U[0, 1]^(N x d)`` and ``A_B^i`` = ``A`` with column ``i`` from
    ``B``, ``S_i = mean(f(B) (f(A_B^i) - f(A))) / Var(f(A), f(B))`` (Saltelli et al. 2010,
    Table 2 (b)); its Monte Carlo standard error is about ``sqrt(Var(f) / N) / sqrt(V)``,
    below 0.01 for ``N = 16384`` on smooth functions.

    Args:
      x: ``f[n, d]`` unit-cube points (bins snapped, inactive coordinates redrawn);
      y: ``f[n]`` values; sp: the space; num_samples: ``N``; seed: the fit's and samples' key.
    """
    from jaxhpo.gp import InputSpec

    n, d = x.shape
    cap = 64 * math.ceil(n / 64)
    xb = np.full((cap, d), 0.5, np.float32)
    yb = np.zeros(cap, np.float32)
    xb[:n], yb[:n] = x, y
    mask = np.arange(cap) < n
    spec = InputSpec.from_space(sp)
    from jaxhpo.gp import _precision as precision

    with precision.scope(True):
        s = _sobol_first_order(jax.random.key(seed), jnp.asarray(xb), jnp.asarray(yb),
                               jnp.asarray(mask), spec, num_samples)
    return np.asarray(s, np.float64)


@partial(jax.jit, static_argnames=("spec", "num_samples"))
def _sobol_first_order(key, x, y, mask, spec, num_samples):
    """Fit, factor, and estimate ``S_i`` for every coordinate (one compiled program)."""
    from jaxhpo import gp

    ft = jnp.result_type(float)  # float64 inside precision.scope
    d = x.shape[1]
    k_fit, k_a, k_b = jax.random.split(key, 3)
    x, y = x.astype(ft), y.astype(ft)
    starts = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]),
                          gp.GPParams.default(d, ft),
                          gp.sample_prior(k_fit, d, GP_RESTARTS - 1, ft))
    params = gp.fit(x, y, mask, spec, starts, num_steps=GP_FIT_STEPS)
    post = gp.posterior(params, x, y, mask, spec)

    def mean(q):  # posterior mean (standardized units: Sobol indices are scale-free)
        return gp.cross_cov(post, q) @ post.alpha

    a = jax.random.uniform(k_a, (num_samples, d), ft)
    b = jax.random.uniform(k_b, (num_samples, d), ft)
    f_a, f_b = mean(a), mean(b)
    var = jnp.var(jnp.concatenate([f_a, f_b]))

    def first_order(i):
        f_ab = mean(jnp.where(jnp.arange(d) == i, b, a))
        return jnp.mean(f_b * (f_ab - f_a))

    v_i = jax.lax.map(first_order, jnp.arange(d))
    return jnp.where(var > 0, v_i / jnp.where(var > 0, var, 1.0), 0.0)
