"""constraints=[...] on every driver: recorded per trial and in the journal, told to strategies
built with num_constraints, and kept out of best_* / the Pareto front when violated.

Independent truths: the constrained optimum of each problem is computed here from the recorded
parameters (not from jaxhpo's filtering), Optuna's own ``study.best_trial`` filters the trials
written to it, and a hand-built strategy records exactly what ``tell`` received.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhpo
from jaxhpo import Float, Space, Strategy, _run
from jaxhpo import schedulers as S
from jaxhpo.strategies import nsga2, random_search

SPACE = Space({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)})


def f(x, y):  # unconstrained optimum (1, -0.5); with x <= 0 the optimum is (0, -0.5), f = 1
    return (x - 1.0) ** 2 + (y + 0.5) ** 2


def py_obj(p):
    return {"loss": f(p["x"], p["y"]), "c": p["x"]}  # feasible when x <= 0


def jax_obj(key, hp):
    return {"loss": f(hp["x"], hp["y"]), "c": hp["x"]}


def recording_strategy(k, pop=4, capacity=16):
    """Uniform proposals; with ``k`` constraints ``tell`` keeps every constraint row it receives
    in a fixed buffer (so it also runs inside ``minimize_scan``)."""
    def init(key):
        return jnp.full((capacity, max(k, 1)), jnp.nan), jnp.zeros((), jnp.int32)

    def ask(key, state):
        return jax.random.uniform(key, (pop, 2)), state

    def tell(state, x, fitness, constraints=None):
        if constraints is None:
            return state
        buf = jax.lax.dynamic_update_slice(state[0], constraints, (state[1], 0))
        return buf, state[1] + pop

    return Strategy(init, ask, tell if k else (lambda s, x, f: tell(s, x, f)), pop, 2,
                    "recorder", num_constraints=k)


def run(obj, strategy=None, **kw):
    return jaxhpo.minimize(obj, SPACE, strategy or recording_strategy(1), num_generations=4,
                           key=0, progress=False, constraints=["c"], **kw)


def test_best_excludes_infeasible_trials_python_jax_and_scan():
    py, jx = run(py_obj), run(jax_obj)
    sc = jaxhpo.minimize_scan(jax_obj, SPACE, recording_strategy(1), num_generations=4, key=0,
                              constraints=["c"])
    for res in (py, jx, sc):
        h = res.history
        assert h.objectives == ["loss"] and h.constraints == ["c"]  # "c" is not an objective
        xs = np.array([t.params["x"] for t in h])
        np.testing.assert_allclose([t.constraints[0] for t in h], xs, rtol=1e-6)
        np.testing.assert_allclose(res.state[0][:, 0], xs, rtol=1e-6)  # what tell received
        loss = np.array([f(t.params["x"], t.params["y"]) for t in h])
        assert loss.argmin() != loss[xs <= 0].argmin()  # the unconstrained best is infeasible
        assert xs[loss.argmin()] > 0
        assert res.best_value == pytest.approx(loss[xs <= 0].min(), rel=1e-5)
        assert res.best_trial.feasible and res.best_params["x"] <= 0
        assert res.best_value >= 1.0 - 1e-6  # the constrained optimum's value is 1
        assert [t.number for t in h.best_trials()] == [res.best_trial.number]
        assert h.best_so_far()[-1] == pytest.approx(res.best_value)
    assert py.best_params == jx.best_params == sc.best_params
    # Optuna filters the same trials with its own feasibility rule
    import optuna

    study = py.history.to_optuna(optuna.create_study(), SPACE)
    assert study.best_trial.value == pytest.approx(py.best_value)
    assert study.best_trial.constraints == {"c": pytest.approx(py.best_trial.constraints[0])}
    back = jaxhpo.History.from_optuna(study, SPACE)
    assert back.constraints == ["c"] and back.best_trial().number == py.best_trial.number


def test_no_feasible_trial_means_no_best_trial():
    res = run(lambda p: {"loss": f(p["x"], p["y"]), "c": 3.0 + p["x"]})  # x >= -2: c >= 1
    viol = np.array([3.0 + t.params["x"] for t in res.history])
    with pytest.raises(ValueError, match=f"least-violating is trial {viol.argmin()} "):
        res.best_params
    assert res.history.best_trials() == [] and np.all(np.isinf(res.history.best_so_far()))
    # a missing constraint is a violation, with a warning naming it
    with pytest.warns(UserWarning, match=r"no \['c'\]"):
        res = jaxhpo.minimize(lambda p: {"loss": p["x"]}, SPACE, recording_strategy(1),
                              num_generations=1, progress=False, constraints=["c"])
    assert all(np.isnan(t.constraints[0]) and not t.feasible for t in res.history)


def test_constraint_mismatches_are_refused_before_any_evaluation():
    calls = []

    def obj(p):
        calls.append(p)
        return {"f1": p["x"], "f2": p["y"], "c": 0.0}

    kw = dict(num_generations=1, progress=False, metric=["f1", "f2"])
    with pytest.raises(ValueError, match="num_constraints=2 but the run names 1"):
        jaxhpo.minimize(obj, SPACE, nsga2(SPACE, 4, num_constraints=2), constraints=["c"], **kw)
    with pytest.raises(ValueError, match="num_constraints=1 but the run names 0"):
        jaxhpo.minimize(obj, SPACE, nsga2(SPACE, 4, num_constraints=1), **kw)
    with pytest.raises(ValueError, match=r"constraints \['cc'\] not among .*did you mean 'c'"):
        jaxhpo.minimize(lambda k, hp: {"f1": hp["x"], "f2": hp["y"], "c": hp["x"]}, SPACE,
                        nsga2(SPACE, 4, num_constraints=1), constraints=["cc"], **kw)
    with pytest.raises(TypeError, match="constraints must be a list of metric names"):
        jaxhpo.minimize(obj, SPACE, random_search(SPACE, 4), constraints=[1], **kw)
    with pytest.raises(ValueError, match="twice"):
        jaxhpo.minimize(obj, SPACE, random_search(SPACE, 4), constraints=["c", "c"], **kw)
    assert calls == []
    # a strategy without support runs unconstrained; the warning names the fix
    tg = _run.targets(None, "minimize", ["c"])
    with pytest.warns(UserWarning, match=r"nsga2\(\.\.\., num_constraints=1\)"):
        assert _run.check_constraints(nsga2(SPACE, 4), tg) is False
    with pytest.warns(UserWarning, match="strategies that use them: .*nsga2"):
        _run.check_constraints(random_search(SPACE, 4), tg)


def test_strategy_is_told_constraints_and_journal_resume_checks_them(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    res = jaxhpo.minimize(py_obj, SPACE, recording_strategy(1), num_generations=2,
                          progress=False, constraints=["c"], journal=path, key=1)
    lines = [json.loads(s) for s in open(path)]
    assert lines[0]["constraints"] == ["c"]
    assert [r["constraints"] for r in lines if r["type"] == "trial"] == [
        t.constraints for t in res.history]
    from jaxhpo import _cli

    assert _cli.main(["summary", str(path)]) == 0  # the command line reads the same journal
    out = capsys.readouterr().out
    assert f"feasible  {len(res.history.feasible())} of 8 completed" in out
    unconstrained = min(res.history, key=lambda t: t.value).number
    assert unconstrained != res.best_trial.number and f"(trial {unconstrained})" not in out
    assert f"(trial {res.best_trial.number})" in out
    kw = dict(num_generations=2, progress=False, journal=path, key=1, resume=True)
    for other, k in ((["d"], 1), (None, 0), (["c", "d"], 2)):
        with pytest.raises(ValueError, match="cannot resume.*constraints"):
            jaxhpo.minimize(lambda p: {**py_obj(p), "d": 0.0}, SPACE, recording_strategy(k),
                            constraints=other, **kw)
    again = jaxhpo.minimize(py_obj, SPACE, recording_strategy(1), constraints=["c"], **kw)
    assert [t.constraints for t in again.history] == [t.constraints for t in res.history]
    np.testing.assert_array_equal(again.state[0], res.state[0])  # restored, nothing re-told
    # a trial record of an older journal (no constraints) still reads, as feasible
    rec = {k: v for k, v in res.history[0].to_record().items() if k != "constraints"}
    assert jaxhpo.Trial.from_record(rec).feasible


def test_tune_records_constraints_and_tells_the_proposer():
    def fn(params, trial):
        loss = f(params["x"], params["y"])
        trial.report(10, loss)
        return {"loss": loss, "c": params["x"]}

    with pytest.warns(UserWarning, match="does not use constraints"):
        res = jaxhpo.tune(fn, SPACE, random_search(SPACE, 8), S.Scheduler(10), max_trials=16,
                          eval_every=10, metric="loss", constraints=["c"], progress=False)
    h = res.history
    assert h.constraints == ["c"]
    np.testing.assert_allclose([t.constraints[0] for t in h], [t.params["x"] for t in h])
    loss = np.array([f(t.params["x"], t.params["y"]) for t in h])
    xs = np.array([t.params["x"] for t in h])
    assert res.best_value == pytest.approx(loss[xs <= 0].min()) and res.best_params["x"] <= 0
    # the proposer tells a constrained strategy each batch's constraint matrix, in ask order
    from jaxhpo._proposer import Proposer

    prop = Proposer(recording_strategy(1), jax.random.key(0))
    asked = [prop.next() for _ in range(4)]
    for x, g, m in reversed(asked):
        prop.result(g, m, 0.0, [float(x[0]) - 0.5])
    np.testing.assert_allclose(np.asarray(prop.state[0])[:4, 0],
                               [x[0] - 0.5 for x, _, _ in asked], rtol=1e-6)
