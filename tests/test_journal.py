"""Journal: durable JSON Lines, bit-exact state restore, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo._journal import Journal, decode_state, encode_state
from jaxhpo.strategies import random_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import sys, time
    import jax.numpy as jnp
    import jaxhpo
    from jaxhpo import Float, Space
    from jaxhpo.strategies import quasi_random

    space = Space({"x": Float(-2.0, 2.0), "y": Float(-2.0, 2.0)})

    def py_obj(p):
        time.sleep(0.01)
        return (p["x"] - 1.0) ** 2 + (p["y"] + 0.5) ** 2

    def jax_obj(key, hp):
        return (hp["x"] - 1.0) ** 2 + (hp["y"] + 0.5) ** 2

    def run(kind, path, resume, gens):
        return jaxhpo.minimize(py_obj if kind == "python" else jax_obj, space,
                               quasi_random(space, 8), num_generations=gens, key=11,
                               journal=path, resume=resume, progress=False)

    if __name__ == "__main__":
        kind, path, gens = sys.argv[1], sys.argv[2], int(sys.argv[3])
        run(kind, path, False, gens)
        if kind == "jax":
            time.sleep(60)   # be killed while idle too; the parent kills us anyway
""")


def _run_inline(kind, path, gens, resume):
    ns = {}
    exec(SCRIPT.replace('if __name__ == "__main__":', "if False:"), ns)
    return ns["run"](kind, path, resume, gens)


def _trial_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(b'"type": "trial"' in line for line in f.read().split(b"\n"))


@pytest.mark.parametrize("kind,kill_after", [("python", 13), ("python", 30), ("jax", 8)])
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path, kind, kill_after):
    gens = 6 if kind == "python" else 400
    path = str(tmp_path / "run.jsonl")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, kind, path, str(gens)], env=env)
    deadline = time.time() + 120
    while _trial_lines(path) < kill_after and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = open(path, "rb").read()
    n_before = _trial_lines(path)
    assert 0 < n_before < gens * 8, "the kill must land mid-run"

    resumed = _run_inline(kind, path, gens, resume=True)
    fresh = _run_inline(kind, str(tmp_path / "fresh.jsonl"), gens, resume=False)

    numbers = [t.number for t in resumed.history]
    assert numbers == list(range(gens * 8)), "every trial exactly once, in order"
    assert _trial_lines(path) == gens * 8, "journal holds each trial exactly once"
    # Completed trials from before the kill are untouched (the torn tail, if any, is dropped).
    after = open(path, "rb").read()
    complete_prefix = before[: before.rfind(b"\n") + 1]
    assert after.startswith(complete_prefix)
    np.testing.assert_allclose([t.x for t in resumed.history], [t.x for t in fresh.history])
    np.testing.assert_allclose([t.value for t in resumed.history],
                               [t.value for t in fresh.history], rtol=1e-6)
    assert resumed.best_value == fresh.best_value
    assert resumed.best_params == fresh.best_params


def test_torn_last_line_is_dropped(tmp_path):
    path = str(tmp_path / "j.jsonl")
    space = Space({"x": Float(0.0, 1.0)})
    jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=2,
                    journal=path, progress=False)
    with open(path, "ab") as f:
        f.write(b'{"type": "trial", "number": 8, "gen')
    res = jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=3,
                          journal=path, resume=True, progress=False)
    assert [t.number for t in res.history] == list(range(12))
    for line in open(path):
        json.loads(line)


def test_resume_of_a_finished_run_evaluates_nothing(tmp_path):
    path = str(tmp_path / "j.jsonl")
    space = Space({"x": Float(0.0, 1.0)})
    first = jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=2,
                            journal=path, progress=False)
    calls = []
    again = jaxhpo.minimize(lambda p: calls.append(1) or p["x"], space, random_search(space, 4),
                            num_generations=2, journal=path, resume=True, progress=False)
    assert calls == [] and again.best_value == first.best_value and len(again.history) == 8


def test_resume_checks_settings(tmp_path):
    path = str(tmp_path / "j.jsonl")
    space = Space({"x": Float(0.0, 1.0)})
    jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=1,
                    key=0, journal=path, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=1,
                        journal=path, progress=False)
    with pytest.raises(ValueError, match="key"):
        jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 4), num_generations=2,
                        key=1, journal=path, resume=True, progress=False)
    with pytest.raises(ValueError, match="population_size"):
        jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 5), num_generations=2,
                        key=0, journal=path, resume=True, progress=False)
    with pytest.raises(ValueError, match="resume=True needs journal"):
        jaxhpo.minimize(lambda p: p["x"], space, random_search(space, 5), num_generations=2,
                        resume=True, progress=False)


def test_state_serialization_is_bit_exact_and_keeps_keys():
    state = {"a": jnp.array([1.5, np.nextafter(np.float32(1), np.float32(2))], jnp.float32),
             "i": jnp.arange(3, dtype=jnp.int32), "k": jax.random.key(5),
             "b": jnp.array([True, False])}
    back = decode_state(json.loads(json.dumps(encode_state(state))), state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back)):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _py_run(path, gens=3, resume=False, calls=None, **kw):
    """A 4-member Python-objective run; ``calls`` collects every evaluated x."""
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

    def f(p):
        if calls is not None:
            calls.append(p["x"])
        return (p["x"] - 0.3) ** 2 + p["y"]

    return jaxhpo.minimize(f, space, kw.pop("strategy", None) or jaxhpo.strategies.tpe(
        space, 4, n_startup_trials=4), num_generations=gens, key=3, journal=path,
        resume=resume, progress=False, **kw)


def _same_trials(a, b):
    assert [t.number for t in a.history] == [t.number for t in b.history]
    np.testing.assert_array_equal([t.x for t in a.history], [t.x for t in b.history])
    assert [t.values for t in a.history] == [t.values for t in b.history]


@pytest.mark.parametrize("bad", [b"{not json", b"\xff\xfe garbage", b"null", b"[1]", b"42",
                                 b'{"type": "trial", "number": 5}', b'{"type": "bogus"}'])
def test_a_bad_line_in_the_middle_is_skipped_with_a_warning_and_kept(tmp_path, bad):
    """Only a torn *last* line may go; a bad line elsewhere is named, kept, and only the trial
    it replaced is evaluated again (truth: the uninterrupted run)."""
    full = _py_run(str(tmp_path / "full.jsonl"))
    path = tmp_path / "j.jsonl"
    lines = (tmp_path / "full.jsonl").read_bytes().split(b"\n")
    victim = next(i for i, line in enumerate(lines) if b'"number": 5,' in line)
    lines[victim] = bad
    path.write_bytes(b"\n".join(lines))
    size = path.stat().st_size
    calls = []
    with pytest.warns(UserWarning, match=f"line {victim + 1} skipped"):
        again = _py_run(str(path), resume=True, calls=calls)
    _same_trials(again, full)
    assert len(calls) == 1, "only the trial on the damaged line is evaluated again"
    assert path.read_bytes()[:size] == b"\n".join(lines), "nothing was deleted"


def test_trials_missing_before_a_state_record_are_evaluated_not_lost(tmp_path):
    """A journal whose state record outlived some trial records resumes from an earlier state
    and evaluates exactly the missing trials."""
    full = _py_run(str(tmp_path / "full.jsonl"))
    path = tmp_path / "j.jsonl"
    keep = [line for line in (tmp_path / "full.jsonl").read_text().splitlines(True)
            if not any(f'"number": {n},' in line for n in (4, 6))]
    path.write_text("".join(keep))
    calls = []
    with pytest.warns(UserWarning, match="are not; resuming from generation 1"):
        again = _py_run(str(path), resume=True, calls=calls)
    _same_trials(again, full)
    assert len(calls) == 2


def test_resume_compares_strategy_settings_and_journal_version(tmp_path):
    space = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    path = str(tmp_path / "j.jsonl")
    _py_run(path, gens=1)
    with pytest.raises(ValueError, match="strategy_config"):
        _py_run(path, gens=2, resume=True, strategy=jaxhpo.strategies.tpe(
            space, 4, n_startup_trials=4, gamma=0.5))
    two = str(tmp_path / "two.jsonl")
    _py_run(two, gens=2)
    with pytest.raises(ValueError, match="num_generations=1 is smaller than the 2"):
        _py_run(two, gens=1, resume=True)
    lines = open(path).read().splitlines(True)
    head = json.loads(lines[0])
    head["version"] = 1
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps(head) + "\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match="journal version 1"):
        _py_run(str(old), gens=2, resume=True)
    # a journal from a jaxhpo whose strategy lacked a setting added since (as gp_bo's
    # trust_region): named, and the way out given, instead of "resume with the same settings"
    del head["strategy_config"]["gamma"]
    head["version"] = json.loads(lines[0])["version"]
    older = tmp_path / "older.jsonl"
    older.write_text(json.dumps(head) + "\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match=r"earlier jaxhpo whose tpe had no setting \['gamma'\]"
                       r".*warm_start="):
        _py_run(str(older), gens=2, resume=True)


def test_unwritable_journal_fails_before_any_evaluation(tmp_path, monkeypatch):
    import jaxhpo._journal as J

    path = tmp_path / "j.jsonl"
    _py_run(str(path), gens=1)
    real = open

    def no_append(file, mode="r", *a, **kw):  # a read-only file, also when running as root
        if "a" in mode:
            raise PermissionError(13, "Permission denied")
        return real(file, mode, *a, **kw)

    monkeypatch.setattr(J, "open", no_append, raising=False)
    calls = []
    with pytest.raises(ValueError, match="cannot be written"):
        _py_run(str(path), gens=2, resume=True, calls=calls)
    assert calls == []


def test_a_jax_generation_journaled_before_its_state_is_not_evaluated_again(tmp_path):
    """Killed between a generation's trial records and its state record: resume reuses the
    trials (truth: a host callback counts evaluations)."""
    space = Space({"x": Float(-2.0, 2.0)})
    count = []

    def obj(key, hp):
        jax.debug.callback(lambda: count.append(1))
        return (hp["x"] - 1.0) ** 2

    def run(path, resume=False):
        return jaxhpo.minimize(obj, space, random_search(space, 4), num_generations=3, key=0,
                               journal=path, resume=resume, progress=False)

    full = run(str(tmp_path / "full.jsonl"))
    lines = (tmp_path / "full.jsonl").read_text().splitlines(True)
    last_state = max(i for i, line in enumerate(lines) if '"type": "state"' in line)
    path = tmp_path / "j.jsonl"
    path.write_text("".join(lines[:last_state]))
    count.clear()
    again = run(str(path), resume=True)
    jax.effects_barrier()
    assert count == []
    _same_trials(again, full)


CONCURRENT = textwrap.dedent("""
    import os, sys, time
    import jaxhpo
    from jaxhpo import Float, Space
    from jaxhpo.strategies import random_search

    space = Space({"x": Float(0.0, 1.0)})

    def f(p):
        with open(sys.argv[2], "a") as log:
            log.write("eval\\n")
        t_end = time.time() + 120  # hold the journal until the test has run the second one
        while not os.path.exists(sys.argv[1] + ".go") and time.time() < t_end:
            time.sleep(0.02)
        return p["x"]

    try:
        jaxhpo.minimize(f, space, random_search(space, 4), num_generations=int(sys.argv[3]),
                        key=0, journal=sys.argv[1], resume=True, progress=False)
        print("finished")
    except Exception as e:
        print(type(e).__name__, e)
""")


def test_a_second_process_on_a_running_journal_stops_at_once(tmp_path):
    """Two real processes, one journal: the second stops with JournalInUse before evaluating
    anything; resumed after the first ends, it evaluates only what the first did not."""
    path, evals = str(tmp_path / "j.jsonl"), str(tmp_path / "evals.txt")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    first = subprocess.Popen([sys.executable, "-c", CONCURRENT, path, evals, "6"], env=env,
                             stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(evals) and time.time() < deadline:  # the first is evaluating
        time.sleep(0.01)
    second = subprocess.run([sys.executable, "-c", CONCURRENT, path, evals + ".2", "6"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert "JournalInUse" in second.stdout and "in use by another running process" in \
        second.stdout, second.stdout + second.stderr
    assert not os.path.exists(evals + ".2"), "the second process evaluated nothing"
    open(path + ".go", "w").close()
    assert first.wait(timeout=120) == 0 and "finished" in first.stdout.read()
    third = subprocess.run([sys.executable, "-c", CONCURRENT, path, evals + ".3", "7"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert "finished" in third.stdout
    assert open(evals + ".3").read().count("eval") == 4  # only generation 6
    assert _trial_lines(path) == 28
