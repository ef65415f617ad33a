"""Population based training's exploit and explore steps (Jaderberg et al. 2017).

Exploit, truncation selection (Sec. 3.1 / 4.1): rank the members; each member of the bottom
``fraction`` copies the weights, optimizer state and hyperparameters of a member drawn uniformly
from the top ``fraction``. Explore, perturb: multiply each hyperparameter by 0.8 or 1.2 (each with
probability 1/2); resample: with probability ``resample_prob`` (0.25) draw it afresh from the
prior (per hyperparameter, as in Ray Tune's implementation).

Perturbations act on natural values, mapped back to the unit cube: a log-scale Float's coordinate
shifts by ``log(factor) / log(high / low)`` (the value is multiplied exactly), a linear Float's
value is multiplied and clipped to ``[low, high]``, an Int's value is multiplied and rounded
(log or not), and a Categorical moves to the neighbouring choice (down for 0.8, up for 1.2,
clipped at the ends). Diverged members (NaN/inf fitness) always exploit.

The per-member hyperparameter schedule is kept in a fixed-capacity :class:`PBTRecord`
(``src``, ``x`` and step for every round), from which :func:`pbt_lineage` rebuilds the schedule
of any final member by following its copy sources back.

Reference:
  M. Jaderberg, V. Dalibard, S. Osindero, W. M. Czarnecki, J. Donahue, A. Razavi, O. Vinyals,
  T. Green, I. Dunning, K. Simonyan, C. Fernando, K. Kavukcuoglu. "Population Based Training of
  Neural Networks." arXiv:1711.09846, 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo._space import FLOAT, INT
from jaxhpo._strategy import check_space
from jaxhpo._validate import check_int, check_real
from jaxhpo.schedulers._common import rank_ascending


def pbt_exploit(key: jax.Array, fitness: jax.Array, active: jax.Array | None = None, *,
                fraction: float = 0.25) -> tuple[jax.Array, jax.Array]:
    """Truncation selection: the bottom ``fraction`` copy a uniformly drawn top member.

    Args:
      key: PRNG key for the source draws.
      fitness: ``f32[P]`` each member's latest metric (minimized; NaN/inf = diverged).
      active: ``bool[P]`` members taking part (default all); inactive slots neither copy nor
        serve as sources.
      fraction: size of the bottom and top groups, ``ceil(fraction * n_active)`` each, in
        ``(0, 0.5]``.

    Returns:
      ``(src, exploit)``: ``src: i32[P]`` the member each slot copies (itself when it does not
      exploit, so ``pop.gather(state, src)`` applies every copy at once) and ``exploit: bool[P]``.
      Diverged active members always exploit.
    """
    fraction = check_real(fraction, "fraction", 0.0, 0.5, low_open=True)
    fitness = jnp.asarray(fitness, jnp.float32)
    if fitness.ndim != 1:
        raise ValueError(f"fitness must be f32[P], got shape {fitness.shape}")
    p = fitness.shape[0]
    active = jnp.ones((p,), bool) if active is None else jnp.asarray(active, bool)
    if active.shape != (p,):
        raise ValueError(f"active must be bool[{p}], got shape {active.shape}")
    n = jnp.sum(active)
    k = jnp.minimum(jnp.ceil(fraction * n).astype(jnp.int32), n // 2)   # top = bottom size
    rank = rank_ascending(fitness, active)
    order = jnp.argsort(rank)                                            # order[r] has rank r
    diverged = active & ~jnp.isfinite(fitness)
    n_ok = jnp.sum(active & jnp.isfinite(fitness))
    exploit = active & ((rank >= n - k) | diverged)
    # Sources: uniformly among the top k finite members (fewer if few are finite).
    top = jnp.maximum(jnp.minimum(k, n_ok), 1)
    pick = jnp.minimum(jnp.floor(jax.random.uniform(key, (p,)) * top).astype(jnp.int32),
                       top - 1)
    exploit = exploit & (n_ok > 0) & (rank >= top)   # a top member never copies
    src = jnp.where(exploit, order[pick], jnp.arange(p))
    return src.astype(jnp.int32), exploit


class _Coords(struct.PyTreeNode):
    kind: np.ndarray  # i32[d]
    log: np.ndarray  # bool[d]
    low: np.ndarray  # f32[d] (Float: bounds; Int: low - 0.5; Categorical: 0)
    high: np.ndarray  # f32[d] (Float: bounds; Int: high + 0.5; Categorical: k)
    k: np.ndarray  # f32[d] number of choices (Categorical), else 1


def _coords(space) -> _Coords:
    kind, log, low, high, k = [], [], [], [], []
    for name in space.names:
        p = space[name]
        kind.append(int(space.kinds[space.names.index(name)]))
        log.append(bool(getattr(p, "log", False)))
        if kind[-1] == FLOAT:
            low.append(p.low), high.append(p.high), k.append(1.0)
        elif kind[-1] == INT:
            low.append(p.low - 0.5), high.append(p.high + 0.5), k.append(1.0)
        else:
            low.append(0.0), high.append(float(len(p.choices))), k.append(float(len(p.choices)))
    f = lambda a: np.asarray(a, np.float32)
    return _Coords(np.asarray(kind, np.int32), np.asarray(log), f(low), f(high), f(k))


def pbt_perturb(key: jax.Array, x: jax.Array, space, *, factors=(0.8, 1.2),
                resample_prob: float = 0.25) -> jax.Array:
    """Explore: perturb every hyperparameter of every row of ``x`` (see the module docstring).

    Args:
      key: PRNG key.
      x: ``f32[P, d]`` unit-cube points.
      space: the :class:`jaxhpo.Space` of ``x`` (kinds, bounds, log scales).
      factors: the two multiplicative factors, drawn with probability 1/2 each.
      resample_prob: per-hyperparameter probability of drawing it uniformly from the space
        instead, in ``[0, 1]``.

    Returns:
      ``f32[P, d]`` the explored points, in ``[0, 1]``.
    """
    d = check_space(space)
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must be f32[P, {d}], got shape {x.shape}")
    resample_prob = check_real(resample_prob, "resample_prob", 0.0, 1.0)
    if not isinstance(factors, (tuple, list)) or len(factors) != 2:
        raise ValueError(f"factors must be two positive numbers (down, up), got {factors!r}")
    down, up = (check_real(f, "factors", 0.0, low_open=True) for f in factors)
    c = _coords(space)
    k_dir, k_res, k_new = jax.random.split(key, 3)
    is_up = jax.random.bernoulli(k_dir, 0.5, x.shape)
    factor = jnp.where(is_up, up, down)
    lo, hi = jnp.asarray(c.low), jnp.asarray(c.high)
    # Log scale: the coordinate moves by log(factor) / log(high / low) (exact multiplication).
    span = jnp.where(c.log, jnp.log(hi) - jnp.log(lo), hi - lo)
    u_log = x + jnp.log(factor) / span
    # Linear Float: multiply the value, clip to the bounds.
    u_lin = (jnp.clip((lo + x * (hi - lo)) * factor, lo, hi) - lo) / (hi - lo)
    # Int: decode (round), multiply, round, clip, encode at the centre of the integer's bin.
    a, b = lo, hi
    t = jnp.where(c.log, jnp.exp(jnp.log(a) + jnp.clip(x, 0, 1) * span), a + jnp.clip(x, 0, 1)
                  * (b - a))
    v = jnp.clip(jnp.floor(t + 0.5), a + 0.5, b - 0.5)
    v = jnp.clip(jnp.round(v * factor), a + 0.5, b - 0.5)
    u_int = jnp.where(c.log, (jnp.log(v) - jnp.log(a)) / span, (v - a) / (b - a))
    # Categorical: move to the neighbouring choice.
    idx = jnp.clip(jnp.floor(jnp.clip(x, 0, 1) * c.k), 0, c.k - 1)
    idx = jnp.clip(idx + jnp.where(is_up, 1.0, -1.0), 0, c.k - 1)
    u_cat = (idx + 0.5) / c.k
    perturbed = jnp.select([(c.kind == FLOAT) & c.log, c.kind == FLOAT, c.kind == INT],
                           [u_log, u_lin, u_int], u_cat)
    resample = jax.random.bernoulli(k_res, resample_prob, x.shape)
    out = jnp.where(resample, jax.random.uniform(k_new, x.shape), perturbed)
    return jnp.clip(out, 0.0, 1.0)


@struct.dataclass
class PBTRecord:
    step: jax.Array  # i32[T] training step of each exploit/explore round
    src: jax.Array  # i32[T, P] member each slot copied in that round (itself if it did not)
    exploit: jax.Array  # bool[T, P] whether the slot exploited in that round
    x: jax.Array  # f32[T + 1, P, d] hyperparameters in force after each round (row 0: initial)
    count: jax.Array  # i32[] rounds recorded (rounds beyond T are dropped)


def pbt_record_init(x0: jax.Array, max_rounds: int) -> PBTRecord:
    """An empty schedule record for members starting with hyperparameters ``x0: f32[P, d]``."""
    t = check_int(max_rounds, "max_rounds", 1)
    x0 = jnp.asarray(x0, jnp.float32)
    if x0.ndim != 2:
        raise ValueError(f"x0 must be f32[P, d], got shape {x0.shape}")
    p, d = x0.shape
    return PBTRecord(step=jnp.zeros((t,), jnp.int32),
                     src=jnp.tile(jnp.arange(p, dtype=jnp.int32), (t, 1)),
                     exploit=jnp.zeros((t, p), bool),
                     x=jnp.zeros((t + 1, p, d), jnp.float32).at[0].set(x0),
                     count=jnp.zeros((), jnp.int32))


def pbt_record_update(record: PBTRecord, step, src, exploit, x) -> PBTRecord:
    """Append one round: at training ``step`` slot ``i`` copied ``src[i]`` (when ``exploit[i]``)
    and continues with hyperparameters ``x[i]``."""
    i = record.count
    return record.replace(step=record.step.at[i].set(step, mode="drop"),
                          src=record.src.at[i].set(src, mode="drop"),
                          exploit=record.exploit.at[i].set(exploit, mode="drop"),
                          x=record.x.at[i + 1].set(x, mode="drop"),
                          count=i + 1)


def pbt_lineage(record: PBTRecord, member: int) -> list[dict]:
    """The hyperparameter schedule of final member ``member`` (host-side, for reports).

    Follows the copy sources back through the recorded rounds. Returns the segments in time
    order, one per change of hyperparameters: ``{"step", "slot", "x", "copied_from"}`` means
    that from training step ``step`` on, the weights that end in ``member`` were trained in
    ``slot`` with hyperparameters ``x: f32[d]``, after copying slot ``copied_from``'s weights
    (``None`` for the initial segment, which starts at step 0).
    """
    rounds = int(min(int(record.count), record.step.shape[0]))
    step = np.asarray(record.step)
    src, exploit, xs = np.asarray(record.src), np.asarray(record.exploit), np.asarray(record.x)
    slot, out = int(member), []
    for t in range(rounds - 1, -1, -1):
        if exploit[t, slot]:
            out.append({"step": int(step[t]), "slot": slot, "x": xs[t + 1, slot],
                        "copied_from": int(src[t, slot])})
            slot = int(src[t, slot])
    out.append({"step": 0, "slot": slot, "x": xs[0, slot], "copied_from": None})
    return out[::-1]


def pbt_schedules(x0, events) -> dict[int, list[dict]]:
    """Every final member's schedule (:func:`pbt_lineage`) from the host-side event log.

    Args:
      x0: ``f32[P, d]`` hyperparameters before the first round.
      events: one ``(step, src, exploit, x)`` per round, as :func:`pbt_record_update` takes
        them (lists or arrays; ``jaxhpo.tune`` keeps this log and journals it).

    Returns:
      ``{member: lineage}`` for every member ``0..P-1``.
    """
    x0 = np.asarray(x0, np.float32)
    record = pbt_record_init(x0, max(1, len(events)))
    for step, src, exploit, x in events:
        record = pbt_record_update(record, step, np.asarray(src), np.asarray(exploit),
                                   np.asarray(x, np.float32))
    return {i: pbt_lineage(record, i) for i in range(x0.shape[0])}
