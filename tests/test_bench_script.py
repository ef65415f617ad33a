"""scripts/bench.py: headline figures come from the benchmark JSON, the README block is rewritten
in place, and a smoke-profile run writes a combined per-device file."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


def _bench():
    spec = importlib.util.spec_from_file_location("jaxhpo_bench_script",
                                                  os.path.join(ROOT, "scripts", "bench.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _write(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f)


def test_collect_takes_newest_file_and_fills_missing_figures_from_older(tmp_path):
    bench = _bench()
    meta = {"utc": "2026-01-01T00:00:00+00:00", "command": "x"}
    _write(tmp_path / "gp_speed-cpu-cpu-20260101-000000.json",
           {"meta": meta, "results": {"50": {"q1": {"ask_ms": 10.0}, "q8": {"ask_ms": 15.0},
                                             "optuna_gp_ask_ms": 400.0},
                                      "300": {"q1": {"ask_ms": 99.0}, "q8": {"ask_ms": 1.0}}}})
    _write(tmp_path / "gp_speed-cpu-cpu-20260102-000000.json",
           {"meta": {**meta, "utc": "2026-01-02T00:00:00+00:00"},
            "results": {"300": {"q1": {"ask_ms": 20.0}, "q8": {"ask_ms": 30.0},
                                "optuna_gp_ask_ms": 800.0}}})
    _write(tmp_path / "gp_speed-gpu-h100-20260103-000000.json",
           {"meta": meta, "results": {"300": {"q1": {"ask_ms": 1.0}, "q8": {"ask_ms": 2.0}}}})
    figs = bench.collect(str(tmp_path), "cpu-cpu")["gp_speed"]
    assert figs["GP-BO ask at 300 observations"]["value"] == \
        "ask q=1 20 ms, q=8 30 ms; Optuna GPSampler 800 ms (40×)"       # newest file wins
    assert figs["GP-BO ask at 50 observations"]["file"].endswith("20260101-000000.json")
    assert bench.devices_in(str(tmp_path)) == ["cpu-cpu", "gpu-h100"]


def test_newest_committed_result_of_every_benchmark_is_understood():
    bench = _bench()
    results = os.path.join(ROOT, "benchmarks", "results")
    for name, summarize in bench.SUMMARIES.items():
        files = bench.result_files(results, name)
        if not files:
            continue
        with open(files[0]) as f:  # older files may predate a format change: collect skips them
            rows = summarize(json.load(f))
        assert rows and all(isinstance(a, str) and isinstance(b, str) for a, b in rows), files[0]


def test_readme_block_is_replaced_in_place_and_idempotent(tmp_path):
    bench = _bench()
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\nbefore\n\n{bench.BEGIN}\nold\n{bench.END}\n\nafter\n")
    combined = {"cpu-cpu": {"device": "cpu-cpu", "jax": "0.1", "utc": "2026-01-02",
                            "figures": {"tpe_speed": {"TPE ask at 10 observations": {
                                "value": "q=1 1 ms", "utc": "2026-01-02T00", "file": "f"}}}}}
    table = bench.render_table(combined)
    assert bench.update_readme(str(readme), table)
    text = readme.read_text()
    assert text.startswith("# t\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "| tpe_speed | TPE ask at 10 observations | q=1 1 ms | 2026-01-02 |" in text
    assert "old" not in text
    assert not bench.update_readme(str(readme), table)  # nothing changes the second time


def test_smoke_run_writes_combined_file_and_readme(tmp_path):
    pytest.importorskip("optuna")
    bench = _bench()
    readme = tmp_path / "README.md"
    readme.write_text("# t\n")
    rc = bench.main(["--only", "tpe_speed", "--profile", "smoke", "--results", str(tmp_path),
                     "--readme", str(readme)])
    assert rc == 0
    (combined,) = [p for p in glob.glob(str(tmp_path / "*.json"))
                   if not os.path.basename(p).startswith("tpe_speed-")]
    data = json.load(open(combined))
    assert data["device"] == "cpu-cpu" and data["profile"] == "smoke"
    assert "TPE ask at 10 observations" in data["figures"]["tpe_speed"]
    assert "| tpe_speed | TPE ask at 10 observations |" in readme.read_text()
