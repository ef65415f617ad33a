"""minimize / minimize_scan: objective kinds, directions, metrics, failures, exports."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.strategies import quasi_random, random_search


def quad_space():
    return Space({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)})


def jax_quad(key, hp):
    return (hp["x"] - 1.0) ** 2 + (hp["y"] + 0.5) ** 2


def test_jax_objective_finds_the_minimum():
    space = quad_space()
    res = jaxhpo.minimize(jax_quad, space, quasi_random(space, 64), num_generations=8,
                          key=0, progress=False)
    assert len(res.history) == 512
    # 512 well-spread points in a 4x4 box are ~0.18 apart, so the best is within the
    # covering radius ~0.18/sqrt(2) of the optimum: squared distance <= 0.016.
    assert res.best_value < 0.016
    assert res.best_params["x"] == pytest.approx(1.0, abs=0.13)
    assert res.best_params["y"] == pytest.approx(-0.5, abs=0.13)
    assert res.best_value == pytest.approx(
        (res.best_params["x"] - 1) ** 2 + (res.best_params["y"] + 0.5) ** 2, rel=1e-4)


def test_minimize_scan_reproduces_minimize():
    space = quad_space()
    s = random_search(space, 16)
    a = jaxhpo.minimize(jax_quad, space, s, num_generations=4, key=3, progress=False)
    b = jaxhpo.minimize_scan(jax_quad, space, s, num_generations=4, key=3)
    assert b.arrays["x"].shape == (4, 16, 2) and b.arrays["value"].shape == (4, 16)
    np.testing.assert_allclose([t.x for t in a.history], [t.x for t in b.history])
    np.testing.assert_allclose([t.value for t in a.history], [t.value for t in b.history],
                               rtol=1e-6)
    assert a.best_params == b.best_params


def test_python_objective_matches_jax_objective_on_same_proposals():
    space = quad_space()
    s = random_search(space, 8)
    a = jaxhpo.minimize(jax_quad, space, s, num_generations=3, key=1, progress=False)
    b = jaxhpo.minimize(lambda p: (p["x"] - 1.0) ** 2 + (p["y"] + 0.5) ** 2, space, s,
                        num_generations=3, key=1, progress=False)
    np.testing.assert_allclose([t.value for t in a.history], [t.value for t in b.history],
                               rtol=1e-5)


def test_maximize_and_dict_metrics():
    space = quad_space()

    def obj(key, hp):
        loss = jax_quad(key, hp)
        return {"acc": 1.0 - loss, "loss": loss, "size": hp["x"] * 0 + 3.0}

    res = jaxhpo.minimize(obj, space, random_search(space, 32), num_generations=3,
                          metric="acc", direction="maximize", progress=False)
    assert res.history.objectives == ["acc"]
    accs = [t.metrics["acc"] for t in res.history]
    assert res.best_value == pytest.approx(max(accs))
    assert set(res.best_trial.metrics) == {"acc", "loss", "size"}
    with pytest.raises(ValueError, match="metric"):
        jaxhpo.minimize(obj, space, random_search(space, 4), num_generations=1, progress=False)


def test_multi_objective_gives_pareto_front():
    space = Space({"x": Float(0.0, 1.0)})
    # f1 = x, f2 = 1 - x (maximized -> minimize x - 1): every point is Pareto-optimal except
    # duplicates; with f2 = (x - 0.5)^2 only x <= 0.5 is Pareto-optimal.
    seen = []

    def obj(key, hp):
        return {"f1": hp["x"], "f2": (hp["x"] - 0.5) ** 2}

    def recording_tell(state, x, fitness):
        seen.append(fitness.shape)  # shapes are static under jit
        return state

    s = random_search(space, 32)
    res = jaxhpo.minimize(obj, space, s._replace(tell=recording_tell), num_generations=2,
                          metric=["f1", "f2"], progress=False)
    assert seen[0] == (32, 2)
    front = res.best_trials
    assert front and all(t.params["x"] <= 0.5 + 1e-6 for t in front)
    xs_front = sorted(t.params["x"] for t in front)
    xs_all = [t.params["x"] for t in res.history if t.params["x"] <= 0.5]
    assert len(xs_front) == len(xs_all)
    with pytest.raises(ValueError, match="best_trials"):
        res.best_value


def test_nan_results_marked_diverged_and_told_as_worst():
    space = Space({"x": Float(0.0, 1.0)})
    told = []

    def obj(key, hp):
        return jnp.where(hp["x"] > 0.5, jnp.nan, hp["x"])

    def tell(state, x, f):  # the driver jits tell: read the fitness through a callback
        jax.debug.callback(lambda v: told.append(np.asarray(v)), f)
        return state

    s = random_search(space, 64)
    res = jaxhpo.minimize(obj, space, s._replace(tell=tell), num_generations=1,
                          progress=False)
    st = [t.status for t in res.history]
    xs = np.array([t.x[0] for t in res.history])
    assert all((s_ == "diverged") == (x > 0.5) for s_, x in zip(st, xs))
    assert np.isnan(told[0][xs > 0.5]).all()
    assert res.best_value == pytest.approx(xs.min(), rel=1e-5)


def test_python_failures_recorded_and_max_failures():
    space = Space({"x": Float(0.0, 1.0)})

    def obj(p):
        if p["x"] > 0.7:
            raise RuntimeError("boom")
        return p["x"]

    with pytest.warns(UserWarning, match="boom"):
        res = jaxhpo.minimize(obj, space, random_search(space, 10), num_generations=2,
                              progress=False)
    failed = [t for t in res.history if t.status == "failed"]
    assert failed and all("RuntimeError: boom" == t.error for t in failed)
    assert all(t.params["x"] > 0.7 for t in failed)
    assert res.best_value == pytest.approx(min(t.params["x"] for t in res.history), rel=1e-5)
    with pytest.raises(jaxhpo.TooManyFailures, match="max_failures=0"):
        with pytest.warns(UserWarning):
            jaxhpo.minimize(lambda p: 1 / 0, space, random_search(space, 4),
                            num_generations=2, max_failures=0, progress=False)


def test_objective_kind_detection_and_forcing():
    from jaxhpo._driver import objective_kind

    assert objective_kind(lambda key, hp: 0.0) == "jax"
    assert objective_kind(lambda p: 0.0) == "python"
    assert objective_kind(lambda p, scale=2: 0.0) == "python"
    assert objective_kind(lambda *a: 0.0, "python") == "python"
    with pytest.raises(TypeError, match="objective_type"):
        objective_kind(lambda *a: 0.0)

    class Obj:
        def __call__(self, params):
            return params["x"]

    space = Space({"x": Float(0.0, 1.0)})
    res = jaxhpo.minimize(Obj(), space, random_search(space, 4), num_generations=1,
                          progress=False)
    assert res.best_value == pytest.approx(min(t.params["x"] for t in res.history))


def test_grid_search_runs_its_whole_grid_by_default():
    space = Space({"a": Int(0, 4), "c": Categorical(["p", "q"])})
    res = jaxhpo.minimize(lambda p: p["a"] + (p["c"] == "q"), space,
                          jaxhpo.strategies.grid_search(space, 5), progress=False)
    assert len(res.history) == 10
    assert res.best_params == {"a": 0, "c": "p"} and res.best_value == 0


def test_exports(tmp_path):
    space = Space({"lr": Float(1e-3, 1.0, log=True), "opt": Categorical(["sgd", "adam"]),
                   "m": Float(0.0, 0.9, condition={"opt": "sgd"})})
    res = jaxhpo.minimize(lambda p: p["lr"], space, random_search(space, 6),
                          num_generations=2, progress=False)
    doc = json.loads(res.history.to_json(str(tmp_path / "h.json")))
    assert len(doc["trials"]) == 12 and doc["objectives"] == ["value"]
    assert json.loads((tmp_path / "h.json").read_text()) == doc
    res.history.to_csv(str(tmp_path / "h.csv"))
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert len(lines) == 13 and "params_lr" in lines[0] and "params_m" in lines[0]
    for t in res.history:
        assert ("m" in t.params) == (t.params["opt"] == "sgd")
        assert t.inactive == ([] if t.params["opt"] == "sgd" else ["m"])
    pd = pytest.importorskip("pandas")
    df = res.history.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == 12
    np.testing.assert_allclose(df["value"].to_numpy(), [t.value for t in res.history])


def test_best_so_far_is_monotone():
    space = quad_space()
    res = jaxhpo.minimize(jax_quad, space, random_search(space, 8), num_generations=5,
                          progress=False)
    b = res.history.best_so_far()
    assert b.shape == (40,) and np.all(np.diff(b) <= 0)
    assert b[-1] == pytest.approx(res.best_value)


def test_progress_bar_is_quiet_when_not_a_tty(capsys):
    space = quad_space()
    jaxhpo.minimize(jax_quad, space, random_search(space, 8), num_generations=2, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_static_hyperparameters_reach_a_jax_objective_as_python_values():
    """A width used as a shape and an activation picked by name: one compiled program per
    (static values, bucket), values equal to the closed form, a traced shape explained."""
    from jaxhpo import _driver

    space = Space({"lr": Float(1e-3, 1.0, log=True), "width": Int(2, 5, static=True),
                   "act": Categorical(["relu", "tanh"], static=True)})

    def obj(key, hp):
        return jnp.sum(getattr(jax.nn, hp["act"])(jnp.ones((hp["width"],)) * hp["lr"])) \
            + hp["width"]

    seen = []
    real = _driver._JaxEvaluator.__call__

    def spy(self, keys, x):
        seen.append(self)
        return real(self, keys, x)

    _driver._JaxEvaluator.__call__ = spy
    try:
        res = jaxhpo.minimize(obj, space, random_search(space, 16), num_generations=3,
                              progress=False)
    finally:
        _driver._JaxEvaluator.__call__ = real
    for t in res.history:
        p = t.params
        z = np.ones(p["width"]) * p["lr"]
        want = np.sum(np.tanh(z) if p["act"] == "tanh" else np.maximum(z, 0)) + p["width"]
        assert t.value == pytest.approx(want, rel=1e-5)
    cache = seen[0].cache
    assert set(cache.traces.values()) == {1}, "each (static values, bucket) compiled once"
    assert len(cache) <= 4 * 2 * 5  # 8 static value pairs x buckets 1..16
    space2 = Space({"lr": Float(1e-3, 1.0), "width": Int(2, 5)})
    with pytest.raises(TypeError, match=r"'width'.*\n.*Int\(2, 5, static=True\)"):
        jaxhpo.minimize(lambda key, hp: jnp.sum(jnp.ones((hp["width"],))) * hp["lr"], space2,
                        random_search(space2, 4), num_generations=1, progress=False)


def test_progress_log_writes_one_line_per_generation(caplog):
    space = Space({"x": Float(0.0, 1.0)})
    with caplog.at_level("INFO", logger="jaxhpo"):
        res = jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4),
                              num_generations=3, progress="log")
    lines = [r.getMessage() for r in caplog.records if r.name == "jaxhpo"]
    assert [ln.split(":")[0] for ln in lines] == [f"generation {g}/3" for g in (1, 2, 3)]
    assert f"best {res.best_value:.6g}, 12 trials (0 failed)" in lines[-1]


def test_callbacks_see_every_generation_and_can_stop_the_run_resumably(tmp_path):
    """A callback that raises StopRun after generation 1 leaves a journal whose resume equals
    the uninterrupted run (truth: that run)."""
    space = Space({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)})
    f = lambda p: (p["x"] - 1.0) ** 2 + p["y"] ** 2

    def run(path, gens, callbacks=None, resume=False):
        return jaxhpo.minimize(f, space, jaxhpo.strategies.tpe(space, 4, n_startup_trials=4),
                               num_generations=gens, key=1, journal=path, resume=resume,
                               callbacks=callbacks, progress=False)

    full = run(tmp_path / "full.jsonl", 4)
    events = []

    def stop_after_two(event):
        events.append((event.driver, event.step, [t.number for t in event.trials],
                       len(event.history)))
        if event.step == 1:
            raise jaxhpo.StopRun

    part = run(tmp_path / "j.jsonl", 4, [stop_after_two])
    assert part.stopped_by == "callback" and len(part.history) == 8
    assert events == [("minimize", 0, [0, 1, 2, 3], 4), ("minimize", 1, [4, 5, 6, 7], 8)]
    again = run(tmp_path / "j.jsonl", 4, resume=True)
    assert again.stopped_by is None
    assert [(t.x, t.values) for t in again.history] == [(t.x, t.values) for t in full.history]
    with pytest.raises(TypeError, match="callbacks must be"):
        run(tmp_path / "k.jsonl", 1, callbacks=[3])


def test_time_budget_ends_minimize_after_the_generation_that_crosses_it():
    import time as _time

    space = Space({"x": Float(0.0, 1.0)})
    res = jaxhpo.minimize(lambda p: _time.sleep(0.05) or p["x"], space, random_search(space, 2),
                          num_generations=50, time_budget=0.25, progress=False)
    assert res.stopped_by == "time_budget"
    # 0.1 s a generation (plus the first one's compilation): at most 6 fit in 0.25 s + one
    assert 1 <= len(res.history) // 2 <= 6


def test_initial_params_are_evaluated_first_and_warm_start_seeds_the_strategy():
    """Given configurations are trials 0..k-1 (partial dicts filled from defaults); a TPE
    seeded with earlier trials has them in its buffer before the first ask (truth: the count)
    and proposes a different first generation than an unseeded one."""
    space = Space({"x": Float(0.0, 1.0, default=0.25), "n": Int(1, 9),
                   "c": Categorical(["a", "b"], default="b")})
    f = lambda p: (p["x"] - 0.3) ** 2 + p["n"] / 10 + (p["c"] == "a")
    res = jaxhpo.minimize(f, space, random_search(space, 4), num_generations=2,
                          initial_params=[{"x": 0.5, "n": 3, "c": "a"}, {"n": 7}] * 3,
                          progress=False)
    assert [t.params for t in res.history][:6] == [
        {"x": 0.5, "n": 3, "c": "a"}, {"x": 0.25, "n": 7, "c": "b"}] * 3
    with pytest.raises(ValueError, match=r"initial_params\[1\].*'n'"):
        jaxhpo.minimize(f, space, random_search(space, 4), num_generations=1,
                        initial_params=[{"n": 2}, {"x": 0.1}], progress=False)
    earlier = jaxhpo.minimize(f, space, random_search(space, 10), num_generations=3, key=9,
                              progress=False)
    tpe = jaxhpo.strategies.tpe(space, 4, n_startup_trials=10)
    seeded = jaxhpo.minimize(f, space, tpe, num_generations=1, key=0, warm_start=earlier,
                             progress=False)
    plain = jaxhpo.minimize(f, space, tpe, num_generations=1, key=0, progress=False)
    # 30 trials in populations of 4: 8 tells, the last padded with 2 copies of the best
    assert int(seeded.state.count) == 32 + 4 and int(plain.state.count) == 4
    assert seeded.history[0].x != plain.history[0].x


def test_minimize_trains_a_training_program_a_fixed_budget():
    """minimize(program, steps=N): every member's metric is the closed form of its own lr and
    static width after N steps."""
    from jaxhpo.train import TrainingProgram

    space = Space({"lr": Float(0.01, 0.2), "width": Categorical([2, 3], static=True)})
    prog = TrainingProgram(init=lambda key, hp: {"w": jnp.ones((hp["width"],))},
                           step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
                           evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2)})
    res = jaxhpo.minimize(prog, space, random_search(space, 6), num_generations=2, steps=7,
                          progress=False)
    for t in res.history:
        want = 0.5 * t.params["width"] * (1 - t.params["lr"]) ** 14
        assert t.value == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="pass steps=N"):
        jaxhpo.minimize(prog, space, random_search(space, 6), num_generations=1)
