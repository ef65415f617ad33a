"""Fuzz: generated invalid specs and arguments -> a clear ValueError/TypeError from jaxhpo.

Every target below is one argument of one public entry point (search-space parameters and
spaces, every registered strategy's factory, ``minimize``, ``tune``, ``Trainer`` and the
schedulers). Hypothesis draws invalid values for it (wrong types, out-of-range numbers, NaN/inf,
empty or duplicated collections, ...), and each must raise ``ValueError`` or ``TypeError``

* whose message names the argument (the independent truth: the argument's name), and
* whose raising frame is a ``jaxhpo`` source file, i.e. our own check fired, not a deep
  jax/numpy error.

Nothing is trained or compiled: each example only constructs, so the file runs in seconds.
``derandomize=True`` keeps the examples identical on every run (CI stability).
"""

import math
import os

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo import schedulers as S
from jaxhpo import strategies as J
from jaxhpo.train import Trainer, mlp, synthetic_classification

PKG = os.path.dirname(os.path.abspath(jaxhpo.__file__)) + os.sep
SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
TSPACE = Space({"learning_rate": Float(1e-3, 0.3, log=True)})
DATA = synthetic_classification(64, 4, 2, seed=0)
MODEL = mlp(2, max_width=8)
TRAINER = Trainer(MODEL, DATA, space=TSPACE, max_batch_size=8)
EXAMPLES = {}  # test name -> max_examples, summed by test_example_budget


def raises_clearly(fn, *names):
    """``fn()`` raises ValueError/TypeError naming one of ``names``, from a jaxhpo frame."""
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    msg = str(info.value)
    assert any(n in msg for n in names), f"{info.value!r} names none of {names}"
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = os.path.abspath(tb.tb_frame.f_code.co_filename)
    assert where.startswith(PKG), f"{info.value!r} raised in {where}, not in jaxhpo/"


def budget(n):
    def deco(f):
        EXAMPLES[f.__name__] = n
        return settings(max_examples=n, deadline=None, derandomize=True)(f)
    return deco


# ---------------------------------------------------------------------------- bad values
NAN, INF = float("nan"), float("inf")
JUNK = st.one_of(st.text(max_size=4), st.none(), st.lists(st.integers(), max_size=2),
                 st.just({}), st.just(object()))
NONFINITE = st.sampled_from([NAN, INF, -INF])


def bad_int(low, none_ok=False):
    """Not an int >= low: smaller ints, floats (even integral ones), bools, junk."""
    junk = JUNK.filter(lambda v: v is not None) if none_ok else JUNK
    return st.one_of(st.integers(-10**9, low - 1), st.floats(allow_nan=True),
                     st.booleans(), junk)


def bad_real(low=None, high=None, none_ok=False, low_open=False, high_open=False):
    """Not a finite real in [low, high] (open ends when asked)."""
    out = [NONFINITE, JUNK.filter(lambda v: v is not None) if none_ok else JUNK]
    if low is not None:
        out.append(st.floats(max_value=low, exclude_max=not low_open, allow_nan=False,
                             allow_infinity=False, min_value=-1e9))
    if high is not None:
        out.append(st.floats(min_value=high, exclude_min=not high_open, allow_nan=False,
                             allow_infinity=False, max_value=1e9))
    return st.one_of(*out)


def bad_choice(valid):
    return st.one_of(st.text(max_size=6).filter(lambda s: s not in valid), st.integers(),
                     st.none(), st.floats())


# ---------------------------------------------------------------------------- parameters, spaces
@budget(40)
@given(st.data())
def test_float_bounds(data):
    arg = data.draw(st.sampled_from(["low", "high", "order", "log_low"]))
    if arg == "order":  # low >= high
        lo = data.draw(st.floats(-1e6, 1e6))
        hi = data.draw(st.floats(-1e6, 1e6).filter(lambda h: h <= lo))
        raises_clearly(lambda: Float(lo, hi), "low < high")
    elif arg == "log_low":
        lo = data.draw(st.floats(-1e6, 0.0))
        raises_clearly(lambda: Float(lo, 1e7, log=True), "low")
    else:
        v = data.draw(st.one_of(NONFINITE, st.booleans(), JUNK))
        kw = {"low": 0.0, "high": 1.0, arg: v}
        raises_clearly(lambda: Float(**kw), arg)


@budget(30)
@given(st.data())
def test_float_log_and_default(data):
    if data.draw(st.booleans()):
        v = data.draw(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats()))
        raises_clearly(lambda: Float(0.0, 1.0, log=v), "log")
    else:
        v = data.draw(bad_real(0.0, 1.0, none_ok=True, low_open=True, high_open=True))
        raises_clearly(lambda: Float(0.0, 1.0, default=v), "default")


@budget(40)
@given(st.data())
def test_int_spec(data):
    arg = data.draw(st.sampled_from(["low", "high", "order", "log_low", "default", "log"]))
    if arg in ("low", "high"):
        v = data.draw(st.one_of(st.floats(), st.booleans(), JUNK))
        kw = {"low": 0, "high": 5, arg: v}
        raises_clearly(lambda: Int(**kw), arg)
    elif arg == "order":
        lo = data.draw(st.integers(-1000, 1000))
        hi = data.draw(st.integers(-2000, lo - 1))
        raises_clearly(lambda: Int(lo, hi), "low <= high")
    elif arg == "log_low":
        lo = data.draw(st.integers(-1000, 0))
        raises_clearly(lambda: Int(lo, 2000, log=True), "low")
    elif arg == "log":
        v = data.draw(st.one_of(st.integers(), st.text(max_size=3), st.floats()))
        raises_clearly(lambda: Int(1, 5, log=v), "log")
    else:
        v = data.draw(st.one_of(st.integers(6, 10**6), st.integers(-10**6, 0), st.floats(),
                                st.booleans(), st.text(max_size=2)))
        raises_clearly(lambda: Int(1, 5, default=v), "default")


@budget(30)
@given(st.data())
def test_categorical_spec(data):
    kind = data.draw(st.sampled_from(["empty", "notseq", "dup", "unhashable", "default"]))
    if kind == "empty":
        raises_clearly(lambda: Categorical(data.draw(st.sampled_from([[], ()]))), "choice")
    elif kind == "notseq":
        v = data.draw(st.one_of(st.text(max_size=4), st.integers(), st.none(), st.just({1})))
        raises_clearly(lambda: Categorical(v), "choices")
    elif kind == "dup":
        c = data.draw(st.lists(st.text(max_size=3), min_size=1, max_size=4))
        raises_clearly(lambda: Categorical(c + [c[0]]), "distinct")
    elif kind == "unhashable":
        raises_clearly(lambda: Categorical(["a", data.draw(st.lists(st.integers()))]),
                       "hashable")
    else:
        v = data.draw(st.text(max_size=3).filter(lambda s: s not in ("a", "b")))
        raises_clearly(lambda: Categorical(["a", "b"], default=v), "default")


@budget(40)
@given(st.data())
def test_conditional_spec(data):
    kind = data.draw(st.sampled_from(["notmap", "key", "empty", "order", "parent", "value"]))
    if kind == "notmap":
        v = data.draw(st.one_of(st.text(max_size=3), st.integers(), st.lists(st.text())))
        raises_clearly(lambda: Float(0.0, 1.0, condition=v), "condition")
    elif kind == "key":
        k = data.draw(st.one_of(st.integers(), st.none(), st.floats(allow_nan=False)))
        raises_clearly(lambda: Float(0.0, 1.0, condition={k: "a"}), "condition")
    elif kind == "empty":
        raises_clearly(lambda: Float(0.0, 1.0, condition={"opt": []}), "condition", "values")
    elif kind == "order":  # the parent is declared after its child (or not at all)
        parent = data.draw(st.text(min_size=1, max_size=4).filter(lambda s: s != "m"))
        raises_clearly(lambda: Space({"m": Float(0.0, 1.0, condition={parent: "a"}),
                                      parent: Categorical(["a"])}), "declared before", parent)
    elif kind == "parent":
        p = data.draw(st.sampled_from([Float(0.0, 1.0), Int(1, 3)]))
        raises_clearly(lambda: Space({"p": p, "m": Float(0.0, 1.0, condition={"p": 1})}),
                       "Categorical")
    else:
        v = data.draw(st.one_of(st.text(max_size=3), st.integers()).filter(
            lambda s: s not in ("a", "b")))
        raises_clearly(lambda: Space({"p": Categorical(["a", "b"]),
                                      "m": Float(0.0, 1.0, condition={"p": v})}), "choice")


@budget(30)
@given(st.data())
def test_space_spec(data):
    kind = data.draw(st.sampled_from(["notmap", "name", "param", "twice"]))
    if kind == "notmap":
        v = data.draw(st.one_of(st.lists(st.integers(), min_size=1), st.text(min_size=1),
                                st.integers()))
        raises_clearly(lambda: Space(v), "mapping")
    elif kind == "name":
        n = data.draw(st.one_of(st.integers(), st.just(""), st.none(), st.floats()))
        raises_clearly(lambda: Space({n: Float(0.0, 1.0)}), "name")
    elif kind == "param":
        v = data.draw(st.one_of(st.tuples(st.floats(), st.floats()), st.integers(), st.text(),
                                st.none()))
        raises_clearly(lambda: Space({"x": v}), "'x'")
    else:
        raises_clearly(lambda: Space({"x": Float(0.0, 1.0)}, x=Int(0, 1)), "twice")


# ---------------------------------------------------------------------------- numeric ranges
# Generated tables: (case id, constructor, names one of which the message must contain). Add
# rows (or generators) here; test_range_cases runs every row.
F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)
UNREPRESENTABLE = [1e-39, -1e-39, 1e-45, 5e-324, 3.5e38, -3.5e38, 1e39, 1e50, -1e50, 1e308,
                   -1e308, 1e-300, -1e-300, 1.1e-38, -5e-39, 1e-40, 4e38, -4e38, float(2**128)]
INT_OUTSIDE = [2**31, 2**31 + 10, 2**32, 2**40, 2**63, 2**64, -2**31 - 1, -2**32, -2**40, -2**63]


def _range_cases():
    cases = []
    for v in UNREPRESENTABLE:
        if v < 1.0:
            cases.append((f"float-low-{v!r}", lambda v=v: Float(v, 1.0), ("low",)))
        if v > -1.0:
            cases.append((f"float-high-{v!r}", lambda v=v: Float(-1.0, v), ("high",)))
        if 0 < v < 1.0:
            cases.append((f"log-low-{v!r}", lambda v=v: Float(v, 1.0, log=True), ("low",)))
        if v > 1.0:
            cases.append((f"log-high-{v!r}", lambda v=v: Float(1.0, v, log=True), ("high",)))
    for a, b in [(-F32_MAX, F32_MAX), (-2e38, 2e38), (-1e38, 3e38), (-3e38, 1e38)]:
        cases.append((f"span-{a:g}-{b:g}", lambda a=a, b=b: Float(a, b), ("span",)))
    for v in [1.0, -1.0, 1e-20, 1e20, 8192.0, 3e38, -3e38, 1.5e-38]:
        w = float(np.nextafter(v, np.inf))
        cases.append((f"narrow-{v!r}", lambda v=v, w=w: Float(v, w), ("low", "high")))
    for v in INT_OUTSIDE:
        if v < 0:
            cases.append((f"int-low-{v}", lambda v=v: Int(v, 0), ("low",)))
        else:
            cases.append((f"int-high-{v}", lambda v=v: Int(0, v), ("high",)))
            cases.append((f"int-both-{v}", lambda v=v: Int(v, v + 10), ("low",)))
    for lo, hi in [(0, 2**24), (-2**31, 2**31 - 1), (-2**23, 2**23), (1, 2**30)]:
        cases.append((f"int-count-{lo}-{hi}", lambda lo=lo, hi=hi: Int(lo, hi), ("Int(low",)))
    for hi in [2**24 + 1, 2**25, 2**31 - 1]:
        cases.append((f"int-log-high-{hi}", lambda hi=hi: Int(1, hi, log=True), ("high",)))
    for bad in [1, 0, "yes", None, 1.0, [], np.int64(1)]:
        for cls, args in [(Float, (0.0, 1.0)), (Int, (0, 3)), (Categorical, (["a", "b"],))]:
            cases.append((f"static-{cls.__name__}-{bad!r}",
                          lambda cls=cls, args=args, bad=bad: cls(*args, static=bad),
                          ("static",)))
    for bad in [NAN, np.float32("nan"), object(), print, np.complex64(1), np.datetime64(1, "D"),
                np.float64(NAN), ("a", object()), frozenset({object()}), (1, (2, NAN)),
                np.array(1.0)[()].astype(np.longdouble), Float(0.0, 1.0)]:
        cases.append((f"choice-{type(bad).__name__}-{len(cases)}",
                      lambda bad=bad: Categorical(["ok", bad]), ("choice", "Categorical")))
    return cases


RANGE_CASES = _range_cases()


@pytest.mark.parametrize("make,names", [(m, n) for _, m, n in RANGE_CASES],
                         ids=[c[0] for c in RANGE_CASES])
def test_range_cases(make, names):
    raises_clearly(make, *names)


def test_range_case_table_is_large():
    assert len(RANGE_CASES) >= 100, len(RANGE_CASES)


F32S = st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False),
                 st.sampled_from([0.0, F32_TINY, -F32_TINY, F32_MAX, -F32_MAX, 1e-38, 1e38]),
                 st.floats(allow_nan=False, allow_infinity=False))


@budget(150)
@given(st.data())
def test_generated_float_ranges_construct_or_fail_clearly(data):
    """Any pair of bounds either builds a Float whose values (at x = 0, 1, just below 1 and
    random points) lie within the bounds and survive the JSON round trip, or fails clearly."""
    lo, hi = sorted([data.draw(F32S), data.draw(F32S)])
    log = data.draw(st.booleans())
    try:
        p = Float(lo, hi, log=log)
    except (ValueError, TypeError):
        raises_clearly(lambda: Float(lo, hi, log=log), "low", "high", "span")
        return
    _check_space(Space({"p": p}), data)


@budget(100)
@given(st.data())
def test_generated_int_ranges_construct_or_fail_clearly(data):
    lo, hi = sorted([data.draw(st.integers(-2**33, 2**33)), data.draw(st.integers(-2**33,
                                                                                  2**33))])
    if data.draw(st.booleans()):
        hi = lo + data.draw(st.integers(0, 2**25))
    log = data.draw(st.booleans())
    try:
        p = Int(lo, hi, log=log)
    except (ValueError, TypeError):
        raises_clearly(lambda: Int(lo, hi, log=log), "low", "high", "Int(low")
        return
    _check_space(Space({"p": p}), data)


EDGE_U = np.array([0.0, 1.0, np.nextafter(np.float32(1), np.float32(0)), 1e-30, 0.5],
                  np.float32)


def _check_space(space, data):
    import json

    rnd = np.asarray(data.draw(st.lists(st.floats(0.0, 1.0, width=32), min_size=1,
                                        max_size=4)), np.float32)
    x = np.concatenate([EDGE_U, rnd])[:, None].repeat(space.dim, 1)
    for row in space.to_params_list(x):
        for name, p in space.items():
            if not isinstance(p, Categorical) and name in row:
                assert p.low <= row[name] <= p.high, (p, row)
    back = Space.from_dict(json.loads(json.dumps(space.to_dict(), allow_nan=False)))
    assert back == space


@budget(60)
@given(st.data())
def test_generated_spaces_build_and_round_trip(data):
    """Programmatically generated spaces (mixed kinds, conditions, static flags, odd choices)
    build, decode in bounds on the Python side and survive the JSON round trip."""
    n = data.draw(st.integers(1, 12))
    params = {}
    cats = []
    for i in range(n):
        kind = data.draw(st.sampled_from(["float", "log", "int", "logint", "cat"]))
        cond = None
        if cats and data.draw(st.booleans()):
            parent, choices = data.draw(st.sampled_from(cats))
            cond = {parent: [data.draw(st.sampled_from(choices))]}
        static = data.draw(st.booleans())
        if kind == "float":
            p = Float(-1.0, data.draw(st.floats(1e-3, 1e30)), condition=cond, static=static)
        elif kind == "log":
            p = Float(1e-30, data.draw(st.floats(1.0, 1e30)), log=True, condition=cond,
                      static=static)
        elif kind == "int":
            p = Int(-5, data.draw(st.integers(-5, 2**20)), condition=cond, static=static)
        elif kind == "logint":
            p = Int(1, data.draw(st.integers(1, 2**24)), log=True, condition=cond,
                    static=static)
        else:
            pool = ["a", 1, 2.5, None, True, b"x", ("t", 1), frozenset({3}), np.int64(7),
                    np.float32(0.25), float("inf"), np.str_("s")]
            choices = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5,
                                         unique_by=repr))
            if len(set(choices)) != len(choices):
                choices = ["a", "b"]
            p = Categorical(choices, condition=cond, static=static)
            cats.append((f"p{i}", choices))
        params[f"p{i}"] = p
    space = Space(params)
    _check_space(space, data)
    x = np.asarray(data.draw(st.lists(st.floats(0.0, 1.0, width=32), min_size=space.dim,
                                      max_size=space.dim)), np.float32)
    vals = space.static_values(x)
    hash(vals)
    assert len(vals) == len(space.static_names)


# ---------------------------------------------------------------------------- strategies
# Every factory behind the registry, with its size argument and its options.
FACTORIES = {
    "random_search": (J.random_search, "population_size", 1, False),
    "quasi_random": (J.quasi_random, "population_size", 1, False),
    "cma_es": (J.cma_es, "population_size", 2, True),
    "sep_cma_es": (J.sep_cma_es, "population_size", 2, True),
    "cma_es_restarts": (J.cma_es_restarts, "population_size", 2, True),
    "differential_evolution": (J.differential_evolution, "population_size", 4, False),
    "particle_swarm": (J.particle_swarm, "population_size", 1, False),
    "simulated_annealing": (J.simulated_annealing, "population_size", 1, False),
    "genetic_algorithm": (J.genetic_algorithm, "population_size", 2, False),
    "nsga2": (J.nsga2, "population_size", 2, False),
    "ars": (J.ars, "num_directions", 1, False),
    "ars_augmented": (J.ars_augmented, "num_directions", 1, False),
    "gp_bo": (J.gp_bo, "batch_size", 1, False),
    "tpe": (J.tpe, "batch_size", 1, False),
    "ppo_agent": (J.ppo_agent, "population_size", 1, False),
}

# (factory, option, bad-value strategy); the registry's settings are valid, these are not.
OPTIONS = [
    ("quasi_random", "scramble", st.one_of(st.integers(), st.text(max_size=2))),
    ("cma_es", "sigma0", bad_real(0.0)),
    ("cma_es", "mean0", st.one_of(st.just([0.5]), st.just([0.5, 2.0]), st.just([NAN, 0.5]),
                                  st.text(min_size=1, max_size=2))),
    ("cma_es", "penalty", bad_real(0.0)),
    ("sep_cma_es", "sigma0", bad_real(0.0)),
    ("cma_es_restarts", "mode", bad_choice(("ipop", "bipop"))),
    ("cma_es_restarts", "max_doublings", bad_int(0)),
    ("cma_es_restarts", "max_restarts", bad_int(0, none_ok=True)),
    ("cma_es_restarts", "tol_fun", bad_real(0.0)),
    ("differential_evolution", "mutation", bad_real(0.0, 2.0, low_open=True)),
    ("differential_evolution", "crossover", bad_real(0.0, 1.0)),
    ("differential_evolution", "variant", bad_choice(("rand/1", "best/1",
                                                     "current-to-best/1"))),
    ("particle_swarm", "inertia", bad_real()),
    ("particle_swarm", "v_max", bad_real(0.0)),
    ("simulated_annealing", "t0", bad_real(0.0)),
    ("simulated_annealing", "cooling", bad_real(0.0, 1.0, high_open=True)),
    ("simulated_annealing", "step", bad_real(0.0)),
    ("genetic_algorithm", "mutation_scale", bad_real(0.0)),
    ("genetic_algorithm", "blend", bad_real(0.0)),
    ("genetic_algorithm", "tournament", bad_int(1)),
    ("nsga2", "num_objectives", bad_int(1)),
    ("nsga2", "num_constraints", bad_int(0)),
    ("nsga2", "eta_c", bad_real(0.0)),
    ("nsga2", "crossover_prob", bad_real(0.0, 1.0)),
    ("ars", "top_directions", bad_int(1, none_ok=True)),
    ("ars", "step_size", bad_real(0.0)),
    ("ars", "noise", bad_real(0.0)),
    ("ars_augmented", "replay_capacity", bad_int(1)),
    ("ars_augmented", "prescreen", bad_int(1)),
    ("ars_augmented", "critic_members", bad_int(1)),
    ("tpe", "n_startup_trials", bad_int(0)),
    ("tpe", "n_ei_candidates", bad_int(1)),
    ("tpe", "gamma", bad_real(0.0, 1.0, high_open=True)),
    ("tpe", "capacity", bad_int(1)),
    ("ppo_agent", "hidden", bad_int(1)),
    ("ppo_agent", "learning_rate", bad_real(0.0)),
    ("ppo_agent", "num_epochs", bad_int(1)),
    ("ppo_agent", "clip_eps", bad_real(0.0)),
    ("ppo_agent", "num_minibatches", bad_int(1)),
    ("ppo_agent", "gae_lambda", bad_real(0.0, 1.0)),
]


@budget(90)
@given(st.data())
def test_strategy_size(data):
    name = data.draw(st.sampled_from(sorted(FACTORIES)))
    make, arg, low, none_ok = FACTORIES[name]
    v = data.draw(bad_int(low, none_ok=none_ok))
    raises_clearly(lambda: make(SPACE, **{arg: v}), arg)


@budget(20)
@given(st.data())
def test_strategy_space(data):
    name = data.draw(st.sampled_from(sorted(FACTORIES)))
    make, arg, _, _ = FACTORIES[name]
    v = data.draw(st.one_of(st.just({"x": Float(0.0, 1.0)}), st.integers(), st.none(),
                            st.text(max_size=3)))
    raises_clearly(lambda: make(v, **{arg: 4}), "space")


@budget(110)
@given(st.data())
def test_strategy_options(data):
    name, opt, bad = data.draw(st.sampled_from(OPTIONS))
    make, arg, _, _ = FACTORIES[name]
    v = data.draw(bad)
    raises_clearly(lambda: make(SPACE, **{arg: 8, opt: v}), opt)


def test_every_registered_strategy_is_fuzzed():
    # A new registry entry must get a factory row above (the registry's lambdas map onto these).
    covered = {"random_search", "quasi_random", "cma_es", "sep_cma_es", "ipop_cma_es",
               "bipop_cma_es", "differential_evolution", "de_current_to_best", "particle_swarm",
               "simulated_annealing", "genetic_algorithm", "nsga2", "ars", "gp_bo", "ars_critic",
               "grid_search", "tpe", "ppo_agent"}
    assert set(J.REGISTRY) <= covered, set(J.REGISTRY) - covered


@budget(20)
@given(st.data())
def test_grid_search_args(data):
    if data.draw(st.booleans()):
        v = data.draw(bad_int(1).filter(lambda v: not isinstance(v, dict)))
        raises_clearly(lambda: J.grid_search(SPACE, v), "points_per_axis")
    else:
        v = data.draw(bad_int(1, none_ok=True))
        raises_clearly(lambda: J.grid_search(SPACE, 3, population_size=v), "population_size")


# ---------------------------------------------------------------------------- minimize
def _obj(key, hp):
    return hp["x"]


MIN_ARGS = [
    ("num_generations", bad_int(1, none_ok=True)),
    ("direction", st.one_of(bad_choice(("minimize", "maximize")), st.just([]),
                            st.just(["minimize", "maximize"]))),
    ("metric", st.one_of(st.integers(), st.just([]), st.just(["a", "a"]), st.just([1]),
                         st.text(min_size=1, max_size=3).filter(lambda s: s != "value"))),
    ("key", st.one_of(st.floats(), st.text(max_size=3), st.booleans(), st.none(),
                      st.just(np.zeros(3, np.uint32)), st.just(np.zeros(2, np.float32)))),
    ("objective_type", bad_choice(("auto", "jax", "python"))),
    ("journal", st.one_of(st.integers(), st.floats(), st.just([]), st.just(b"\0"))),
    ("resume", st.one_of(st.integers(), st.text(max_size=2), st.none())),
    ("max_failures", bad_int(0, none_ok=True)),
    ("progress", st.one_of(st.integers(), st.text(max_size=2), st.none())),
    ("objective", st.one_of(st.integers(), st.text(max_size=2), st.none())),
    ("strategy", st.one_of(st.integers(), st.none(), st.just(J.random_search(Space(
        {"z": Float(0.0, 1.0)}), 4)))),
    ("space", st.one_of(st.none(), st.just({"x": Float(0.0, 1.0)}), st.integers())),
    ("constraints", st.one_of(st.integers(), st.just([1]), st.just(["c", "c"]), st.just([""]),
                              st.text(min_size=1, max_size=3).filter(lambda s: s != "value"))),
]


@budget(90)
@given(st.data())
def test_minimize_args(data):
    arg, bad = data.draw(st.sampled_from(MIN_ARGS))
    v = data.draw(bad)
    kw = dict(objective=_obj, space=SPACE, strategy=J.random_search(SPACE, 4),
              num_generations=1, progress=False)
    kw[arg] = v
    names = {"metric": ("metric", "twice"), "journal": ("journal",),
             "direction": ("direction",), "strategy": ("strategy",)}.get(arg, (arg,))
    raises_clearly(lambda: jaxhpo.minimize(kw.pop("objective"), kw.pop("space"),
                                           kw.pop("strategy"), **kw), *names)


# ---------------------------------------------------------------------------- tune, Trainer
TUNE_ARGS = [
    ("max_trials", bad_int(1)),
    ("population_size", bad_int(1, none_ok=True)),
    ("eval_every", st.one_of(bad_int(1, none_ok=True), st.sampled_from([3, 7, 11]))),
    ("metric", st.one_of(st.integers(), st.just(["loss", "accuracy"]))),
    ("direction", bad_choice(("minimize", "maximize"))),
    ("key", st.one_of(st.floats(), st.text(max_size=3), st.none())),
    ("journal", st.one_of(st.integers(), st.floats(), st.just([]))),
    ("resume", st.one_of(st.integers(), st.text(max_size=2), st.none())),
    ("checkpoint_every", bad_int(1)),
    ("time_budget", bad_real(0.0, none_ok=True)),
    ("workers", bad_int(1)),
    ("scheduler", st.one_of(st.text(max_size=4), st.none(), st.integers())),
    ("constraints", st.one_of(st.integers(), st.just([1]), st.just(["c", "c"]))),
]


@budget(70)
@given(st.data())
def test_tune_args(data):
    arg, bad = data.draw(st.sampled_from(TUNE_ARGS))
    v = data.draw(bad)
    python = arg == "workers"
    kw = dict(max_trials=4, population_size=None if python else 2, eval_every=10,
              progress=False, metric=None if python else "loss")
    sched = S.ASHA(10, 90, mode="stopping") if python else S.ASHA(10, 90)
    if arg == "scheduler":
        sched = v
    else:
        kw[arg] = v
    obj = (lambda params, trial: 0.0) if python else TRAINER
    space = SPACE if python else TSPACE
    strat = J.random_search(space, 4)
    names = {"eval_every": ("eval_every",), "metric": ("metric",)}.get(arg, (arg,))
    raises_clearly(lambda: jaxhpo.tune(obj, space, strat, sched, **kw), *names)


TRAINER_ARGS = [
    ("model", st.one_of(st.none(), st.integers(), st.text(max_size=2))),
    ("data", st.one_of(st.none(), st.integers(), st.just((np.zeros(3), np.zeros(3))))),
    ("space", st.one_of(st.integers(), st.just({"learning_rate": Float(0.1, 0.2)}))),
    ("max_batch_size", bad_int(1)),
    ("total_steps", bad_int(0)),
    ("eval_batch_size", bad_int(1, none_ok=True)),
    ("defaults", st.one_of(
        st.just({"learning_rate": None}), st.just({"learning_rate": "fast"}),
        st.just({"learning_rate": NAN}), st.just({"dropout": 2.0}), st.just({"depth": 0}),
        st.just({"optimizer": "lion"}), st.just({"schedule": 3}), st.just({"foo": 1.0}),
        st.just({"batch_size": 1000}), st.just({"momentum": [0.9]}),
        st.integers(), st.text(min_size=1, max_size=3))),
]


@budget(40)
@given(st.data())
def test_trainer_args(data):
    arg, bad = data.draw(st.sampled_from(TRAINER_ARGS))
    v = data.draw(bad)
    kw = dict(model=MODEL, data=DATA, space=TSPACE, max_batch_size=8)
    kw[arg] = v
    names = {"defaults": ("defaults",)}.get(arg, (arg,))
    raises_clearly(lambda: Trainer(kw.pop("model"), kw.pop("data"), **kw), *names)


# ---------------------------------------------------------------------------- schedulers
SCHED_ARGS = [
    (lambda v: S.Scheduler(v), "max_steps", bad_int(1)),
    (lambda v: S.MedianStopping(90, grace_period=v), "grace_period", bad_int(1)),
    (lambda v: S.MedianStopping(90, min_trials=v), "min_trials", bad_int(1)),
    (lambda v: S.CurveStopping(90, threshold=v), "threshold",
     bad_real(0.0, 1.0, low_open=True, high_open=True)),
    (lambda v: S.CurveStopping(90, min_points=v), "min_points", bad_int(2)),
    (lambda v: S.CurveStopping(90, bounds=v), "bounds",
     st.one_of(st.integers(), st.just((1.0,)), st.just((1.0, 0.0)), st.just(("a", "b")),
               st.just((NAN, 1.0)))),
    (lambda v: S.ASHA(v, 90), "min_steps", bad_int(1)),
    (lambda v: S.ASHA(10, v), "max_steps", st.one_of(bad_int(1), st.integers(1, 9))),
    (lambda v: S.ASHA(10, 90, eta=v), "eta", bad_real(2.0, none_ok=False)),
    (lambda v: S.ASHA(10, 90, mode=v), "mode", bad_choice(("promotion", "stopping"))),
    (lambda v: S.HyperBand(v, 90), "min_steps", st.one_of(bad_int(1), st.integers(91, 10**6))),
    (lambda v: S.HyperBand(10, 90, eta=v), "eta", bad_real(2.0)),
    (lambda v: S.BOHB(10, 90, top_fraction=v), "top_fraction",
     bad_real(0.0, 0.5, low_open=True)),
    (lambda v: S.BOHB(10, 90, random_fraction=v), "random_fraction",
     bad_real(0.0, 1.0)),
    (lambda v: S.BOHB(10, 90, bandwidth_factor=v), "bandwidth_factor",
     bad_real(0.0, low_open=True)),
    (lambda v: S.BOHB(10, 90, num_candidates=v), "num_candidates", bad_int(1)),
    (lambda v: S.PBT(v, 20), "max_steps", bad_int(1)),
    (lambda v: S.PBT(60, v), "interval", bad_int(1)),
    (lambda v: S.PBT(60, 20, fraction=v), "fraction", bad_real(0.0, 0.5, low_open=True)),
    (lambda v: S.PBT(60, 20, resample_prob=v), "resample_prob",
     bad_real(0.0, 1.0)),
]


@budget(80)
@given(st.data())
def test_scheduler_args(data):
    make, arg, bad = data.draw(st.sampled_from(SCHED_ARGS))
    v = data.draw(bad)
    raises_clearly(lambda: make(v), arg)


def test_example_budget():
    """The generated examples sum to at least 500."""
    assert sum(EXAMPLES.values()) >= 500, EXAMPLES


# ---------------------------------------------------------------------------- the run layer
# Objective outputs, metric/strategy mismatches, wrong-shaped tells and tune signatures: each
# must fail with jaxhpo's own error naming what is wrong, before a generation is evaluated
# where that is possible (the cheap strategies below keep these cases fast).
BAD_PY_OUTPUTS = ["1.5", b"1", True, np.bool_(False), 1 + 2j, None, [1.0], (1.0, 2.0),
                  {"a": "x"}, {"a": None}, {"a": 1 + 1j}, {}, object()]
BAD_JAX_OUTPUTS = [lambda hp: "s", lambda hp: None, lambda hp: True,
                   lambda hp: jax.numpy.asarray(1 + 2j), lambda hp: hp["x"] > 0.5,
                   lambda hp: jax.numpy.zeros(3), lambda hp: {"a": "s"},
                   lambda hp: {"a": jax.numpy.ones((2, 2))}]
SINGLE = {"tpe": lambda: J.tpe(SPACE, 4), "cma_es": lambda: J.cma_es(SPACE, 4),
          "gp_bo": lambda: J.gp_bo(SPACE, 4), "differential_evolution":
          lambda: J.differential_evolution(SPACE, 4), "particle_swarm":
          lambda: J.particle_swarm(SPACE, 4), "genetic_algorithm":
          lambda: J.genetic_algorithm(SPACE, 4), "simulated_annealing":
          lambda: J.simulated_annealing(SPACE, 4), "sep_cma_es": lambda: J.sep_cma_es(SPACE, 4)}


def _run_cases():
    cases = []
    for i, out in enumerate(BAD_PY_OUTPUTS):
        cases.append((f"py-output-{i}", lambda out=out: jaxhpo.minimize(
            lambda p: out, SPACE, J.random_search(SPACE, 2), num_generations=1,
            progress=False), ("must return a real number", "empty dict")))
    for i, fn in enumerate(BAD_JAX_OUTPUTS):
        cases.append((f"jax-output-{i}", lambda fn=fn: jaxhpo.minimize(
            lambda key, hp: fn(hp), SPACE, J.random_search(SPACE, 2), num_generations=1,
            progress=False), ("real scalar", "per-member shape")))
    for name, make in SINGLE.items():  # several metrics into a single-objective strategy
        for kind in ("python", "jax"):
            fn = (lambda p: {"a": p["x"], "b": p["y"]}) if kind == "python" else (
                lambda key, hp: {"a": hp["x"], "b": hp["y"]})
            cases.append((f"metrics-{name}-{kind}", lambda fn=fn, make=make: jaxhpo.minimize(
                fn, SPACE, make(), metric=["a", "b"], num_generations=1, progress=False),
                ("optimizes one objective",)))
        cases.append((f"tell-shape-{name}", lambda make=make: _bad_tell(make()),
                      ("fitness must be",)))
    for m in (1, 3):  # nsga2 built for 2 objectives
        names = ["a", "b", "c"][:m]
        cases.append((f"nsga2-{m}", lambda names=names: jaxhpo.minimize(
            lambda key, hp: {"a": hp["x"], "b": hp["y"], "c": hp["x"]}, SPACE,
            J.nsga2(SPACE, 4), metric=names, num_generations=1, progress=False),
            ("objective columns", "2 objectives")))
    for i, fn in enumerate([lambda p: p["x"], lambda p, q, r: 1.0]):  # tune's fn(params, trial)
        cases.append((f"tune-signature-{i}", lambda fn=fn: jaxhpo.tune(
            fn, SPACE, J.random_search(SPACE, 2), S.ASHA(10, 30, mode="stopping"),
            max_trials=2, progress=False), ("fn(params, trial)", "signature")))
    cases.append(("minimize-trial-signature", lambda: jaxhpo.minimize(
        lambda params, trial: 1.0, SPACE, J.random_search(SPACE, 2), num_generations=1),
        ("jaxhpo.tune",)))
    cases.append(("jax-type-one-arg", lambda: jaxhpo.minimize(
        lambda p: 1.0, SPACE, J.random_search(SPACE, 2), num_generations=1,
        objective_type="jax"), ("objective_type",)))
    cases.append(("traced-shape", lambda: jaxhpo.minimize(
        lambda key, hp: jax.numpy.zeros((hp["n"],)).sum(), Space({"n": Int(1, 4)}),
        J.random_search(Space({"n": Int(1, 4)}), 2), num_generations=1, progress=False),
        ("'n'", "static=True")))
    for key in (2 ** 64, -2 ** 63 - 1, 1.5, "0", None):
        cases.append((f"key-{key!r}", lambda key=key: jaxhpo.minimize(
            lambda p: 1.0, SPACE, J.random_search(SPACE, 2), num_generations=1, key=key),
            ("key",)))
    for journal in ("", "   ", 3, b"x"):
        cases.append((f"journal-{journal!r}", lambda journal=journal: jaxhpo.minimize(
            lambda p: 1.0, SPACE, J.random_search(SPACE, 2), num_generations=1,
            journal=journal), ("journal",)))
    for name, value in [("callbacks", [3]), ("callbacks", "f"), ("progress", "loud"),
                        ("time_budget", -1.0), ("time_budget", math.nan),
                        ("initial_params", {"x": 0.5}), ("initial_params", [{"z": 1.0}]),
                        ("initial_params", [{"x": 2.0, "y": 0.5}]), ("warm_start", 3),
                        ("executor", 4), ("steps", 5), ("max_failures", -1)]:
        cases.append((f"minimize-{name}-{value!r}", lambda name=name, value=value:
                      jaxhpo.minimize(lambda p: 1.0, SPACE, J.random_search(SPACE, 2),
                                      num_generations=1, **{name: value}),
                      (name, "steps=")))
    return cases


def _bad_tell(strategy):
    # the shape check comes first: no need to run init and ask (eagerly, they compile gp_bo)
    x = jax.numpy.full((strategy.population_size, strategy.num_dims), 0.5)
    strategy.tell(jax.eval_shape(strategy.init, jax.random.key(0)), x,
                  jax.numpy.zeros((strategy.population_size + 1,)))


RUN_CASES = _run_cases()


@pytest.mark.parametrize("make,names", [(m, n) for _, m, n in RUN_CASES],
                         ids=[c[0] for c in RUN_CASES])
def test_run_layer_cases(make, names):
    raises_clearly(make, *names)


def test_run_case_table_is_large():
    assert len(RUN_CASES) >= 70, len(RUN_CASES)


def test_hyperparameter_typo_in_a_jax_objective_lists_the_names():
    """A KeyError (it is a missing key) from jaxhpo, listing the names and the closest."""
    with pytest.raises(KeyError, match=r"'xx'.*\['x', 'y'\].*did you mean 'x'"):
        jaxhpo.minimize(lambda key, hp: hp["xx"], SPACE, J.random_search(SPACE, 2),
                        num_generations=1, progress=False)
