"""Plots of jaxhpo runs and benchmarks (matplotlib, an optional extra: ``pip install
'jaxhpo[plot]'``).

Every function takes a run (a :class:`jaxhpo.Result`, :class:`jaxhpo.TuneResult`,
:class:`jaxhpo.History` with ``space=`` where needed, or the path of a journal) or, for
:func:`regret`, benchmark JSON, and returns a ``matplotlib.figure.Figure`` (or draws into
``ax=``/``fig=``). Nothing is shown and ``pyplot`` is not used, so they work headless::

    fig = jaxhpo.plot.history(result)
    fig.savefig("history.png", dpi=120)

* :func:`history`: every trial's value and the best so far (direction-aware, failures marked);
* :func:`regret`: regret curves of several strategies, median and quartile band, from
  ``benchmarks/quality.py`` JSON, one panel per function;
* :func:`parallel_coordinates`: unit-cube coordinates (log axes, categorical ticks), coloured
  by the objective;
* :func:`slices`: the objective against each parameter;
* :func:`learning_curves`: ``TuneResult.curves`` with the rungs and where trials were stopped
  or promoted;
* :func:`pbt_schedules`: each PBT member's hyperparameters against training steps;
* :func:`pareto`: the Pareto front of 2 objectives (pairwise panels for 3 or more);
* :func:`contour`: the objective over pairs of parameters (a grid of pairs for more);
* :func:`importance`: hyperparameter importance (:func:`jaxhpo.importance`) as bars;
* :func:`edf`: the empirical distribution of objective values of one or several runs;
* :func:`timeline`: which trial trained on which slot of a ``tune`` run, and how it ended
  (completed, stopped, paused and promoted, exploited by PBT).

matplotlib is imported when a function is called, never by ``import jaxhpo``.
"""

from jaxhpo.plot._inputs import RunView, read_journal
from jaxhpo.plot._runs import learning_curves, pbt_schedules, regret
from jaxhpo.plot._study import contour, edf, importance, timeline
from jaxhpo.plot._trials import history, parallel_coordinates, pareto, slices

KINDS = ("history", "parallel", "slices", "pareto", "curves", "regret")

__all__ = ["RunView", "contour", "edf", "history", "importance", "learning_curves",
           "parallel_coordinates", "pareto", "pbt_schedules", "read_journal", "regret", "slices",
           "timeline"]
