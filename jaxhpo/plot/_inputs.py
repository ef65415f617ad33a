"""What the plots (and the CLI) read: results in memory, journals on disk, benchmark JSON.

Nothing here imports matplotlib; :func:`mpl` does, lazily, with an install hint.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jaxhpo._history import OK, History, Trial
from jaxhpo._space import Space


def mpl():
    """``(matplotlib, Figure)``, or an ImportError saying how to install the extra."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("jaxhpo.plot needs matplotlib: pip install 'jaxhpo[plot]' "
                          "(or pip install matplotlib)") from e
    return matplotlib, Figure


@dataclass
class RunView:
    """A run as the plots see it.

    Attributes:
      history: every trial.
      space: the search space (``None`` when only a History was given).
      curves: ``{trial number: curve}`` (tune runs) or ``{}``.
      schedules: PBT lineages ``{slot: [segment]}`` or ``None``.
      header: the journal header (``{}`` for results in memory).
    """

    history: History
    space: Space | None = None
    curves: dict = field(default_factory=dict)
    schedules: dict | None = None
    header: dict = field(default_factory=dict)


def read_journal(path: str | os.PathLike) -> RunView:
    """Read a journal written by ``jaxhpo.minimize`` or ``jaxhpo.tune``, without changing it.

    Uses the same reader as resume (:func:`jaxhpo._journal.read_journal`): a torn last line (a
    run killed mid-write) is left out, any other unreadable line is skipped with a warning
    naming it, and a trial recorded twice keeps its last record.

    Args:
      path: the JSON Lines journal.

    Returns:
      A :class:`RunView` with the header, the space, the trials and (tune) their curves and
      (PBT) the schedules.
    """
    from jaxhpo._journal import read_journal as read, trials_by_number

    contents = read(path)
    header = contents.header
    trials = trials_by_number(contents)
    curves = {n: r["curve"] for n, (_, r) in trials.items() if "curve" in r}
    pbt = {int(r["round"]): r for r in contents.of_type("pbt")}  # a repeated round: the last
    # tune journals are written in completion order, as TuneResult.history; minimize's by number
    order = [t for t, _ in trials.values()]
    if header.get("driver") != "tune":
        order.sort(key=lambda t: t.number)
    dirs = list(header.get("directions") or ["minimize"])
    history = History(_objective_names(header, order, len(dirs)), dirs, order)
    return RunView(history, Space.from_dict(header["space"]), curves, _schedules(pbt), header)


def _schedules(pbt: dict) -> dict | None:
    """PBT schedules from a journal's ``pbt`` records (``None`` unless rounds 0..n-1 are all
    there, as in a journal written before these records existed or cut in round 0)."""
    if not pbt or sorted(pbt) != list(range(len(pbt))) or "x0" not in pbt[0]:
        return None
    from jaxhpo.schedulers import pbt_schedules

    events = [(r["step"], r["src"], r["exploit"], r["x"]) for _, r in sorted(pbt.items())]
    return pbt_schedules(pbt[0]["x0"], events)


def _objective_names(header: dict, trials: list[Trial], m: int) -> list[str]:
    metric = header.get("metric")
    if isinstance(metric, str):
        return [metric]
    if isinstance(metric, list):
        return list(metric)
    for t in trials:  # metric=None: a scalar ("value") or the one metric equal to the value
        if t.values is not None and m == 1:
            keys = [k for k, v in t.metrics.items()
                    if v == t.values[0] or (math.isnan(v) and math.isnan(t.values[0]))]
            if keys:
                return keys[:1]
    return ["value"] if m == 1 else [f"objective_{i}" for i in range(m)]


def as_run(run: Any, space: Space | None = None) -> RunView:
    """A History, Result, TuneResult, RunView or journal path -> :class:`RunView`."""
    if isinstance(run, RunView):
        view = run
    elif isinstance(run, (str, os.PathLike)):
        view = read_journal(run)
    elif isinstance(run, History):
        view = RunView(run)
    elif isinstance(getattr(run, "history", None), History):  # Result / TuneResult
        view = RunView(run.history, getattr(run, "space", None),
                       dict(getattr(run, "curves", None) or {}),
                       getattr(run, "schedules", None))
    else:
        raise TypeError(f"expected a jaxhpo Result, TuneResult, History or a journal path, got "
                        f"{type(run).__name__}")
    if space is not None:
        if not isinstance(space, Space):
            raise TypeError(f"space must be a jaxhpo.Space, got {type(space).__name__}")
        view = RunView(view.history, space, view.curves, view.schedules, view.header)
    return view


def need_space(view: RunView, what: str) -> Space:
    if view.space is None:
        raise ValueError(f"{what} needs the search space: pass a Result/TuneResult or a journal, "
                         "or a History together with space=")
    return view.space


def objective_index(history: History, objective) -> int:
    """The column of ``objective`` (an index or a name) among ``history.objectives``."""
    m = len(history.directions)
    if isinstance(objective, str):
        if objective not in history.objectives:
            raise ValueError(f"objective {objective!r} is not one of {history.objectives}")
        return history.objectives.index(objective)
    if isinstance(objective, bool) or not isinstance(objective, (int, np.integer)) or not (
            -m <= objective < m):
        raise ValueError(f"objective must be a name in {history.objectives} or an index below "
                         f"{m}, got {objective!r}")
    return int(objective) % m


def values_of(history: History, trials: list[Trial], j: int) -> np.ndarray:
    """``f64[n]`` objective ``j`` of ``trials`` (user's direction; NaN where missing)."""
    return np.array([t.values[j] if t.values is not None else np.nan for t in trials],
                    np.float64)


def ok_trials(history: History) -> list[Trial]:
    """Completed trials with finite objective values (status ok)."""
    return [t for t in history if t.status == OK and t.values is not None
            and all(math.isfinite(v) for v in t.values)]


# ---------------------------------------------------------------------------- benchmark JSON
def read_benchmark(results) -> dict:
    """A quality benchmark JSON (path, dict, or a list of them, merged) -> its ``results``.

    Returns ``{function: {strategy: entry}}`` with entries as written by
    ``benchmarks/quality.py`` (``regret_at`` and, from newer files, per-seed ``curve``).
    """
    if isinstance(results, (list, tuple)):
        merged: dict = {}
        for r in results:
            for fn, by in read_benchmark(r).items():
                merged.setdefault(fn, {}).update(by)
        return merged
    if isinstance(results, (str, os.PathLike)):
        with open(results) as f:
            results = json.load(f)
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        raise ValueError("expected a quality benchmark result (benchmarks/quality.py JSON with "
                         "a 'results' mapping {function: {strategy: ...}})")
    for fn, by in results["results"].items():
        for name, e in by.items():
            if not isinstance(e, dict) or not ("regret_at" in e or "curve" in e):
                raise ValueError(f"results[{fn!r}][{name!r}] has neither 'regret_at' nor "
                                 "'curve'; is this a benchmarks/quality.py result?")
    return results["results"]


def regret_bands(entry: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(evals, median, q25, q75)`` of one strategy on one function.

    Per-seed curves (``entry["curve"] = {"evals": [...], "per_seed": [[...] per seed]}``) are
    reduced with numpy; older files only have the stored statistics at the checkpoints.
    """
    if "curve" in entry:
        ev = np.asarray(entry["curve"]["evals"], np.float64)
        r = np.asarray(entry["curve"]["per_seed"], np.float64)
        return (ev, np.median(r, axis=0), np.quantile(r, 0.25, axis=0),
                np.quantile(r, 0.75, axis=0))
    items = sorted(entry["regret_at"].items(), key=lambda kv: int(kv[0]))
    ev = np.array([int(k) for k, _ in items], np.float64)
    stat = lambda s: np.array([v[s] for _, v in items], np.float64)
    return ev, stat("median"), stat("q25"), stat("q75")
