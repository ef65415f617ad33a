"""Plots of the trials of one run: optimization history, parallel coordinates, slices, Pareto.

Each takes a :class:`jaxhpo.Result`, :class:`jaxhpo.TuneResult`, :class:`jaxhpo.History` (with
``space=`` where the plot needs one) or a journal path, draws with matplotlib's object API (no
``pyplot`` state, nothing shown) and returns the ``Figure``.
"""

from __future__ import annotations

import math

import numpy as np

from jaxhpo._history import DIVERGED, FAILED, OK, STOPPED, pareto_mask
from jaxhpo._space import Categorical, Float, Int
from jaxhpo._validate import check_params
from jaxhpo.plot._inputs import (as_run, mpl, need_space, objective_index, ok_trials,
                                 values_of)


INACTIVE_Y = -0.1  # parallel coordinates: where a trial's inactive parameters are drawn


def _fig_ax(ax, figsize):
    _, Figure = mpl()
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    return ax.figure, ax


def _grid(fig, n, ncols):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for a in axes[n:]:
        a.set_visible(False)
    return axes[:n]


def unit_to_value(p, u):
    """Value of parameter ``p`` at unit coordinate(s) ``u`` (continuous; ints not rounded)."""
    u = np.asarray(u, np.float64)
    if isinstance(p, Categorical):
        return np.floor(u * len(p.choices))
    lo, hi = (p.low, p.high) if isinstance(p, Float) else (p.low - 0.5, p.high + 0.5)
    if p.log:
        return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    return lo + u * (hi - lo)


def _fmt(v) -> str:
    return f"{v:.3g}"


def short_number(v: float) -> str:
    """A tick label of at most 6 characters: ``0.001``, ``0.02``, ``500``, ``2e-05``..."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    e = math.floor(math.log10(abs(v)) + 1e-9)
    if -3 <= e <= 3:
        return f"{v:.4g}"
    m = v / 10.0 ** e
    return f"{m:.2g}e{e}"


def log_ticks(vmin: float, vmax: float) -> np.ndarray:
    """Major ticks of a log axis over ``[vmin, vmax]``: ``1, 2, 5 x 10^k`` on short ranges,
    ``1, 3 x 10^k`` up to 2.5 decades, then every ``ceil(decades / 5)``-th decade, so a
    panel of the default size never carries more than about 6 labels."""
    if not (vmin > 0 and vmax > vmin and math.isfinite(vmax)):
        return np.array([])
    decades = math.log10(vmax / vmin)
    if decades < 0.5:
        subs, stride = (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9), 1
    elif decades < 1.3:
        subs, stride = (1, 2, 5), 1
    elif decades < 2.5:
        subs, stride = (1, 3), 1
    else:
        subs, stride = (1,), max(1, math.ceil(decades / 5))
    lo, hi = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
    ticks = [s * 10.0 ** k for k in range(lo, hi + 1) if (k - lo) % stride == 0 for s in subs]
    ticks = np.array([t for t in ticks if vmin * (1 - 1e-9) <= t <= vmax * (1 + 1e-9)])
    if decades < 0.5 and len(ticks) > 5:  # a narrow range: thin the linear-like ticks
        ticks = ticks[::math.ceil(len(ticks) / 5)]
    if len(ticks) < 2:  # less than one tick inside: the ends
        ticks = np.array([vmin, vmax])
    return ticks


def log_axis(axis):
    """On an axis already in log scale: at most about 6 short labels (``1e-4``, ``0.001``,
    ``0.01``; ``20, 50, 100`` on short ranges), never minor labels."""
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter, NullLocator

    class _LogTicks(Locator):
        def __call__(self):
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):
            vmin, vmax = sorted((vmin, vmax))
            return log_ticks(vmin, vmax)

    axis.set_major_locator(_LogTicks())
    axis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


# ---------------------------------------------------------------------------- history
def history(run, *, objective=0, log: bool = False, ax=None, space=None):
    """Every trial's objective value and the best-so-far line, in completion order.

    Args:
      run: a Result, TuneResult, History or journal path.
      objective: which objective (index or name) for multi-objective runs.
      log: logarithmic value axis.
      ax: draw into this matplotlib Axes (default: a new Figure).
      space: unused; accepted so every plot takes the same arguments.

    Returns:
      The matplotlib Figure. The best-so-far line (label ``"best so far"``) is the running best
      of the ``ok`` trials in the run's direction; ``stopped`` trials (partial budget, from
      schedulers) are drawn grey; ``failed``/``diverged`` trials as red crosses on the bottom
      edge.
    """
    view = as_run(run, space)
    h = view.history
    j = objective_index(h, objective)
    sign = 1.0 if h.directions[j] == "minimize" else -1.0
    fig, ax = _fig_ax(ax, (7, 4))
    pos = np.arange(1, len(h) + 1)
    vals = values_of(h, h.trials, j)
    status = np.array([t.status for t in h.trials])
    good = (status == OK) & np.isfinite(vals)
    run_best = np.minimum.accumulate(np.where(good, sign * vals, np.inf)) if len(h) else vals
    best = np.where(np.isfinite(run_best), sign * run_best, np.nan)
    stopped = (status == STOPPED) & np.isfinite(vals)
    bad = (status == FAILED) | (status == DIVERGED) | ((status == OK) & ~np.isfinite(vals))
    ax.scatter(pos[good], vals[good], s=14, color="C0", alpha=0.7, label="trial", zorder=2)
    if stopped.any():
        ax.scatter(pos[stopped], vals[stopped], s=10, color="0.65", alpha=0.7,
                   label="stopped early (partial budget)", zorder=1)
    ax.step(pos, best, where="post", color="C3", lw=2, label="best so far", zorder=3)
    if bad.any():
        ax.scatter(pos[bad], np.full(bad.sum(), 0.02), marker="x", color="red",
                   transform=ax.get_xaxis_transform(), clip_on=False,
                   label=f"failed / diverged ({int(bad.sum())})", zorder=4)
    if log:
        ax.set_yscale("log")
    name = h.objectives[j] if j < len(h.objectives) else f"objective {j}"
    ax.set_xlabel("trial (completion order)")
    ax.set_ylabel(f"{name} ({h.directions[j]})")
    ax.set_title("optimization history")
    ax.legend(loc="best", fontsize="small")
    return fig


# ---------------------------------------------------------------------------- parallel coordinates
def parallel_coordinates(run, *, params=None, objective=0, ax=None, space=None, cmap="viridis"):
    """Parallel coordinates of the completed trials, coloured by the objective.

    Each parameter is a vertical axis over its unit-cube coordinate, so a ``log=True`` parameter
    is on a log scale (ticks show the values), an integer on its bins and a categorical shows
    its choices at their bins' centres; an inactive conditional parameter sits at
    ``INACTIVE_Y`` (-0.1, below the axis, labelled "inactive"). The last
    axis is the objective (min to max). Better trials are drawn on top.

    Args:
      run: a Result, TuneResult, journal path, or a History with ``space=``.
      params: names of the parameters to show (default: all, in the space's order).
      objective: which objective (index or name) colours the lines.
      ax: draw into this Axes (default: a new Figure).
      space: the search space (needed with a bare History).
      cmap: matplotlib colormap name; the best end of it is the run's best.

    Returns:
      The Figure; the lines are ``ax.collections[0]`` (a LineCollection, one row per trial).
    """
    matplotlib, _ = mpl()
    from matplotlib.collections import LineCollection

    sp, h, names, j, trials, vals = _per_param(run, space, params, objective,
                                               "parallel_coordinates")
    sign = 1.0 if h.directions[j] == "minimize" else -1.0
    order = np.argsort(-sign * vals, kind="stable")  # worst first, best drawn last
    trials, vals = [trials[i] for i in order], vals[order]
    cols = [sp.names.index(n) for n in names]
    x = np.array([[t.x[c] for c in cols] for t in trials], np.float64)
    inactive = np.array([[n in t.inactive for n in names] for t in trials])
    x[inactive] = INACTIVE_Y
    lo, hi = float(vals.min()), float(vals.max())
    vnorm = (vals - lo) / (hi - lo) if hi > lo else np.full_like(vals, 0.5)
    ys = np.concatenate([x, vnorm[:, None]], axis=1)
    k = ys.shape[1]
    fig, ax = _fig_ax(ax, (max(6, 1.4 * k), 4.5))
    segs = [np.stack([np.arange(k), y], axis=1) for y in ys]
    colormap = matplotlib.colormaps[cmap]
    cnorm = matplotlib.colors.Normalize(lo, hi)
    lc = LineCollection(segs, cmap=colormap if sign < 0 else colormap.reversed(), norm=cnorm,
                        linewidths=1.0, alpha=0.6)
    lc.set_array(vals)
    ax.add_collection(lc)
    for a in range(k):
        ax.axvline(a, color="0.3", lw=0.8)
    for a, n in enumerate(names):
        p = sp[n]
        if isinstance(p, Categorical):
            kk = len(p.choices)
            ticks = [(c + 0.5) / kk for c in range(kk)]
            labels = [str(c) for c in p.choices]
        else:
            ticks = np.linspace(0.0, 1.0, 5)
            vv = unit_to_value(p, ticks)
            if isinstance(p, Int):  # the integer owning the bin, as Space.decode rounds
                vv = np.clip(np.floor(vv + 0.5), p.low, p.high)
            labels = [_fmt(v) for v in vv]
        if inactive[:, a].any():
            ticks, labels = [*ticks, INACTIVE_Y], [*labels, "inactive"]
        for t_, lab in zip(ticks, labels):
            ax.annotate(lab, (a, t_), xytext=(3, 0), textcoords="offset points",
                        fontsize="x-small", va="center", gid=f"tick:{n}")
    for t_ in np.linspace(0.0, 1.0, 5):
        ax.annotate(_fmt(lo + t_ * (hi - lo)), (k - 1, t_), xytext=(3, 0),
                    textcoords="offset points", fontsize="x-small", va="center",
                    gid="tick:objective")
    oname = h.objectives[j] if j < len(h.objectives) else f"objective {j}"
    ax.set_xticks(range(k), [*names, oname])
    ax.set_yticks([])
    ax.set_xlim(-0.2, k - 0.6)
    ax.set_ylim(INACTIVE_Y - 0.04 if inactive.any() else -0.03, 1.03)
    ax.set_title(f"parallel coordinates ({len(trials)} completed trials)")
    fig.colorbar(lc, ax=ax, label=f"{oname} ({h.directions[j]})")
    return fig


# ---------------------------------------------------------------------------- slices
def _per_param(run, space, params, objective, plot_name):
    """What the per-parameter plots share: the space, history, parameter names, objective
    index, completed trials and their values (``ValueError`` when nothing completed)."""
    view = as_run(run, space)
    sp = need_space(view, plot_name)
    h = view.history
    names = list(sp.names) if params is None else check_params(sp, params)
    j = objective_index(h, objective)
    trials = ok_trials(h)
    if not trials:
        raise ValueError("no completed trial to plot")
    return sp, h, names, j, trials, values_of(h, trials, j)


def slices(run, *, params=None, objective=0, fig=None, space=None, ncols: int = 3,
           log: bool = False):
    """Objective against each parameter, one panel per parameter (Optuna's slice plot).

    Floats and ints are plotted at their values (log axes for ``log=True`` parameters),
    categoricals at their choice index with jitter and the choices as tick labels. Only
    trials in which the parameter was active appear in its panel. Colour = trial order.

    Args:
      run: a Result, TuneResult, journal path, or a History with ``space=``.
      params: parameters to show (default all).
      objective: which objective (index or name).
      fig: draw into this Figure (default: a new one).
      space: the search space (needed with a bare History).
      ncols: panels per row.
      log: logarithmic objective axis.

    Returns:
      The Figure; panel ``i`` holds one scatter (``ax.collections[0]``) of parameter ``i``.
    """
    _, Figure = mpl()
    sp, h, names, j, trials, vals = _per_param(run, space, params, objective, "slices")
    order = np.arange(len(trials))
    if fig is None:
        n = len(names)
        c = max(1, min(ncols, n))
        fig = Figure(figsize=(3.2 * c, 2.8 * math.ceil(n / c)), layout="constrained")
    axes = _grid(fig, len(names), ncols)
    rng = np.random.default_rng(0)
    sc = None
    for a, n in zip(axes, names):
        p = sp[n]
        use = np.array([n in t.params for t in trials])
        if isinstance(p, Categorical):
            xs = np.array([p.choices.index(t.params[n]) if n in t.params else -1
                           for t in trials], np.float64)
            xs = xs + rng.uniform(-0.15, 0.15, xs.shape)
            a.set_xticks(range(len(p.choices)), [str(c) for c in p.choices])
        else:
            xs = np.array([float(t.params.get(n, np.nan)) for t in trials])
            if p.log:
                a.set_xscale("log")
                log_axis(a.xaxis)
        sc = a.scatter(xs[use], vals[use], c=order[use], cmap="viridis", s=12,
                       vmin=0, vmax=max(1, len(trials) - 1))
        a.set_xlabel(n)
        if log:
            a.set_yscale("log")
    oname = h.objectives[j] if j < len(h.objectives) else f"objective {j}"
    axes[0].set_ylabel(oname)
    if sc is not None:
        fig.colorbar(sc, ax=list(axes), label="trial (completion order)")
    fig.suptitle(f"{oname} ({h.directions[j]}) against each parameter")
    return fig


# ---------------------------------------------------------------------------- Pareto
def pareto(run, *, objectives=None, pairwise: bool = False, fig=None, space=None):
    """The completed trials of a multi-objective run, the Pareto front highlighted.

    Dominated trials are grey, non-dominated ones coloured and (for two objectives) joined by
    the front's staircase. Non-domination is over all the run's objectives (``pareto_mask`` of
    the values oriented for minimization), so a pairwise panel of three objectives can show
    front points that look dominated in that projection.

    Args:
      run: a Result, TuneResult, History or journal path of a run with >= 2 objectives.
      objectives: two names/indices to plot (default: the first two); for more, use
        ``pairwise=True``.
      pairwise: with 3 or more objectives, one panel per pair.
      fig: draw into this Figure (default: a new one).
      space: unused.

    Returns:
      The Figure; in each panel ``ax.collections[0]`` are the dominated trials and
      ``ax.collections[1]`` the front, in the user's direction.
    """
    _, Figure = mpl()
    view = as_run(run, space)
    h = view.history
    m = len(h.directions)
    if m < 2:
        raise ValueError("pareto needs a multi-objective run (metric=[...] with 2 or more "
                         "objectives); for one objective use jaxhpo.plot.history")
    if objectives is None:
        if m > 2 and not pairwise:
            raise ValueError(f"the run has {m} objectives: pass pairwise=True for one panel per "
                             "pair, or objectives=[a, b] for one pair")
        cols = list(range(m)) if pairwise else [0, 1]
    else:
        cols = [objective_index(h, o) for o in objectives]
        if len(cols) < 2 or len(set(cols)) != len(cols):
            raise ValueError(f"objectives must name at least two different objectives, got "
                             f"{objectives!r}")
    trials = ok_trials(h)
    if not trials:
        raise ValueError("no completed trial to plot")
    vals = np.array([t.values for t in trials], np.float64)
    front = pareto_mask(h.minimization_values(trials))
    pairs = [(a, b) for i, a in enumerate(cols) for b in cols[i + 1:]]
    if fig is None:
        c = min(3, len(pairs))
        fig = Figure(figsize=(4.5 * c, 4.0 * math.ceil(len(pairs) / c)), layout="constrained")
    axes = _grid(fig, len(pairs), 3)
    name = lambda i: h.objectives[i] if i < len(h.objectives) else f"objective {i}"
    for ax, (a, b) in zip(axes, pairs):
        ax.scatter(vals[~front, a], vals[~front, b], s=12, color="0.7", label="dominated")
        ax.scatter(vals[front, a], vals[front, b], s=22, color="C3", zorder=3,
                   label=f"Pareto front ({int(front.sum())})")
        if len(cols) == 2:
            f = vals[front][np.argsort(vals[front, a])]
            # the boundary of the dominated region: it lies right of the points when the
            # x objective is minimized (hold y until the next point), left when maximized
            where = "post" if h.directions[a] == "minimize" else "pre"
            ax.step(f[:, a], f[:, b], where=where, color="C3", lw=1, alpha=0.6)
        ax.set_xlabel(f"{name(a)} ({h.directions[a]})")
        ax.set_ylabel(f"{name(b)} ({h.directions[b]})")
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"{len(trials)} completed trials")
    return fig
