"""Plots across runs and through time: regret curves from benchmark JSON, learning curves with
scheduler rungs, PBT hyperparameter schedules."""

from __future__ import annotations

import math

import numpy as np

from jaxhpo._history import DIVERGED, FAILED, OK, STOPPED
from jaxhpo._space import Categorical
from jaxhpo.plot._inputs import as_run, mpl, need_space, read_benchmark, regret_bands
from jaxhpo._validate import check_params
from jaxhpo.plot._trials import _fig_ax, _grid, log_axis


# ---------------------------------------------------------------------------- regret
def regret(results, *, functions=None, strategies=None, log: bool = True, fig=None,
           ncols: int = 3):
    """Regret against evaluations, median line and quartile band per strategy, one panel per
    test function, from ``benchmarks/quality.py`` results.

    Args:
      results: a quality JSON path, its loaded dict, or a list of them (merged; a later file's
        strategy replaces an earlier one's on the same function).
      functions: functions to show (default all in the file, in its order).
      strategies: strategies to show (default all).
      log: logarithmic regret axis (regrets <= 0 from float rounding are masked there).
      fig: draw into this Figure.
      ncols: panels per row.

    Returns:
      The Figure. In each panel, the line labelled with a strategy's name holds its median
      regret: ``numpy.median`` over seeds of the per-seed curves when the file has them
      (``entry["curve"]``), else the stored median at each checkpoint.
    """
    matplotlib, Figure = mpl()
    from matplotlib.lines import Line2D

    data = read_benchmark(results)
    fns = list(data) if functions is None else list(functions)
    missing = [f for f in fns if f not in data]
    if missing or not fns:
        raise ValueError(f"functions {missing or fns} not in the results {list(data)}")
    if fig is None:
        c = max(1, min(ncols, len(fns)))
        fig = Figure(figsize=(4.5 * c + 2, 3.6 * math.ceil(len(fns) / c)),
                     layout="constrained")
    axes = _grid(fig, len(fns), ncols)
    every = list(dict.fromkeys(s for fn in fns for s in data[fn]
                               if strategies is None or s in strategies))
    palette = matplotlib.colormaps["tab10" if len(every) <= 10 else "tab20"]
    color = {s: palette(k % palette.N) for k, s in enumerate(every)}  # same in every panel
    for ax, fn in zip(axes, fns):
        names = [s for s in data[fn] if strategies is None or s in strategies]
        if strategies is not None and not names:
            raise ValueError(f"none of strategies {list(strategies)} ran on {fn!r}; it has "
                             f"{list(data[fn])}")
        for name in names:
            ev, med, q25, q75 = regret_bands(data[fn][name])
            ax.plot(ev, med, color=color[name], label=name,
                    marker="o" if len(ev) <= 8 else None, ms=3)
            ax.fill_between(ev, q25, q75, color=color[name], alpha=0.18, lw=0)
        if log:
            ax.set_yscale("log", nonpositive="mask")
        ax.set_title(fn)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (median, q25-q75)")
    handles = [Line2D([], [], color=color[s], label=s) for s in every]
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    outside = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    fig.legend(handles=handles, loc="outside right upper" if outside else "upper right",
               fontsize="small")
    return fig


# ---------------------------------------------------------------------------- learning curves
def _curve_xy(curve, fidelity):
    """A TuneResult curve -> ``(steps, values)``: ``[[step, value], ...]`` (Python objectives)
    or one value per round of ``fidelity / len(curve)`` steps (the Trainer engine)."""
    if not curve:
        return np.zeros(0), np.zeros(0)
    if isinstance(curve[0], (list, tuple)):
        a = np.array(curve, np.float64)
        return a[:, 0], a[:, 1]
    v = np.array([np.nan if c is None else c for c in curve], np.float64)
    every = (fidelity or len(v)) / len(v)
    return every * np.arange(1, len(v) + 1), v


def learning_curves(run, *, rungs=None, log: bool = False, ax=None, max_curves: int | None = None,
                    space=None):
    """Each trial's reported metric against training steps, with the scheduler's decisions.

    Trials trained to the full budget end in a dot, trials a scheduler stopped in an orange
    cross (at the step it stopped them), failed/diverged ones in a red star. Rungs are dotted
    vertical lines; a green triangle marks every trial at each rung it went past (it was
    promoted, or continued).

    Args:
      run: a TuneResult or the journal of a ``jaxhpo.tune`` run.
      rungs: rung steps (e.g. ``scheduler.milestones()``); ``None`` infers them from the steps
        at which trials were stopped (when there are at most 8 such steps); ``()`` for none.
      log: logarithmic metric axis.
      ax: draw into this Axes.
      max_curves: draw only the first ``max_curves`` trials (completion order).
      space: unused.

    Returns:
      The Figure. Artists carry labels: ``"stopped"``, ``"full budget"``, ``"promoted"``.
    """
    view = as_run(run, space)
    h, curves = view.history, view.curves
    if not curves:
        raise ValueError("no learning curves in this run: they come with a TuneResult or the "
                         "journal of a jaxhpo.tune run (minimize records final values only)")
    trials = [t for t in h if t.number in curves]
    if max_curves is not None:
        trials = trials[:max_curves]
    xy = {t.number: _curve_xy(curves[t.number], t.fidelity) for t in trials}
    if rungs is None:
        stops = sorted({float(t.fidelity) for t in trials
                        if t.status == STOPPED and t.fidelity is not None})
        rungs = stops if len(stops) <= 8 else []
    rungs = sorted(float(r) for r in rungs)
    fig, ax = _fig_ax(ax, (7, 4))
    ends = {OK: [], STOPPED: [], "bad": []}
    promoted = []
    for t in trials:
        s, v = xy[t.number]
        if not len(s):
            continue
        style = dict(color="C0", alpha=0.5) if t.status == OK else dict(color="0.6", alpha=0.5)
        ax.plot(s, v, lw=0.9, **style)
        key = t.status if t.status in (OK, STOPPED) else "bad"
        if t.status in (FAILED, DIVERGED):
            key = "bad"
        ends[key].append((s[-1], v[-1]))
        for r in rungs:
            hit = np.flatnonzero(s == r)
            if hit.size and s[-1] > r:
                promoted.append((r, v[hit[0]]))
    for r in rungs:
        ax.axvline(r, color="0.4", ls=":", lw=1)
    marks = [(OK, "full budget", dict(marker="o", color="C0", s=16)),
             (STOPPED, "stopped", dict(marker="x", color="C1", s=22)),
             ("bad", "failed / diverged", dict(marker="*", color="red", s=30))]
    for key, label, kw in marks:
        if ends[key]:
            p = np.array(ends[key])
            ax.scatter(p[:, 0], p[:, 1], label=label, zorder=3, **kw)
    if promoted:
        p = np.array(promoted)
        ax.scatter(p[:, 0], p[:, 1], marker="^", color="C2", s=18, zorder=3, label="promoted")
    if log:
        ax.set_yscale("log")
    name = h.objectives[0] if h.objectives else "value"
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"{name} ({h.directions[0]})")
    ax.set_title(f"learning curves ({len(trials)} trials)"
                 + (f", rungs {[int(r) if r == int(r) else r for r in rungs]}" if rungs else ""))
    ax.legend(fontsize="small", loc="best")
    return fig


# ---------------------------------------------------------------------------- PBT schedules
def pbt_schedules(run, *, params=None, members=None, max_steps=None, fig=None, space=None,
                  ncols: int = 3):
    """PBT hyperparameter schedules: each final member's value of each hyperparameter vs step.

    A schedule follows the member's lineage back through the exploit steps
    (``TuneResult.schedules``, from :func:`jaxhpo.schedulers.pbt_lineage`): the weights that
    end in a member were trained with ``x`` from each segment's step on; a dot marks an exploit
    (weights copied from another member, hyperparameters perturbed).

    Args:
      run: the TuneResult of a PBT run (``schedules`` is set), or ``{"schedules": ...,
        "space": ...}``-like object with those attributes.
      params: hyperparameters to show (default all).
      members: final members to show (default all).
      max_steps: where the schedules end (default: the run's largest fidelity).
      fig: draw into this Figure.
      space: the search space (needed when ``run`` does not carry one).
      ncols: panels per row.

    Returns:
      The Figure; panel ``i`` has one step line per member (label ``"member k"``).
    """
    _, Figure = mpl()
    view = as_run(run, space)
    sp = need_space(view, "pbt_schedules")
    sched = view.schedules
    if not sched:
        raise ValueError("no PBT schedules in this run: they come with the TuneResult of "
                         "jaxhpo.tune(..., schedulers.PBT(...)) and with its journal")
    names = list(sp.names) if params is None else check_params(sp, params)
    mem = sorted(sched) if members is None else list(members)
    bad = [m for m in mem if m not in sched]
    if bad:
        raise ValueError(f"members {bad} not in the schedules (members {sorted(sched)})")
    if max_steps is None:
        fids = [t.fidelity for t in view.history if t.fidelity is not None]
        last = max((seg["step"] for m in mem for seg in sched[m]), default=0)
        max_steps = max([last, *fids]) if fids else last + 1
    if fig is None:
        c = max(1, min(ncols, len(names)))
        fig = Figure(figsize=(4.2 * c, 3.2 * math.ceil(len(names) / c)), layout="constrained")
    axes = _grid(fig, len(names), ncols)
    for ax, n in zip(axes, names):
        p = sp[n]
        for k, m in enumerate(mem):
            segs = sched[m]
            steps = [float(s["step"]) for s in segs] + [float(max_steps)]
            vals = []
            for s in segs:
                v = sp.to_params(np.asarray(s["x"], np.float64)).get(n, np.nan)
                vals.append(p.choices.index(v) if isinstance(p, Categorical) and v in p.choices
                            else float(v))
            vals.append(vals[-1])
            color = f"C{k % 10}"
            ax.step(steps, vals, where="post", color=color, lw=1.2, label=f"member {m}")
            cp = [(st, v) for st, v, s in zip(steps, vals, segs) if s["copied_from"] is not None]
            if cp:
                c = np.array(cp)
                ax.scatter(c[:, 0], c[:, 1], color=color, s=12, zorder=3)
        if isinstance(p, Categorical):
            ax.set_yticks(range(len(p.choices)), [str(c) for c in p.choices])
        elif p.log:
            ax.set_yscale("log")
            log_axis(ax.yaxis)
        ax.set_title(n)
        ax.set_xlabel("training steps")
    if len(mem) <= 10:
        axes[0].legend(fontsize="x-small", loc="best")
    fig.suptitle("PBT hyperparameter schedules (dots: exploit + explore)")
    return fig
