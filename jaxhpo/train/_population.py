"""A population of members trained in lock-step: the Trainer's functions, vmapped and jitted.

All methods take and return stacked member states (leading axis = population size ``P``) and
are compiled once per ``P`` (``train`` once per distinct ``steps``/``eval_every``). Gathering,
copying and refilling members keep the shapes, so they never retrace.

Scale: ``chunk_size`` trains the population in chunks with ``jax.lax.map(..., batch_size=...)``
when all members do not fit in memory at once; ``mesh`` shards the population axis across
devices (``jax.sharding.NamedSharding(mesh, PartitionSpec(axis))``), data replicated. Across
hosts, call ``jax.distributed.initialize()`` first and build the mesh from ``jax.devices()``:
the same code then spans every host's devices (see ``scripts/multihost_example.py``).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxhpo.train._trainer import MemberState, Trainer


def _shard_map(fn, mesh, in_specs, out_specs):
    """``jax.shard_map`` without replication checks (per-member code is independent)."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=False)
    from jax.experimental.shard_map import shard_map  # jax < 0.7

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


@struct.dataclass
class Member:
    """One member's state on the host: what :meth:`Population.take` returns and
    :meth:`Population.put` accepts (e.g. a trial paused at a rung, or a checkpoint).

    Attributes:
      state: the member's state as numpy arrays, without the population axis; PRNG keys are
        stored as their raw key data (``jax.random.key_data``), so every leaf is a plain array.
      static: the member's static hyperparameter values (the group it belongs to; ``()`` when
        the space has no static parameters). Not a pytree leaf.
    """

    state: Any
    static: tuple = struct.field(pytree_node=False, default=())


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _raw(tree):
    """PRNG key leaves -> their raw ``uint32`` key data (host- and numpy-friendly)."""
    return jax.tree.map(lambda a: jax.random.key_data(a) if _is_key(a) else a, tree)


def _bucket(n: int) -> int:
    """The next power of two ``>= n``: padded sizes keep the number of compilations ~log n."""
    return 1 << max(0, int(n) - 1).bit_length()


def auto_mesh(size: int, axis: str = "pop") -> Mesh | None:
    """A one-axis mesh over every device when there are several and they divide ``size``.

    On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>`` (set before JAX
    starts) makes each core a device; XLA runs the small matmuls of one program on one core, so
    sharding the population over the cores nearly doubles throughput on a 2-core machine.
    """
    devices = jax.devices()
    if len(devices) < 2 or size % len(devices):
        return None
    return Mesh(np.array(devices), (axis,))


class Population:
    """``P`` members of a :class:`Trainer`, trained at once.

    Args:
      trainer: the per-member functions.
      size: the population size ``P`` (static).
      chunk_size: process members ``chunk_size`` at a time (``lax.map`` over vmapped
        chunks, per device) to bound peak memory and keep each chunk's weights in cache; must
        divide the members per device. ``"auto"`` (default): 8 on a CPU (measured fastest on
        2 cores for 128-wide MLPs), all members at once on accelerators; ``None``: all at once.
      mesh: a ``jax.sharding.Mesh`` whose ``mesh_axis`` shards the population (``size`` must
        be a multiple of its device count); ``"auto"`` (default) uses every device when there
        are several and they divide ``size``; ``None`` keeps everything on one device.
      mesh_axis: the mesh axis name for the population (default ``"pop"``).

    Example:
      >>> pop = Population(trainer, 64)
      >>> hp = space.decode(strategy_x)                       # {name: f32/i32[64]}
      >>> state = pop.init(jax.random.key(0), hp)
      >>> state, curve = pop.train(state, hp, steps=500, eval_every=100)
      >>> metrics = pop.evaluate(state, hp, "val")            # {"accuracy": f32[64], ...}
    """

    def __init__(self, trainer: Trainer, size: int, *, chunk_size: int | str | None = "auto",
                 mesh: Mesh | str | None = "auto", mesh_axis: str = "pop"):
        if not isinstance(trainer, Trainer):
            raise TypeError(f"trainer must be a jaxhpo.train.Trainer, got "
                            f"{type(trainer).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.trainer, self.size = trainer, size
        if isinstance(mesh, str):
            if mesh != "auto":
                raise ValueError(f"mesh must be a jax.sharding.Mesh, 'auto' or None, got "
                                 f"{mesh!r}")
            mesh = auto_mesh(size, mesh_axis)
        local = size // (mesh.shape[mesh_axis] if mesh is not None else 1)
        if chunk_size == "auto":
            cpu = jax.default_backend() == "cpu"
            chunk_size = 8 if cpu and local > 8 and local % 8 == 0 else None
        if chunk_size is not None and (isinstance(chunk_size, bool)
                                       or not isinstance(chunk_size, int) or chunk_size < 1
                                       or local % chunk_size):
            raise ValueError(f"chunk_size must be 'auto', None or a positive int dividing the "
                             f"{local} members per device, got {chunk_size!r}")
        self.chunk_size = chunk_size
        self.mesh, self.mesh_axis = mesh, mesh_axis
        if mesh is not None:
            n = mesh.shape[mesh_axis]
            if size % n:
                raise ValueError(f"size={size} must be a multiple of the {n} devices on mesh "
                                 f"axis {mesh_axis!r}")
        self._data = trainer.device_data()
        if mesh is not None:
            rep = NamedSharding(mesh, PartitionSpec())
            self._data = tuple(jax.device_put(a, rep) for a in self._data)
        self._init = jax.jit(self._init_impl)
        self._train = jax.jit(self._train_impl, static_argnames=("steps", "eval_every"))
        self._evaluate = jax.jit(self._evaluate_impl, static_argnames=("split",))
        self._gather = jax.jit(self._gather_impl)
        self._replace = jax.jit(self._replace_impl)
        self._take_rows = jax.jit(lambda state, idx: _raw(jax.tree.map(lambda a: a[idx], state)))
        self._put_rows = jax.jit(self._put_rows_impl)

    # ------------------------------------------------------------------ helpers
    def _map(self, fn, *args, shared=()):
        """``fn(*member_args, *shared)`` for every member: vmapped (in chunks of
        ``chunk_size`` with ``lax.map``), each device on its own members when there is a mesh;
        ``shared`` (e.g. the data) is the same for all members."""
        def local(shared, *a):
            one = lambda *b: fn(*b, *shared)
            n = jax.tree.leaves(a)[0].shape[0]
            if self.chunk_size is None or self.chunk_size >= n:
                return jax.vmap(one)(*a)
            return jax.lax.map(lambda b: one(*b), a, batch_size=self.chunk_size)

        if self.mesh is None:
            return local(shared, *args)
        spec = PartitionSpec(self.mesh_axis)
        return _shard_map(local, self.mesh, (PartitionSpec(),) + (spec,) * len(args),
                          spec)(tuple(shared), *args)

    def _shard(self, tree):
        if self.mesh is None:
            return tree
        spec = NamedSharding(self.mesh, PartitionSpec(self.mesh_axis))
        return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, spec), tree)

    def _check_hp(self, hp):
        for k, v in hp.items():
            if jnp.shape(v)[:1] != (self.size,):
                raise ValueError(f"hyperparameter {k!r} must have leading axis {self.size} "
                                 f"(one value per member), got shape {jnp.shape(v)}")

    def place(self, tree):
        """Put a per-member pytree (leading axis ``P``) on the mesh (no-op without a mesh)."""
        if self.mesh is None:
            return tree
        spec = NamedSharding(self.mesh, PartitionSpec(self.mesh_axis))
        return jax.device_put(tree, spec)

    # ------------------------------------------------------------------ implementations
    def _init_impl(self, keys, hp):
        return self._shard(self._map(self.trainer.init, keys, hp))

    def _train_impl(self, state, hp, data, steps, eval_every):
        fn = lambda s, h, *d: self.trainer.train(s, h, steps, d, eval_every=eval_every)
        return self._shard(self._map(fn, state, hp, shared=data[:4]))

    def _evaluate_impl(self, state, hp, data, split):
        fn = lambda s, h, *d: self.trainer.evaluate(s, h, split, d)
        return self._map(fn, state, hp, shared=data)

    def _gather_impl(self, state, idx):
        return self._shard(jax.tree.map(lambda a: a[idx], state))

    def _replace_impl(self, state, slots, keys, hp):
        fresh = self._map(self.trainer.init, keys, hp)
        pick = lambda new, old: jnp.where(slots.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
        return self._shard(jax.tree.map(pick, fresh, state))

    def _put_rows_impl(self, state, idx, rows):
        def put(old, new):
            if _is_key(old):
                new = jax.random.wrap_key_data(new, impl=jax.random.key_impl(old))
            return old.at[idx].set(new.astype(old.dtype), mode="drop")
        return self._shard(jax.tree.map(put, state, rows))

    def _check_slots(self, slots, what):
        out = []
        for i in slots:
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) \
                    or not 0 <= i < self.size:
                raise ValueError(f"{what}: slot {i!r} is not an int in [0, {self.size})")
            out.append(int(i))
        if len(set(out)) != len(out):
            raise ValueError(f"{what}: slots must be distinct, got {out}")
        return out

    # ------------------------------------------------------------------ public API
    def init(self, key: jax.Array, hp: dict[str, jax.Array]) -> MemberState:
        """Fresh members; member ``i`` uses ``split(key, P)[i]`` (init, data, dropout)."""
        self._check_hp(hp)
        return self._init(self.place(jax.random.split(key, self.size)), self.place(hp))

    def train(self, state: MemberState, hp, steps: int, *, eval_every: int | None = None):
        """Train every member ``steps`` more steps; returns ``(state, curve)`` where
        ``curve`` is ``{metric: f32[P, steps // eval_every]}`` (validation) or ``{}``."""
        self._check_hp(hp)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1
                                       or steps % eval_every):
            raise ValueError(f"eval_every must be a positive int dividing steps={steps}, got "
                             f"{eval_every!r}")
        return self._train(state, self.place(hp), self._data, steps=steps,
                           eval_every=eval_every)

    def evaluate(self, state: MemberState, hp, split: str = "val") -> dict[str, jax.Array]:
        """Per-member metrics ``{name: f32[P]}`` on ``split`` (see ``Trainer.evaluate``)."""
        self._check_hp(hp)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return self._evaluate(state, self.place(hp), self._data, split=split)

    def gather(self, state: MemberState, idx) -> MemberState:
        """Member ``j`` of the result is member ``idx[j]`` of ``state`` (``idx: i32[P]``).

        Keeping a subset and PBT copying are both gathers: to copy members ``src`` onto
        ``dst`` use :meth:`copy`.
        """
        idx = jnp.asarray(idx, jnp.int32)
        if idx.shape != (self.size,):
            raise ValueError(f"idx must have shape ({self.size},), got {idx.shape}")
        return self._gather(state, idx)

    def copy(self, state: MemberState, src, dst) -> MemberState:
        """Copy weights and optimizer state of members ``src[k]`` onto ``dst[k]`` (PBT)."""
        src, dst = np.asarray(src, np.int32), np.asarray(dst, np.int32)
        if src.shape != dst.shape or src.ndim != 1:
            raise ValueError("src and dst must be 1-D index arrays of equal length")
        idx = np.arange(self.size, dtype=np.int32)
        idx[dst] = src
        return self.gather(state, idx)

    def replace(self, state: MemberState, slots, key: jax.Array, hp) -> MemberState:
        """Fresh members (new weights, optimizer state, streams) in the ``slots`` (``bool[P]``)
        initialized with ``hp`` (full-population arrays; only the slots' rows are used)."""
        slots = jnp.asarray(slots, bool)
        if slots.shape != (self.size,):
            raise ValueError(f"slots must be bool[{self.size}], got shape {slots.shape}")
        self._check_hp(hp)
        return self._replace(state, self.place(slots), self.place(jax.random.split(key,
                                                                                    self.size)),
                             self.place(hp))

    def take(self, state: MemberState, slots) -> list[Member]:
        """Host copies of the members in ``slots`` (a sequence of slot indices), in that order.

        Each is a :class:`Member` of numpy arrays (PRNG keys as raw key data), e.g. to park a
        trial paused at a rung or to checkpoint; :meth:`put` writes it back into any slot.
        Only those members are transferred; compiled once per power-of-two count of slots.
        """
        slots = self._check_slots(np.asarray(slots).reshape(-1).tolist(), "take")
        if not slots:
            return []
        idx = np.zeros(_bucket(len(slots)), np.int32)
        idx[:len(slots)] = slots
        rows = jax.device_get(self._take_rows(state, idx))
        return [Member(jax.tree.map(lambda a: np.array(a[k]), rows)) for k in range(len(slots))]

    def put(self, state: MemberState, members: Mapping[int, Member]) -> MemberState:
        """``state`` with ``members[slot]`` (from :meth:`take`) written into each ``slot``.

        The other slots are unchanged. Compiled once per power-of-two count of members.
        """
        if not isinstance(members, Mapping):
            raise TypeError(f"members must be a mapping {{slot: Member}}, got "
                            f"{type(members).__name__}")
        slots = self._check_slots(list(members), "put")
        if not slots:
            return state
        want = jax.tree.structure(_raw(jax.tree.map(lambda a: a[0], state)))
        for i in slots:
            m = members[i]
            if not isinstance(m, Member):
                raise TypeError(f"put: members[{i}] must be a jaxhpo.train.Member (from "
                                f"Population.take), got {type(m).__name__}")
            if jax.tree.structure(m.state) != want:
                raise ValueError(f"put: members[{i}] does not have this population's member "
                                 f"structure")
        n = _bucket(len(slots))
        idx = np.full(n, self.size, np.int32)  # out of range: dropped
        idx[:len(slots)] = slots

        def stack(*leaves):
            out = np.zeros((n,) + np.shape(leaves[0]), np.asarray(leaves[0]).dtype)
            out[:len(leaves)] = np.stack([np.asarray(a) for a in leaves])
            return out
        rows = jax.tree.map(stack, *[members[i].state for i in slots])
        return self._put_rows(state, idx, rows)
