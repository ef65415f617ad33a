"""The strategy adapter of :func:`jaxhpo.tune`: batched ``ask``/``tell`` behind a one-at-a-time
interface.

A scheduler starts trials one by one as slots free up; a strategy asks and tells whole
populations. The proposer asks a batch of ``strategy.population_size`` configurations when its
queue is empty and tells a batch (in ask order) once every one of its trials has reported a
value (the value it had when it first left its slot), so model-based strategies learn from
low-fidelity results instead of waiting for trials that may never be promoted. A strategy built
with ``num_constraints=k`` is told each batch's constraint values ``f32[n, k]`` too (NaN, i.e.
violated, for a trial that reported none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jaxhpo import _run
from jaxhpo._journal import decode_state, encode, encode_state
from jaxhpo._strategy import Strategy


@dataclass
class Batch:
    """One ``ask``'s proposals and what is known of them so far."""

    x: np.ndarray  # f32[n, d]
    fitness: np.ndarray  # f32[n], NaN until told
    waiting: set[int] = field(default_factory=set)  # members without a value yet
    constraints: np.ndarray | None = None  # f32[n, k] (k = strategy.num_constraints), NaN


class Proposer:
    """Hands out ``(x f32[d], generation, member)`` one at a time; see the module docstring.

    Asks use the run layer's key schedule: batch ``g`` is asked with ``ask_keys(k_run, g)``.
    """

    def __init__(self, strategy: Strategy, key: jax.Array):
        self.strategy = strategy
        k_init, self.k_run = _run.run_keys(key)
        self.state = strategy.init(k_init)
        self._ask, self._tell = jax.jit(strategy.ask), jax.jit(strategy.tell)
        self.asked = 0  # batches asked
        self.told = 0  # batches told (in order)
        self.queue: list[tuple[int, int]] = []  # (generation, member) not yet handed out
        self.batches: dict[int, Batch] = {}

    def next(self) -> tuple[np.ndarray, int, int]:
        """The next configuration ``(x, generation, member)``."""
        if not self.queue:
            k_ask, _ = _run.ask_keys(self.k_run, self.asked)
            x, self.state = self._ask(k_ask, self.state)
            n = self.strategy.population_size
            self.batches[self.asked] = Batch(
                np.asarray(x), np.full(n, np.nan, np.float32), set(range(n)),
                np.full((n, self.strategy.num_constraints), np.nan, np.float32))
            self.queue = [(self.asked, i) for i in range(n)]
            self.asked += 1
        g, i = self.queue.pop(0)
        return self.batches[g].x[i], g, i

    def result(self, generation: int, member: int, fitness: float,
               constraints=None) -> None:
        """Record a (minimized) fitness and the trial's constraint values (as returned,
        feasible when ``<= 0``; used when the strategy was built with ``num_constraints``);
        tell every batch that is complete, in order."""
        batch = self.batches.get(generation)
        if batch is None or member not in batch.waiting:
            return
        batch.fitness[member] = fitness
        k = self.strategy.num_constraints
        if k and constraints is not None:
            batch.constraints[member] = np.asarray(constraints, np.float32)[:k]
        batch.waiting.discard(member)
        while self.told in self.batches and not self.batches[self.told].waiting:
            done = self.batches.pop(self.told)
            self.state = _run.reserve(self.strategy, self.state, self.told + 1)
            if k:
                self.state = self._tell(self.state, jnp.asarray(done.x),
                                        jnp.asarray(done.fitness), jnp.asarray(done.constraints))
            else:
                self.state = self._tell(self.state, jnp.asarray(done.x),
                                        jnp.asarray(done.fitness))
            self.told += 1

    def to_record(self) -> dict:
        return {"asked": self.asked, "told": self.told, "queue": encode(self.queue),
                "batches": encode({g: (b.x, b.fitness, sorted(b.waiting))
                                   + ((b.constraints,) if self.strategy.num_constraints else ())
                                   for g, b in self.batches.items()}),
                "state": encode_state(self.state)}

    def load(self, rec: dict) -> None:
        from jaxhpo._journal import decode

        self.asked, self.told = rec["asked"], rec["told"]
        self.queue = [tuple(q) for q in decode(rec["queue"])]
        k = self.strategy.num_constraints
        self.batches = {}
        for g, (x, f, w, *c) in decode(rec["batches"]).items():  # c: with constraints only
            c = np.asarray(c[0], np.float32) if c else np.full((len(f), k), np.nan, np.float32)
            self.batches[g] = Batch(np.asarray(x, np.float32), np.asarray(f, np.float32), set(w),
                                    c)
        template = _run.reserve(self.strategy, self.state, self.told)
        self.state = decode_state(rec["state"], template)
