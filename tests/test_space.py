"""Space: encode/decode round trips, bounds, log scales, ints, categoricals, conditions."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
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


# ------------------------------------------------------------------ representable ranges (#25)
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)
EDGE_FLOATS = st.sampled_from([0.0, F32_TINY, -F32_TINY, F32_MAX, -F32_MAX, 1e-30, -1e-30, 1e30,
                               -1e30, 1.0, -1.0, 1e-7, 3.0])
EDGE_X = np.array([0.0, 1.0, np.nextafter(np.float32(1), np.float32(0)), 0.5, 1e-30, 1e-7,
                   0.25, 0.75], np.float32)


@st.composite
def edge_param(draw):
    """Any spec the constructors accept, drawn from the edges of the float32/int32 ranges."""
    kind = draw(st.sampled_from(["float", "int"]))
    log = draw(st.booleans())
    if kind == "float":
        num = st.one_of(EDGE_FLOATS, st.floats(width=32, allow_nan=False, allow_infinity=False))
        lo, hi = sorted([draw(num), draw(num)])
        make = lambda: Float(lo, hi, log=log)  # noqa: E731
    else:
        top = 2**24 if log else 2**31 - 1
        edges = [1, 2, 2**24 - 3] if log else [1, -2**31, 2**31 - 2**24, 2**24 - 3]
        lo = draw(st.one_of(st.sampled_from(edges), st.integers(1 if log else -2**31, top)))
        hi = draw(st.one_of(st.just(lo), st.integers(lo, min(top, lo + 2**24 - 1)),
                            st.just(min(top, lo + 2**24 - 1))))
        make = lambda: Int(lo, hi, log=log)  # noqa: E731
    try:
        return make()
    except ValueError:  # outside the representable ranges: rejected with a message (test_errors)
        assume(False)


@settings(max_examples=60, deadline=None)
@given(st.lists(edge_param(), min_size=1, max_size=4), st.integers(0, 2**31 - 1))
def test_decoded_values_stay_within_declared_bounds(params, seed):
    space = Space({f"p{i}": p for i, p in enumerate(params)})
    rnd = np.random.default_rng(seed).random((8, space.dim), dtype=np.float32)
    edges = np.repeat(EDGE_X[:, None], space.dim, axis=1)
    x = np.concatenate([edges, rnd])
    eager = space.decode(x)
    jitted = jax.jit(space.decode)(x)
    py = space.to_params_list(x)
    for name, p in space.items():
        for v in (np.asarray(eager[name]), np.asarray(jitted[name])):
            assert np.all(np.isfinite(v))
            assert np.all(v.astype(np.float64) >= p.low) and np.all(v.astype(np.float64) <= p.high)
        pv = [row[name] for row in py]
        assert all(p.low <= v <= p.high for v in pv), (p, pv)
        if isinstance(p, Int):
            assert np.asarray(eager[name]).dtype == np.int32 and all(type(v) is int for v in pv)
            if not p.log:  # same float32 arithmetic on both sides
                assert list(np.asarray(eager[name])) == pv
            # every encoded value decodes back to itself on the Python side
            for v in {p.low, p.high, pv[0]}:
                assert space.to_params(space.encode({**py[0], name: v}))[name] == v
        else:
            assert np.asarray(eager[name]).dtype == np.float32 and all(type(v) is float for v in pv)
    # x = 0 and x = 1 reach the bounds themselves
    lo, hi = space.to_params_list(edges[:2])
    for name, p in space.items():
        assert lo[name] == p.low and hi[name] == p.high


def test_issue_25_ranges_are_rejected_with_the_representable_range():
    for make in (lambda: Float(1e-50, 1, log=True), lambda: Float(1, 1e50, log=True),
                 lambda: Float(-1e308, 1e308), lambda: Float(1e-45, 2e-45)):
        with pytest.raises(ValueError, match=r"1\.1754944e-38, 3\.4028235e\+38"):
            make()
    with pytest.raises(ValueError, match=r"outside int32 \[-2\*\*31, 2\*\*31 - 1\]"):
        Int(0, 2**40)
    with pytest.raises(ValueError, match="Int low=2147483648 is outside int32"):
        Int(2**31, 2**31 + 10)
    # the widest accepted ranges decode at the ends exactly
    space = Space({"a": Float(-F32_MAX / 2, F32_MAX / 2), "b": Float(F32_TINY, F32_MAX, log=True),
                   "c": Int(2**31 - 2**24, 2**31 - 1), "d": Int(1, 2**24, log=True),
                   "e": Int(-2**31, -2**31 + 2**24 - 1)})
    x = np.array([[0.0] * 5, [1.0] * 5], np.float32)
    for dec in (space.decode(x), jax.jit(space.decode)(x)):
        for name, p in space.items():
            assert list(np.asarray(dec[name]).astype(np.float64)) == [p.low, p.high], name


def test_ints_and_categoricals_decode_identically_in_jax_and_python():
    space = Space({"n": Int(-3, 2**24 - 4), "m": Int(0, 6), "c": Categorical(list("abcdefg"))})
    x = np.array(jax.random.uniform(jax.random.key(4), (4000, 3)))
    x[:7] = np.arange(7)[:, None] / 7  # bin edges
    dec = jax.jit(space.decode)(x)
    py = space.to_params_list(x)
    assert list(np.asarray(dec["n"])) == [p["n"] for p in py]
    assert list(np.asarray(dec["m"])) == [p["m"] for p in py]
    assert [space.choices("c")[i] for i in np.asarray(dec["c"])] == [p["c"] for p in py]


# ------------------------------------------------------------------ JSON round trip (#25)
scalar_choice = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=5),
    st.binary(max_size=4), st.floats(allow_nan=False),
    st.integers(-100, 100).map(np.int64), st.integers(0, 255).map(np.uint8),
    st.booleans().map(np.bool_), st.floats(width=32, allow_nan=False).map(np.float32),
    st.floats(allow_nan=False).map(np.float64), st.text(max_size=3).map(np.str_))
choice = st.recursive(scalar_choice, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)), max_leaves=6)


def _distinct(cs):
    from jaxhpo._space import _eq

    out = []
    for c in cs:
        if not any(_eq(c, o) for o in out):
            out.append(c)
    return out


@st.composite
def json_spaces(draw):
    choices = _distinct(draw(st.lists(choice, min_size=1, max_size=5)))
    assume(len(set(choices)) == len(choices))
    params = {"c": Categorical(choices, default=draw(st.sampled_from(choices)),
                               static=draw(st.booleans()))}
    params["f"] = Float(0.0, 1.0, static=draw(st.booleans()),
                        condition={"c": draw(st.lists(st.sampled_from(choices), min_size=1))})
    params["i"] = Int(-5, 5, log=False, default=draw(st.integers(-5, 5)))
    return Space(params)


@settings(max_examples=120, deadline=None)
@given(json_spaces())
def test_to_dict_is_json_and_round_trips(space):
    import json

    d = space.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d  # JSON-native: what the journal compares on resume
    back = Space.from_dict(json.loads(text))
    assert back == space and hash(back) == hash(space)
    for a, b in zip(space.choices("c"), back.choices("c")):
        assert type(a) is type(b) and (a == b or a is b)
    x = np.asarray(space.sample(jax.random.key(0), 8))
    assert back.to_params_list(x) == space.to_params_list(x)


def test_issue_25_choices_journal_and_return_the_users_objects():
    import json

    objs = [np.int64(1), np.int64(2)]
    for choices in (objs, [np.bool_(False), np.bool_(True)], [b"a", b"b"],
                    [frozenset({1, 2}), frozenset()], [float("inf"), -float("inf"), 0.5],
                    [(1, "a"), (2, "b")], [("nested", (1.5, None))]):
        space = Space({"c": Categorical(choices)})
        back = Space.from_dict(json.loads(json.dumps(space.to_dict(), allow_nan=False)))
        assert back == space
        x = np.asarray(space.sample(jax.random.key(1), 16))
        for row in space.to_params_list(x):
            assert any(row["c"] is c for c in choices)  # the user's own object
        assert back.to_params_list(x) == space.to_params_list(x)


# ------------------------------------------------------------------ HParams, static (#25, #19)
def test_decode_returns_a_pytree_dict_with_a_listing_key_error():
    from jaxhpo._space import HParams

    space = mixed_space()
    x = space.sample(jax.random.key(5), 6)
    hp = space.decode(x)
    assert isinstance(hp, HParams) and isinstance(hp, dict)
    with pytest.raises(KeyError, match=r"'lrr' is not defined.*did you mean 'lr'\?") as info:
        hp["lrr"]
    assert "'momentum'" in str(info.value)

    def objective(hp):
        return hp["lrr"] * 2

    with pytest.raises(KeyError, match="did you mean 'lr'"):
        jax.jit(objective)(hp)
    assert hp.get("lrr") is None
    shapes = jax.tree.map(lambda a: a.shape, hp)
    assert isinstance(shapes, HParams) and shapes["lr"] == (6,)
    out = jax.jit(lambda h: h)(hp)
    assert isinstance(out, HParams) and set(out) == set(space.names)
    per = jax.vmap(lambda h: {"y": h["lr"] * h["depth"]})(hp)
    np.testing.assert_allclose(per["y"], np.asarray(hp["lr"]) * np.asarray(hp["depth"]),
                               rtol=1e-6)
    rows = jax.vmap(space.decode)(x)
    assert isinstance(rows, HParams)
    for n in space.names:
        np.testing.assert_allclose(np.asarray(rows[n]), np.asarray(hp[n]), rtol=1e-6)
    assert jax.tree_util.tree_structure(hp).num_leaves == space.dim


def test_static_parameters():
    space = Space({
        "lr": Float(1e-4, 1e-1, log=True),
        "width": Int(16, 256, log=True, static=True),
        "opt": Categorical([("adam", 1), ("sgd", 2)], static=True),
        "act": Categorical(["relu", "tanh"], static=True, condition={"opt": [("sgd", 2)]}),
    })
    assert space.static_names == ("width", "opt", "act")
    assert list(space.is_static) == [False, True, True, True]
    x = np.asarray(space.sample(jax.random.key(6), 32))
    for row in x:
        vals = space.static_values(row)
        hash(vals)
        p = space.to_params(row)
        assert vals[:2] == (p["width"], p["opt"]) and type(vals[0]) is int
        assert any(vals[1] is c for c in space.choices("opt"))
        assert vals[2] == p.get("act", "relu")  # inactive: the neutral value (first choice)
        assert space.static_params(row) == dict(zip(space.static_names, vals))
    assert space.decode(x)["width"].dtype == jnp.int32  # decode unchanged for static params
    assert Space.from_dict(space.to_dict()) == space
    assert space != Space({**dict(space.items()), "lr": Float(1e-4, 1e-1, log=True, static=True)})
    assert Space({"a": Float(0.0, 1.0)}).static_values(np.zeros(1)) == ()


def test_registry_is_read_only_and_names_the_closest_strategy():
    from jaxhpo.strategies import REGISTRY

    with pytest.raises(KeyError, match=r"did you mean 'tpe'\?") as info:
        REGISTRY["tpee"]
    assert "'random_search'" in str(info.value)
    assert "tpe" in REGISTRY and "tpee" not in REGISTRY and len(REGISTRY) == len(list(REGISTRY))
    with pytest.raises(TypeError):
        REGISTRY["mine"] = REGISTRY["tpe"]


# ------------------------------------------------------------------ scale (#25)
def test_construction_and_eager_decode_scale_linearly():
    import time

    params = {f"p{i}": [Float(0.0, 1.0), Float(1e-4, 1.0, log=True), Int(1, 100),
                        Categorical(["a", "b"]), Float(0.0, 1.0, condition={"p3": "a"})][i % 5]
              for i in range(8000)}
    params = {k: (Float(0.0, 1.0, condition={f"p{int(k[1:]) - 1}": "a"}) if v.condition else v)
              for k, v in params.items()}
    t = time.perf_counter()
    space = Space(params)
    built = time.perf_counter() - t
    assert built < 4.0, built  # was minutes: quadratic in the number of parameters
    x = space.sample(jax.random.key(7), 4)
    hp = space.decode(x)
    assert len(hp) == 8000 and hp["p7999"].shape == (4,)
    rows = space.to_params_list(x)
    act = np.asarray(space.active_mask(x))
    assert [sorted(r) for r in rows] == [sorted(n for n, a in zip(space.names, m) if a)
                                         for m in act]
