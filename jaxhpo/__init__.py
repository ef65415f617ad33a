"""jaxhpo: JAX-native hyperparameter optimization.

Public API (everything else is private and may change):

* search spaces: :class:`Space`, :class:`Float`, :class:`Int`, :class:`Categorical`;
* the strategy protocol :class:`Strategy` and the strategies in :mod:`jaxhpo.strategies`;
* drivers :func:`minimize` (journal, resume, Python or JAX objectives) and
  :func:`minimize_scan` (the whole run in one ``lax.scan``), returning a :class:`Result`;
* the trial record :class:`History` / :class:`Trial`;
* test functions with known optima in :mod:`jaxhpo.functions`;
* population training of Flax models under ``vmap`` in :mod:`jaxhpo.train`;
* a reusable PPO core (GAE, clipped losses, minibatch epochs) in :mod:`jaxhpo.rl`;
* hypergradients through unrolled training and gradient-based tuning in
  :mod:`jaxhpo.hypergrad`;
* scheduler decision rules (median stopping, curve extrapolation, HyperBand, ASHA, BOHB, PBT)
  and the schedulers built on them in :mod:`jaxhpo.schedulers`;
* :func:`tune` (multi-fidelity runs with a scheduler: vmapped slots refilled as trials stop, or
  Python objectives with ``trial.report``/``should_stop``), returning a :class:`TuneResult`;
* Pareto utilities :func:`pareto_front`, :func:`hypervolume`;
* hyperparameter importance :func:`importance` (fANOVA, PED-ANOVA, GP-Sobol);
* run-time hooks: callbacks receive a :class:`RunEvent` and may raise :class:`StopRun`; a journal
  another process is writing raises :class:`JournalInUse`; tracking callbacks (MLflow,
  TensorBoard) in :mod:`jaxhpo.integrations`.
"""

from jaxhpo import strategies
from jaxhpo._driver import Result, TooManyFailures, minimize, minimize_scan
from jaxhpo._history import History, Trial, pareto_mask
from jaxhpo.importance import importance
from jaxhpo._pareto import hypervolume, pareto_front
from jaxhpo._journal import JournalInUse
from jaxhpo._monitor import RunEvent, StopRun
from jaxhpo._space import Categorical, Float, Int, Space
from jaxhpo._strategy import Strategy, sanitize_fitness

__version__ = "0.1.0"

__all__ = [
    "Categorical", "Float", "History", "Int", "JournalInUse", "Result", "RunEvent", "Space",
    "StopRun", "Strategy", "TooManyFailures",
    "StopTrial", "Trial", "TrialHandle", "TuneResult", "hypervolume", "importance", "minimize",
    "minimize_scan", "pareto_front", "pareto_mask", "sanitize_fitness", "strategies", "tune",
]


def __getattr__(name):
    # Submodules and tune are imported lazily so `import jaxhpo` stays light.
    if name in ("tune", "TuneResult", "StopTrial", "TrialHandle"):
        from jaxhpo import _tune

        return getattr(_tune, name)
    if name in ("functions", "hypergrad", "integrations", "plot", "rl", "schedulers", "train"):
        import importlib

        return importlib.import_module(f"jaxhpo.{name}")
    raise AttributeError(f"module 'jaxhpo' has no attribute {name!r}")
