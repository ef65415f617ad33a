"""jaxhpo._groups: grouping by static values, bucket sizes, the counted compile cache, and
tracer errors explained in terms of hyperparameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo import Categorical, Float, Int, Space
from jaxhpo import _groups as G


def space():
    return Space({"lr": Float(1e-3, 1e-1, log=True), "width": Int(2, 8, static=True),
                  "act": Categorical(["relu", "tanh"], static=True)})


def rows(sp, params):
    return sp.encode_many(params)


def test_bucket_size_is_next_power_of_two_capped_and_rounded_to_devices():
    assert [G.bucket_size(n) for n in (1, 2, 3, 4, 5, 9, 16, 17)] == [1, 2, 4, 4, 8, 16, 16, 32]
    assert G.bucket_size(40, cap=48) == 48 and G.bucket_size(5, cap=6) == 6
    assert G.bucket_size(1, multiple=2) == 2 and G.bucket_size(3, cap=3, multiple=2) == 4


def test_group_rows_by_static_values_with_python_params():
    sp = space()
    ps = [{"lr": 0.01, "width": 4, "act": "relu"}, {"lr": 0.02, "width": 8, "act": "relu"},
          {"lr": 0.03, "width": 4, "act": "relu"}, {"lr": 0.04, "width": 4, "act": "tanh"},
          {"lr": 0.05, "width": 4, "act": "relu"}]
    gs = G.group_rows(sp, rows(sp, ps))
    assert [g.static for g in gs] == [(4, "relu"), (8, "relu"), (4, "tanh")]
    assert [g.rows.tolist() for g in gs] == [[0, 2, 4], [1], [3]]
    assert [g.bucket for g in gs] == [4, 1, 1]
    assert gs[0].params == {"width": 4, "act": "relu"} and type(gs[0].params["width"]) is int
    np.testing.assert_array_equal(gs[0].padded, [0, 2, 4, 0])   # dummies copy the first row
    # the same groups from the decoded hp (categorical indices -> choices)
    hp = sp.decode(jnp.asarray(rows(sp, ps)))
    assert G.static_values_of_hp(sp, hp, 5) == [tuple(sp.static_values(r))
                                                for r in rows(sp, ps)]
    # no static parameters: one group of every row
    plain = Space({"lr": Float(0.0, 1.0)})
    (g,) = G.group_rows(plain, np.full((3, 1), 0.5, np.float32))
    assert g.static == () and g.rows.tolist() == [0, 1, 2] and g.bucket == 3


def test_compile_cache_compiles_once_per_static_values_and_bucket():
    sp = space()

    def objective(key, hp):   # static width sets a shape, static act picks code
        h = jnp.ones((hp["width"],)) * hp["lr"]
        act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[hp["act"]]
        return jnp.sum(act(h)) + 0.0 * jax.random.uniform(key)

    cache = G.CompileCache()
    rng = np.random.default_rng(0)
    seen = set()
    for gen in range(4):
        x = rng.uniform(size=(12, 3)).astype(np.float32)
        x[:, 1] = rng.choice([0.05, 0.95], 12)   # widths 2 or 8
        hp = sp.decode(jnp.asarray(x))
        keys = jax.random.split(jax.random.key(gen), 12)
        out = np.zeros(12)
        for g in G.group_rows(sp, x):
            seen.add((g.static, g.bucket))
            fn = cache(("objective", g.static, g.bucket),
                       lambda g=g: jax.vmap(lambda k, h: objective(k, {**h, **g.params})))
            idx = jnp.asarray(g.padded)
            res = fn(keys[idx], {"lr": hp["lr"][idx]})
            out[g.rows] = np.asarray(res)[:len(g.rows)]
        # independent truth: width * f(lr) per member
        act = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh}
        want = [p["width"] * act[p["act"]](p["lr"]) for p in sp.to_params_list(x)]
        np.testing.assert_allclose(out, want, rtol=1e-5)
    assert set(cache.traces) == {("objective",) + k for k in seen}
    assert all(v == 1 for v in cache.traces.values()), cache.traces
    assert cache.compilations == len(seen) == len(cache)


def test_explain_tracer_error_names_the_traced_hyperparameter_and_the_fix():
    sp = Space({"lr": Float(1e-3, 1e-1, log=True), "width": Int(16, 256, log=True),
                "opt": Categorical(["adam", "sgd"])})
    hp = {"lr": 0.01, "width": 32, "opt": 1}

    def fn(h):
        return jnp.zeros((h["width"],)) * h["lr"]   # width used as a shape

    def probe(names):
        try:
            jax.eval_shape(lambda t: fn({**t, **{n: hp[n] for n in names}}),
                           {n: jnp.asarray(v) for n, v in hp.items() if n not in names})
            return True
        except Exception as e:
            return not G.is_tracer_error(e)

    with pytest.raises(Exception) as info:
        jax.jit(fn)({k: jnp.asarray(v) for k, v in hp.items()})
    e = info.value
    assert G.is_tracer_error(e)
    err = G.explain_tracer_error(e, sp, list(hp), probe, where="fn")
    assert isinstance(err, TypeError)
    msg = str(err)
    assert "'width'" in msg and "'opt'" not in msg.split("Fix")[0] and "'lr'" not in msg
    assert "Int(16, 256, log=True, static=True)" in msg and 'objective_type="python"' in msg
    # without a probe: the integer / categorical candidates are listed
    msg = str(G.explain_tracer_error(e, sp, list(hp)))
    assert "'width'" in msg and "'opt'" in msg and "Categorical(['adam', 'sgd'], static=True)" in msg
    # not a tracer error, or a tracer error that no hyperparameter causes: unchanged
    other = ValueError("boom")
    assert G.explain_tracer_error(other, sp, list(hp), probe) is other
    assert G.explain_tracer_error(e, sp, list(hp), lambda names: False) is e
