"""Space: encode/decode round trips, bounds, log scales, ints, categoricals, conditions."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxhpo import Categorical, Float, Int, Space


def mixed_space():
    return Space({
        "lr": Float(1e-5, 1.0, log=True),
        "wd": Float(0.0, 0.1),
        "width": Int(8, 512, log=True),
        "depth": Int(1, 6),
        "opt": Categorical(["sgd", "adam", "rmsprop"]),
        "momentum": Float(0.0, 0.99, condition={"opt": "sgd"}),
        "nesterov": Categorical([False, True], condition={"opt": "sgd"}),
        "beta2": Float(0.9, 0.9999, default=0.999, condition={"opt": ["adam", "rmsprop"]}),
    })


# ------------------------------------------------------------------ hypothesis strategies
floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def float_param(draw):
    log = draw(st.booleans())
    if log:
        lo = draw(st.floats(1e-6, 1e3))
        hi = lo * draw(st.floats(1.01, 1e6))
    else:
        lo = draw(st.floats(-1e4, 1e4, width=32, allow_subnormal=False))
        hi = lo + max(draw(st.floats(1e-3, 1e4)), 1e-3 * abs(lo))
    return Float(lo, hi, log=log)


@st.composite
def int_param(draw):
    log = draw(st.booleans())
    lo = draw(st.integers(1 if log else -1000, 1000))
    hi = lo + draw(st.integers(0, 5000))
    return Int(lo, hi, log=log)


cat_param = st.lists(st.one_of(st.text(max_size=4), st.integers(-5, 5)), min_size=1,
                     max_size=6, unique=True).map(
    lambda c: Categorical(c) if len(set(map(repr, c))) == len(c) else Categorical(["a"]))
any_param = st.one_of(float_param(), int_param(), cat_param)


@st.composite
def spaces(draw):
    params = draw(st.lists(any_param, min_size=1, max_size=5))
    return Space({f"p{i}": p for i, p in enumerate(params)})


@settings(max_examples=60, deadline=None)
@given(spaces(), st.integers(0, 2**31 - 1))
def test_decode_within_bounds_and_types(space, seed):
    x = np.asarray(space.sample(jax.random.key(seed), 16))
    vals = space.decode(x)
    for name, p in space.items():
        v = np.asarray(vals[name])
        if isinstance(p, Float):
            assert v.dtype == np.float32
            tol = 1e-6 * max(abs(p.low), abs(p.high)) + 1e-6
            assert np.all(v >= p.low - tol) and np.all(v <= p.high + tol)
        elif isinstance(p, Int):
            assert v.dtype == np.int32 and np.all((v >= p.low) & (v <= p.high))
        else:
            assert v.dtype == np.int32 and np.all((v >= 0) & (v < len(p.choices)))
    for params in space.to_params_list(x):
        for name, p in space.items():
            v = params[name]
            if isinstance(p, Int):
                assert type(v) is int and p.low <= v <= p.high
            elif isinstance(p, Categorical):
                assert v in p.choices
            else:
                assert type(v) is float and p.low <= v <= p.high


@settings(max_examples=60, deadline=None)
@given(spaces(), st.integers(0, 2**31 - 1))
def test_decode_encode_round_trip(space, seed):
    """to_params(encode(params)) == params, and decode agrees with the Python-side values."""
    x = np.asarray(space.sample(jax.random.key(seed), 8))
    for params in space.to_params_list(x):
        u = space.encode(params)
        back = space.to_params(u)
        assert back.keys() == params.keys()
        for name, p in space.items():
            if isinstance(p, Float):
                assert math.isclose(back[name], params[name], rel_tol=2e-5, abs_tol=1e-6 * (
                    p.high - p.low))
            else:
                assert back[name] == params[name]
        jv = space.decode(jnp.asarray(u))
        for name, p in space.items():
            if isinstance(p, Int):
                assert int(jv[name]) == params[name]
            elif isinstance(p, Categorical):
                assert p.choices[int(jv[name])] == params[name]


def test_log_scale_is_uniform_in_log():
    space = Space({"lr": Float(1e-4, 1.0, log=True)})
    x = space.sample(jax.random.key(0), 20000)
    lr = np.asarray(space.decode(x)["lr"])
    # log10(lr) uniform on [-4, 0]: each decade holds a quarter of the mass.
    hist, _ = np.histogram(np.log10(lr), bins=4, range=(-4, 0))
    np.testing.assert_allclose(hist / hist.sum(), 0.25, atol=0.015)
    assert space.to_params(np.array([0.5]))["lr"] == pytest.approx(1e-2, rel=1e-6)


def test_int_bins_are_equal_width_and_log_ints_geometric():
    space = Space({"k": Int(1, 4), "w": Int(1, 1000, log=True)})
    x = space.sample(jax.random.key(1), 40000)
    k = np.asarray(space.decode(x)["k"])
    np.testing.assert_allclose(np.bincount(k, minlength=5)[1:] / k.size, 0.25, atol=0.01)
    w = np.asarray(space.decode(x)["w"])
    # log-uniform over [0.5, 1000.5]: P(w <= 10) = log(10.5/0.5)/log(1000.5/0.5)
    expect = math.log(10.5 / 0.5) / math.log(1000.5 / 0.5)
    assert np.mean(w <= 10) == pytest.approx(expect, abs=0.01)


def test_categorical_bins_map_to_choices():
    space = Space({"c": Categorical(["a", "b", "c", "d"])})
    u = np.array([[0.0], [0.24], [0.26], [0.5], [0.99], [1.0]], np.float32)
    assert [p["c"] for p in space.to_params_list(u)] == ["a", "a", "b", "c", "d", "d"]
    assert list(np.asarray(space.decode(u)["c"])) == [0, 0, 1, 2, 3, 3]
    np.testing.assert_allclose(space.encode({"c": "c"}), [0.625])


def test_conditional_parameters_marked_inactive_and_neutral():
    space = mixed_space()
    sgd = {"lr": 0.01, "wd": 0.0, "width": 64, "depth": 2, "opt": "sgd", "momentum": 0.9,
           "nesterov": True}
    adam = {"lr": 0.01, "wd": 0.0, "width": 64, "depth": 2, "opt": "adam", "beta2": 0.99}
    x = np.stack([space.encode(sgd), space.encode(adam)])
    p_sgd, p_adam = space.to_params_list(x)
    assert "beta2" not in p_sgd and p_sgd["momentum"] == pytest.approx(0.9, rel=1e-5)
    assert "momentum" not in p_adam and "nesterov" not in p_adam
    assert space.inactive_names(p_adam) == ["momentum", "nesterov"]
    act = space.active(x)
    assert list(np.asarray(act["momentum"])) == [True, False]
    assert list(np.asarray(act["beta2"])) == [False, True]
    dec = space.decode(x)
    # Inactive: beta2 of the sgd member takes its default 0.999; momentum of the adam member
    # the centre value 0.495; nesterov the first choice (index 0).
    assert float(dec["beta2"][0]) == pytest.approx(0.999, rel=1e-6)
    assert float(dec["momentum"][1]) == pytest.approx(0.495, rel=1e-6)
    assert int(dec["nesterov"][1]) == 0


def test_nested_conditions_require_active_parent():
    space = Space({
        "model": Categorical(["linear", "mlp"]),
        "act": Categorical(["relu", "tanh"], condition={"model": "mlp"}),
        "slope": Float(0.0, 1.0, condition={"act": "relu"}),
    })
    linear_relu = np.array([[0.1, 0.1, 0.3]], np.float32)  # act bin = relu but model=linear
    assert space.to_params_list(linear_relu)[0] == {"model": "linear"}
    mlp_relu = np.array([[0.9, 0.1, 0.3]], np.float32)
    assert set(space.to_params_list(mlp_relu)[0]) == {"model", "act", "slope"}


def test_decode_under_jit_and_vmap():
    space = mixed_space()
    x = space.sample(jax.random.key(2), 12)
    eager = space.decode(x)
    jitted = jax.jit(space.decode)(x)
    per_row = jax.vmap(space.decode)(x)
    for n in space.names:
        # floats may differ by an ulp between fused (jit) and eager exp; ints must be equal
        np.testing.assert_allclose(np.asarray(eager[n]), np.asarray(jitted[n]), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(eager[n]), np.asarray(per_row[n]), rtol=1e-6)


def test_grid_covers_each_configuration_once():
    space = Space({"a": Float(0.0, 1.0), "b": Int(1, 3),
                   "opt": Categorical(["sgd", "adam"]),
                   "m": Float(0.0, 0.9, condition={"opt": "sgd"})})
    g = space.grid(3)
    # a: 3 values, b: 3 ints, opt=sgd: 3 momenta, opt=adam: 1 (m inactive) -> 3*3*(3+1)
    assert g.shape == (36, 4)
    params = space.to_params_list(g)
    keys = {tuple(sorted(p.items())) for p in params}
    assert len(keys) == 36
    assert {p["a"] for p in params} == {0.0, 0.5, 1.0}
    assert {p["b"] for p in params} == {1, 2, 3}
    g2 = Space({"w": Int(1, 1000, log=True)}).grid(4)
    assert [p["w"] for p in Space({"w": Int(1, 1000, log=True)}).to_params_list(g2)] == [
        1, 10, 100, 1000]


def test_kind_metadata():
    space = mixed_space()
    assert space.dim == 8 and len(space) == 8
    assert list(space.kinds) == [0, 0, 1, 1, 2, 0, 2, 0]
    assert list(space.num_choices) == [0, 0, 505, 6, 3, 0, 2, 0]
    assert list(space.is_log) == [True, False, True, False, False, False, False, False]
    assert space.choices("opt") == ("sgd", "adam", "rmsprop")


def test_to_dict_round_trip_and_equality():
    space = mixed_space()
    assert Space.from_dict(space.to_dict()) == space
    assert space != Space({"lr": Float(1e-5, 1.0, log=True)})


def test_neutralize_merges_inactive_coordinates():
    space = mixed_space()
    x = np.asarray(space.sample(jax.random.key(3), 64))
    xn = space.neutralize(x)
    assert space.to_params_list(xn) == space.to_params_list(x)
    act = np.asarray(space.active_mask(x))
    np.testing.assert_array_equal(xn[act], x[act])
    assert np.all(np.isin(xn[~act], space._neutral_u))
    np.testing.assert_allclose(np.asarray(space.neutralize(jnp.asarray(x))), xn)
