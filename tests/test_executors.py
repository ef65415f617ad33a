"""Python objectives on a concurrent.futures Executor: threads and real worker processes.

Independent truth: the sequential run with the same key (an executor changes where trials run,
never what is proposed or recorded); a raising worker is a failed trial; a resumed run
evaluates only what is missing.
"""

import concurrent.futures as cf
import multiprocessing as mp

import pytest

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo.strategies import tpe

SPACE = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})


def objective(p):  # module level: picklable for worker processes
    if p["a"] > 0.9:
        raise RuntimeError("boom")
    return (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2


def run(executor=None, fn=None, **kw):
    return jaxhpo.minimize(fn or objective, SPACE, tpe(SPACE, 6, n_startup_trials=6),
                           num_generations=3, key=5, progress=False, executor=executor, **kw)


def rows(res):
    return [(t.number, t.x, t.values, t.status) for t in res.history]


@pytest.fixture(scope="module")
def reference():
    return run()


def test_reference_has_a_failing_trial(reference):
    assert any(t.status == "failed" and "boom" in t.error for t in reference.history)


def test_threads_give_the_sequential_run(reference):
    with cf.ThreadPoolExecutor(3) as ex:
        assert rows(run(ex)) == rows(reference)


def test_processes_give_the_sequential_run_and_resume(reference, tmp_path):
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        full = run(ex, journal=tmp_path / "j.jsonl")
        assert rows(full) == rows(reference)  # the raising trials too: failed, same message
        assert [t.error for t in full.history] == [t.error for t in reference.history]
        # drop the last generation's state and two trials: resume evaluates just those two
        lines = (tmp_path / "j.jsonl").read_text().splitlines(True)
        keep = [ln for ln in lines if not ('"number": 15,' in ln or '"number": 17,' in ln
                                           or '"generation": 2, "leaves"' in ln)]
        (tmp_path / "k.jsonl").write_text("".join(keep))
        again = run(ex, journal=tmp_path / "k.jsonl", resume=True)
    assert rows(again) == rows(reference)
    records = [ln for ln in (tmp_path / "k.jsonl").read_text().splitlines()
               if '"type": "trial"' in ln]
    assert len(records) == len(reference.history)


def test_unpicklable_objective_is_refused_before_any_evaluation():
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        with pytest.raises(TypeError, match="module level"):
            jaxhpo.minimize(lambda p: p["a"], SPACE, tpe(SPACE, 2), num_generations=1,
                            executor=ex, progress=False)


def test_executor_needs_a_python_objective():
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="executor"):
        jaxhpo.minimize(lambda key, hp: hp["a"], SPACE, tpe(SPACE, 2), num_generations=1,
                        executor=ex, progress=False)
    with pytest.raises(TypeError, match="executor must be"):
        jaxhpo.minimize(objective, SPACE, tpe(SPACE, 2), num_generations=1, executor=4,
                        progress=False)


def curve(p, trial):  # module level: runs in worker processes
    f = (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2
    for s in range(10, 91, 10):
        trial.report(s, f + 1.0 / s)
        if trial.should_stop():
            raise jaxhpo.StopTrial
    return f + 1.0 / 90


def test_tune_on_worker_processes_stops_trials_live():
    """Reports from worker processes reach the driver's ASHA while the trials run: some
    trials end at a low rung (without live reports each would run to 90 steps), and every
    recorded curve is the objective's own closed form."""
    from jaxhpo import schedulers as S

    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        res = jaxhpo.tune(curve, SPACE, tpe(SPACE, 4, n_startup_trials=4),
                          S.ASHA(10, 90, eta=3, mode="stopping"), max_trials=16, workers=2,
                          executor=ex, key=1, progress=False)
    assert len(res.history) == 16
    assert any(t.status == "stopped" and t.fidelity < 90 for t in res.history)
    assert any(t.status == "ok" and t.fidelity == 90 for t in res.history)
    for t in res.history:
        f = (t.params["a"] - 0.3) ** 2 + (t.params["b"] - 0.6) ** 2
        assert res.curves[t.number] == [[s, pytest.approx(f + 1.0 / s)]
                                        for s in range(10, int(t.fidelity) + 1, 10)]


KILLED_DRIVER = """
import concurrent.futures as cf, multiprocessing as mp, sys
sys.path.insert(0, sys.argv[2])
import test_executors as T

if __name__ == "__main__":
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        T.run(ex, fn=T.Slow(), journal=sys.argv[1])
"""


class Slow:
    """The module's objective, 0.2 s slower (so workers are busy when the driver dies)."""

    def __call__(self, p):
        import time

        time.sleep(0.2)
        return objective(p)


def test_sigkill_of_the_driver_while_workers_are_busy_then_resume(reference, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "j.jsonl"
    here = __import__("os").path.dirname(__file__)
    root = __import__("os").path.dirname(here)
    env = dict(__import__("os").environ, PYTHONPATH=root)
    driver = subprocess.Popen([sys.executable, "-c", KILLED_DRIVER, str(path), here], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and (not path.exists() or
                                      path.read_text().count('"type": "trial"') < 7):
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)  # mid-generation 1, with trials on the workers
    driver.wait()
    before = path.read_text().count('"type": "trial"')
    assert 7 <= before < 18
    with cf.ThreadPoolExecutor(2) as ex:
        again = run(ex, journal=path, resume=True)
    assert rows(again) == rows(reference)
    numbers = [ln for ln in path.read_text().splitlines() if '"type": "trial"' in ln]
    assert len(numbers) == len(set(numbers)) == 18  # nothing lost, nothing twice
