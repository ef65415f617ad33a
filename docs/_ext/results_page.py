"""Render benchmark result JSON (``benchmarks/results/``) as Markdown tables for the docs.

:func:`render` takes ``{benchmark: newest json path}`` and returns Markdown: one section per
benchmark with its command, file, date and its figures as tables. ``quality`` files are shown as
median regret per function x strategy x checkpoint; every other file is tabulated generically
(lists of records become tables, nested dicts become tables keyed by their first level; long
per-seed lists and curves are left out, they stay in the JSON).
"""

from __future__ import annotations

import json
import math
import os

# One line per benchmark: what it measures (benchmarks/README.md has the full table).
ABOUT = {
    "throughput": "population training: member-steps/s of the vmapped engine vs a Python loop "
                  "over a jitted train step (`x_vs_loop`) and vs one `lax.scan` per member",
    "static_groups": "static hyperparameters: a population grouped by width vs each group "
                     "trained alone and vs masking to the widest; vmapped groups vs calling the "
                     "same compiled per-trial program sequentially",
    "overhead": "strategy ask + tell time per trial vs Optuna's samplers, same run",
    "quality": "search quality: median regret (best found - known optimum) over seeds at "
               "evaluation checkpoints",
    "gp_speed": "GP-BO ask / tell time vs observations, Optuna `GPSampler` in the same run",
    "tpe_speed": "TPE ask + tell time (seconds) vs observations, Optuna `TPESampler` in the "
                 "same run",
    "tpe_ablation": "TPE settings vs Optuna `TPESampler` on held-out seeds",
    "evolution": "CMA-ES vs the `cma` package (evaluations to 1e-8) and evosax (time per "
                 "generation); IPOP/BIPOP restarts; NSGA-II vs Optuna",
    "e2e_mnist1d": "`jaxhpo.tune` (ASHA, HyperBand, BOHB, PBT on vmapped slots) vs Optuna "
                   "`TPESampler` + pruners on MNIST-1D, end to end",
    "executors": "Python objectives on executors: trials/s with 4 workers vs 1 (0.5 s trials)",
    "warm_start": "warm starts: regret of a strategy told earlier trials vs unseeded",
    "callback_overhead": "cost of callbacks and progress logging per generation",
    "crash_campaign": "SIGKILLed journaled runs resumed: trials lost / duplicated / mismatched",
    "nan_campaign": "every strategy with half of its evaluations NaN/inf",
    "space_scale": "search spaces with 1000 and 10000 parameters",
    "mnist1d_accuracy": "test accuracy of tuned MLP / CNN populations on MNIST-1D",
    "hypergrad": "hypergradient tuning vs random search and GP-BO; memory of reverse / forward "
                 "mode",
    "schedulers": "scheduler decision time per rung; learning-curve extrapolation error",
    "rl_hpo": "`ppo_agent` (with / without its reward model) vs random, TPE, GP-BO",
    "ppo_cartpole": "the PPO core on gymnax CartPole-v1",
    "ars_cartpole": "ARS V2-t on gymnax CartPole-v1",
    "ars_ablation": "ARS augmentations vs plain ARS and random search",
}
_SKIP = {"benchmark", "meta", "args"}
MAX_COLUMNS = 9


def fmt(v) -> str:
    """A cell: 3 significant digits for floats, ``-`` for None/NaN, ``|`` escaped."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "never" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _flatten(d: dict, prefix: str = "") -> dict:
    """Scalar leaves of a nested dict as ``{"a.b": v}``; lists are left out."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if _scalar(v):
            out[key] = v
        elif isinstance(v, dict):
            out.update(_flatten(v, key + "."))
    return out


def table(rows: list[dict], columns: list[str] | None = None, first: str | None = None) -> str:
    """A Markdown table of ``rows`` (dicts); ``first`` names a leading key column."""
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns and _scalar(r[c])]
    head = ([first] if first else []) + columns
    lines = ["| " + " | ".join(fmt(c) for c in head) + " |",
             "|" + " --- |" * len(head)]
    for r in rows:
        cells = ([r.get("__key__")] if first else []) + [r.get(c) for c in columns]
        lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    return "\n".join(lines)


def _generic(value, title: str, depth: int = 0) -> list[str]:
    out: list[str] = []
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        if len({c for r in value for c in r if _scalar(r[c])}) > 1:  # not a bare seed list
            out += [f"*{title}*", "", table(value), ""]
    elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        flat = {k: _flatten(v) for k, v in value.items()}
        cols: list[str] = []
        for f in flat.values():
            cols += [c for c in f if c not in cols]
        if 0 < len(cols) <= MAX_COLUMNS or depth >= 2:
            rows = [{"__key__": k, **f} for k, f in flat.items()]
            out += [f"*{title}*", "", table(rows, cols[:MAX_COLUMNS * 2], first=""), ""]
        else:
            for k, v in value.items():
                out += _generic(v, f"{title} / {k}", depth + 1)
    elif isinstance(value, dict):
        flat = _flatten(value)
        if flat:
            out += [f"*{title}*: " + "; ".join(f"{k} {fmt(v)}" for k, v in flat.items()), ""]
    elif _scalar(value) and not isinstance(value, str):
        out += [f"*{title}*: {fmt(value)}", ""]
    return out


def _quality(d: dict) -> list[str]:
    cps = [str(c) for c in d.get("checkpoints", [])]
    out = [f"median regret over {len(d.get('seeds', []))} seeds, batch {d.get('batch')}, "
           f"{d.get('evals')} evaluations", ""]
    rows = []
    for fn, by_strategy in d.get("results", {}).items():
        for name, r in by_strategy.items():
            at = r.get("regret_at", {})
            rows.append({"function": fn, "strategy": name,
                         **{f"@{c}": at.get(c, {}).get("median") for c in cps}})
    out += [table(rows, ["function", "strategy"] + [f"@{c}" for c in cps]), ""]
    return out


def section(name: str, path: str) -> str:
    with open(path) as f:
        d = json.load(f)
    meta = d.get("meta", {})
    lines = [f"### {name}", ""]
    if name.split(" ")[0] in ABOUT:
        lines += [ABOUT[name.split(" ")[0]] + ".", ""]
    lines += [f"File `benchmarks/results/{os.path.basename(path)}` "
              f"({meta.get('utc', '?')[:16].replace('T', ' ')} UTC, jax {meta.get('jax', '?')}, "
              f"{meta.get('cpu_count', '?')} CPUs, device {meta.get('device_kind', '?')}); "
              f"command: `{meta.get('command', '?')}`", ""]
    if name.startswith("quality"):
        lines += _quality(d)
    else:
        for k, v in d.items():
            if k not in _SKIP:
                lines += _generic(v, k)
    return "\n".join(lines)


def render(files: dict[str, str]) -> str:
    """Markdown for ``{benchmark: json path}`` (one section each, in the given order)."""
    out = ["<!-- generated by docs/_ext/bench_results.py at build time; do not edit -->", ""]
    for name, path in files.items():
        try:
            out += [section(name, path), ""]
        except Exception as e:  # a result format this page does not know: say so, go on
            out += [f"### {name}", "", f"`benchmarks/results/{os.path.basename(path)}` could not "
                    f"be tabulated here ({type(e).__name__}: {fmt(str(e))}); read the JSON.", ""]
    return "\n".join(out)
