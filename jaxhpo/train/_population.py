"""A population of members trained in lock-step: a training program, vmapped and jitted.

The per-member functions come from a :class:`~jaxhpo.train.TrainingProgram` (a user's own code)
or from the built-in :class:`~jaxhpo.train.Trainer` (one implementation of the same protocol,
whose dataset is passed to the compiled programs as arguments).

Without static hyperparameters, all methods take and return stacked member states (leading axis
= population size ``P``) and are compiled once per ``P`` (``train`` once per distinct
``steps``/``eval_every``). Gathering, copying and refilling members keep the shapes, so they
never retrace.

With static hyperparameters (``space.static_names``), the state is a
:class:`~jaxhpo.train.GroupedState`: members are grouped by their static values, each group's
states stacked at a bucketed size (next power of two), and each group runs its own compiled
program, cached by ``(static values, bucket size)`` (see ``jaxhpo._groups``).

Scale: ``chunk_size`` trains the population in chunks with ``jax.lax.map(..., batch_size=...)``
when all members do not fit in memory at once; ``mesh`` shards the population axis across
devices (``jax.sharding.NamedSharding(mesh, PartitionSpec(axis))``), data replicated. Across
hosts, call ``jax.distributed.initialize()`` first and build the mesh from ``jax.devices()``:
the same code then spans every host's devices (see ``scripts/multihost_example.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxhpo import _groups
from jaxhpo import _hosts
from jaxhpo.train._grouped import GroupedState, Member, _GroupedOps, _is_key, _raw, _stack_host
from jaxhpo.train._program import TrainingProgram
from jaxhpo.train._trainer import MemberState, Trainer


def _shard_map(fn, mesh, in_specs, out_specs):
    """``jax.shard_map`` without replication checks (per-member code is independent)."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=False)
    from jax.experimental.shard_map import shard_map  # jax < 0.7

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


_bucket = _groups.bucket_size


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


class _Engine(NamedTuple):
    """Per-member functions as the engine calls them. ``data`` are device arrays shared by all
    members and passed to the compiled programs as arguments (not baked in as constants)."""

    init: Callable  # (key, hp) -> state
    train: Callable  # (state, hp, data, steps, eval_every) -> (state, curve)
    evaluate: Callable  # (state, hp, data, split) -> metrics
    data: tuple
    train_data: int  # how many leading data arrays ``train`` needs
    splits: tuple
    name: str


def _trainer_engine(tr: Trainer) -> _Engine:
    splits = ("train", "val") + (("test",) if len(tr.data.x_test) else ())
    return _Engine(tr.init,
                   lambda s, h, d, steps, ee: tr.train(s, h, steps, d, eval_every=ee),
                   lambda s, h, d, split: tr.evaluate(s, h, split, d),
                   tr.device_data(), 4, splits, "Trainer")


def _program_engine(p: TrainingProgram) -> _Engine:
    return _Engine(p.member_init,
                   lambda s, h, d, steps, ee: p.member_train(s, h, steps, ee),
                   lambda s, h, d, split: p.member_evaluate(s, h, split),
                   (), 0, p.split_names, f"training program {p.name!r}")


class Population(_GroupedOps):
    """``P`` members of a training program, trained at once.

    Args:
      program: a :class:`~jaxhpo.train.TrainingProgram` (your own ``init`` / ``step`` /
        ``evaluate``, e.g. from :func:`~jaxhpo.train.flax_program`) or a
        :class:`~jaxhpo.train.Trainer` (the built-in implementation).
      size: the population size ``P`` (static).
      space: the search space; needed for static hyperparameters (default: the Trainer's).
      chunk_size: process members ``chunk_size`` at a time (``lax.map`` over vmapped
        chunks, per device) to bound peak memory and keep each chunk's weights in cache; must
        divide the members per device. ``"auto"`` (default): 8 on a CPU (measured fastest on
        2 cores for 128-wide MLPs), all members at once on accelerators; ``None``: all at once.
        Static groups use it where it divides their bucket's members per device.
      mesh: a ``jax.sharding.Mesh`` whose ``mesh_axis`` shards the population (``size`` must
        be a multiple of its device count); ``"auto"`` (default) uses every device when there
        are several and they divide ``size``; ``None`` keeps everything on one device.
      mesh_axis: the mesh axis name for the population (default ``"pop"``).

    Hyperparameters: every method takes ``hp``, the whole population's decoded values
    ``space.decode(x)`` (``{name: array[P]}``). Traced parameters reach the program as
    per-member scalars. *Static* parameters (``space.static_names``) are read from ``hp`` on
    the host (categorical indices become their choices) and reach the program as plain Python
    values; each slot's static values decide its group. A member keeps its static values for
    life: ``train`` and ``evaluate`` check that ``hp`` agrees with the group each slot's member
    lives in, and only :meth:`init`, :meth:`replace` (fresh members), :meth:`gather` (PBT: a
    copied member brings its group) and :meth:`put` change a slot's group.

    State: without static parameters, the stacked member states (leading axis ``P``); with
    them, a :class:`GroupedState` (per group, states stacked at the group's bucket size). Treat
    it as opaque and use :meth:`take` / :meth:`put` for host copies of members.

    Example:
      >>> pop = Population(program, 64, space=space)
      >>> hp = space.decode(strategy_x)                       # {name: f32/i32[64]}
      >>> state = pop.init(jax.random.key(0), hp)
      >>> state, curve = pop.train(state, hp, steps=500, eval_every=100)
      >>> metrics = pop.evaluate(state, hp, "val")            # {"accuracy": f32[64], ...}
    """

    def __init__(self, program: TrainingProgram | Trainer, size: int, *, space=None,
                 chunk_size: int | str | None = "auto", mesh: Mesh | str | None = "auto",
                 mesh_axis: str = "pop"):
        if isinstance(program, Trainer):
            self.trainer, self.program = program, None
            self._eng = _trainer_engine(program)
            space = program.space if space is None else space
        elif isinstance(program, TrainingProgram):
            self.trainer, self.program = None, program
            self._eng = _program_engine(program)
        else:
            raise TypeError(f"program must be a jaxhpo.train.TrainingProgram (your own init / "
                            f"step / evaluate, see jaxhpo.train.flax_program) or a "
                            f"jaxhpo.train.Trainer, got {type(program).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size, self.space = size, space
        self.static_names = _groups.static_names(space)
        if isinstance(mesh, str):
            if mesh != "auto":
                raise ValueError(f"mesh must be a jax.sharding.Mesh, 'auto' or None, got "
                                 f"{mesh!r}")
            mesh = auto_mesh(size, mesh_axis)
        self._ndev = mesh.shape[mesh_axis] if mesh is not None else 1
        local = size // self._ndev
        if chunk_size == "auto":
            cpu = jax.default_backend() == "cpu"
            chunk_size = 8 if cpu and local > 8 and local % 8 == 0 else None
            self._auto_chunk = 8 if cpu else None
        elif chunk_size is not None and (isinstance(chunk_size, bool)
                                         or not isinstance(chunk_size, int) or chunk_size < 1
                                         or local % chunk_size):
            raise ValueError(f"chunk_size must be 'auto', None or a positive int dividing the "
                             f"{local} members per device, got {chunk_size!r}")
        else:
            self._auto_chunk = chunk_size
        self.chunk_size = chunk_size
        self.mesh, self.mesh_axis = mesh, mesh_axis
        if mesh is not None and size % self._ndev:
            raise ValueError(f"size={size} must be a multiple of the {self._ndev} devices on "
                             f"mesh axis {mesh_axis!r}")
        self._data = self._eng.data
        if mesh is not None:
            rep = NamedSharding(mesh, PartitionSpec())
            self._data = tuple(_hosts.put(a, rep) for a in self._data)
        self._init = jax.jit(self._init_impl)
        self._train = jax.jit(self._train_impl, static_argnames=("steps", "eval_every"))
        self._evaluate = jax.jit(self._evaluate_impl, static_argnames=("split",))
        self._gather = jax.jit(self._gather_impl)
        self._replace = jax.jit(self._replace_impl)
        self._take_rows = jax.jit(lambda state, idx: _raw(jax.tree.map(lambda a: a[idx], state)))
        self._put_rows = jax.jit(self._put_rows_impl)
        self._cache = _groups.CompileCache()  # static groups: (kind, static values, bucket)
        self._hp_spec = None

    @property
    def grouped(self) -> bool:
        """Whether members are grouped by static hyperparameters (state is a GroupedState)."""
        return bool(self.static_names)

    # ------------------------------------------------------------------ helpers
    def _map(self, fn, *args, shared=(), chunk="default"):
        """``fn(*member_args, *shared)`` for every member: vmapped (in chunks of
        ``chunk_size`` with ``lax.map``), each device on its own members when there is a mesh;
        ``shared`` (e.g. the data) is the same for all members."""
        chunk = self.chunk_size if chunk == "default" else chunk

        def local(shared, *a):
            one = lambda *b: fn(*b, *shared)
            n = jax.tree.leaves(a)[0].shape[0]
            if chunk is None or chunk >= n:
                return jax.vmap(one)(*a)
            return jax.lax.map(lambda b: one(*b), a, batch_size=chunk)

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
        if not isinstance(hp, Mapping):
            raise TypeError(f"hp must be a dict {{name: array[{self.size}]}} (space.decode(x)), "
                            f"got {type(hp).__name__}")
        for k, v in hp.items():
            if jnp.shape(v)[:1] != (self.size,):
                raise ValueError(f"hyperparameter {k!r} must have leading axis {self.size} "
                                 f"(one value per member), got shape {jnp.shape(v)}")

    def _check_split(self, split):
        if split not in self._eng.splits:
            hint = (" (this dataset has no test split: build it with Dataset.from_arrays(..., "
                    "x_test=..., y_test=...))" if split == "test" and self.trainer is not None
                    else "")
            raise ValueError(f"split must be one of {list(self._eng.splits)}, got "
                             f"{split!r}{hint}")

    def _explained(self, fn, hp, params=None):
        """Run ``fn()``; a tracer error inside the user's program becomes a TypeError naming
        the hyperparameters and the fix (jaxhpo._groups.explain_tracer_error)."""
        try:
            return fn()
        except Exception as e:
            if not _groups.is_tracer_error(e):
                raise
            raise _groups.explain_tracer_error(e, self.space, list(hp), self._probe(hp, params),
                                               where=f"the {self._eng.name}") from e

    def _probe(self, hp, params=None):
        """``probe(names)``: does one member trace with ``names`` given as Python values?"""
        eng, data = self._eng, self._data
        row = {n: np.asarray(v)[0] for n, v in hp.items()}
        params = params or {}

        def probe(names):
            concrete = {n: row[n].item() for n in names}

            def one(key, h, data):
                h = {n: params.get(n, concrete.get(n, h.get(n))) for n in row}
                s = eng.init(key, h)
                s, _ = eng.train(s, h, data[:eng.train_data], 1, 1)
                return eng.evaluate(s, h, data, "val")
            h = {n: jnp.asarray(v) for n, v in row.items() if n not in concrete}
            try:
                jax.eval_shape(one, jax.random.key(0), h, data)
                return True
            except Exception as e:
                return not _groups.is_tracer_error(e)
        return probe

    def place(self, tree):
        """Put a per-member pytree (leading axis ``P``) on the mesh (no-op without a mesh);
        a :class:`GroupedState` has each group placed."""
        if self.mesh is None:
            return tree
        spec = NamedSharding(self.mesh, PartitionSpec(self.mesh_axis))
        return _hosts.put(tree, spec)

    # ------------------------------------------------------------------ implementations
    def _init_impl(self, keys, hp):
        return self._shard(self._map(self._eng.init, keys, hp))

    def _train_impl(self, state, hp, data, steps, eval_every):
        eng = self._eng
        fn = lambda s, h, *d: eng.train(s, h, d, steps, eval_every)
        return self._shard(self._map(fn, state, hp, shared=data[:eng.train_data]))

    def _evaluate_impl(self, state, hp, data, split):
        fn = lambda s, h, *d: self._eng.evaluate(s, h, d, split)
        return self._map(fn, state, hp, shared=data)

    def _gather_impl(self, state, idx):
        return self._shard(jax.tree.map(lambda a: a[idx], state))

    def _replace_impl(self, state, slots, keys, hp):
        fresh = self._map(self._eng.init, keys, hp)
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
    def init(self, key: jax.Array, hp: dict[str, jax.Array]):
        """Fresh members; member ``i`` uses ``split(key, P)[i]`` (init, data, dropout)."""
        self._check_hp(hp)
        if self.grouped:
            return self._g_init(key, hp)
        return self._explained(lambda: self._init(self.place(jax.random.split(key, self.size)),
                                                  self.place(hp)), hp)

    def train(self, state, hp, steps: int, *, eval_every: int | None = None):
        """Train every member ``steps`` more steps; returns ``(state, curve)`` where
        ``curve`` is ``{metric: f32[P, steps // eval_every]}`` (validation) or ``{}``."""
        self._check_hp(hp)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1
                                       or steps % eval_every):
            raise ValueError(f"eval_every must be a positive int dividing steps={steps}, got "
                             f"{eval_every!r}")
        if self.grouped:
            return self._g_train(state, hp, steps, eval_every)
        return self._explained(lambda: self._train(state, self.place(hp), self._data,
                                                   steps=steps, eval_every=eval_every), hp)

    def evaluate(self, state, hp, split: str = "val") -> dict[str, jax.Array]:
        """Per-member metrics ``{name: f32[P]}`` on ``split`` (``"val"``; a Trainer also has
        ``"train"`` and ``"test"``, a TrainingProgram its ``splits``)."""
        self._check_hp(hp)
        self._check_split(split)
        if self.grouped:
            return self._g_evaluate(state, hp, split)
        return self._explained(lambda: self._evaluate(state, self.place(hp), self._data,
                                                      split=split), hp)

    def gather(self, state, idx):
        """Member ``j`` of the result is member ``idx[j]`` of ``state`` (``idx: i32[P]``).

        Keeping a subset and PBT copying are both gathers: to copy members ``src`` onto
        ``dst`` use :meth:`copy`. With static groups a copied member brings its group (its
        static values): pass ``hp`` with slot ``j``'s static values equal to ``idx[j]``'s next.
        """
        idx = np.asarray(idx)
        if idx.shape != (self.size,):
            raise ValueError(f"idx must have shape ({self.size},), got {idx.shape}")
        if ((idx < 0) | (idx >= self.size)).any():
            raise ValueError(f"idx must be in [0, {self.size}), got {idx.tolist()}")
        if self.grouped:
            return self._g_gather(state, idx.astype(np.int64))
        return self._gather(state, jnp.asarray(idx, jnp.int32))

    def copy(self, state, src, dst):
        """Copy weights and optimizer state of members ``src[k]`` onto ``dst[k]`` (PBT)."""
        src, dst = np.asarray(src, np.int32), np.asarray(dst, np.int32)
        if src.shape != dst.shape or src.ndim != 1:
            raise ValueError("src and dst must be 1-D index arrays of equal length")
        idx = np.arange(self.size, dtype=np.int32)
        idx[dst] = src
        return self.gather(state, idx)

    def replace(self, state, slots, key: jax.Array, hp):
        """Fresh members (new weights, optimizer state, streams) in the ``slots`` (``bool[P]``)
        initialized with ``hp`` (full-population arrays; only the slots' rows are used). With
        static groups, a refilled slot joins the group of its new static values."""
        slots = np.asarray(slots) if self.grouped else jnp.asarray(slots, bool)
        if slots.shape != (self.size,):
            raise ValueError(f"slots must be bool[{self.size}], got shape {slots.shape}")
        self._check_hp(hp)
        if self.grouped:
            return self._g_replace(state, slots.astype(bool), key, hp)
        return self._explained(lambda: self._replace(
            state, self.place(slots), self.place(jax.random.split(key, self.size)),
            self.place(hp)), hp)

    def take(self, state, slots) -> list[Member]:
        """Host copies of the members in ``slots`` (a sequence of slot indices), in that order.

        Each is a :class:`Member` of numpy arrays (PRNG keys as raw key data) with its static
        values, e.g. to park a trial paused at a rung or to checkpoint; :meth:`put` writes it
        back into any slot. Only those members are transferred; compiled once per power-of-two
        count of slots (per group).
        """
        slots = self._check_slots(np.asarray(slots).reshape(-1).tolist(), "take")
        if not slots:
            return []
        if self.grouped:
            return self._g_take(state, slots)
        idx = np.zeros(_bucket(len(slots)), np.int32)
        idx[:len(slots)] = slots
        rows = _hosts.to_host(self._take_rows(state, idx))
        return [Member(jax.tree.map(lambda a: np.array(a[k]), rows)) for k in range(len(slots))]

    def put(self, state, members: Mapping[int, Member]):
        """``state`` with ``members[slot]`` (from :meth:`take`) written into each ``slot``.

        The other slots are unchanged; with static groups a put member joins its own group
        (``member.static``). Compiled once per power-of-two count of members (per group).
        """
        if not isinstance(members, Mapping):
            raise TypeError(f"members must be a mapping {{slot: Member}}, got "
                            f"{type(members).__name__}")
        slots = self._check_slots(list(members), "put")
        if not slots:
            return state
        for i in slots:
            if not isinstance(members[i], Member):
                raise TypeError(f"put: members[{i}] must be a jaxhpo.train.Member (from "
                                f"Population.take), got {type(members[i]).__name__}")
        if self.grouped:
            return self._g_put(state, {i: members[i] for i in slots})
        want = jax.tree.structure(_raw(jax.tree.map(lambda a: a[0], state)))
        for i in slots:
            if jax.tree.structure(members[i].state) != want:
                raise ValueError(f"put: members[{i}] does not have this population's member "
                                 f"structure")
        n = _bucket(len(slots))
        idx = np.full(n, self.size, np.int32)  # out of range: dropped
        idx[:len(slots)] = slots
        rows = _stack_host([members[i].state for i in slots], n)
        return self._put_rows(state, idx, rows)
