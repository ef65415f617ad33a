"""benchmarks/quality.py: seed selection and argument checks (the benchmark itself is slow)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import _common  # noqa: E402
import quality  # noqa: E402

ARGS = ["--functions", "branin", "--evals", "4", "--batch", "2", "--checkpoints", "4",
        "--strategies", "random_search"]


def test_first_seed_runs_those_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "RESULTS", str(tmp_path))
    full = quality.main(ARGS + ["--seeds", "3"])["branin"]["random_search"]["per_seed_final"]
    tail = quality.main(ARGS + ["--seeds", "2", "--first-seed", "1"])
    assert np.allclose(tail["branin"]["random_search"]["per_seed_final"], full[1:])
    seeds = [json.loads(f.read_text())["seeds"] for f in tmp_path.glob("quality-*.json")]
    assert [1, 2] in seeds  # the second run's file (written last if both share a stamp)


@pytest.mark.parametrize("bad", [["--first-seed", "-1"], ["--seeds", "0"]])
def test_bad_seed_arguments_are_rejected(bad, capsys):
    with pytest.raises(SystemExit):
        quality.main(ARGS + bad)
    assert "--first-seed must be >= 0" in capsys.readouterr().err


def test_botorch_reference_without_botorch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "botorch", None)  # import botorch.* -> ImportError
    monkeypatch.setitem(sys.modules, "botorch.fit", None)
    args = ARGS[:-1] + ["botorch_logei", "--seeds", "1"]
    with pytest.raises(SystemExit) as e:
        quality.main(args)
    assert "pip install botorch" in str(e.value.code)
