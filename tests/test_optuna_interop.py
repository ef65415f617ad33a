"""History <-> Optuna through a real SQLite storage (Optuna's RDB storage).

Independent truth: what Optuna's own API reads back from the database (params, values,
states, intermediate values, user attributes) equals the jaxhpo run; reading the study back
gives the same trials.
"""

import math

import optuna
import pytest

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo import schedulers as S
from jaxhpo.strategies import random_search


SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 8),
               "opt": Categorical(["sgd", "adam"]),
               "momentum": Float(0.0, 0.99, condition={"opt": "sgd"})})


def test_minimize_run_round_trips_through_sqlite(tmp_path):
    def f(p):
        if p["n"] == 8:
            raise RuntimeError("boom")
        return math.log10(p["lr"]) ** 2 + p["n"] + p.get("momentum", 0.0)

    res = jaxhpo.minimize(f, SPACE, random_search(SPACE, 8), num_generations=3, key=4,
                          progress=False)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    res.history.to_optuna(url, SPACE, study_name="s")
    study = optuna.load_study(study_name="s", storage=url)  # a fresh read of the database
    trials = study.get_trials()
    assert len(trials) == len(res.history) == 24
    for t, ot in zip(res.history, trials):
        assert ot.params == t.params  # inactive momentum left out, as Optuna does
        assert ot.user_attrs["number"] == t.number
        if t.status == "ok":
            assert ot.state == optuna.trial.TrialState.COMPLETE and ot.value == t.value
        else:
            assert ot.state == optuna.trial.TrialState.FAIL and "boom" in ot.user_attrs["error"]
    assert study.best_value == res.best_value and study.best_params == res.best_params
    back = jaxhpo.History.from_optuna(study, SPACE)
    assert [(t.params, t.values, t.status) for t in back] == \
        [(t.params, t.values, t.status) for t in res.history]
    seeded = jaxhpo.minimize(f, SPACE, jaxhpo.strategies.tpe(SPACE, 4), num_generations=1,
                             warm_start=back, progress=False)
    ok = sum(t.status == "ok" for t in res.history)
    assert int(seeded.state.count) == -(-ok // 4) * 4 + 4  # every ok trial told (padded), + 4


def test_tune_curves_become_intermediate_values_and_pruned_trials(tmp_path):
    space = Space({"a": Float(0.0, 1.0)})

    def fn(p, trial):
        for s in range(10, 91, 10):
            trial.report(s, p["a"] + 1.0 / s)
            if trial.should_stop():
                raise jaxhpo.StopTrial
        return p["a"] + 1.0 / 90

    res = jaxhpo.tune(fn, space, random_search(space, 4), S.ASHA(10, 90, mode="stopping"),
                      max_trials=12, key=0, progress=False)
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    res.history.to_optuna(url, space, curves=res.curves)
    study = optuna.load_study(study_name="jaxhpo", storage=url)
    states = [ot.state for ot in study.get_trials()]
    assert states.count(optuna.trial.TrialState.PRUNED) == sum(
        t.status == "stopped" for t in res.history) > 0
    for t, ot in zip(res.history, study.get_trials()):
        assert ot.intermediate_values == {s: v for s, v in res.curves[t.number]}


def test_directions_must_match():
    study = optuna.create_study(direction="maximize")
    res = jaxhpo.minimize(lambda p: p["n"], SPACE, random_search(SPACE, 2), num_generations=1,
                          progress=False)
    with pytest.raises(ValueError, match="directions"):
        res.history.to_optuna(study, SPACE)
