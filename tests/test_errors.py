"""Invalid arguments anywhere -> ValueError/TypeError naming the argument and the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.strategies import grid_search, quasi_random, random_search

S = Space({"x": Float(0.0, 1.0)})
S2 = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
C = Space({"opt": Categorical(["sgd", "adam"]), "m": Float(0.0, 1.0, condition={"opt": "sgd"})})


def ok_obj(key, hp):
    return hp["x"]


def run(**kw):
    args = dict(objective=ok_obj, space=S, strategy=random_search(S, 4), num_generations=1,
                progress=False)
    args.update(kw)
    return jaxhpo.minimize(args.pop("objective"), args.pop("space"), args.pop("strategy"), **args)


BAD = [
    # --- parameters
    (lambda: Float(1.0, 0.0), ValueError, "low < high"),
    (lambda: Float(1.0, 1.0), ValueError, "low < high"),
    (lambda: Float(0.0, 1.0, log=True), ValueError, "low > 0"),
    (lambda: Float(-1.0, 1.0, log=True), ValueError, "low > 0"),
    (lambda: Float("0", 1.0), TypeError, "low must be a finite number"),
    (lambda: Float(0.0, float("inf")), TypeError, "high must be a finite number"),
    (lambda: Float(0.0, float("nan")), TypeError, "high must be a finite number"),
    (lambda: Float(0.0, 1.0, log="yes"), TypeError, "log must be True or False"),
    (lambda: Float(0.0, 1.0, default=2.0), ValueError, "default"),
    (lambda: Int(0.5, 3), TypeError, "Int low must be an int"),
    (lambda: Int(0, 3.0), TypeError, "Int high must be an int"),
    (lambda: Int(True, 3), TypeError, "Int low must be an int"),
    (lambda: Int(5, 3), ValueError, "low <= high"),
    (lambda: Int(0, 10, log=True), ValueError, "low >= 1"),
    (lambda: Int(1, 10, default=11), ValueError, "default"),
    (lambda: Categorical([]), ValueError, "at least one choice"),
    (lambda: Categorical("abc"), TypeError, "list or tuple"),
    (lambda: Categorical(["a", "a"]), ValueError, "distinct"),
    (lambda: Categorical([["a"], ["b"]]), TypeError, "hashable"),
    (lambda: Categorical(["a", "b"], default="c"), ValueError, "default"),
    (lambda: Float(0.0, 1.0, condition="opt"), TypeError, "condition must be a mapping"),
    # --- ranges decode cannot represent in float32 / int32 (issue #25)
    (lambda: Float(1e-50, 1.0, log=True), ValueError, "Float low=1e-50 is not representable"),
    (lambda: Float(1.0, 1e50, log=True), ValueError, "Float high=1e+50 is not representable"),
    (lambda: Float(-1e308, 1e308), ValueError, "is not representable"),
    (lambda: Float(-3e38, 3e38), ValueError, "span high - low"),
    (lambda: Float(1e-45, 2e-45), ValueError, "magnitude in [1.1754944e-38"),
    (lambda: Float(1.0, 1.00000001), ValueError, "fewer than two float32 numbers"),
    (lambda: Int(0, 2**40), ValueError, "Int high=1099511627776 is outside int32"),
    (lambda: Int(2**31, 2**31 + 10), ValueError, "Int low=2147483648 is outside int32"),
    (lambda: Int(-2**31, 2**31 - 1), ValueError, "addresses at most 2**24"),
    (lambda: Int(1, 2**25, log=True), ValueError, "needs high <= 2**24"),
    (lambda: Float(0.0, 1.0, static=1), TypeError, "Float static must be True or False"),
    (lambda: Int(0, 1, static="yes"), TypeError, "Int static must be True or False"),
    (lambda: Categorical(["a"], static=None), TypeError, "Categorical static must be True"),
    (lambda: Categorical([float("nan"), 1.0]), TypeError, "nan is not equal to itself"),
    (lambda: Categorical([print, len]), TypeError, "look it up in your code"),
    (lambda: Categorical([np.complex64(1)]), TypeError, "complex64 scalars are not supported"),
    (lambda: Categorical([("a", object())]), TypeError, "cannot be written to the run's JSON"),
    (lambda: Float(0.0, 1.0, condition={"opt": []}), ValueError, "lists no values"),
    # --- spaces
    (lambda: Space(), ValueError, "at least one parameter"),
    (lambda: Space([("x", Float(0.0, 1.0))]), TypeError, "must be a mapping"),
    (lambda: Space({"x": (0.0, 1.0)}), TypeError, "must be Float, Int or Categorical"),
    (lambda: Space({"": Float(0.0, 1.0)}), TypeError, "non-empty str"),
    (lambda: Space({"x": Float(0.0, 1.0)}, x=Float(0.0, 2.0)), ValueError, "defined twice"),
    (lambda: Space({"m": Float(0.0, 1.0, condition={"opt": "sgd"}),
                    "opt": Categorical(["sgd"])}), ValueError, "declared before it"),
    (lambda: Space({"n": Int(1, 3), "m": Float(0.0, 1.0, condition={"n": 1})}), ValueError,
     "must be Categorical"),
    (lambda: Space({"opt": Categorical(["sgd"]), "m": Float(0.0, 1.0, condition={"opt": "x"})}),
     ValueError, "not a choice"),
    (lambda: S.sample(jax.random.key(0), 0), ValueError, "positive int"),
    (lambda: S.grid(0), ValueError, "points_per_axis"),
    (lambda: S.grid({"z": 3}), ValueError, "unknown parameters"),
    (lambda: S.decode(np.zeros((3, 2))), ValueError, "last axis of size d=1"),
    (lambda: S.encode({"x": 2.0}), ValueError, "outside"),
    (lambda: S.encode({"z": 0.5}), ValueError, "unknown parameters"),
    (lambda: S.encode([0.5]), TypeError, "needs a dict"),
    (lambda: C.encode({"opt": "sgd"}), ValueError, "active parameters ['m'] are missing"),
    (lambda: C.encode({"opt": "rmsprop"}), ValueError, "not one of the choices"),
    (lambda: Space({"n": Int(1, 3)}).encode({"n": 1.5}), ValueError, "integral"),
    (lambda: C.choices("m"), ValueError, "not Categorical"),
    (lambda: S.to_params(np.zeros((2, 1))), ValueError, "to_params_list"),
    (lambda: S["y"], KeyError, "parameter 'y' is not defined; the names are ['x']"),
    (lambda: S2.decode(np.zeros(2))["xx"], KeyError, "did you mean 'x'?"),
    (lambda: S2.encode({"xx": 0.5}), ValueError, "did you mean 'x'?"),
    (lambda: S.static_values(np.zeros((2, 1))), ValueError, "one point"),
    (lambda: jaxhpo.strategies.REGISTRY["tpee"], KeyError, "did you mean 'tpe'?"),
    (lambda: jaxhpo.strategies.REGISTRY["nope"], KeyError, "'random_search'"),
    # --- strategies
    (lambda: random_search(S, 0), ValueError, "population_size must be an int >= 1"),
    (lambda: random_search(S, "8"), TypeError, "population_size"),
    (lambda: random_search({"x": Float(0.0, 1.0)}, 8), TypeError, "jaxhpo.Space"),
    (lambda: quasi_random(S, -1), ValueError, "population_size"),
    (lambda: grid_search(S, 0), ValueError, "points_per_axis"),
    (lambda: grid_search(S, 3, population_size=0), ValueError, "population_size"),
    # --- driver
    (lambda: run(objective=3), TypeError, "objective must be callable"),
    (lambda: run(space={"x": 1}), TypeError, "space must be a jaxhpo.Space"),
    (lambda: run(strategy=lambda k: k), TypeError, "strategy must be a jaxhpo.Strategy"),
    (lambda: run(strategy=random_search(S2, 4)), ValueError, "build the strategy from this"),
    (lambda: run(num_generations=0), ValueError, "num_generations must be an int >= 1"),
    (lambda: run(num_generations=2.0), TypeError, "num_generations must be an int"),
    (lambda: run(num_generations=None), ValueError, "num_generations is required"),
    (lambda: run(direction="max"), ValueError, "'minimize' or 'maximize'"),
    (lambda: run(direction=["minimize", "maximize"]), ValueError, "direction has 2 entries"),
    (lambda: run(metric=3), TypeError, "metric must be"),
    (lambda: run(metric=["a", "a"]), ValueError, "twice"),
    (lambda: run(metric="acc"), ValueError, "not among the objective's outputs"),
    (lambda: run(key="seed"), TypeError, "key must be an int seed"),
    (lambda: run(key=1.5), TypeError, "key must be an int seed"),
    (lambda: run(objective_type="numpy"), ValueError, "objective_type must be"),
    (lambda: run(objective=lambda *a: 0.0), TypeError, "pass objective_type"),
    (lambda: run(objective=lambda k, hp: jax.numpy.ones(3) * hp["x"]), ValueError,
     "per-member shape"),
    (lambda: run(objective=lambda p: "bad"), TypeError, "must return a real number"),
    (lambda: run(resume="yes"), TypeError, "resume must be True or False"),
    (lambda: run(resume=True), ValueError, "resume=True needs journal"),
    (lambda: run(max_failures=-1), ValueError, "max_failures"),
    (lambda: jaxhpo.minimize_scan(lambda p: 0.0, S, random_search(S, 4), num_generations=1),
     TypeError, "minimize_scan needs a JAX-native objective"),
    (lambda: jaxhpo.minimize_scan(lambda k, hp: {"a": hp["x"], "b": hp["x"]}, S,
                                  random_search(S, 4), num_generations=1), ValueError,
     "name the one to optimize"),
]


@pytest.mark.parametrize("make,exc,msg", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_gives_clear_error(make, exc, msg):
    with pytest.raises(exc) as info:
        make()
    assert msg in str(info.value), f"{info.value!r} does not mention {msg!r}"


def test_table_is_large_enough():
    assert len(BAD) >= 30


@pytest.mark.parametrize("out", ["1.5", True, 1 + 2j, None, [1.0], {"a": "x"}, {}])
def test_a_python_objective_returning_a_non_number_ends_the_run_clearly(out):
    """No silent coercion ('1.5' -> 1.5, True -> 1.0, complex -> real part): the run stops
    at the first such trial with jaxhpo's TypeError naming what was returned."""
    with pytest.raises(TypeError, match="must return a real number|empty dict") as info:
        run(objective=lambda p: out)
    assert type(info.value).__module__.startswith("jaxhpo")


@pytest.mark.parametrize("out", ["s", None, True, 1 + 2j])
def test_a_jax_objective_returning_a_non_real_is_refused_before_evaluating(out):
    space = Space({"x": Float(0.0, 1.0)})
    with pytest.raises(TypeError, match="must return a real scalar"):
        jaxhpo.minimize(lambda key, hp: (jnp.asarray(out) if isinstance(out, complex) else out),
                        space, jaxhpo.strategies.random_search(space, 2), num_generations=1,
                        progress=False)
