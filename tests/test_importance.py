"""jaxhpo.importance: fANOVA, PED-ANOVA and GP-Sobol against analytic truths.

Independent truths: the first-order Sobol indices of an additive function
``f = sqrt(10) g(x0) + g(x1) + 0 x2`` with ``g(u) = sin(2 pi u)`` or ``cos(pi u)`` (mean 0,
variance 1/2 on the unit interval) are ``(10, 1, 0) / 11`` in closed form; a hand-built tree's fANOVA fractions are its exact
marginal variances over the unit cube (worked out below); Optuna's fANOVA on the same trials.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest

import jaxhpo
from jaxhpo import Categorical, Float, History, Space, Trial
from jaxhpo.importance import _tree_fractions

UNIT3 = Space({"x0": Float(0.0, 1.0), "x1": Float(0.0, 1.0), "x2": Float(0.0, 1.0)})
TRUTH = {"x0": 10 / 11, "x1": 1 / 11, "x2": 0.0}


def g(u):
    return np.sin(2 * np.pi * u)


def make_history(space, x, values, direction="minimize"):
    trials = []
    for i, (row, v) in enumerate(zip(x, values)):
        params = space.to_params(row)
        trials.append(Trial(number=i, generation=0, member=i, x=[float(a) for a in row],
                            params=params, inactive=space.inactive_names(params), metrics={},
                            values=[float(v)], status="ok"))
    return History(["value"], [direction], trials)


@pytest.fixture(scope="module")
def additive():
    x = np.random.default_rng(0).uniform(size=(100, 3))
    y = math.sqrt(10) * g(x[:, 0]) + g(x[:, 1]) + 0 * x[:, 2]
    return make_history(UNIT3, x, y)


def test_gp_sobol_matches_the_analytic_indices():
    # cos(pi u) also has mean 0 and variance 1/2 on [0, 1], so the truth is the same; it is
    # smooth enough for 64 trials (one 64-row GP buffer: the cheapest compilation).
    # benchmarks/importance.py has the 100-trial figure with sin(2 pi u) over 5 seeds.
    x = np.random.default_rng(0).uniform(size=(64, 3))
    y = math.sqrt(10) * np.cos(np.pi * x[:, 0]) + np.cos(np.pi * x[:, 1]) + 0 * x[:, 2]
    raw = jaxhpo.importance(make_history(UNIT3, x, y), "gp_sobol", space=UNIT3,
                            normalize=False, num_samples=4096)
    assert list(raw) == ["x0", "x1", "x2"]
    for k, s in TRUTH.items():
        assert abs(raw[k] - s) < 0.05, (k, raw[k], s)


def test_ped_anova_ranks_the_additive_function(additive):
    imp = jaxhpo.importance(additive, "ped_anova", space=UNIT3)
    assert list(imp) == ["x0", "x1", "x2"]
    assert math.isclose(sum(imp.values()), 1.0, rel_tol=1e-9)


def test_fanova_ranks_the_additive_function_as_optunas_fanova(additive):
    optuna = pytest.importorskip("optuna")
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = additive.to_optuna(optuna.create_study(), UNIT3)
    ref = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    ours = jaxhpo.importance(additive, "fanova", space=UNIT3)
    assert list(ours) == list(ref) == ["x0", "x1", "x2"]
    assert math.isclose(sum(ours.values()), 1.0, rel_tol=1e-9)
    assert ours["x2"] < 0.2 * ours["x1"]
    for k in ours:
        assert abs(ours[k] - ref[k]) < 0.05, (k, ours[k], ref[k])


def _tree(feature, threshold, left, right, value):
    return SimpleNamespace(children_left=np.array(left), children_right=np.array(right),
                           feature=np.array(feature), threshold=np.array(threshold, float),
                           value=np.array(value, float), node_count=len(left))


def test_fanova_tree_marginals_are_exact():
    # x0 < 0.5 -> (x1 < 0.25 -> 0, else 2), x0 >= 0.5 -> 1. Over U[0,1]^2: leaves with
    # volumes (0.125, 0.375, 0.5), mean 0.75 + 0.5 = 1.25; V = 0.125*1.5625 + 0.375*0.5625
    # + 0.5*0.0625 = 0.4375. Marginal of x0: 1.5 on [0, .5), 1 on [.5, 1] -> V0 = 0.0625;
    # marginal of x1: 0.5 on [0, .25), 1.5 on [.25, 1] -> V1 = 0.1875.
    t = _tree(feature=[0, 1, -2, -2, -2], threshold=[0.5, 0.25, 0, 0, 0],
              left=[1, 2, -1, -1, -1], right=[4, 3, -1, -1, -1], value=[0, 0, 0, 2, 1])
    np.testing.assert_allclose(_tree_fractions(t, 3), [0.0625 / 0.4375, 0.1875 / 0.4375, 0.0])


def test_categorical_and_conditional_parameters():
    # f = c[opt] + [opt == "a"] * 3 g(mom): V_opt = Var(0, 4) = 4, V_mom = (1/2)^2 * 9/2;
    # the stored coordinate of an inactive mom is a constant (a strategy's choice) and must not
    # read as an effect.
    space = Space({"opt": Categorical(["a", "b"]), "mom": Float(0.0, 1.0, condition={"opt": "a"}),
                   "noise": Float(0.0, 1.0)})
    x = np.random.default_rng(1).uniform(size=(120, 3))
    act = x[:, 0] < 0.5
    x[~act, 1] = 0.0
    y = np.where(act, 0.0, 4.0) + np.where(act, 3 * g(x[:, 1]), 0.0)
    h = make_history(space, x, y)
    assert all(("mom" in t.inactive) != a for t, a in zip(h, act))
    for method, kw in (("fanova", {"num_trees": 16}), ("ped_anova", {})):
        imp = jaxhpo.importance(h, method, space=space, **kw)
        assert list(imp)[-1] == "noise", (method, imp)
    imp = jaxhpo.importance(h, "fanova", space=space, normalize=False)
    assert list(imp) == ["opt", "mom", "noise"]


def test_inputs_and_errors(additive, tmp_path):
    with pytest.raises(ValueError, match="space="):
        jaxhpo.importance(additive, "ped_anova")
    with pytest.raises(ValueError, match="method must be one of.*did you mean 'fanova'"):
        jaxhpo.importance(additive, "fanva", space=UNIT3)
    with pytest.raises(ValueError, match="not in the space"):
        jaxhpo.importance(additive, space=UNIT3, params=["x9"])
    with pytest.raises(ValueError, match="at least 2 completed trials"):
        jaxhpo.importance(History(["v"], ["minimize"], additive.trials[:1]), space=UNIT3)
    with pytest.raises(ValueError, match="quantile"):
        jaxhpo.importance(additive, space=UNIT3, quantile=1.0)
    sub = jaxhpo.importance(additive, space=UNIT3, params=["x2", "x1"])
    assert list(sub) == ["x1", "x2"] and math.isclose(sum(sub.values()), 1.0)
    # maximizing -f ranks the same way; a Result-like object and a journal path also work
    neg = make_history(UNIT3, [t.x for t in additive], [-t.value for t in additive], "maximize")
    assert list(jaxhpo.importance(SimpleNamespace(history=neg, space=UNIT3))) == list(TRUTH)
