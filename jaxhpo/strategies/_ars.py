"""Augmented Random Search (H. Mania, A. Guy and B. Recht, "Simple random search of static
linear policies is competitive for reinforcement learning", NeurIPS 2018), on the unit cube.

Each generation evaluates ``N`` antithetic pairs ``theta +/- nu * delta_k``, ``delta_k ~ N(0, I)``
(population ``2N``, one vmapped evaluation). With rewards ``r = -fitness`` the update is
(Algorithm 1 of the paper)::

    BRS:        theta += alpha / N * sum_k (r+_k - r-_k) delta_k
    V1:         theta += alpha / (b * sigma_R) * sum_{k in top b} (r+_k - r-_k) delta_k

where ``sigma_R`` is the standard deviation of the ``2b`` rewards used and the top ``b``
directions are ranked by ``max(r+_k, r-_k)`` (``b = N`` is V1, ``b < N`` is V1-t). V2 / V2-t
additionally normalize the *observations* of a policy with running statistics; that belongs to
the policy evaluation, so it is provided as :class:`RunningNorm` for policy-search objectives.
Replay, a critic and reward shaping: :func:`jaxhpo.strategies.ars_augmented`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxhpo._strategy import (Strategy, check_population_size, check_real, check_space,
                              sanitize_fitness)


@struct.dataclass
class ARSState:
    theta: jax.Array  # f32[d]      the search mean (the deterministic "actor")
    delta: jax.Array  # f32[N, d]   last directions
    best_x: jax.Array  # f32[d]
    best_fitness: jax.Array  # f32[]
    generation: jax.Array  # i32[]


def check_ars_args(space, num_directions, top_directions, step_size, noise, theta0):
    """Validate ARS arguments; returns ``(d, N, b, theta0 f32[d])`` with defaults filled."""
    d = check_space(space)
    n = check_population_size(num_directions, "num_directions")
    b = n if top_directions is None else check_population_size(top_directions,
                                                               "top_directions")
    if b > n:
        raise ValueError(f"top_directions={b} must be <= num_directions={n}")
    check_real(step_size, "step_size", 0.0, low_open=True)
    check_real(noise, "noise", 0.0, low_open=True)
    t0 = jnp.full((d,), 0.5, jnp.float32) if theta0 is None else jnp.asarray(theta0,
                                                                              jnp.float32)
    if t0.shape != (d,):
        raise ValueError(f"theta0 must have shape ({d},), got {t0.shape}")
    return d, n, b, t0


def ars(space, num_directions: int = 8, *, top_directions: int | None = None,
        step_size: float = 0.02, noise: float = 0.03, scale_by_std: bool = True,
        theta0=None) -> Strategy:
    """Augmented Random Search (Mania et al. 2018) over the unit cube.

    Args:
      space: the search space.
      num_directions: ``N``; the population is ``2N`` (antithetic pairs, rows ``k`` and
        ``N + k``).
      top_directions: ``b`` directions kept for the update (default ``N``: V1; fewer: V1-t).
      step_size: ``alpha``.
      noise: ``nu``, the exploration standard deviation (cube units).
      scale_by_std: divide by ``sigma_R`` (ARS); ``False`` gives basic random search (BRS).
      theta0: initial point ``f32[d]`` (default: the cube's centre).
    """
    d, n, b, t0 = check_ars_args(space, num_directions, top_directions, step_size, noise,
                                 theta0)

    def init(key):
        del key
        return ARSState(t0, jnp.zeros((n, d)), t0, jnp.float32(jnp.finfo(jnp.float32).max),
                        jnp.zeros((), jnp.int32))

    def ask(key, state):
        delta = jax.random.normal(key, (n, d))
        x = jnp.concatenate([state.theta + noise * delta, state.theta - noise * delta])
        return jnp.clip(x, 0.0, 1.0), state.replace(delta=delta)

    def tell(state, x, fitness):
        f, _ = sanitize_fitness(fitness)
        r_plus, r_minus = -f[:n], -f[n:]
        top = jnp.argsort(-jnp.maximum(r_plus, r_minus))[:b]
        rp, rm = r_plus[top], r_minus[top]
        if scale_by_std:
            sigma_r = jnp.std(jnp.concatenate([rp, rm]))
            coef = step_size / (b * jnp.where(sigma_r > 1e-12, sigma_r, 1.0))
        else:
            coef = step_size / n
        theta = state.theta + coef * ((rp - rm) @ state.delta[top])
        theta = jnp.clip(theta, 0.0, 1.0)
        i = jnp.argmin(f)
        better = f[i] < state.best_fitness
        return state.replace(theta=theta, best_x=jnp.where(better, x[i], state.best_x),
                             best_fitness=jnp.where(better, f[i], state.best_fitness),
                             generation=state.generation + 1)

    return Strategy(init, ask, tell, 2 * n, d, "ars")


class RunningNorm(NamedTuple):
    """Running mean / variance of observations (Welford), ARS V2's state normalization.

    ``norm = RunningNorm.create(obs_dim)``; ``norm = norm.update(obs_batch)``;
    ``norm.normalize(obs)`` gives ``(obs - mean) / std`` (std floored at 1e-8). Before the first
    update the statistics are ``mean = 0, std = 1`` (the paper's ``mu_0 = 0, Sigma_0 = I``).
    """

    count: jax.Array  # f32[]
    mean: jax.Array  # f32[obs]
    m2: jax.Array  # f32[obs]

    @classmethod
    def create(cls, dim: int) -> "RunningNorm":
        return cls(jnp.zeros(()), jnp.zeros(dim), jnp.zeros(dim))

    def update(self, obs: jax.Array) -> "RunningNorm":
        """Merge a batch ``f32[n, obs]`` (Chan et al.'s parallel variance update)."""
        n = obs.shape[0]
        b_mean = jnp.mean(obs, 0)
        b_m2 = jnp.sum((obs - b_mean) ** 2, 0)
        total = self.count + n
        delta = b_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.m2 + b_m2 + delta**2 * self.count * n / total
        return RunningNorm(total, mean, m2)

    @property
    def std(self) -> jax.Array:
        var = jnp.maximum(self.m2 / jnp.maximum(self.count, 1.0), 1e-16)
        return jnp.where(self.count > 0, jnp.sqrt(var), 1.0)

    def normalize(self, obs: jax.Array) -> jax.Array:
        return (obs - self.mean) / jnp.maximum(self.std, 1e-8)
