"""Plots that explain a study: objective contours over pairs of parameters, hyperparameter
importance, the empirical distribution of objective values, and the slot timeline of a
``tune`` run."""

from __future__ import annotations

import numpy as np

from jaxhpo._history import OK, STOPPED
from jaxhpo._space import Categorical, Int
from jaxhpo.plot._inputs import as_run, mpl, objective_index, ok_trials, values_of
from jaxhpo.plot._trials import _fig_ax, _per_param, log_axis, unit_to_value

MAX_LABEL = 10  # characters of a categorical tick label before it is shortened


def short_label(c) -> str:
    """A categorical choice as a tick label of at most ``MAX_LABEL`` characters."""
    s = str(c)
    return s if len(s) <= MAX_LABEL else s[:MAX_LABEL - 1] + "\u2026"


# ---------------------------------------------------------------------------- contour
def _axis_grid(p, resolution: int) -> np.ndarray:
    """Unit-cube grid of one parameter: bin centres for categoricals and small integers."""
    if isinstance(p, Categorical):
        k = len(p.choices)
        return (np.arange(k) + 0.5) / k
    if isinstance(p, Int) and p.num_values <= resolution:
        k = p.num_values
        return (np.arange(k) + 0.5) / k
    return np.linspace(0.0, 1.0, resolution)


def _display(p, u: np.ndarray) -> np.ndarray:
    """Where unit coordinates ``u`` are drawn: the value (ints rounded as decoded), or the
    choice index of a categorical."""
    v = unit_to_value(p, u)
    if isinstance(p, Int):
        v = np.clip(np.floor(v + 0.5), p.low, p.high)
    return v


def interpolate(points: np.ndarray, values: np.ndarray, query: np.ndarray,
                categorical: np.ndarray, power: float = 2.0) -> np.ndarray:
    """Inverse-distance-weighted interpolation (Shepard 1968) in the unit cube.

    Args:
      points: ``f[n, k]`` unit coordinates of the trials; values: ``f[n]``.
      query: ``f[q, k]`` where to interpolate.
      categorical: ``bool[k]``: these coordinates count as distance 1 between different
        choices (bins), 0 within one.
      power: the weights are ``1 / distance^power``.

    Returns:
      ``f[q]``; a query point on a trial takes exactly that trial's value.
    """
    diff = np.abs(query[:, None, :] - points[None, :, :])
    diff = np.where(categorical, (diff > 1e-9).astype(np.float64), diff)
    d2 = np.sum(diff * diff, axis=-1)
    hit = d2 < 1e-18
    w = 1.0 / np.maximum(d2, 1e-18) ** (power / 2)
    z = (w @ values) / w.sum(axis=1)
    if hit.any():
        rows = hit.any(axis=1)
        z[rows] = (hit[rows] @ values) / hit[rows].sum(axis=1)
    return z


def contour(run, params=None, *, objective=0, fig=None, space=None, resolution: int = 40,
            cmap: str = "viridis", levels: int = 12):
    """Objective over pairs of parameters, interpolated from the completed trials.

    Each panel shows one pair: the objective interpolated on a grid by inverse-distance
    weighting in the unit cube (:func:`interpolate`: it passes through every trial), filled
    contours for two numerical parameters and cells for categoricals or integers with few
    values, and the trials as black dots (only trials where both parameters were active).
    Axes follow the space: log scale for ``log=True`` parameters, choices as ticks for
    categoricals. Two parameters give one panel; more give the lower triangle of a grid of
    all pairs (Optuna's layout), sharing axes by row and column and one colour scale.

    Args:
      run: a Result, TuneResult, journal path, or a History with ``space=``.
      params: two or more parameter names (default: every parameter of the space).
      objective: which objective (index or name).
      fig: draw into this Figure (default: a new one).
      space: the search space (needed with a bare History).
      resolution: grid points per numerical axis.
      cmap: matplotlib colormap; its best end is the run's best value.
      levels: number of contour levels.

    Returns:
      The Figure. ``fig.jaxhpo_panels`` maps ``(x name, y name)`` to its Axes; in each,
      the trials are the last collection (``ax.collections[-1]``, offsets at the values).
    """
    matplotlib, Figure = mpl()
    sp, h, names, j, trials, vals = _per_param(run, space, params, objective, "contour")
    if len(names) < 2:
        raise ValueError(f"contour needs at least two parameters, got params={names}")
    sign = 1.0 if h.directions[j] == "minimize" else -1.0
    colormap = matplotlib.colormaps[cmap]
    colormap = colormap.reversed() if sign > 0 else colormap  # best end: bright
    norm = matplotlib.colors.Normalize(float(vals.min()), float(vals.max()))
    n = len(names) - 1
    if fig is None:
        size = 4.6 if n == 1 else max(2.6, 9.0 / n)
        fig = Figure(figsize=(size * n + 1.2, size * n), layout="constrained")
    axes = fig.subplots(n, n, squeeze=False, sharex="col" if n > 1 else False,
                        sharey="row" if n > 1 else False)
    panels = {}
    mappable = None
    for r in range(n):
        for c in range(n):
            ax = axes[r, c]
            if c > r:
                ax.set_visible(False)
                continue
            xp, yp = names[c], names[r + 1]
            mappable = _contour_panel(ax, sp, trials, vals, xp, yp, resolution, colormap, norm,
                                      levels)
            panels[(xp, yp)] = ax
            if r == n - 1:
                ax.set_xlabel(xp)
            elif n > 1:
                ax.tick_params(labelbottom=False)
            if c == 0:
                ax.set_ylabel(yp)
            elif n > 1:
                ax.tick_params(labelleft=False)
    oname = h.objectives[j] if j < len(h.objectives) else f"objective {j}"
    fig.colorbar(mappable, ax=axes.ravel().tolist(), label=f"{oname} ({h.directions[j]})")
    fig.suptitle(f"{oname} over pairs of parameters ({len(trials)} completed trials)")
    fig.jaxhpo_panels = panels
    return fig


def _contour_panel(ax, sp, trials, vals, xp, yp, resolution, colormap, norm, levels):
    px, py = sp[xp], sp[yp]
    cx, cy = sp.names.index(xp), sp.names.index(yp)
    both = np.array([xp in t.params and yp in t.params for t in trials])
    pts = np.array([[t.x[cx], t.x[cy]] for t in trials], np.float64)[both]
    v = vals[both]
    gx, gy = _axis_grid(px, resolution), _axis_grid(py, resolution)
    ux, uy = np.meshgrid(gx, gy)
    cat = np.array([isinstance(px, Categorical), isinstance(py, Categorical)])
    mappable = None
    if len(v):
        # categorical trials sit at their bin centres, as the grid
        snapped = pts.copy()
        for a, p in enumerate((px, py)):
            if isinstance(p, Categorical):
                k = len(p.choices)
                snapped[:, a] = (np.clip(np.floor(pts[:, a] * k), 0, k - 1) + 0.5) / k
        z = interpolate(snapped, v, np.stack([ux.ravel(), uy.ravel()], 1), cat).reshape(ux.shape)
        for a, (p, grid) in enumerate(((px, ux), (py, uy))):
            if isinstance(p, Categorical):  # a choice no trial of this pair took: blank
                seen = np.isin(np.round(grid, 9), np.round(snapped[:, a], 9))
                z = np.where(seen, z, np.nan)
        z = np.ma.masked_invalid(z)
        dx, dy = _display(px, ux), _display(py, uy)
        cells = len(gx) < resolution or len(gy) < resolution
        if cells:
            mappable = ax.pcolormesh(dx, dy, z, cmap=colormap, norm=norm, shading="nearest")
        else:
            mappable = ax.contourf(dx, dy, z, levels=np.linspace(norm.vmin, norm.vmax,
                                                                 levels + 1),
                                   cmap=colormap, norm=norm, extend="neither")
    rng = np.random.default_rng(0)
    sx, sy = _display(px, pts[:, 0]), _display(py, pts[:, 1])
    for a, p in ((0, px), (1, py)):
        if isinstance(p, Categorical):
            jit = rng.uniform(-0.15, 0.15, len(pts))
            if a == 0:
                sx = sx + jit
            else:
                sy = sy + jit
    ax.scatter(sx, sy, s=8, color="black", alpha=0.7, linewidths=0, zorder=3)
    for axis, p in ((ax.xaxis, px), (ax.yaxis, py)):
        _scale_axis(ax, axis, p)
    if mappable is None:
        mappable = _scalar_mappable(colormap, norm)
    return mappable


def _scalar_mappable(colormap, norm):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=colormap)


def _scale_axis(ax, axis, p):
    """Log scale for log parameters, choices as ticks for categoricals."""
    if isinstance(p, Categorical):
        k = len(p.choices)
        ticks, labels = range(k), [short_label(c) for c in p.choices]
        if axis is ax.xaxis:
            ax.set_xticks(ticks, labels)
        else:
            ax.set_yticks(ticks, labels)
    elif p.log:
        (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        log_axis(axis)
    else:
        from matplotlib.ticker import MaxNLocator

        axis.set_major_locator(MaxNLocator(5, integer=isinstance(p, Int)))


# ---------------------------------------------------------------------------- importance
def importance(run, method: str = "ped_anova", *, params=None, objective=0, ax=None,
               space=None, **kwargs):
    """Hyperparameter importance as a horizontal bar chart, the most important on top.

    Args:
      run: a Result, TuneResult, journal path, or a History with ``space=``.
      method: ``"fanova"``, ``"ped_anova"`` or ``"gp_sobol"`` (see :func:`jaxhpo.importance`).
      params: parameters to show (default all).
      objective: which objective (index or name).
      ax: draw into this Axes (default: a new Figure).
      space: the search space (needed with a bare History).
      **kwargs: passed to :func:`jaxhpo.importance` (``seed``, ``quantile``, ...).

    Returns:
      The Figure; the bars are ``ax.patches`` (top to bottom), their widths
      ``jaxhpo.importance(run, method, ...)``'s normalized values.
    """
    from jaxhpo.importance import importance as compute

    imp = compute(run, method, params=params, objective=objective, space=space, **kwargs)
    names, vals = list(imp), np.array(list(imp.values()))
    fig, ax = _fig_ax(ax, (6, 0.45 * len(names) + 1.4))
    y = np.arange(len(names))[::-1]
    ax.barh(y, vals, color="C0", height=0.7)
    ax.set_yticks(y, [short_label(n) for n in names])
    for yy, v in zip(y, vals):
        ax.annotate(f"{v:.2f}", (v, yy), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize="small")
    ax.set_xlim(0, max(1e-9, float(vals.max())) * 1.18)
    ax.set_xlabel("importance (normalized to sum 1)")
    label = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA", "gp_sobol": "GP-Sobol"}[method]
    ax.set_title(f"hyperparameter importance ({label})")
    return fig


# ---------------------------------------------------------------------------- EDF
def edf(runs, *, labels=None, objective=0, ax=None, log: bool = False):
    """Empirical distribution function of the objective values (Optuna's EDF plot).

    For each run, the fraction of its completed trials whose value is at most ``v``, against
    ``v``: a curve to the left (minimize) or right (maximize) found good values more often.

    Args:
      runs: a Result, TuneResult, History or journal path, a list of them, or a dict
        ``{label: run}``.
      labels: one label per run (default: ``"run 0"``, ...; the keys of a dict).
      objective: which objective (index or name).
      ax: draw into this Axes (default: a new Figure).
      log: logarithmic value axis.

    Returns:
      The Figure; one step line per run (``ax.lines[i]``, label = its label) through
      ``(sorted values, [1/n, 2/n, ..., 1])``.
    """
    if isinstance(runs, dict):
        labels = list(runs) if labels is None else labels
        runs = list(runs.values())
    elif not isinstance(runs, (list, tuple)):
        runs = [runs]
    labels = [f"run {i}" for i in range(len(runs))] if labels is None else list(labels)
    if len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} runs")
    fig, ax = _fig_ax(ax, (6, 4))
    name = direction = None
    for run, label in zip(runs, labels):
        h = as_run(run).history
        j = objective_index(h, objective)
        v = np.sort(values_of(h, ok_trials(h), j))
        if not len(v):
            raise ValueError(f"run {label!r} has no completed trial")
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=str(label))
        name = h.objectives[j] if j < len(h.objectives) else f"objective {j}"
        direction = h.directions[j]
    if log:
        ax.set_xscale("log")
        log_axis(ax.xaxis)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{name} ({direction})")
    ax.set_ylabel("fraction of trials <= value")
    ax.set_title("empirical distribution of objective values")
    ax.legend(loc="best", fontsize="small")
    return fig


# ---------------------------------------------------------------------------- timeline
OUTCOMES = {  # segment outcome -> (legend label, colour)
    "completed": ("completed (full budget)", "C2"),
    "stopped": ("stopped by the scheduler", "C1"),
    "paused": ("paused at a rung", "0.65"),
    "exploited": ("PBT exploit (weights replaced)", "C4"),
    "failed": ("failed / diverged", "C3"),
}


def timeline_segments(history) -> list[dict]:
    """``[{trial, slot, start, end, outcome, promoted}]`` of a run, times in seconds since
    its first start.

    Uses ``Trial.segments`` (recorded by the ``tune`` slot engine). Trials without them
    (``minimize``, Python ``tune``, older journals) become one segment from ``timestamp -
    wall_time`` to ``timestamp`` on the first lane free at its start (greedy interval
    colouring), so the lanes are the most parallel work the records allow.
    """
    out = []
    for t in history:
        final = {OK: "completed", STOPPED: "stopped"}.get(t.status, "failed")
        if t.segments:
            for k, (slot, start, end, how) in enumerate(t.segments):
                last = k == len(t.segments) - 1
                outcome = final if last else ("exploited" if how == "exploited" else "paused")
                if last and how == "paused":  # parked at a rung and never promoted
                    outcome = "stopped" if t.status != OK else "completed"
                out.append(dict(trial=t.number, slot=int(slot), start=float(start),
                                end=float(end if end is not None else start), outcome=outcome,
                                promoted=k > 0 and t.segments[k - 1][3] == "paused"))
        else:
            out.append(dict(trial=t.number, slot=None, start=t.timestamp - t.wall_time,
                            end=t.timestamp, outcome=final, promoted=False))
    free = []  # greedy lanes for trials without a recorded slot
    for s in sorted((s for s in out if s["slot"] is None), key=lambda s: (s["start"], s["trial"])):
        lane = next((i for i, e in enumerate(free) if e <= s["start"] + 1e-9), len(free))
        if lane == len(free):
            free.append(0.0)
        free[lane] = s["end"]
        s["slot"] = lane
    if out:
        t0 = min(s["start"] for s in out)
        for s in out:
            s["start"] -= t0
            s["end"] -= t0
    return out


def timeline(run, *, ax=None, space=None):
    """Which trial ran on which slot, and when: one bar per stretch a trial trained in a slot.

    For a ``jaxhpo.tune`` run on a population, the slot engine records each trial's stretches
    (``Trial.segments``): a trial paused at a rung and promoted later is two bars (the second
    hatched, possibly on another slot), a PBT member whose weights were replaced by a better
    member's ends a bar there. Colours give how each stretch ended: completed, stopped by the
    scheduler, paused, exploited (PBT), failed. Other runs are drawn from their trials' end
    times and durations (see :func:`timeline_segments`).

    Args:
      run: a TuneResult, a History or a journal path.
      ax: draw into this Axes (default: a new Figure).
      space: unused.

    Returns:
      The Figure; ``ax.containers`` holds one BarContainer per outcome present, labelled as
      in ``OUTCOMES``.
    """
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    h = as_run(run, space).history
    segs = timeline_segments(h)
    if not segs:
        raise ValueError("no trials to draw")
    slots = max(s["slot"] for s in segs) + 1
    fig, ax = _fig_ax(ax, (8, max(2.5, min(8.0, 0.28 * slots + 1.6))))
    for key, (label, color) in OUTCOMES.items():
        mine = [s for s in segs if s["outcome"] == key]
        if not mine:
            continue
        bars = ax.barh([s["slot"] for s in mine], [max(s["end"] - s["start"], 1e-6)
                                                 for s in mine],
                       left=[s["start"] for s in mine], height=0.8, color=color,
                       edgecolor="white", linewidth=0.5, label=label)
        for b, s in zip(bars, mine):
            if s["promoted"]:
                b.set_hatch("///")
                b.set_edgecolor("black")
    handles, names = ax.get_legend_handles_labels()
    if any(s["promoted"] for s in segs):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///"))
        names.append("promoted (resumed after a pause)")
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.legend(handles, names, loc="outside lower center", ncols=3, fontsize="small",
                   frameon=False)
    else:
        ax.legend(handles, names, loc="best", fontsize="small")
    ax.yaxis.set_major_locator(MaxNLocator(min(slots, 8), integer=True))
    ax.set_ylim(slots - 0.5, -0.5)
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("slot")
    n = len({s["trial"] for s in segs})
    ax.set_title(f"timeline: {n} trials on {slots} slots")
    return fig
