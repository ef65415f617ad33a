"""Static groups: a population's members grouped by their static hyperparameter values.

Each group's member states are stacked at a bucketed size (next power of two, capped at the
population size) and run by the group's own compiled program, cached by
``(program kind, static values, bucket size)`` in a :class:`jaxhpo._groups.CompileCache`.
Moving members (PBT gather, refills, parking) rebuilds the canonical layout: groups in order of
first appearance over the slots, each group's rows in slot order, dummies copying row 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxhpo import _groups


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


def _stack_host(trees, n):
    """Stack per-member numpy pytrees along a new axis 0, zero-padded to ``n`` rows."""
    def stack(*leaves):
        first = np.asarray(leaves[0])
        out = np.zeros((n,) + first.shape, first.dtype)
        out[:len(leaves)] = np.stack([np.asarray(a) for a in leaves])
        return out
    return jax.tree.map(stack, *trees)


@jax.tree_util.register_pytree_node_class
class GroupedState:
    """A population's state grouped by static hyperparameter values.

    ``groups[g]`` stacks the members whose static values are ``statics[g]`` along axis 0 at the
    group's bucket size (rows past the group's members are dummies); slot ``i``'s member is row
    ``slot_row[i]`` of group ``slot_group[i]``. A pytree whose leaves are the groups' arrays and
    whose layout is static (``jax.tree.map`` and ``jax.block_until_ready`` work on it).
    """

    def __init__(self, groups, statics, slot_group, slot_row):
        self.groups = tuple(groups)
        self.statics = tuple(statics)
        self.slot_group = tuple(int(g) for g in slot_group)
        self.slot_row = tuple(int(r) for r in slot_row)

    def tree_flatten(self):
        return self.groups, (self.statics, self.slot_group, self.slot_row)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children, *aux)

    @property
    def size(self) -> int:
        return len(self.slot_group)

    @property
    def values(self) -> list[tuple]:
        """Each slot's static values."""
        return [self.statics[g] for g in self.slot_group]

    def rows_of(self, g: int) -> np.ndarray:
        """The slots of group ``g`` in row order."""
        slots = [i for i, gg in enumerate(self.slot_group) if gg == g]
        return np.asarray(sorted(slots, key=lambda i: self.slot_row[i]), np.int64)

    def member(self, i: int):
        """Slot ``i``'s member state (device arrays, no population axis)."""
        return jax.tree.map(lambda a: a[self.slot_row[i]], self.groups[self.slot_group[i]])

    def __repr__(self):
        sizes = ", ".join(f"{s}: {len(self.rows_of(g))}/{jax.tree.leaves(self.groups[g])[0].shape[0]}"
                          for g, s in enumerate(self.statics))
        return f"GroupedState(P={self.size}, groups {{{sizes}}})"


def _rows(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _assemble(a, b, idx):
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y])[idx], a, b)


_rows_jit = jax.jit(_rows)
_assemble_jit = jax.jit(_assemble)
_take_jit = jax.jit(lambda tree, idx: _raw(_rows(tree, idx)))


class _GroupedOps:
    """Population methods for static groups (mixed into :class:`Population`)."""

    # ------------------------------------------------------------------ layout
    def _values(self, hp) -> list[tuple]:
        return _groups.static_values_of_hp(self.space, hp, self.size)

    def _layout(self, values) -> list[_groups.Group]:
        """Groups for ``values``. A group's bucket never shrinks below the largest it has had
        in this population: as slots are refilled group sizes wander (4, 7, 3, 9 ...), and
        each new (static values, bucket) pair would compile the train, evaluate and row-moving
        programs again; a sticky bucket costs at most the padding up to that size."""
        groups = _groups.group_values(values, self.static_names, cap=self.size,
                                      multiple=self._ndev)
        floor = self.__dict__.setdefault("_bucket_floor", {})
        out = []
        for g in groups:
            b = max(g.bucket, floor.get(g.static, 0))
            floor[g.static] = b
            out.append(g._replace(bucket=b))
        return out

    @staticmethod
    def _slot_maps(groups, size):
        slot_group, slot_row = [0] * size, [0] * size
        for g, grp in enumerate(groups):
            for r, i in enumerate(grp.rows):
                slot_group[i], slot_row[i] = g, r
        return slot_group, slot_row

    def _state(self, trees, groups) -> GroupedState:
        sg, sr = self._slot_maps(groups, self.size)
        return GroupedState(trees, [g.static for g in groups], sg, sr)

    def _groups_of(self, state: GroupedState) -> list[_groups.Group]:
        if not isinstance(state, GroupedState) or state.size != self.size:
            raise TypeError(f"state must be this population's GroupedState (from init, train, "
                            f"replace, ...), got {type(state).__name__}")
        return [_groups.Group(s, dict(zip(self.static_names, s)), state.rows_of(g),
                              jax.tree.leaves(state.groups[g])[0].shape[0])
                for g, s in enumerate(state.statics)]

    def _check_values(self, state: GroupedState, hp):
        for i, (want, got) in enumerate(zip(state.values, self._values(hp))):
            if want != got:
                raise ValueError(
                    f"slot {i}: hp gives static values {dict(zip(self.static_names, got))} but "
                    f"the member in that slot has {dict(zip(self.static_names, want))}; a "
                    f"member keeps its static values (its shapes and code) for life: refill "
                    f"the slot with replace(), copy another member into it with gather(), or "
                    f"put() a parked one")

    def _traced(self, hp, idx):
        st = set(self.static_names)
        return {n: jnp.asarray(v)[idx] for n, v in hp.items() if n not in st}

    def _chunk(self, bucket):
        local = bucket // self._ndev
        c = self._auto_chunk
        return c if c is not None and local > c and local % c == 0 else None

    def _merge(self, h, params, order):
        return {n: params[n] if n in params else h[n] for n in order}

    def _group_fn(self, kind, g: _groups.Group, order):
        """The compiled, vmapped program ``kind`` for group ``g`` (cached by static values and
        bucket size; the static values are Python constants inside it)."""
        eng, params, chunk = self._eng, dict(g.params), self._chunk(g.bucket)
        key = (kind, g.static, g.bucket, tuple(order))
        if kind == "init":
            def build():
                one = lambda k, h: eng.init(k, self._merge(h, params, order))
                return lambda keys, h: self._shard(self._map(one, keys, h, chunk=chunk))
            return self._cache(key, build)
        if kind == "train":
            def build():
                def run(state, h, data, steps, eval_every):
                    one = lambda s, hh, *d: eng.train(s, self._merge(hh, params, order), d,
                                                      steps, eval_every)
                    return self._shard(self._map(one, state, h, shared=data[:eng.train_data],
                                                 chunk=chunk))
                return run
            return self._cache(key, build, static_argnames=("steps", "eval_every"))

        def build():
            def run(state, h, data, split):
                one = lambda s, hh, *d: eng.evaluate(s, self._merge(hh, params, order), d, split)
                return self._map(one, state, h, shared=data, chunk=chunk)
            return run
        return self._cache(key, build, static_argnames=("split",))

    def _init_group(self, g, keys, hp, order):
        idx = jnp.asarray(g.padded)
        fn = self._group_fn("init", g, order)
        return self._explained(lambda: fn(self.place(keys[idx]),
                                          self.place(self._traced(hp, idx))), hp, g.params)

    def _scatter(self, parts):
        """``[(group, {metric: [bucket, ...]})]`` -> ``{metric: [P, ...]}`` in slot order."""
        rows = np.concatenate([g.rows for g, _ in parts])
        inv = jnp.asarray(np.argsort(rows))
        names = list(parts[0][1])
        for g, m in parts:
            if list(m) != names:
                raise ValueError(f"every group must report the same metrics; group {g.params} "
                                 f"reports {sorted(m)}, another {sorted(names)}")
        return {k: jnp.concatenate([m[k][:len(g.rows)] for g, m in parts])[inv] for k in names}

    # ------------------------------------------------------------------ methods
    def _g_init(self, key, hp):
        groups = self._layout(self._values(hp))
        keys = jax.random.split(key, self.size)
        order = tuple(hp)
        self._hp_spec = {n: jax.ShapeDtypeStruct((), jnp.asarray(v).dtype) for n, v in hp.items()
                         if n not in self.static_names}
        trees = [self._init_group(g, keys, hp, order) for g in groups]
        return self._state(trees, groups)

    def _g_train(self, state, hp, steps, eval_every):
        groups = self._groups_of(state)
        self._check_values(state, hp)
        order, trees, parts = tuple(hp), [], []
        for g, tree in zip(groups, state.groups):
            fn = self._group_fn("train", g, order)
            h = self.place(self._traced(hp, jnp.asarray(g.padded)))
            t, c = self._explained(lambda: fn(tree, h, self._data, steps=steps,
                                              eval_every=eval_every), hp, g.params)
            trees.append(t)
            parts.append((g, c))
        curve = self._scatter(parts) if eval_every else {}
        return GroupedState(trees, state.statics, state.slot_group, state.slot_row), curve

    def _g_evaluate(self, state, hp, split):
        groups = self._groups_of(state)
        self._check_values(state, hp)
        order, parts = tuple(hp), []
        for g, tree in zip(groups, state.groups):
            fn = self._group_fn("evaluate", g, order)
            h = self.place(self._traced(hp, jnp.asarray(g.padded)))
            parts.append((g, self._explained(lambda: fn(tree, h, self._data, split=split), hp,
                                             g.params)))
        return self._scatter(parts)

    def _rebuild(self, state, values, sources):
        """The canonical layout for ``values`` (one static tuple per slot), each new group's
        rows taken from ``sources(group) -> [(tree, {slot: row})]``: slots not listed come
        from the old group holding them (``state``)."""
        old = self._groups_of(state)
        old_index = {g.static: k for k, g in enumerate(old)}
        trees = []
        groups = self._layout(values)
        for g in groups:
            extra = sources(g)  # (tree, {slot: row in tree}) or None
            k_old = old_index.get(g.static)
            src = []
            for i in g.rows:
                if extra is not None and i in extra[1]:
                    src.append((1, extra[1][i]))
                else:
                    src.append((0, state.slot_row[i]))
            src += [src[0]] * (g.bucket - len(src))
            if extra is None:
                rows = np.asarray([r for _, r in src], np.int32)
                tree = state.groups[k_old]
                same = (len(rows) == jax.tree.leaves(tree)[0].shape[0]
                        and (rows[:len(g.rows)] == np.arange(len(g.rows))).all())
                trees.append(tree if same else _rows_jit(tree, rows))
            elif k_old is None or all(s == 1 for s, _ in src):
                rows = np.asarray([r for _, r in src], np.int32)
                trees.append(_rows_jit(extra[0], rows))
            else:
                n_old = jax.tree.leaves(state.groups[k_old])[0].shape[0]
                rows = np.asarray([r + (n_old if s else 0) for s, r in src], np.int32)
                trees.append(_assemble_jit(state.groups[k_old], extra[0], rows))
        return self._state([self.place(t) for t in trees], groups)

    def _g_gather(self, state, idx):
        old_values = state.values
        values = [old_values[j] for j in idx]
        old = self._groups_of(state)
        old_index = {g.static: k for k, g in enumerate(old)}
        # every new member comes from its source's group: re-express as that group's rows
        new = self._layout(values)
        trees = []
        for g in new:
            tree = state.groups[old_index[g.static]]
            rows = [state.slot_row[idx[i]] for i in g.rows]
            rows = np.asarray(rows + [rows[0]] * (g.bucket - len(rows)), np.int32)
            same = (len(rows) == jax.tree.leaves(tree)[0].shape[0]
                    and (rows[:len(g.rows)] == np.arange(len(g.rows))).all())
            trees.append(tree if same else self.place(_rows_jit(tree, rows)))
        return self._state(trees, new)

    def _g_replace(self, state, slots, key, hp):
        new_values = self._values(hp)
        values = [new_values[i] if slots[i] else v for i, v in enumerate(state.values)]
        keys = jax.random.split(key, self.size)
        order = tuple(hp)
        if self._hp_spec is None:
            self._hp_spec = {n: jax.ShapeDtypeStruct((), jnp.asarray(v).dtype)
                             for n, v in hp.items() if n not in self.static_names}

        def fresh(g):
            f = np.asarray([i for i in g.rows if slots[i]], np.int64)
            if not len(f):
                return None
            sub = _groups.Group(g.static, g.params, f, g.bucket)  # the group's own size:
            # fresh members compile with the programs the group already has
            return self._init_group(sub, keys, hp, order), {int(i): r for r, i in enumerate(f)}
        return self._rebuild(state, values, fresh)

    def _template(self, static):
        """Shapes of one member of the group with ``static`` values (for :meth:`put`)."""
        params = dict(zip(self.static_names, static))
        g = _groups.Group(static, params, np.zeros(1, np.int64),
                          _groups.bucket_size(1, self.size, self._ndev))
        order = tuple(self._hp_spec) + tuple(self.static_names)
        fn = self._group_fn("init", g, order)
        keys = jax.random.split(jax.random.key(0), g.bucket)
        h = {n: jax.ShapeDtypeStruct((g.bucket,), s.dtype) for n, s in self._hp_spec.items()}
        return jax.eval_shape(fn, keys, h)

    def _g_take(self, state, slots):
        out = [None] * len(slots)
        by_group = {}
        for k, i in enumerate(slots):
            by_group.setdefault(state.slot_group[i], []).append(k)
        for g, ks in by_group.items():
            idx = np.zeros(_groups.bucket_size(len(ks)), np.int32)
            idx[:len(ks)] = [state.slot_row[slots[k]] for k in ks]
            rows = jax.device_get(_take_jit(state.groups[g], idx))
            for j, k in enumerate(ks):
                out[k] = Member(jax.tree.map(lambda a: np.array(a[j]), rows), state.statics[g])
        return out

    def _g_put(self, state, members):
        values = list(state.values)
        for i, m in members.items():
            values[i] = tuple(m.static)
        old_index = {s: k for k, s in enumerate(state.statics)}

        def parked(g):
            slots = [int(i) for i in g.rows if int(i) in members]
            if not slots:
                return None
            k_old = old_index.get(g.static)
            tmpl = state.groups[k_old] if k_old is not None else self._template(g.static)
            want = jax.tree.structure(tmpl)
            for i in slots:
                if jax.tree.structure(members[i].state) != want:
                    raise ValueError(f"put: members[{i}] does not have the member structure of "
                                     f"its group {g.params}")
            rows = _stack_host([members[i].state for i in slots],
                               _groups.bucket_size(len(slots)))

            def wrap(t, a):
                if _is_key(t):
                    impl = (jax.random.key_impl(t) if isinstance(t, jax.Array)
                            else None)  # a template from eval_shape: the default impl
                    return jax.random.wrap_key_data(jnp.asarray(a), impl=impl)
                return jnp.asarray(a, t.dtype)
            return jax.tree.map(wrap, tmpl, rows), {i: r for r, i in enumerate(slots)}
        return self._rebuild(state, values, parked)
