"""Training programs in a Population: static groups equal members trained alone, compile
counts, PBT gather / refill / park across groups, tracer errors for people, the Trainer as a
program, flax_program (linen and NNX), Dataset.from_arrays, and the new user's example."""

import importlib.util
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.train import (Dataset, GroupedState, Member, Population, Trainer, TrainingProgram,
                          flax_program, mlp, synthetic_classification)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
X = jnp.asarray(np.random.default_rng(0).normal(size=(64, 3)), jnp.float32)
Y = jnp.sin(X @ jnp.array([1.0, -2.0, 0.5]))


def mse(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)


def init(key, hp):
    k1, k2 = jax.random.split(key)
    w = hp["width"]   # a shape: must be static
    return {"w1": jax.random.normal(k1, (3, w)) * 0.5, "w2": jax.random.normal(k2, (w,)) * 0.5}


def step(state, key, hp):   # full-batch gradient descent: the key is unused
    loss, g = jax.value_and_grad(mse)(state, X, Y)
    return jax.tree.map(lambda p, d: p - hp["lr"] * d, state, g), {"loss": loss}


def evaluate(state, hp):
    return {"loss": mse(state, X, Y)}


PROGRAM = TrainingProgram(init, step, evaluate)
SPACE = Space({"lr": Float(0.01, 0.5, log=True), "width": Int(2, 8, static=True)})
PARAMS = [{"lr": 0.1, "width": 2}, {"lr": 0.2, "width": 8}, {"lr": 0.05, "width": 2},
          {"lr": 0.3, "width": 5}, {"lr": 0.15, "width": 2}]


def hp_of(params):
    return SPACE.decode(jnp.asarray(SPACE.encode_many(params)))


def alone(key, p, steps):
    """Independent truth: the user's functions in a plain Python loop, one member."""
    hp = {"lr": jnp.float32(p["lr"]), "width": p["width"]}
    s = init(key, hp)
    one = jax.jit(lambda s: step(s, None, hp)[0])
    for _ in range(steps):
        s = one(s)
    return s


def test_static_groups_equal_members_trained_alone_and_compile_once_per_group_bucket():
    pop = Population(PROGRAM, 5, space=SPACE, mesh=None)
    hp = hp_of(PARAMS)
    state = pop.init(jax.random.key(0), hp)
    assert isinstance(state, GroupedState)
    assert sorted(state.statics) == [(2,), (5,), (8,)]
    state, curve = pop.train(state, hp, 20, eval_every=10)
    state, curve = pop.train(state, hp, 20, eval_every=10)   # no retrace
    keys = jax.random.split(jax.random.key(0), 5)
    for i, p in enumerate(PARAMS):
        ref = alone(keys[i], p, 40)
        got = state.member(i).state
        assert got["w1"].shape == (3, p["width"])   # no member pays for another's width
        np.testing.assert_allclose(got["w1"], ref["w1"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(curve["loss"][i, -1], mse(ref, X, Y), rtol=1e-5)
    m = pop.evaluate(state, hp)
    np.testing.assert_allclose(m["loss"], curve["loss"][:, -1], rtol=1e-6)
    # one compilation per (kind, static values, bucket size): width 2 has 3 members -> bucket 4
    traces = {k[:3]: v for k, v in pop._cache.traces.items()}
    assert traces == {(kind, s, b): 1 for kind in ("init", "train", "evaluate")
                      for s, b in (((2,), 4), ((8,), 1), ((5,), 1))}


def test_gather_replace_take_put_move_members_across_groups():
    pop = Population(PROGRAM, 5, space=SPACE, mesh=None)
    hp = hp_of(PARAMS)
    s, _ = pop.train(pop.init(jax.random.key(1), hp), hp, 5)
    # PBT exploit: slots 0 and 4 copy member 1 (width 8): they join its group
    idx = np.array([1, 1, 2, 3, 1])
    g = pop.gather(s, idx)
    assert g.values == [(8,), (8,), (2,), (5,), (8,)]
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(g.member(j).state["w2"], s.member(int(i)).state["w2"])
    with pytest.raises(ValueError, match="slot 0"):
        pop.train(g, hp, 1)   # hp still says width 2 for slot 0
    hp_g = jax.tree.map(lambda a: a[jnp.asarray(idx)], hp)
    g2, _ = pop.train(g, hp_g, 3)
    np.testing.assert_array_equal(g2.member(0).state["w1"], g2.member(4).state["w1"])
    # refill slot 3 (width 5) with a fresh width-2 member; the others are untouched
    new = hp_of([PARAMS[0], PARAMS[1], PARAMS[2], {"lr": 0.1, "width": 2}, PARAMS[4]])
    r = pop.replace(s, np.array([0, 0, 0, 1, 0], bool), jax.random.key(7), new)
    assert r.values[3] == (2,) and (5,) not in r.statics
    fresh = init(jax.random.split(jax.random.key(7), 5)[3], {"width": 2})
    np.testing.assert_allclose(r.member(3).state["w1"], fresh["w1"], rtol=1e-6)
    for i in (0, 1, 2, 4):
        np.testing.assert_array_equal(r.member(i).state["w1"], s.member(i).state["w1"])
    # park member 1 (width 8) on the host and put it into slot 2 (a width-2 group)
    (m,) = pop.take(s, [1])
    assert isinstance(m, Member) and m.static == (8,)
    assert all(isinstance(a, np.ndarray) for a in jax.tree.leaves(m.state))
    u = pop.put(s, {2: m})
    assert u.values[2] == (8,)
    np.testing.assert_array_equal(u.member(2).state["w1"], s.member(1).state["w1"])
    assert int(u.member(2).step) == 5
    # put a member back into a group that no longer exists in the state
    only2 = pop.replace(s, np.array([0, 1, 0, 1, 0], bool), jax.random.key(3), hp_of([PARAMS[0]] * 5))
    assert (8,) not in only2.statics
    back = pop.put(only2, {1: m})
    np.testing.assert_array_equal(back.member(1).state["w2"], s.member(1).state["w2"])


def test_tracer_error_in_a_program_names_the_hyperparameter_and_the_fix():
    traced = Space({"lr": Float(0.01, 0.5, log=True), "width": Int(2, 8)})
    pop = Population(PROGRAM, 2, space=traced, mesh=None)
    hp = traced.decode(jnp.asarray(traced.encode_many(PARAMS[:2])))
    with pytest.raises(TypeError) as info:
        pop.init(jax.random.key(0), hp)
    msg = str(info.value)
    assert "'width'" in msg and "'lr'" not in msg and "Int(2, 8, static=True)" in msg
    assert 'objective_type="python"' in msg


def test_trainer_is_a_training_program():
    data = synthetic_classification(300, 6, 3, seed=2)
    space = Space({"lr": Float(1e-3, 1e-1, log=True)})
    tr = Trainer(mlp(3, max_width=8, max_depth=1), data, space=space, max_batch_size=16)
    hp = {"lr": jnp.array([0.01, 0.05])}
    a, b = Population(tr, 2, mesh=None), Population(tr.program(), 2, mesh=None)
    sa, ca = a.train(a.init(jax.random.key(4), hp), hp, 20, eval_every=10)
    sb, cb = b.train(b.init(jax.random.key(4), hp), hp, 20, eval_every=10)
    for x, y in zip(jax.tree.leaves(sa.params), jax.tree.leaves(sb.state.params)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ca["accuracy"], cb["accuracy"])
    np.testing.assert_allclose(a.evaluate(sa, hp, "test")["loss"],
                               b.evaluate(sb, hp, "test")["loss"], rtol=1e-5)


class Tiny(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(self.width)(x)))


def test_flax_program_linen_and_nnx_with_static_optimizer_and_plain_arrays():
    d = synthetic_classification(400, 6, 3, seed=3)
    arrays = (d.x_train, d.y_train, d.x_val, d.y_val)
    space = Space({"lr": Float(1e-3, 3e-2, log=True), "width": Categorical([8, 16], static=True),
                   "opt": Categorical(["adam", "sgd"], static=True)})
    loss = lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    tx = lambda hp: getattr(optax, hp["opt"])(hp["lr"] * (10.0 if hp["opt"] == "sgd" else 1.0))
    linen = flax_program(lambda hp: Tiny(hp["width"]), tx, loss, arrays, batch_size=32)

    from flax import nnx

    class TinyNNX(nnx.Module):
        def __init__(self, width, rngs):
            self.a, self.b = nnx.Linear(6, width, rngs=rngs), nnx.Linear(width, 3, rngs=rngs)

        def __call__(self, x):
            return self.b(nnx.relu(self.a(x)))

    nnx_prog = flax_program(lambda hp, rngs: TinyNNX(hp["width"], rngs), tx, loss,
                            Dataset.from_arrays(*arrays), batch_size=32)
    rows = [{"lr": 0.02, "width": 16, "opt": "adam"}, {"lr": 0.01, "width": 8, "opt": "sgd"},
            {"lr": 0.01, "width": 8, "opt": "adam"}, {"lr": 0.02, "width": 16, "opt": "sgd"}]
    hp = space.decode(jnp.asarray(space.encode_many(rows)))
    for prog in (linen, nnx_prog):
        pop = Population(prog, 4, space=space, mesh=None)
        s = pop.init(jax.random.key(0), hp)
        before = pop.evaluate(s, hp)
        s, curve = pop.train(s, hp, 150, eval_every=50)
        assert len(s.groups) == 4 and curve["accuracy"].shape == (4, 3)
        assert (np.asarray(curve["loss"][:, -1]) < np.asarray(before["loss"])).all()
        assert np.asarray(curve["accuracy"][:, -1]).max() > 0.7
    with pytest.raises(ValueError, match="'test'"):
        pop.evaluate(s, hp, "test")


def test_dataset_from_arrays_and_the_trainer_error_says_how():
    x = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    d = Dataset.from_arrays(x[:20], y[:20], x[20:], y[20:])
    assert d.num_classes == 3 and d.x_test.shape == (0, 4) and d.x_train.dtype == np.float32
    tr = Trainer(mlp(3, max_width=4), (x[:20], y[:20], x[20:], y[20:]), max_batch_size=8)
    assert tr.data.num_classes == 3
    with pytest.raises(ValueError, match="'test'.*no test split"):
        Population(tr, 1).evaluate(Population(tr, 1).init(jax.random.key(0), {}), {}, "test")
    with pytest.raises(TypeError, match=r"Dataset\.from_arrays\(x_train, y_train, x_val, y_val"):
        Trainer(mlp(3, max_width=4), (x, y))
    r = Dataset.from_arrays(x[:20], x[:20, 0], x[20:], x[20:, 0])
    assert r.num_classes == 0 and r.y_train.dtype == np.float32
