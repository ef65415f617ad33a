"""NSGA-II (Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic
Algorithm: NSGA-II", IEEE TEC 2002) for fitness ``f32[pop, m]``.

Parents and children are merged, ranked by fast non-dominated sorting (Sect. III-A) and the
crowding distance (Sect. III-B), and the best ``population_size`` survive (Sect. III-C).
Children come from binary tournaments on (rank, crowding), simulated binary crossover
(Deb & Agrawal 1995, distribution index ``eta_c``) and polynomial mutation (``eta_m``), as in
the paper's experiments.

With ``num_constraints=k`` the ranking uses the paper's constrained domination (Sect. V, Def.
1): solution ``i`` constrained-dominates ``j`` when ``i`` is feasible and ``j`` is not, when
both are infeasible and ``i`` has the smaller overall constraint violation, or when both are
feasible and ``i`` dominates ``j``. Constraint values follow Optuna's convention: feasible when
``<= 0``; the overall violation is ``sum_c max(c, 0)`` and a NaN value counts as a maximal
violation. Binary tournaments on (rank, crowding) then implement the paper's constrained
tournament, since every feasible solution ranks before every infeasible one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._strategy import (Strategy, check_int, check_population_size, check_real,
                              check_space, sanitize_fitness)

_WORST = float(np.finfo(np.float32).max) / 4


@struct.dataclass
class NSGA2State:
    population: jax.Array  # f32[pop, d]
    fitness: jax.Array  # f32[pop, m]
    rank: jax.Array  # i32[pop]         non-domination rank (0 = first front)
    crowding: jax.Array  # f32[pop]
    generation: jax.Array  # i32[]
    violation: jax.Array  # f32[pop]       overall constraint violation (0 = feasible)


def constraint_violation(constraints: jax.Array) -> jax.Array:
    """``f32[n]`` overall violation ``sum_c max(c, 0)`` of ``constraints f32[n, k]`` (feasible
    when ``<= 0``); a NaN or infinite value counts as a violation of ``_WORST``."""
    c = jnp.asarray(constraints, jnp.float32)
    c = jnp.where(jnp.isfinite(c), jnp.clip(c, 0.0, _WORST), jnp.where(c < 0, 0.0, _WORST))
    return jnp.minimum(jnp.sum(c, axis=-1), _WORST)


def non_dominated_rank(f: jax.Array, violation: jax.Array | None = None) -> jax.Array:
    """``i32[n]`` front index of each row of ``f[n, m]`` (minimized), by repeated peeling of the
    non-dominated set.

    With ``violation f32[n]`` (``0`` = feasible; see :func:`constraint_violation`) domination
    is Deb et al.'s constrained domination (NSGA-II paper, Sect. V, Def. 1).
    """
    n = f.shape[0]
    dom = (jnp.all(f[:, None] <= f[None], -1) & jnp.any(f[:, None] < f[None], -1))  # i dom j
    if violation is not None:
        v = jnp.asarray(violation, jnp.float32)
        ok = v <= 0
        dom = ((ok[:, None] & ok[None] & dom) | (ok[:, None] & ~ok[None])
               | (~ok[:, None] & ~ok[None] & (v[:, None] < v[None])))

    def peel(carry):
        r, rank, left = carry
        dominated = jnp.any(dom & left[:, None], axis=0)
        front = left & ~dominated
        return r + 1, jnp.where(front, r, rank), left & ~front

    # as many peels as there are fronts (usually few), not n
    _, rank, _ = jax.lax.while_loop(lambda c: jnp.any(c[2]), peel,
                                    (0, jnp.full(n, n, jnp.int32), jnp.ones(n, bool)))
    return rank


def crowding_distance(f: jax.Array, rank: jax.Array) -> jax.Array:
    """``f32[n]`` crowding distance of each point within its own front (inf at the ends)."""
    n, m = f.shape
    dist = jnp.zeros(n)
    for k in range(m):
        order = jnp.lexsort((f[:, k], rank))
        fs, rs = f[order, k], rank[order]
        lo = jax.ops.segment_min(fs, rs, num_segments=n + 1)[rs]
        hi = jax.ops.segment_max(fs, rs, num_segments=n + 1)[rs]
        prev_same = jnp.concatenate([jnp.array([False]), rs[1:] == rs[:-1]])
        next_same = jnp.concatenate([rs[:-1] == rs[1:], jnp.array([False])])
        gap = (jnp.roll(fs, -1) - jnp.roll(fs, 1)) / jnp.maximum(hi - lo, 1e-12)
        d_k = jnp.where(prev_same & next_same, gap, jnp.inf)
        dist = dist.at[order].add(d_k)
    return dist


def nsga2(space, population_size: int = 40, *, num_objectives: int = 2, eta_c: float = 15.0,
          eta_m: float = 20.0, crossover_prob: float = 0.9,
          mutation_prob: float | None = None, num_constraints: int = 0) -> Strategy:
    """NSGA-II on the unit cube for several objectives (fitness ``f32[pop, m]``, minimized).

    Args:
      space: the search space.
      population_size: members (even numbers pair up parents).
      num_objectives: ``m``, the number of fitness columns ``tell`` receives (for ``m = 1``,
        ``f32[pop]`` is accepted too, as the drivers pass a single objective).
      eta_c, eta_m: distribution indices of SBX crossover and polynomial mutation.
      crossover_prob: probability that a pair of parents is recombined.
      mutation_prob: per-coordinate mutation probability (default ``1 / d``).
      num_constraints: ``k``: ``tell(state, x, fitness, constraints)`` then takes
        ``constraints f32[pop, k]`` (feasible when every value is ``<= 0``) and ranks by
        constrained domination (Deb et al. 2002, Sect. V); ``0``: unconstrained.

    Returns:
      A :class:`jaxhpo.Strategy`. ``state.rank == 0`` marks the current non-dominated front
      (with constraints: the feasible one, if any member is feasible; ``state.violation`` is
      each member's overall violation).

    Example:
      >>> strategy = nsga2(space, 40, num_objectives=2, num_constraints=1)
      >>> res = jaxhpo.minimize(fn, space, strategy, metric=["f1", "f2"], constraints=["g"],
      ...                       num_generations=50)   # fn returns {"f1", "f2", "g"}

    References:
      Deb, Pratap, Agarwal & Meyarivan, IEEE TEC 6(2), 2002 (constraint handling: Sect. V).
    """
    d = check_space(space)
    pop = check_population_size(population_size)
    if pop < 4 or pop % 2:
        raise ValueError(f"population_size must be an even number >= 4, got {pop}")
    m = check_population_size(num_objectives, "num_objectives")
    k = check_int(num_constraints, "num_constraints", 0)
    pm = 1.0 / d if mutation_prob is None else mutation_prob
    check_real(eta_c, "eta_c", 0.0)
    check_real(eta_m, "eta_m", 0.0)
    check_real(crossover_prob, "crossover_prob", 0.0, 1.0)
    check_real(pm, "mutation_prob", 0.0, 1.0)

    def init(key):
        return NSGA2State(jax.random.uniform(key, (pop, d)), jnp.zeros((pop, m)),
                          jnp.zeros(pop, jnp.int32), jnp.zeros(pop), jnp.zeros((), jnp.int32),
                          jnp.zeros(pop))

    def tournament(key, state):
        a, b = jax.random.randint(key, (2, pop), 0, pop)
        a_wins = (state.rank[a] < state.rank[b]) | (
            (state.rank[a] == state.rank[b]) & (state.crowding[a] >= state.crowding[b]))
        return jnp.where(a_wins, a, b)

    def ask(key, state):
        k_sel, k_u, k_cx, k_swap, k_mut, k_r = jax.random.split(key, 6)
        parents = state.population[tournament(k_sel, state)]
        p1, p2 = parents[0::2], parents[1::2]
        u = jax.random.uniform(k_u, p1.shape)
        beta = jnp.where(u <= 0.5, (2 * u) ** (1 / (eta_c + 1)),
                         (1 / (2 * (1 - u) + 1e-12)) ** (1 / (eta_c + 1)))  # SBX spread factor
        c1 = 0.5 * ((1 + beta) * p1 + (1 - beta) * p2)
        c2 = 0.5 * ((1 - beta) * p1 + (1 + beta) * p2)
        # Each variable of a recombined pair is crossed with probability 0.5, and a crossed
        # variable's two children are exchanged between the offspring (as in Deb's reference
        # code); without the exchange the offspring barely mix their parents' variables.
        do = jax.random.bernoulli(k_cx, crossover_prob, (p1.shape[0], 1)) & \
            jax.random.bernoulli(k_swap, 0.5, p1.shape)
        kids = jnp.concatenate([jnp.where(do, c2, p1), jnp.where(do, c1, p2)])
        r = jax.random.uniform(k_r, kids.shape)
        delta = jnp.where(r < 0.5, (2 * r) ** (1 / (eta_m + 1)) - 1,
                          1 - (2 * (1 - r)) ** (1 / (eta_m + 1)))  # polynomial mutation
        kids = jnp.where(jax.random.bernoulli(k_mut, pm, kids.shape), kids + delta, kids)
        kids = jnp.clip(kids, 0.0, 1.0)
        return jnp.where(state.generation == 0, state.population, kids), state

    def tell(state, x, fitness, constraints=None):
        if m == 1 and fitness.shape == (pop,):  # one objective: the drivers pass f32[pop]
            fitness = fitness[:, None]
        if fitness.shape != (pop, m):
            raise ValueError(f"nsga2 was built for fitness f32[{pop}, {m}], got {fitness.shape}")
        f, _ = sanitize_fitness(fitness)
        f = jnp.minimum(f, _WORST)
        first = state.generation == 0
        old_f = jnp.where(first, _WORST, state.fitness)
        all_x = jnp.concatenate([state.population, x])
        all_f = jnp.concatenate([old_f, f])
        if k:
            # the initial placeholders lose to every real member, feasible or not
            old_v = jnp.where(first, _WORST, state.violation)
            all_v = jnp.concatenate([old_v, constraint_violation(constraints)])
            rank = non_dominated_rank(all_f, all_v)
        else:
            all_v = jnp.zeros(2 * pop)
            rank = non_dominated_rank(all_f)
        crowd = crowding_distance(all_f, rank)
        keep = jnp.lexsort((-crowd, rank))[:pop]
        crowd = jnp.minimum(crowd, _WORST)  # ends of a front: finite but maximal
        return NSGA2State(all_x[keep], all_f[keep], rank[keep], crowd[keep],
                          state.generation + 1, all_v[keep])

    if k:
        return Strategy(init, ask, tell, pop, d, "nsga2", num_constraints=k)
    return Strategy(init, ask, lambda state, x, fitness: tell(state, x, fitness), pop, d,
                    "nsga2")
