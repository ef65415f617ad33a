"""SIGKILL a journaled run at an injected point, resume it, compare with an uninterrupted run.

A short version of ``scripts/crash_campaign.py`` (which kills 20 runs at random points): three
subprocess runs are killed with SIGKILL -- in the middle of a journal append (a torn line), while
the tune checkpoint is being written, and inside a HyperBand/ASHA rung decision. Each is then
resumed in this process and must equal the uninterrupted run computed here (same trials, x,
values, statuses and fidelities), with every completed trial in the journal exactly once. The
independent truth is the uninterrupted run.
"""

import importlib.util
import os

import jax
import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
_spec = importlib.util.spec_from_file_location(
    "crash_campaign", os.path.join(ROOT, "scripts", "crash_campaign.py"))
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)

_REFS = {}


def reference(kind, tmp_path_factory):
    if kind not in _REFS:
        j = str(tmp_path_factory.mktemp("ref") / f"{kind}.jsonl")
        _REFS[kind] = cc.run_kind(kind, j)
    return _REFS[kind]


@pytest.mark.parametrize("kind,crash", [
    ("minimize", "journal_write:6"),      # torn append of generation 2's 8 trial records
    ("tune_hyperband", "checkpoint:10"),  # half-written .ckpt.tmp after round 9
    ("tune_asha", "rung:6"),              # inside ASHA's report, mid-run
])
def test_sigkill_then_resume_equals_uninterrupted(kind, crash, tmp_path, tmp_path_factory):
    ref = reference(kind, tmp_path_factory)
    j = str(tmp_path / "run.jsonl")
    killed, _ = cc.spawn(kind, j, str(tmp_path / "out.json"), False, crash=crash)
    assert killed, f"{crash} was not reached"
    partial = cc.journal_trials_tolerant(j)
    assert 0 <= len(partial) < len(ref)  # the kill really interrupted the run
    got = cc.run_kind(kind, j, resume=True)
    assert cc.compare(ref, got, j) == []


def test_compare_detects_lost_duplicated_and_changed_trials(tmp_path):
    """The comparison itself can fail: a lost trial, a changed value, a duplicated record."""
    ref = [{"number": i, "generation": 0, "member": i, "x": [0.5], "status": "ok",
            "fidelity": None, "values": [float(i)]} for i in range(3)]
    assert cc.compare(ref, ref[:2]) != []
    changed = [dict(t) for t in ref]
    changed[1]["values"] = [1.5]
    assert cc.compare(ref, changed) != []
    j = tmp_path / "j.jsonl"
    j.write_text("".join('{"type": "trial", "number": %d}\n' % n for n in (0, 1, 1, 2)))
    assert any("twice" in e for e in cc.compare(ref, ref, str(j)))


def test_python_resume_when_a_generation_is_all_in_the_journal_but_its_state_is_not(tmp_path):
    """Regression (found by the campaign): killed between a generation's last trial and its
    state record, a Python-objective run resumed by replaying that generation from the journal
    before any fresh trial had named the objective, told the strategy all-NaN fitness and
    diverged from the uninterrupted run."""
    import jaxhpo
    from jaxhpo import Float, Space
    from jaxhpo.strategies import tpe

    space = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})

    def run(path, resume=False):
        return jaxhpo.minimize(lambda p: (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2, space,
                               tpe(space, 4, n_startup_trials=4), num_generations=5, key=2,
                               journal=path, resume=resume, progress=False)

    full = run(tmp_path / "full.jsonl")
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    # Keep everything up to generation 2's trials; drop its state record and what follows.
    cut = [i for i, ln in enumerate(lines) if '"type": "state"' in ln][2]
    (tmp_path / "cut.jsonl").write_text("".join(lines[:cut]))
    resumed = run(tmp_path / "cut.jsonl", resume=True)
    assert [t.x for t in resumed.history] == [t.x for t in full.history]
    assert [t.values for t in resumed.history] == [t.values for t in full.history]
    # The strategy saw the same fitness: its final state (observation buffer) is bit-identical.
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(full.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
