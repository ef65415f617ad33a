"""BOHB's model-data rule (Falkner, Klein & Hutter, ICML 2018, Algorithm 2 and Eqs. 2-3).

BOHB runs HyperBand's brackets (:func:`jaxhpo.schedulers.hyperband_brackets`) and replaces
their random configurations by samples from a TPE-style density ratio ``l(x) / g(x)``. This
module holds the part of Algorithm 2 that does not depend on the density estimator:

* observations are kept per budget in a fixed-capacity buffer (:class:`BOHBObservations`);
* with probability ``random_fraction`` (1/3) a configuration is drawn at random;
* otherwise the model uses the *largest* budget with at least ``N_min + 2`` observations,
  ``N_min = d + 1`` by default; when there is none, the configuration is random;
* on that budget's ``N_b`` observations, ``l`` is fitted to the best
  ``N_l = max(N_min, floor(q N_b))`` (Eq. 2, ``q = 0.15``) and ``g`` to the worst
  ``N_g = max(N_min, N_b - N_l)`` (Eq. 3). With ``N_b < 2 N_min`` the two sets overlap, as the
  equations imply.

The kernel density estimators (product kernels, bandwidths from Scott's rule multiplied by the
bandwidth factor 3 when sampling, 64 candidates, highest ``l/g`` wins) belong to the TPE
strategy and are not duplicated here: :func:`bohb_model_data` returns the masks they are
fitted on.

Reference:
  S. Falkner, A. Klein, F. Hutter. "BOHB: Robust and Efficient Hyperparameter Optimization at
  Scale." ICML 2018.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._validate import check_int, check_real
from jaxhpo.schedulers._common import rank_ascending


@struct.dataclass
class BOHBObservations:
    x: jax.Array  # f32[B, C, d] unit-cube configurations evaluated on each budget
    value: jax.Array  # f32[B, C] their metrics (minimized; NaN/inf kept, ranked last)
    count: jax.Array  # i32[B] observations held per budget
    overflow: jax.Array  # i32[] observations dropped because a budget was full


def bohb_init(num_budgets: int, capacity: int, num_dims: int) -> BOHBObservations:
    """Empty per-budget observation buffers (budgets indexed from smallest to largest)."""
    b = check_int(num_budgets, "num_budgets", 1)
    c = check_int(capacity, "capacity", 1)
    d = check_int(num_dims, "num_dims", 1)
    return BOHBObservations(x=jnp.zeros((b, c, d), jnp.float32),
                            value=jnp.full((b, c), jnp.inf, jnp.float32),
                            count=jnp.zeros((b,), jnp.int32), overflow=jnp.zeros((), jnp.int32))


def bohb_observe(obs: BOHBObservations, budget, x, value) -> BOHBObservations:
    """Add configuration ``x: f32[d]`` evaluated on budget index ``budget`` with ``value``."""
    budget = jnp.asarray(budget, jnp.int32)
    pos = obs.count[budget]
    ok = pos < obs.value.shape[1]
    return obs.replace(x=obs.x.at[budget, pos].set(jnp.asarray(x, jnp.float32), mode="drop"),
                       value=obs.value.at[budget, pos].set(value, mode="drop"),
                       count=obs.count.at[budget].add(ok.astype(jnp.int32)),
                       overflow=obs.overflow + (~ok).astype(jnp.int32))


class BOHBModelData(NamedTuple):
    """Which observations the two densities are fitted on."""

    use_model: jax.Array  # bool[] False: draw the configuration uniformly at random
    budget: jax.Array  # i32[] the budget modelled (-1 when none has enough observations)
    good: jax.Array  # bool[C] observations for l(x) on that budget
    bad: jax.Array  # bool[C] observations for g(x) on that budget


def bohb_model_data(key: jax.Array, obs: BOHBObservations, *, top_fraction: float = 0.15,
                    random_fraction: float = 1 / 3, min_points: int | None = None
                    ) -> BOHBModelData:
    """Algorithm 2's choice of budget and of the good/bad observations.

    Args:
      key: PRNG key for the random-configuration coin (probability ``random_fraction``).
      obs: the per-budget observations.
      top_fraction: ``q`` of Eq. (2), in ``(0, 0.5]``.
      random_fraction: ``rho``, the probability of a random configuration, in ``[0, 1]``.
      min_points: ``N_min`` (default ``d + 1``, the paper's choice), >= 1.

    Returns:
      a :class:`BOHBModelData`.
    """
    q = check_real(top_fraction, "top_fraction", 0.0, 0.5, low_open=True)
    rho = check_real(random_fraction, "random_fraction", 0.0, 1.0)
    n_min = obs.x.shape[2] + 1 if min_points is None else check_int(min_points, "min_points", 1)
    num_budgets, cap = obs.value.shape
    enough = obs.count >= n_min + 2
    budget = jnp.where(jnp.any(enough), num_budgets - 1 - jnp.argmax(enough[::-1]), -1)
    b = jnp.maximum(budget, 0)
    n_b = obs.count[b]
    filled = jnp.arange(cap) < n_b
    rank = rank_ascending(obs.value[b], filled)
    n_l = jnp.maximum(n_min, jnp.floor(q * n_b).astype(jnp.int32))         # Eq. (2)
    n_g = jnp.maximum(n_min, n_b - n_l)                                      # Eq. (3)
    good = filled & (rank < n_l)
    bad = filled & (rank >= n_b - n_g)
    use = (budget >= 0) & ~jax.random.bernoulli(key, rho)
    return BOHBModelData(use, budget.astype(jnp.int32), good & use, bad & use)
