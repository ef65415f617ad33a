"""jaxhpo.tune: the slot engine (Trainer) and Python objectives with report/should_stop.

Independent truths: HyperBand's bracket table (Li et al. 2018) fixes how many trials end at
each fidelity and successive halving fixes which ones are promoted (the best of each rung by
their recorded curve values); for curves ``f(x) + 1/step`` the rank at every rung is the rank
of ``f``, so ASHA and median stopping must carry the best configuration to the full budget;
a resumed run must equal an uninterrupted one.
"""

from collections import Counter

import jax
import numpy as np
import pytest

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo import _tune_slots
from jaxhpo import schedulers as S
from jaxhpo.strategies import random_search
from jaxhpo.train import Trainer, mlp, synthetic_classification
from helpers import curve_objective


@pytest.fixture(scope="module")
def setup():
    space = Space({"learning_rate": Float(1e-3, 0.3, log=True), "init_scale": Float(0.5, 2.0)})
    data = synthetic_classification(300, 8, 3, seed=1)
    trainer = Trainer(mlp(3, max_width=16), data, space=space, max_batch_size=16)
    return space, trainer


def run(setup, scheduler, max_trials, pop=4, **kw):
    space, trainer = setup
    return jaxhpo.tune(trainer, space, random_search(space, 4), scheduler, max_trials=max_trials,
                       population_size=pop, eval_every=10, metric="accuracy",
                       direction="maximize", key=3, progress=False, **kw)


def test_hyperband_slots_follow_the_bracket_table(setup):
    # R = 9, eta = 3 (Li et al. 2018, Alg. 1): s=2: 9/1, 3/3, 1/9; s=1: 5/3, 1/9; s=0: 3/9.
    # One full iteration = 17 trials; trials end at 10 steps: 6, at 30: 2 + 4, at 90: 1+1+3.
    res = run(setup, S.HyperBand(10, 90, eta=3), 17)
    fid = Counter(int(t.fidelity) for t in res.history)
    assert fid == {10: 6, 30: 6, 90: 5}
    assert Counter(t.status for t in res.history) == {"stopped": 12, "ok": 5}
    # Successive halving keeps the best 3 of the first bracket's 9 by their value at step 10.
    first = [t for t in res.history if t.number < 9]
    at10 = np.array([res.curves[t.number][0] for t in first])
    promoted = {t.number for t in first if t.fidelity > 10}
    assert promoted == {first[i].number for i in np.argsort(-at10, kind="stable")[:3]}
    # A promoted trial resumes its own weights: its curve continues from its rung-0 value.
    for t in first:
        assert len(res.curves[t.number]) == int(t.fidelity) // 10
    assert 0 < res.utilization <= 1
    assert res.best_trial.status == "ok" and "test_accuracy" in res.best_trial.metrics


def test_checkpoint_round_trip_through_json_is_exact(setup):
    """The slot engine's checkpoint (no pickle): members, parked trials, scheduler and strategy
    state survive a JSON round trip bit for bit, and the restored engine continues exactly as
    the original (truth: the original engine's next rounds)."""
    import json

    from jaxhpo.train import Population
    from jaxhpo._tune_slots import SlotEngine

    space, trainer = setup

    def engine():
        return SlotEngine(Population(trainer, 4), space, random_search(space, 4),
                          S.HyperBand(10, 90, eta=3), 17, 10, "accuracy", -1.0,
                          jax.random.key(0), False)

    a = engine()
    for _ in range(3):
        a.step()
    assert a.parked, "some trial is paused at a rung"
    doc = json.loads(json.dumps(a.to_record()))
    b = engine()
    b.load(doc)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(jax.random.key_data(
        x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x), np.asarray(
        jax.random.key_data(y) if jax.dtypes.issubdtype(y.dtype, jax.dtypes.prng_key) else y)),
        a.state, b.state)
    assert sorted(a.parked) == sorted(b.parked)
    for t in a.parked:
        jax.tree.map(np.testing.assert_array_equal, a.parked[t].state, b.parked[t].state)
    for _ in range(3):
        ea, eb = a.step(), b.step()
        assert [(t.number, t.status, t.values) for t, _ in ea] == \
            [(t.number, t.status, t.values) for t, _ in eb]
    np.testing.assert_array_equal(a.slot, b.slot)


def test_pbt_copies_and_records_schedules(setup):
    res = run(setup, S.PBT(60, 20, fraction=0.25), 8, pop=8)
    assert res.utilization == 1.0
    assert all(t.fidelity == 60 for t in res.history)
    # ceil(0.25 * 8) = 2 members exploit at each of the 2 exploit rounds (steps 20 and 40).
    assert len(res.schedules) == 8
    copies = sum(len(s) - 1 for s in res.schedules.values())
    assert 0 < copies <= 8
    for lineage in res.schedules.values():
        assert lineage[0]["copied_from"] is None and lineage[0]["step"] == 0


def _same_schedules(a, b):
    assert sorted(a) == sorted(b)
    for m in a:
        assert [(s["step"], s["slot"], s["copied_from"]) for s in a[m]] == \
            [(s["step"], s["slot"], s["copied_from"]) for s in b[m]]
        for sa, sb in zip(a[m], b[m]):
            np.testing.assert_array_equal(sa["x"], sb["x"])


def test_pbt_schedules_are_journaled_and_survive_a_crash(setup, tmp_path, monkeypatch):
    from jaxhpo.plot import read_journal

    full = run(setup, S.PBT(60, 20, fraction=0.25), 8, pop=8, journal=tmp_path / "full.jsonl")
    assert sum(len(s) - 1 for s in full.schedules.values()) > 0  # some member copied
    _same_schedules(read_journal(tmp_path / "full.jsonl").schedules, full.schedules)
    # killed after the second exploit round (step 40) but before its checkpoint (every 3
    # rounds of 10 steps): the resumed run replays that round and journals it again; the
    # journal's schedules are still the uninterrupted run's
    path = tmp_path / "run.jsonl"
    real = _tune_slots.SlotEngine.step
    calls = {"n": 0}

    def crashing(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated crash")
        return real(self)

    monkeypatch.setattr(_tune_slots.SlotEngine, "step", crashing)
    with pytest.raises(KeyboardInterrupt):
        run(setup, S.PBT(60, 20, fraction=0.25), 8, pop=8, journal=path, checkpoint_every=3)
    monkeypatch.setattr(_tune_slots.SlotEngine, "step", real)
    assert path.read_text().count('"type": "pbt"') == 2
    resumed = run(setup, S.PBT(60, 20, fraction=0.25), 8, pop=8, journal=path, resume=True,
                  checkpoint_every=3)
    assert path.read_text().count('"type": "pbt"') == 3  # round 1 twice
    _same_schedules(resumed.schedules, full.schedules)
    _same_schedules(read_journal(path).schedules, full.schedules)


def test_resume_after_a_crash_equals_an_uninterrupted_run(setup, tmp_path, monkeypatch):
    sched = lambda: S.HyperBand(10, 90, eta=3)  # trials park, get promoted and get dropped
    full = run(setup, sched(), 17)
    path = tmp_path / "run.jsonl"
    real = _tune_slots.SlotEngine.step
    calls = {"n": 0}

    def crashing(self):
        calls["n"] += 1
        if calls["n"] == int(0.6 * full.rounds):
            raise KeyboardInterrupt("simulated crash")
        return real(self)

    monkeypatch.setattr(_tune_slots.SlotEngine, "step", crashing)
    with pytest.raises(KeyboardInterrupt):
        run(setup, sched(), 17, journal=path)
    monkeypatch.setattr(_tune_slots.SlotEngine, "step", real)
    partial = [line for line in path.read_text().splitlines() if '"trial"' in line]
    assert 0 < len(partial) < len(full.history), (len(partial), full.rounds)
    resumed = run(setup, sched(), 17, journal=path, resume=True)
    assert [t.number for t in resumed.history] == [t.number for t in full.history]
    for a, b in zip(resumed.history, full.history):
        assert a.status == b.status and a.fidelity == b.fidelity
        np.testing.assert_allclose(a.values, b.values, rtol=1e-6)
    lines = [line for line in path.read_text().splitlines() if '"trial"' in line]
    assert len(lines) == len(full.history)  # nothing lost, nothing recorded twice


# ---------------------------------------------------------------------------- Python objectives
SPACE = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("make", [lambda: S.ASHA(10, 90, mode="stopping"),
                                  lambda: S.MedianStopping(90, grace_period=1)])
def test_python_schedulers_keep_the_best_configuration(make, workers):
    res = jaxhpo.tune(curve_objective, SPACE, random_search(SPACE, 4), make(), max_trials=40,
                      eval_every=10, workers=workers, key=0)
    assert len(res.history) == 40
    f = [(t.params["a"] - 0.3) ** 2 + (t.params["b"] - 0.6) ** 2 for t in res.history]
    best = res.history[int(np.argmin(f))]
    assert best.status == "ok" and best.fidelity == 90
    assert res.best_value == pytest.approx(min(f) + 1.0 / 90)
    stopped = [t for t in res.history if t.status == "stopped"]
    assert len(stopped) >= 10  # the schedulers did stop the poor configurations early
    assert sum(t.fidelity for t in res.history) < 0.75 * 40 * 90


def test_python_failures_and_divergence_are_recorded():
    def fn(params, trial):
        if params["a"] < 0.2:
            raise RuntimeError("boom")
        trial.report(10, float("nan") if params["a"] > 0.8 else params["a"])
        return float("nan") if params["a"] > 0.8 else params["a"]

    res = jaxhpo.tune(fn, SPACE, random_search(SPACE, 8), S.Scheduler(10), max_trials=24,
                      eval_every=10, key=1)
    st = Counter(t.status for t in res.history)
    assert st["failed"] > 0 and st["diverged"] > 0 and st["ok"] > 0
    assert all("boom" in t.error for t in res.history if t.status == "failed")
    assert 0.2 <= res.best_value <= 0.8


def test_python_resume_reuses_completed_trials(tmp_path):
    calls = []

    def fn(params, trial):
        calls.append(params["a"])
        trial.report(10, params["a"])
        return params["a"]

    path = tmp_path / "py.jsonl"
    kw = dict(max_trials=12, eval_every=10, key=2, journal=path)
    first = jaxhpo.tune(fn, SPACE, random_search(SPACE, 4), S.Scheduler(10), **kw)
    n = len(calls)
    again = jaxhpo.tune(fn, SPACE, random_search(SPACE, 4), S.Scheduler(10), resume=True, **kw)
    assert len(calls) == n  # nothing re-run
    assert [t.values for t in again.history] == [t.values for t in first.history]


def test_errors_name_the_argument(setup):
    space, trainer = setup
    strat = random_search(space, 4)
    with pytest.raises(ValueError, match="pauses and resumes"):
        jaxhpo.tune(curve_objective, SPACE, random_search(SPACE, 4), S.HyperBand(10, 90),
                    max_trials=4)
    with pytest.raises(ValueError, match="max_trials"):
        jaxhpo.tune(trainer, space, strat, S.ASHA(10, 90), max_trials=0)
    with pytest.raises(TypeError, match="scheduler"):
        jaxhpo.tune(trainer, space, strat, "asha", max_trials=4)
    with pytest.raises(ValueError, match="PBT"):
        jaxhpo.tune(trainer, space, strat, S.PBT(60, 20), max_trials=4, population_size=8)
    with pytest.raises(ValueError, match="eval_every"):
        jaxhpo.tune(trainer, space, strat, S.ASHA(10, 90), max_trials=4, eval_every=7)
    with pytest.raises(ValueError, match="min_steps"):
        S.ASHA(100, 10)
    with pytest.raises(ValueError, match="mode"):
        S.ASHA(10, 90, mode="sync")


def test_asha_batched_jobs_match_algorithm_2_one_at_a_time():
    """prepare(n) + next_job hands out exactly what n sequential get_job calls would."""
    from jaxhpo.schedulers import asha_get_job

    rng = np.random.default_rng(0)
    sched = S.ASHA(10, 90, eta=3)
    sched.start(1000, 10, SPACE)
    for t in range(40):  # 40 trials reported at rung 0, 9 of those at rung 1
        sched.report([t], [10], [float(rng.normal())], [None])
    for t in range(9):
        sched.report([t], [30], [float(rng.normal())], [None])
    ref = sched.state
    expect = []
    for _ in range(20):  # 3 promotions from rung 1, 13 from rung 0, then new trials
        job, ref = asha_get_job(ref, 3)
        expect.append((int(job.trial), int(job.rung)) if bool(job.promote) else None)
    sched.prepare(20)
    got = []
    for j in range(20):
        job = sched.next_job(None, 1000 + j)
        got.append(None if job.trial < 0 else (job.trial, sched.rungs.index(job.target)))
    assert got == expect
    assert sum(g is not None for g in got) == 16 and got[-1] is None
    np.testing.assert_array_equal(np.asarray(sched.state.promoted), np.asarray(ref.promoted))


def test_diverged_trials_are_stopped_and_free_their_slot():
    seen = []

    def fn(params, trial):
        for s in range(10, 91, 10):
            trial.report(s, float("nan") if params["a"] > 0.5 else params["a"])
            if trial.should_stop():
                seen.append(s)
                raise jaxhpo.StopTrial()
        return params["a"]

    res = jaxhpo.tune(fn, SPACE, random_search(SPACE, 4), S.Scheduler(90), max_trials=16,
                      eval_every=10, key=4)
    bad = [t for t in res.history if t.params["a"] > 0.5]
    assert bad and all(t.fidelity == 10 for t in bad) and seen == [10] * len(bad)
    assert all(t.status == "ok" for t in res.history if t.params["a"] <= 0.5)


def _decay_program():
    """w <- (1 - lr) w from w = 1 (width static): loss 0.5 * width * (1 - lr)^(2 t) in
    closed form after t steps."""
    import jax.numpy as jnp
    from jaxhpo.train import TrainingProgram

    return TrainingProgram(
        init=lambda key, hp: {"w": jnp.ones((hp["width"],))},
        step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
        evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2)})


DECAY_SPACE = Space({"lr": Float(0.01, 0.2, log=True),
                     "width": jaxhpo.Categorical([2, 3], static=True)})


@pytest.mark.parametrize("make", [lambda: S.HyperBand(10, 90, eta=3),
                                  lambda: S.PBT(40, 10, fraction=0.25)])
def test_tune_runs_a_users_training_program_with_static_groups(make, tmp_path):
    """Every recorded learning curve equals the closed form of its own member's width and lr
    through pauses, promotions (HyperBand: members parked and put back across groups) and PBT
    copies; a killed and resumed run equals the uninterrupted one."""
    sched = make()
    n = 8 if sched.pbt else 17
    run = lambda **kw: jaxhpo.tune(_decay_program(), DECAY_SPACE, random_search(DECAY_SPACE, 4),
                                   make(), max_trials=n, population_size=8 if sched.pbt else 4,
                                   eval_every=10, metric="loss", key=5, progress=False,
                                   test_split=False, **kw)
    res = run(journal=tmp_path / "j.jsonl")
    if not sched.pbt:  # (PBT copies the lower-loss width-2 members over the width-3 ones)
        assert {t.params["width"] for t in res.history} == {2, 3}
    for t in res.history:
        lr, width = t.params["lr"], t.params["width"]
        curve = res.curves[t.number]
        if sched.pbt:  # a copy carries its source's curve; w shrinks every step whatever lr
            assert t.values[0] == pytest.approx(curve[-1]) and np.all(np.diff(curve) < 0)
            continue
        want = [0.5 * width * (1 - lr) ** (2 * 10 * (k + 1)) for k in range(len(curve))]
        np.testing.assert_allclose(curve, want, rtol=2e-5)
    if sched.pbt:
        assert sum(len(s) - 1 for s in res.schedules.values()) > 0
    again = run(journal=tmp_path / "j.jsonl", resume=True)
    assert [(t.number, t.values) for t in again.history] == \
        [(t.number, t.values) for t in res.history]


@pytest.mark.parametrize("call,match", [
    (lambda t: t.report(0.5, 10), "jaxhpo's order is trial.report\\(step, value\\)"),
    (lambda t: t.report(10.0, 0.5), "jaxhpo's order"),
    (lambda t: (t.report(20, 0.5), t.report(10, 0.4)), "must grow"),
    (lambda t: t.report(10, "0.5"), "real number"),
    (lambda t: t.report(0, 0.5), "step must be >= 1"),
])
def test_report_names_optunas_swapped_order(call, match):
    """trial.report(value, step) in Optuna's order, or nonsense, is refused where it is made
    (the trial fails with the message), instead of silently ending with no full-budget trial."""
    def fn(p, trial):
        call(trial)
        return 1.0

    with pytest.warns(UserWarning, match=match):
        res = jaxhpo.tune(fn, SPACE, random_search(SPACE, 2), S.ASHA(10, 30, mode="stopping"),
                          max_trials=2, progress=False)
    with pytest.raises(ValueError, match=match):
        res.best_trial


def test_a_foreign_or_corrupt_checkpoint_is_refused_clearly(tmp_path):
    """A checkpoint copied from another run, or cut short, is refused naming the file and the
    fix, instead of being loaded (every trial would then be 'stopped') or raising from json."""
    import shutil

    def run(path, key, resume=False):
        return jaxhpo.tune(_decay_program(), DECAY_SPACE, random_search(DECAY_SPACE, 4),
                           S.ASHA(10, 30), max_trials=6, population_size=4, eval_every=10,
                           metric="loss", key=key, journal=path, resume=resume,
                           progress=False, test_split=False)

    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    run(a, 1)
    run(b, 2)
    shutil.copy(a + ".ckpt", b + ".ckpt")
    with pytest.raises(ValueError, match="belongs to another run"):
        run(b, 2, resume=True)
    with open(b + ".ckpt", "w") as f:
        f.write('{"run": "abc", "engine"')
    with pytest.raises(ValueError, match="is corrupt.*delete it"):
        run(b, 2, resume=True)


def test_population_records_constraint_metrics(setup):
    """tune(constraints=[...]) on a population: each trial's constraint value is its validation
    metric when it left its slot (its curve's last value); infeasible trials are not best."""
    with pytest.warns(UserWarning, match="does not use constraints"):
        res = run(setup, S.Scheduler(10), 4, constraints=["accuracy"])  # > 0: infeasible
    assert res.history.constraints == ["val_accuracy"]
    for t in res.history:
        assert t.constraints == [pytest.approx(res.curves[t.number][-1])]
        assert t.feasible == (res.curves[t.number][-1] <= 0)
    if not any(t.feasible for t in res.history):
        with pytest.raises(ValueError, match="no feasible trial"):
            res.best_params
    engine = type("E", (), {"constraints": ("acc",)})()
    with pytest.raises(ValueError, match=r"\['acc'\] are not among .*'accuracy'"):
        _tune_slots.SlotEngine._constraints(engine, {"accuracy": np.zeros((4, 1))})
