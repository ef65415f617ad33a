"""Gradient-based hyperparameter optimization: hypergradients through unrolled training.

Continuous training hyperparameters (log learning rate, log weight decay, logit momentum, ...)
are tuned by differentiating the validation loss through the ``lax.scan`` of training.

* :func:`hypergradient` — ``d L_val(c_T) / d theta`` for any ``step(carry, theta)`` scan:
  reverse mode with rematerialization (``remat``), truncated unrolls (``truncate``), forward
  mode (``mode="forward"``); :func:`unroll` is the scan itself.
* :func:`hyper_descent` — online hypergradient descent (train a round, step the
  hyperparameters with an optax optimizer, continue), per member, pure (``vmap`` it).
* the engine: :func:`trainer_hypergradient` / :func:`population_hypergradient` for a
  :class:`jaxhpo.train.Trainer` / :class:`jaxhpo.train.Population`, and :func:`hyper_tune`,
  a population of hypergradient tuners (each from its own start point, optional PBT exploit),
  returning a :class:`HyperTuneResult`. (``tune`` / ``TuneResult`` are deprecated aliases from
  before the rename, kept for one release: :func:`jaxhpo.tune` is the strategy-and-scheduler
  run.)
* :func:`unconstrained` / :func:`trainer_params` — the unconstrained coordinates of a Space's
  Floats (``log`` for log-scale ones, ``logit`` of the position for linear ones).

Example:
  >>> tr = Trainer(mlp(10), mnist1d(), space=Space({"lr": Float(1e-4, 1e-1, log=True),
  ...                                               "wd": Float(1e-6, 1e-1, log=True)}))
  >>> x0 = jaxhpo.strategies.quasi_random(tr.space, 8).ask(key, ...)[0]
  >>> res = hyper_tune(tr, key, x0, rounds=10, steps_per_round=100)
  >>> res.best_params, res.final["test_accuracy"][res.best]
"""

from jaxhpo.hypergrad._descent import DescentInfo, DescentState, HyperDescent, hyper_descent
from jaxhpo.hypergrad._engine import (DIFFERENTIABLE, HyperTuneResult, hyper_tune,
                                      population_hypergradient, trainer_hypergradient,
                                      trainer_params, tune)  # tune: deprecated alias
from jaxhpo.hypergrad._params import Unconstrained, unconstrained
from jaxhpo.hypergrad._unroll import MODES, HyperGradient, hypergradient, unroll

__all__ = [
    "DIFFERENTIABLE", "DescentInfo", "DescentState", "HyperDescent", "HyperGradient",
    "HyperTuneResult", "MODES", "Unconstrained", "hyper_descent", "hyper_tune", "hypergradient",
    "population_hypergradient", "trainer_hypergradient", "trainer_params", "unconstrained",
    "unroll",
]


def __getattr__(name):
    if name == "TuneResult":  # deprecated alias, one release
        import warnings

        warnings.warn("jaxhpo.hypergrad.TuneResult is deprecated: it is "
                      "jaxhpo.hypergrad.HyperTuneResult (the alias goes in the next release)",
                      DeprecationWarning, stacklevel=2)
        return HyperTuneResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
