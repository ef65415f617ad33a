"""The ``jaxhpo`` command line, called in-process through ``jaxhpo._cli.main``.

Independent truths: a resumed run (after cutting its journal back to the first generation, as a
kill would) and an extended run hold exactly the trials of uninterrupted runs of the same
length; the summary's best value is the minimum of the journal's trial values; argument errors
exit with status 2 and name the argument.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jaxhpo
from jaxhpo import _cli
from jaxhpo.strategies import random_search

COMMANDS = ("run", "summary", "plot", "resume", "bench", "list")


def main(*argv):
    return _cli.main([str(a) for a in argv])


def trial_records(path):
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return [r for r in recs if r["type"] == "trial"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main("--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    for c in COMMANDS:
        assert f"    {c} " in out, c
    options = {"run": ["--function", "--demo", "--strategy", "--trials", "--batch", "--seed",
                       "--journal", "--steps"],
               "summary": ["JOURNAL", "--top"],
               "plot": ["--kind", "--out", "history", "parallel", "slices", "pareto", "curves",
                        "regret", "contour", "importance", "edf", "timeline"],
               "resume": ["JOURNAL", "--trials"], "bench": ["NAME"], "list": []}
    for c, opts in options.items():
        with pytest.raises(SystemExit) as e:
            main(c, "--help")
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: jaxhpo {c}")
        for o in opts:
            assert o in out, (c, o)


def test_python_m_jaxhpo_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "jaxhpo", "--help"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert all(c in out for c in COMMANDS)


def test_run_summary_plot_resume(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    args = ["--function", "branin", "--strategy", "tpe", "--batch", "4", "--seed", "3"]
    full = tmp_path / "full.jsonl"
    assert main("run", *args, "--trials", 24, "--journal", full) == 0
    out = capsys.readouterr().out
    assert "6 generation(s) of 4 = 24 trials" in out and "regret" in out

    # summary: settings, counts and the best value = min of the journal's values
    assert main("summary", full, "--top", 3) == 0
    out = capsys.readouterr().out
    vals = [r["values"][0] for r in trial_records(full)]
    assert "command   jaxhpo run --function branin --strategy tpe --trials 24 --batch 4" in out
    assert "trials    24: ok 24" in out
    assert f"best      value {min(vals):.6g}" in out
    assert out.count("\n") > 10

    png = tmp_path / "p.png"
    for kind in ("history", "parallel", "slices", "contour", "importance", "edf", "timeline"):
        assert main("plot", full, "--kind", kind, "--out", png) == 0
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    capsys.readouterr()

    # a killed run: keep the header and generation 0 (trials + state), resume the rest
    part = tmp_path / "part.jsonl"
    assert main("run", *args, "--trials", 16, "--journal", part) == 0
    lines = part.read_text().splitlines(keepends=True)
    first_state = next(i for i, ln in enumerate(lines) if '"type": "state"' in ln)
    part.write_text("".join(lines[:first_state + 1]) + lines[first_state + 1][:25])  # torn
    assert len(trial_records_tolerant(part)) == 4
    assert main("resume", part) == 0
    a, b = trial_records(full)[:16], trial_records(part)
    assert [r["number"] for r in b] == list(range(16))  # nothing lost, nothing twice
    np.testing.assert_allclose([r["x"] for r in b], [r["x"] for r in a], rtol=1e-6)
    np.testing.assert_allclose([r["values"] for r in b], [r["values"] for r in a], rtol=1e-6)

    # resume --trials extends a finished run: equal to the uninterrupted longer run
    assert main("resume", part, "--trials", 24) == 0
    a, b = trial_records(full), trial_records(part)
    assert [r["number"] for r in b] == list(range(24))
    np.testing.assert_allclose([r["values"] for r in b], [r["values"] for r in a], rtol=1e-6)
    assert "--trials 24" in json.loads((tmp_path / "part.jsonl.cli.json").read_text())["command"]
    with pytest.raises(SystemExit) as e:  # cannot shrink a run
        main("resume", part, "--trials", 8)
    assert e.value.code == 2 and "--trials" in capsys.readouterr().err


def trial_records_tolerant(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                break
            if r["type"] == "trial":
                out.append(r)
    return out


@pytest.fixture(scope="module")
def script_journal(tmp_path_factory):
    """A journal written by a user script (no CLI settings beside it), two objectives."""
    space = jaxhpo.Space({"a": jaxhpo.Float(0.0, 1.0), "b": jaxhpo.Float(0.0, 1.0)})
    path = tmp_path_factory.mktemp("cli") / "script.jsonl"
    jaxhpo.minimize(lambda key, hp: {"f": hp["a"], "g": 1.0 - hp["a"] + hp["b"]}, space,
                    random_search(space, 8), num_generations=2, metric=["f", "g"], journal=path,
                    progress=False)
    return path


def test_summary_and_plot_of_a_multi_objective_script_journal(script_journal, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main("summary", script_journal) == 0
    out = capsys.readouterr().out
    recs = trial_records(script_journal)
    front = jaxhpo.pareto_mask(np.array([r["values"] for r in recs]))
    assert f"pareto    {int(front.sum())} non-dominated trials" in out
    assert "command" not in out  # not written by 'jaxhpo run'
    out_png = tmp_path / "front.png"
    assert main("plot", script_journal, "--kind", "pareto", "--out", out_png) == 0
    assert out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, flag", [
    (["run", "--trials", "0"], "--trials"),
    (["run", "--batch", "x"], "--batch"),
    (["run", "--strategy", "nope"], "--strategy"),
    (["run", "--strategy", "nsga2"], "--strategy"),
    (["run", "--function", "nope"], "--function"),
    (["run", "--function", "branin-3"], "--function"),
    (["run", "--demo", "--function", "branin"], "--function"),
    (["run", "--seed", "1.5"], "--seed"),
    (["plot", "{script}", "--kind", "bogus"], "--kind"),
    (["plot", "{script}", "--kind", "curves"], "--kind"),
    (["plot", "{script}", "--kind", "regret"], "--kind"),
    (["plot", "{script}", "--rungs", "a,b"], "--rungs"),
    (["plot", "missing.jsonl"], "INPUT"),
    (["plot", "{script}", "--objective", "nope"], "--objective"),
    (["plot", "{script}", "--kind", "slices", "--params", "a,zz"], "--params"),
    (["plot", "{script}", "--kind", "pareto", "--objectives", "f,zz"], "--objectives"),
    (["plot", "{script}", "--kind", "pareto", "--out", "{tmp}/x.xyz"], "--out"),
    (["summary", "missing.jsonl"], "JOURNAL"),
    (["summary", "{notjournal}"], "JOURNAL"),
    (["resume", "{script}"], "JOURNAL"),
    (["run", "--journal", "{script}"], "--journal"),
    (["bench", "nope"], "NAME"),
    (["frobnicate"], "COMMAND"),
    ([], "COMMAND"),
])
def test_bad_arguments_exit_2_naming_the_argument(argv, flag, script_journal, tmp_path, capsys):
    notjournal = tmp_path / "x.jsonl"
    notjournal.write_text('{"hello": 1}\n')
    argv = [a.format(script=script_journal, notjournal=notjournal, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as e:
        _cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err.splitlines()[-1] or flag == "COMMAND" and "COMMAND" in err, err


def test_resume_of_a_script_journal_says_to_call_the_script(script_journal, capsys):
    with pytest.raises(SystemExit):
        main("resume", script_journal)
    err = capsys.readouterr().err
    assert "resume=True" in err and "not written by 'jaxhpo run'" in err


def test_bench_lists_and_forwards(capsys):
    if _cli._benchmarks_dir() is None:
        pytest.skip("not a source checkout")
    assert main("bench") == 0
    out = capsys.readouterr().out
    assert "quality" in out and "Search quality" in out
    # the benchmark's own --help, through a child process: exit status forwarded
    assert main("bench", "quality", "--help") == 0


def test_list_shows_strategies_and_functions(capsys):
    assert main("list") == 0
    out = capsys.readouterr().out
    for name in jaxhpo.strategies.REGISTRY:
        assert f"  {name}" in out
    assert "branin" in out and "ackley-D" in out


def test_bench_outside_a_checkout_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(_cli, "_benchmarks_dir", lambda: None)
    with pytest.raises(SystemExit) as e:
        main("bench", "quality")
    assert e.value.code == 2
    assert "source checkout" in capsys.readouterr().err


def test_run_refuses_to_overwrite_and_sidecar_holds_the_settings(tmp_path, capsys):
    j = tmp_path / "r.jsonl"
    assert main("run", "--function", "sphere-2", "--strategy", "random_search", "--trials", 8,
                "--batch", 8, "--journal", j, "--top", 1) == 0
    side = json.loads((tmp_path / "r.jsonl.cli.json").read_text())
    assert side["settings"] == {"demo": False, "function": "sphere-2",
                                "strategy": "random_search", "trials": 8, "batch": 8,
                                "seed": 0, "steps": None}
    assert os.path.getsize(j) > 0


def test_demo_defaults_are_the_readme_demo(monkeypatch):
    seen = {}
    monkeypatch.setattr(_cli, "_execute", lambda settings, journal, resume, top:
                        seen.update(settings) or 0)
    assert main("run", "--demo") == 0
    assert seen == {"demo": True, "function": None, "strategy": "quasi_random", "trials": 32,
                    "batch": 32, "seed": 0, "steps": 2000}


def test_resume_with_changed_settings_fails_cleanly(tmp_path, capsys):
    j = tmp_path / "r.jsonl"
    assert main("run", "--function", "sphere-2", "--strategy", "random_search", "--trials", 8,
                "--batch", 8, "--journal", j) == 0
    side = tmp_path / "r.jsonl.cli.json"
    doc = json.loads(side.read_text())
    doc["settings"]["seed"] = 5  # the journal records seed 0
    side.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main("resume", j) == 1
    assert "cannot resume" in capsys.readouterr().err
