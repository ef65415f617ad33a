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


def run(executor=None, **kw):
    return jaxhpo.minimize(objective, SPACE, tpe(SPACE, 6, n_startup_trials=6),
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
