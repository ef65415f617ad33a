"""Population training engine: optimizer equivalence, vmap == per-member, masking, divergence
isolation, gather/copy/replace without retrace, curves, adapters, chunking, sharding."""

import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.train import (OPTIMIZERS, Population, Trainer, cnn, from_linen, from_nnx,
                          lr_multiplier, mlp, mnist1d, population_optimizer,
                          synthetic_classification)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_data():
    return synthetic_classification(600, 8, 3, seed=1)


def space_all():
    return Space({"lr": Float(1e-3, 1e-1, log=True), "width": Int(4, 16),
                  "optimizer": Categorical(["adam", "sgd", "momentum"]),
                  "momentum": Float(0.5, 0.95, condition={"optimizer": "momentum"}),
                  "batch_size": Categorical([8, 16, 32])})


def hp_batch(space, rows):
    return space.decode(jnp.asarray(space.encode_many(rows)))


# ---------------------------------------------------------------------- optimizer
@pytest.mark.parametrize("name,ref", [
    ("sgd", lambda: optax.sgd(0.1)),
    ("momentum", lambda: optax.sgd(0.1, momentum=0.8)),
    ("adam", lambda: optax.adam(0.1, b1=0.85, b2=0.99, eps=1e-6)),
    ("adamw", lambda: optax.adamw(0.1, b1=0.85, b2=0.99, eps=1e-6, weight_decay=0.01)),
    ("rmsprop", lambda: optax.rmsprop(0.1, decay=0.99, eps=1e-6)),
])
def test_population_optimizer_matches_optax(name, ref):
    params = {"a": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([[0.5, 0.25]])}
    loss = lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(jnp.sin(p["b"]))
    ours = population_optimizer(learning_rate=0.1, optimizer=OPTIMIZERS.index(name),
                                momentum=0.8, b1=0.85, b2=0.99, eps=1e-6,
                                weight_decay=0.01 if name == "adamw" else 0.0, clip_norm=0.0,
                                warmup_steps=0, schedule=0, decay_steps=0)
    theirs = ref()
    p1, p2 = params, params
    s1, s2 = ours.init(p1), theirs.init(p2)
    for _ in range(6):
        u1, s1 = ours.update(jax.grad(loss)(p1), s1, p1)
        u2, s2 = theirs.update(jax.grad(loss)(p2), s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


def test_clipping_and_schedules_closed_form():
    # global-norm clipping as optax.clip_by_global_norm
    g = {"w": jnp.array([3.0, 4.0])}
    tx = population_optimizer(learning_rate=1.0, optimizer=0, momentum=0.0, b1=0.9, b2=0.999,
                              eps=1e-8, weight_decay=0.0, clip_norm=1.0, warmup_steps=0,
                              schedule=0, decay_steps=0)
    u, _ = tx.update(g, tx.init(g), g)
    np.testing.assert_allclose(np.asarray(u["w"]), [-0.6, -0.8], rtol=1e-6)
    # warmup 10 then cosine to 0 at step 110: multiplier at step s (0-based)
    m = lambda s: float(lr_multiplier(s, 10, 1, 110))
    assert m(0) == pytest.approx(0.1) and m(9) == pytest.approx(1.0)
    assert m(60) == pytest.approx(0.5, abs=1e-6) and m(110) == pytest.approx(0.0, abs=1e-7)
    assert float(lr_multiplier(60, 10, 2, 110)) == pytest.approx(0.5, abs=1e-6)
    assert float(lr_multiplier(60, 0, 0, 0)) == 1.0


# ---------------------------------------------------------------------- data
def test_mnist1d_shapes_and_balance():
    d = mnist1d()
    assert d.x_train.shape == (3600, 40) and d.x_val.shape == (400, 40)
    assert d.x_test.shape == (1000, 40) and d.num_classes == 10
    all_x = np.concatenate([d.x_train, d.x_val, d.x_test])
    assert abs(all_x.mean()) < 1e-5 and abs(all_x.std() - 1) < 1e-4
    counts = np.bincount(np.concatenate([d.y_train, d.y_val, d.y_test]))
    assert list(counts) == [500] * 10


def test_mnist1d_equals_reference_package():
    ref_mod = pytest.importorskip("mnist1d.data")
    ref = ref_mod.make_dataset(ref_mod.get_dataset_args())
    d = mnist1d()
    np.testing.assert_allclose(np.concatenate([d.x_train, d.x_val]), ref["x"], atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([d.y_train, d.y_val]), ref["y"])
    np.testing.assert_allclose(d.x_test, ref["x_test"], atol=1e-5)


# ---------------------------------------------------------------------- population
def make_pop(size, space=None, **kw):
    space = space or space_all()
    tr = Trainer(mlp(3, max_width=16, max_depth=2), small_data(), space=space,
                 max_batch_size=32, **kw)
    return Population(tr, size), space


ROWS = [
    {"lr": 0.05, "width": 16, "optimizer": "adam", "batch_size": 32},
    {"lr": 0.02, "width": 8, "optimizer": "momentum", "momentum": 0.9, "batch_size": 16},
    {"lr": 0.05, "width": 4, "optimizer": "sgd", "batch_size": 8},
    {"lr": 0.01, "width": 12, "optimizer": "adam", "batch_size": 32},
]


def test_population_trains_and_reports_costs():
    pop, space = make_pop(4)
    hp = hp_batch(space, ROWS)
    s = pop.init(jax.random.key(0), hp)
    before = pop.evaluate(s, hp, "val")
    s, curve = pop.train(s, hp, 200, eval_every=50)
    after = pop.evaluate(s, hp, "val")
    assert curve["accuracy"].shape == (4, 4) and curve["loss"].shape == (4, 4)
    assert np.all(np.asarray(after["loss"]) < np.asarray(before["loss"]))
    assert np.max(np.asarray(after["accuracy"])) > 0.75
    np.testing.assert_array_equal(np.asarray(after["steps"]), 200)
    # active parameters of 8 -> w -> w(residual) -> 3 MLP: weights + biases
    w = np.array([16, 8, 4, 12])
    expect = 8 * w + w + w * w + w + w * 3 + 3
    np.testing.assert_array_equal(np.asarray(after["param_count"]), expect)
    np.testing.assert_array_equal(np.asarray(after["flops"]), 2 * (8 * w + w * w + w * 3))


def test_vmapped_member_equals_member_trained_alone():
    pop4, space = make_pop(4)
    pop1, _ = make_pop(1)
    hp4 = hp_batch(space, ROWS)
    keys = jax.random.split(jax.random.key(3), 4)
    s4, _ = pop4.train(pop4.init(jax.random.key(3), hp4), hp4, 30)
    hp1 = jax.tree.map(lambda a: a[1:2], hp4)
    s1 = jax.vmap(pop1.trainer.init)(keys[1:2], hp1)
    s1, _ = pop1.train(s1, hp1, 30)
    for a, b in zip(jax.tree.leaves(s4.params), jax.tree.leaves(s1.params)):
        np.testing.assert_allclose(np.asarray(a[1]), np.asarray(b[0]), rtol=1e-4, atol=1e-6)


def test_width_mask_leaves_inactive_units_untouched():
    pop, space = make_pop(4)
    hp = hp_batch(space, ROWS)
    s0 = pop.init(jax.random.key(0), hp)
    s1, _ = pop.train(s0, hp, 20)
    k0, k1 = np.asarray(s0.params["in"]["kernel"]), np.asarray(s1.params["in"]["kernel"])
    member, width = 2, 4   # sgd member with width 4: columns >= 4 must not move
    np.testing.assert_array_equal(k1[member][:, width:], k0[member][:, width:])
    assert not np.allclose(k1[member][:, :width], k0[member][:, :width])


def test_diverging_member_is_frozen_and_isolated():
    space = Space({"lr": Float(1e-3, 1e4, log=True)})
    pop, _ = make_pop(3, space=space, defaults={"optimizer": "sgd", "width": 16})
    good = hp_batch(space, [{"lr": 0.05}, {"lr": 0.02}, {"lr": 0.05}])
    bad = hp_batch(space, [{"lr": 0.05}, {"lr": 0.02}, {"lr": 1e4}])
    s_good, _ = pop.train(pop.init(jax.random.key(0), good), good, 50)
    s_bad, _ = pop.train(pop.init(jax.random.key(0), bad), bad, 50)
    m = pop.evaluate(s_bad, bad)
    assert list(np.asarray(m["diverged"])) == [0.0, 0.0, 1.0]
    assert np.isnan(np.asarray(m["loss"])[2]) and np.isfinite(np.asarray(m["loss"])[:2]).all()
    for a, b in zip(jax.tree.leaves(s_good.params), jax.tree.leaves(s_bad.params)):
        np.testing.assert_array_equal(np.asarray(a[:2]), np.asarray(b[:2]))
        assert np.isfinite(np.asarray(b[2])).all(), "frozen at the last finite parameters"
    assert int(s_bad.step[2]) < 50


def test_gather_copy_replace_do_not_retrace_and_do_what_they_say():
    pop, space = make_pop(4)
    hp = hp_batch(space, ROWS)
    s = pop.init(jax.random.key(0), hp)
    s, _ = pop.train(s, hp, 10)
    for i in range(3):
        g = pop.gather(s, [3, 3, 0, 1])
        c = pop.copy(s, src=[0], dst=[2 + (i % 2)])   # i = 2 copies member 0 onto 2
        r = pop.replace(s, [False, True, False, i == 2], jax.random.key(i), hp)
    assert pop._gather._cache_size() == 1 and pop._replace._cache_size() == 1
    np.testing.assert_array_equal(np.asarray(g.params["out"]["kernel"][1]),
                                  np.asarray(s.params["out"]["kernel"][3]))
    np.testing.assert_array_equal(np.asarray(c.params["in"]["kernel"][2]),
                                  np.asarray(s.params["in"]["kernel"][0]))
    np.testing.assert_array_equal(np.asarray(c.opt_state.inner_state.mu["in"]["kernel"][2]),
                                  np.asarray(s.opt_state.inner_state.mu["in"]["kernel"][0]))
    np.testing.assert_array_equal(np.asarray(c.params["in"]["kernel"][3]),
                                  np.asarray(s.params["in"]["kernel"][3]))
    assert list(np.asarray(r.step)) == [10, 0, 10, 0]
    np.testing.assert_array_equal(np.asarray(r.params["in"]["kernel"][0]),
                                  np.asarray(s.params["in"]["kernel"][0]))


def test_take_put_round_trip_a_member_exactly_into_another_slot():
    pop, space = make_pop(4)
    hp = hp_batch(space, ROWS)
    s, _ = pop.train(pop.init(jax.random.key(0), hp), hp, 10)
    parked = pop.take(s, [2, 0])                   # host copies, PRNG keys as raw key data
    assert len(parked) == 2 and all(isinstance(m, jaxhpo.train.Member) for m in parked)
    leaves = jax.tree.leaves(parked[0].state)
    assert all(isinstance(a, np.ndarray) for a in leaves)
    np.testing.assert_array_equal(parked[0].state.params["in"]["kernel"],
                                  np.asarray(s.params["in"]["kernel"][2]))
    u = pop.put(s, {1: parked[0], 3: parked[1]})   # member 2 -> slot 1, member 0 -> slot 3
    for a, b in zip(jax.tree.leaves(jax.tree.map(lambda a: a[jnp.array([1, 3, 0, 2])], u)),
                    jax.tree.leaves(jax.tree.map(lambda a: a[jnp.array([2, 0, 0, 2])], s))):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the put members train on exactly as the originals (same weights, optimizer state, stream)
    hp_u = jax.tree.map(lambda a: a[jnp.array([0, 2, 2, 0])], hp)
    hp_s = jax.tree.map(lambda a: a[jnp.array([0, 1, 2, 3])], hp)
    u2, _ = pop.train(u, hp_u, 5)
    s2, _ = pop.train(s, hp_s, 5)
    np.testing.assert_allclose(np.asarray(u2.params["out"]["kernel"][1]),
                               np.asarray(s2.params["out"]["kernel"][2]), rtol=1e-6)
    assert pop.take(s, []) == [] and pop.put(s, {}) is s
    with pytest.raises(ValueError, match="slot 4"):
        pop.take(s, [4])
    with pytest.raises(TypeError, match="Member"):
        pop.put(s, {0: parked[0].state})


def test_training_resumes_fidelity_exactly():
    pop, space = make_pop(2)
    hp = hp_batch(space, ROWS[:2])
    s0 = pop.init(jax.random.key(1), hp)
    a, _ = pop.train(s0, hp, 40)
    b, _ = pop.train(s0, hp, 20)
    b, _ = pop.train(b, hp, 20)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_hparams_map_categoricals_and_conditionals():
    pop, space = make_pop(4)
    h = jax.vmap(pop.trainer.hparams)(hp_batch(space, ROWS))
    assert [OPTIMIZERS[i] for i in np.asarray(h["optimizer"])] == ["adam", "momentum", "sgd",
                                                                   "adam"]
    assert list(np.asarray(h["batch_size"])) == [32, 16, 8, 32]
    assert float(h["momentum"][1]) == pytest.approx(0.9, rel=1e-5)
    assert float(h["learning_rate"][2]) == pytest.approx(0.05, rel=1e-5)


def test_chunked_population_equals_vmapped():
    pop, space = make_pop(4)
    tr = pop.trainer
    chunked = Population(tr, 4, chunk_size=2)
    hp = hp_batch(space, ROWS)
    a, _ = pop.train(pop.init(jax.random.key(0), hp), hp, 15)
    b, _ = chunked.train(chunked.init(jax.random.key(0), hp), hp, 15)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)


def test_cnn_and_adapters_learn():
    data = small_data()
    space = Space({"lr": Float(1e-3, 1e-1, log=True)})
    hp = hp_batch(space, [{"lr": 0.01}, {"lr": 0.03}])

    class Linen(nn.Module):  # an unmodified linen module
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.relu(nn.Dense(16)(x)))

    from flax import nnx

    class NNX(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(8, 16, rngs=rngs), nnx.Linear(16, 3, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.l1(x)))

    for model in (from_linen(Linen()), from_nnx(NNX), cnn(3, ndim=1, max_width=8)):
        pop = Population(Trainer(model, data, space=space, max_batch_size=32), 2)
        s = pop.init(jax.random.key(0), hp)
        before = np.asarray(pop.evaluate(s, hp)["loss"])
        s, _ = pop.train(s, hp, 100)
        m = pop.evaluate(s, hp)
        assert np.all(np.asarray(m["loss"]) < before), model.name
        assert np.all(np.asarray(m["param_count"]) > 0)
    lin = Population(Trainer(from_linen(Linen()), data, space=space, max_batch_size=32), 2)
    pc = np.asarray(lin.evaluate(lin.init(jax.random.key(0), hp), hp)["param_count"])
    np.testing.assert_array_equal(pc, 8 * 16 + 16 + 16 * 3 + 3)


def test_trainer_objective_with_minimize():
    space = Space({"lr": Float(1e-3, 1e-1, log=True), "width": Int(4, 16)})
    tr = Trainer(mlp(3, max_width=16), small_data(), space=space, max_batch_size=32)
    res = jaxhpo.minimize(tr.objective(100), space, jaxhpo.strategies.random_search(space, 8),
                          num_generations=2, metric="val_accuracy", direction="maximize",
                          progress=False)
    assert len(res.history) == 16
    assert set(res.best_trial.metrics) >= {"val_loss", "val_accuracy", "test_accuracy",
                                           "param_count", "flops", "steps"}
    assert res.best_value > 0.7


def test_bad_trainer_arguments():
    data = small_data()
    with pytest.raises(ValueError, match="not a training hyperparameter"):
        Trainer(mlp(3), data, space=Space({"learnig_rate": Float(0.1, 1.0)}))
    with pytest.raises(ValueError, match="optimizer 'lbfgs' is not one of"):
        Trainer(mlp(3), data, space=Space({"optimizer": Categorical(["adam", "lbfgs"])}))
    with pytest.raises(ValueError, match="width must be in"):
        Trainer(mlp(3, max_width=16), data, space=Space({"width": Int(4, 64)}))
    with pytest.raises(ValueError, match="batch_size must be in"):
        Trainer(mlp(3), data, space=Space({"batch_size": Int(8, 256)}), max_batch_size=128)
    with pytest.raises(ValueError, match="activations must be names"):
        mlp(3, activations=("relu", "swish2"))
    pop, space = make_pop(4)
    with pytest.raises(ValueError, match="leading axis 4"):
        pop.init(jax.random.key(0), hp_batch(space, ROWS[:2]))
    with pytest.raises(ValueError, match="eval_every"):
        pop.train(pop.init(jax.random.key(0), hp_batch(space, ROWS)),
                  hp_batch(space, ROWS), 10, eval_every=3)
    with pytest.raises(ValueError, match="chunk_size"):
        Population(pop.trainer, 4, chunk_size=3)


SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh
    from jaxhpo import Space, Float
    from jaxhpo.train import Trainer, Population, mlp, synthetic_classification
    assert len(jax.devices()) == 4
    space = Space({"lr": Float(1e-3, 1e-1, log=True)})
    tr = Trainer(mlp(3, max_width=16), synthetic_classification(600, 8, 3, seed=1),
                 space=space, max_batch_size=32)
    hp = space.decode(jnp.linspace(0.1, 0.9, 8)[:, None])
    mesh = Mesh(np.array(jax.devices()), ("pop",))
    sharded, plain = Population(tr, 8, mesh=mesh), Population(tr, 8)
    a, _ = sharded.train(sharded.init(jax.random.key(0), hp), hp, 20)
    b, _ = plain.train(plain.init(jax.random.key(0), hp), hp, 20)
    leaf = a.params["in"]["kernel"]
    assert len(leaf.sharding.device_set) == 4, leaf.sharding
    assert leaf.addressable_shards[0].data.shape[0] == 2
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)
    m = sharded.evaluate(a, hp)
    assert m["accuracy"].shape == (8,)
    print("SHARDED-OK")
""")


def test_population_sharded_over_four_cpu_devices():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True,
                         text=True, timeout=300)
    assert "SHARDED-OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("shape,kernel,stride", [((4, 40, 3), (5,), 2), ((4, 20, 8), (3,), 1),
                                                 ((2, 9, 9, 3), (3, 3), 2)])
def test_patch_conv_equals_flax_conv(shape, kernel, stride):
    from jaxhpo.train._models import PatchConv

    x = jax.random.normal(jax.random.key(0), shape)
    ours, ref = PatchConv(6, kernel, strides=stride), nn.Conv(6, kernel, strides=stride)
    params = ours.init(jax.random.key(1), x)
    np.testing.assert_allclose(np.asarray(ours.apply(params, x)), np.asarray(ref.apply(params, x)),
                               atol=2e-6)


def test_multi_objective_tuning_of_accuracy_vs_size():
    """NSGA-II through minimize on the engine's metrics: the Pareto front trades accuracy for
    active parameter count, and the smallest model evaluated is on it."""
    space = Space({"lr": Float(1e-2, 1e-1, log=True), "width": Int(2, 16)})
    tr = Trainer(mlp(3, max_width=16), small_data(), space=space, max_batch_size=32)
    res = jaxhpo.minimize(tr.objective(60, splits=("val",)), space,
                          jaxhpo.strategies.nsga2(space, 8), num_generations=2,
                          metric=["val_accuracy", "param_count"],
                          direction=["maximize", "minimize"], progress=False)
    front = res.best_trials
    assert front and len(res.history) == 16
    sizes = [t.values[1] for t in res.history]
    assert min(sizes) in [t.values[1] for t in front]
    for t in front:   # nobody is at least as accurate and strictly smaller, or vice versa
        for u in res.history:
            assert not (u.values[0] >= t.values[0] and u.values[1] < t.values[1])
