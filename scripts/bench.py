"""Run every benchmark at sizes suited to the device, collect the figures, refresh the README.

    python scripts/bench.py                      # run all benchmarks, then collect + README
    python scripts/bench.py --only gp_speed,tpe_speed
    python scripts/bench.py --collect            # no runs: newest JSON per benchmark -> README
    python scripts/bench.py --dry-run            # print the commands of the chosen profile

Profiles: ``accelerator`` (a GPU or TPU is JAX's default device: large populations, the
1024-member throughput row), ``cpu`` (the sizes quoted in the README for a 2-core machine) and
``smoke`` (seconds per benchmark; checks that everything runs). The profile defaults to the
device JAX sees. Each benchmark is a subprocess writing ``benchmarks/results/<name>-<device>-
<utc>.json``; this script then writes ``benchmarks/results/<device>-<utc>.json`` with the device,
JAX version and every headline figure (for each figure, the newest file that has it), and
rewrites the README's generated results table (between the ``bench:begin``/``bench:end``
markers) from the newest combined file of every device.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "benchmarks", "README.md")  # holds the generated table
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name -> {profile: arguments}. ``cpu`` matches the README's commands (a 2-core machine);
# ``accelerator`` scales populations and budgets up; ``smoke`` only checks that it runs.
PROFILES: dict[str, dict[str, list[str]]] = {
    "throughput": {
        "cpu": ["--pops", "1,8,64", "--widths", "32,128"],
        "accelerator": ["--pops", "1,8,64,256,1024", "--widths", "32,128,512"],
        "smoke": ["--pops", "1,4", "--widths", "16", "--models", "mlp", "--steps", "20",
                  "--loop-steps", "10", "--loop-members", "2"]},
    "overhead": {
        "cpu": [], "accelerator": ["--pops", "64,1024,4096"],
        "smoke": ["--pops", "8", "--gens", "3", "--optuna-trials", "20",
                  "--strategies", "random_search"]},
    "quality": {
        "cpu": ["--evals", "100", "--batch", "1", "--seeds", "10", "--checkpoints", "25,50,100",
                "--functions", "branin,hartmann6",
                "--strategies", "gp_bo,tpe,optuna_gp,optuna_tpe,random_search"],
        "accelerator": ["--evals", "100", "--batch", "8", "--seeds", "10",
                        "--checkpoints", "25,50,100"],
        "smoke": ["--quick", "--strategies", "random_search,quasi_random"]},
    "gp_speed": {
        "cpu": ["--sizes", "50,100,200,300,1000", "--optuna-repeats", "3"],
        "accelerator": ["--sizes", "50,100,200,300,1000"],
        "smoke": ["--sizes", "20", "--repeats", "2", "--amortize", "2", "--no-optuna"]},
    "tpe_speed": {
        "cpu": [], "accelerator": [],
        "smoke": ["--ns", "10", "--reps", "2"]},
    "evolution": {
        "cpu": ["--seeds", "5"], "accelerator": ["--seeds", "5"],
        "smoke": ["--seeds", "1", "--dims", "10", "--timing-gens", "3", "--restart-evals", "500",
                  "--restart-seeds", "1", "--mo-evals", "0"]},
    "schedulers": {
        "cpu": [], "accelerator": [],
        "smoke": ["--slots", "8", "--trials", "16", "--reports", "5", "--repeats", "2",
                  "--seeds", "2"]},
    "e2e_mnist1d": {
        "cpu": ["--seeds", "3", "--optuna-budget", "300", "--jax-budget", "40",
                "--arms", "asha_tpe,pbt,hyperband,bohb", "--hb-seeds", "1"],
        "accelerator": ["--seeds", "3", "--optuna-budget", "300", "--jax-budget", "40",
                        "--slots", "256", "--max-width", "128"],
        "smoke": ["--seeds", "1", "--optuna-budget", "5", "--jax-budget", "5",
                  "--arms", "pbt", "--optuna", "median", "--slots", "4", "--max-steps", "120"]},
    "mnist1d_accuracy": {
        "cpu": [], "accelerator": ["--mlp-members", "256", "--cnn-members", "64"],
        "smoke": ["--mlp-steps", "50", "--cnn-steps", "50", "--mlp-members", "2",
                  "--cnn-members", "2"]},
    "hypergrad": {
        "cpu": ["--seeds", "3"], "accelerator": ["--seeds", "5", "--members", "32"],
        "smoke": ["--seeds", "1", "--trials", "2", "--steps", "40", "--members", "2",
                  "--rounds", "1", "--memory-steps", "16", "--methods", "random,hypergrad"]},
    "ppo_cartpole": {
        "cpu": ["--seeds", "5", "--steps", "500000"],
        "accelerator": ["--seeds", "5", "--steps", "500000"],
        "smoke": ["--seeds", "1", "--steps", "20000"]},
    "rl_hpo": {
        "cpu": ["--tasks", "hartmann6,branin", "--seeds", "5"],
        "accelerator": ["--seeds", "5", "--mnist-evals", "256"],
        "smoke": ["--tasks", "branin", "--seeds", "1", "--evals", "64",
                  "--strategies", "ppo_agent,random_search"]},
    "ars_cartpole": {
        "cpu": ["--seeds", "5"], "accelerator": ["--seeds", "5"],
        "smoke": ["--seeds", "1", "--generations", "2"]},
    "ars_ablation": {
        "cpu": [], "accelerator": [],
        "smoke": ["--quick"]},
}


# --- headline figures: one function per benchmark, JSON payload -> [(figure, value)] ---------

def _g(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.{digits}g}"
    return str(v)


def _median(xs):
    xs = sorted(x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x)))
    if not xs:
        return float("nan")
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _throughput(d):
    best = {}
    for r in d.get("rows", []):
        k = (r["model"], r["width"])
        if k not in best or r["pop"] > best[k]["pop"]:
            best[k] = r
    return [(f"{m} width {w}, {r['pop']} members: vmapped vs Python loop / vs scan per member",
             f"{_g(r['x_vs_loop'])}× / {_g(r['x_vs_scan'])}× ({_g(r['vmapped'], 4)} "
             f"member-steps/s, {_g(r.get('pct_peak'))}% of matmul peak, {_g(r.get('MiB'))} MiB)")
            for (m, w), r in sorted(best.items())]


def _overhead(d):
    rows = d.get("rows", [])
    pops = sorted({r["pop"] for r in rows})
    pop = 64 if 64 in pops else (pops[-1] if pops else None)
    return [(f"{r['strategy']} ask+tell per trial, {pop} × {r['d']}-d",
             f"{_g(r['us_per_trial'])} µs ({_g(r['x_vs_optuna_random'])}× faster than Optuna "
             "RandomSampler)") for r in rows if r["pop"] == pop]


def _quality(d):
    out = []
    batch = d.get("batch")
    for fn, strategies in d.get("results", {}).items():
        for s, r in strategies.items():
            at = r.get("regret_at", {})
            if not at:
                continue
            cells = ", ".join(f"@{k} {_g(v['median'])}" for k, v in at.items())
            out.append((f"regret {fn}, {s} (q = {batch}), median of {len(r['per_seed_final'])}",
                        cells))
    return out


def _gp_speed(d):
    out = []
    for n, r in d.get("results", {}).items():
        q1, q8, opt = r.get("q1", {}), r.get("q8", {}), r.get("optuna_gp_ask_ms")
        val = f"ask q=1 {_g(q1.get('ask_ms'))} ms, q=8 {_g(q8.get('ask_ms'))} ms"
        if opt:
            val += f"; Optuna GPSampler {_g(opt)} ms ({_g(opt / q1['ask_ms'])}×)"
        out.append((f"GP-BO ask at {n} observations", val))
    for n, r in d.get("rounds", {}).items():  # --rounds: whole rounds of 32 (ask + tell)
        q = r.get("q32_rounds", {})
        out.append((f"GP-BO round of 32 (ask + tell) at {n} observations",
                    f"mean {_g(q.get('mean_s'))} s, max {_g(q.get('max_s'))} s"))
    return out


def _tpe_speed(d):
    out = []
    for n, r in d.get("results", {}).items():
        batch = [f"q={k[len('jaxhpo_q'):-2]} {_g(1e3 * v)} ms" for k, v in r.items()
                 if k.startswith("jaxhpo_q") and k.endswith("_s") and k != "jaxhpo_q1_s"]
        out.append((f"TPE ask at {n} observations",
                    ", ".join([f"q=1 {_g(1e3 * r['jaxhpo_q1_s'])} ms"] + batch)
                    + f"; Optuna TPESampler {_g(1e3 * r['optuna_s'])} ms per ask"))
    return out


def _evolution(d):
    out = [(f"CMA-ES evaluations to 1e-8, {r['problem']}",
            f"{_g(r['jaxhpo_median_evals'])} vs cma {_g(r['cma_median_evals'])}")
           for r in d.get("evals") or []]
    out += [(f"CMA-ES ms per generation, d = {r['d']}",
             f"{_g(r['jaxhpo_ms'])} vs evosax {_g(r['evosax_ms'])} ({_g(r['ratio'])}×)")
            for r in d.get("timing") or []]
    out += [(f"restarts, {r['problem']} at {r['evals']} evaluations (median best)",
             f"IPOP {_g(r['ipop'])}, BIPOP {_g(r['bipop'])}; cma IPOP {_g(r['cma_ipop'])}, "
             f"BIPOP {_g(r['cma_bipop'])}") for r in d.get("restarts") or []]
    out += [(f"NSGA-II hypervolume, {r['problem']}",
             f"{_g(r['jaxhpo_nsga2_median_hv'], 4)} vs Optuna {_g(r['optuna_nsga2_median_hv'], 4)}")
            for r in d.get("nsga2") or []]
    return out


def _schedulers(d):
    return [(f"scheduler rule {r['rule'].split()[0]} per rung", f"{_g(r['per_rung_ms'])} ms")
            for r in d.get("overhead") or []]


def _e2e(d):
    out = []
    for r in d.get("table", []):
        out.append((f"MNIST-1D end to end, {r['arm']}: seconds to Optuna's 5-minute best",
                     f"{_g(r.get('reach Optuna-5min (s, median)'))} s; test at 30 s "
                     f"{_g(r.get('test@30s'))} vs Optuna {_g(r.get('optuna test'))}; "
                     f"utilization {_g(r.get('utilization'))}"))
    return out


def _mnist1d(d):
    return [(f"MNIST-1D {r['model']} × {r['members']}, {r['steps']} steps: test acc. of best",
             _g(r["test_of_best_val"])) for r in d.get("rows", [])]


def _hypergrad(d):
    out = [(f"hypergradient memory, {r['variant']}", f"{_g(r['temp MiB'])} MiB")
           for r in (d.get("memory") or {}).get("rows", [])]
    out += [(f"MNIST-1D {r['method']}, {r['train steps']} steps: best val / test",
             f"{_g(r['best val acc'])} / {_g(r['test acc of best'])}")
            for r in (d.get("accuracy") or {}).get("rows", [])]
    return out


def _ppo_cartpole(d):
    seeds = d.get("seeds", [])
    if not seeds:
        return []
    solved = sum(s["final_eval_return"] >= 475 for s in seeds)
    return [(f"PPO CartPole-v1, {d['args']['steps']} steps",
             f"{solved}/{len(seeds)} seeds ≥ 475; median steps to 475 "
             f"{_g(_median([s['env_steps_to_475'] for s in seeds]))}")]


def _rl_hpo(d):
    out = []
    for task, strategies in d.get("results", {}).items():
        for s, r in strategies.items():
            what = "validation error" if task.startswith("mnist") else "regret"
            out.append((f"RL-HPO {task}, {s}: median final {what}",
                        _g(_median(r.get("per_seed_final", [])))))
    return out


def _ars_cartpole(d):
    seeds = d.get("seeds", [])
    return [("ARS V2-t CartPole-v1: median environment steps to 475",
             f"{_g(_median([s['env_steps_to_475'] for s in seeds]))} "
             f"({sum(s['final_mean_return'] >= 475 for s in seeds)}/{len(seeds)} solved)")] \
        if seeds else []


def _ars_ablation(d):
    return [(f"ARS ablation Hartmann-6, {v}: median evaluations to regret 0.05",
             _g(_median(r.get("evals_to_0.05", [])))) for v, r in d.get("hartmann6", {}).items()]


SUMMARIES: dict[str, Callable[[dict], list]] = {
    "throughput": _throughput, "overhead": _overhead, "quality": _quality,
    "gp_speed": _gp_speed, "tpe_speed": _tpe_speed, "evolution": _evolution,
    "schedulers": _schedulers, "e2e_mnist1d": _e2e, "mnist1d_accuracy": _mnist1d,
    "hypergrad": _hypergrad, "ppo_cartpole": _ppo_cartpole, "rl_hpo": _rl_hpo,
    "ars_cartpole": _ars_cartpole, "ars_ablation": _ars_ablation,
}
assert set(SUMMARIES) == set(PROFILES)

_STAMP = re.compile(r"-(\d{8}-\d{6})\.json$")


def result_files(results: str, name: str, device: str | None = None) -> list[str]:
    """``name``'s result files (optionally for one device tag), newest first."""
    pattern = f"{name}-{device}-*.json" if device else f"{name}-*.json"
    files = [f for f in glob.glob(os.path.join(results, pattern)) if _STAMP.search(f)]
    if device is None:  # "quality-" must not match "quality_x-": the tag follows the name
        files = [f for f in files if os.path.basename(f)[len(name) + 1:].count("-") >= 2]
    return sorted(files, key=lambda f: _STAMP.search(f).group(1), reverse=True)


def _device_of(path: str, name: str) -> str:
    base = os.path.basename(path)[len(name) + 1:]
    return base[: _STAMP.search(base).start()]


def collect(results: str, device: str) -> dict:
    """Headline figures of every benchmark for ``device``: newest file first, older files fill
    in figures the newer ones lack (e.g. a run of only some strategies)."""
    figures = {}
    for name, summarize in SUMMARIES.items():
        rows = {}
        for path in result_files(results, name, device):
            with open(path) as f:
                payload = json.load(f)
            try:
                pairs = summarize(payload)
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
                print(f"  skipping {os.path.basename(path)}: unexpected format ({e!r})")
                continue
            for fig, val in pairs:
                rows.setdefault(fig, {"value": val, "file": os.path.basename(path),
                                      "utc": payload.get("meta", {}).get("utc", ""),
                                      "command": payload.get("meta", {}).get("command", "")})
        if rows:
            figures[name] = rows
    return figures


def devices_in(results: str) -> list[str]:
    tags = set()
    for name in SUMMARIES:
        for path in result_files(results, name):
            tags.add(_device_of(path, name))
    return sorted(tags)


def write_combined(results: str, device: str, figures: dict, meta: dict) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = os.path.join(results, f"{device}-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"device": device, **meta, "figures": figures}, f, indent=1)
    return path


def newest_combined(results: str) -> dict[str, dict]:
    """The newest combined file (written by :func:`write_combined`) of every device tag."""
    out = {}
    for path in glob.glob(os.path.join(results, "*.json")):
        stamp = _STAMP.search(path)
        if not stamp or os.path.basename(path).split("-")[0] in SUMMARIES:
            continue
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict) or "figures" not in data or "device" not in data:
            continue
        data["_stamp"] = stamp.group(1)
        if data["device"] not in out or out[data["device"]]["_stamp"] < data["_stamp"]:
            out[data["device"]] = data
    return out


def render_table(combined: dict[str, dict]) -> str:
    lines = [BEGIN, "",
             "_Generated by `python scripts/bench.py` from the newest results of each device; "
             "do not edit by hand._", ""]
    if not combined:
        lines += ["(no results collected yet)", ""]
    for device, data in sorted(combined.items()):
        n = sum(len(rows) for rows in data["figures"].values())
        lines += ["<details>", f"<summary><b>{device}</b>: {n} figures (jax "
                  f"{data.get('jax', '?')}, collected {data.get('utc', '?')[:10]})</summary>", "",
                  "| benchmark | figure | value | measured |", "| --- | --- | --- | --- |"]
        for name, rows in data["figures"].items():
            for fig, r in rows.items():
                lines.append(f"| {name} | {fig} | {r['value']} | {r['utc'][:10]} |")
        lines += ["", "</details>", ""]
    lines.append(END)
    return "\n".join(lines)


def update_readme(readme: str, table: str) -> bool:
    """Replace the block between the markers (append a section if there is none)."""
    with open(readme) as f:
        text = f.read()
    if BEGIN in text and END in text:
        new = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END):]
    else:
        new = text.rstrip("\n") + "\n\n### Latest results per device\n\n" + table + "\n"
    if new != text:
        with open(readme, "w") as f:
            f.write(new)
    return new != text


def run_benchmark(name: str, args: list[str], env: dict) -> tuple[int, float]:
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", f"{name}.py"), *args]
    print(f"\n$ {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    return rc, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--only", default=None, help="comma-separated benchmark names "
                    f"(default all: {','.join(PROFILES)})")
    ap.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--profile", choices=["auto", "cpu", "accelerator", "smoke"],
                    default="auto", help="sizes (auto: accelerator when JAX's default device "
                    "is a GPU/TPU, else cpu)")
    ap.add_argument("--collect", action="store_true",
                    help="run nothing; collect the newest results and refresh the README")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite benchmarks/README.md")
    ap.add_argument("--results", default=os.environ.get("JAXHPO_BENCH_RESULTS", RESULTS),
                    help="results directory (default benchmarks/results)")
    ap.add_argument("--readme", default=README, help="the README to refresh")
    args = ap.parse_args(argv)

    names = list(PROFILES) if args.only is None else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names + [s for s in args.skip.split(",") if s] if n not in PROFILES]
    if unknown:
        ap.error(f"--only/--skip: unknown benchmark(s) {unknown}; choose from {list(PROFILES)}")
    names = [n for n in names if n not in set(args.skip.split(","))]

    import jax

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from _common import device_tag, metadata

    dev = jax.devices()[0]
    profile = args.profile
    if profile == "auto":
        profile = "cpu" if dev.platform == "cpu" else "accelerator"
    device = device_tag()
    print(f"device {device} ({jax.device_count()} × {getattr(dev, 'device_kind', '')}), "
          f"jax {jax.__version__}, profile {profile}")

    failed = []
    if not args.collect:
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")  # see benchmarks/quality.py
        env["JAXHPO_BENCH_RESULTS"] = os.path.abspath(args.results)
        for name in names:
            if args.dry_run:
                print("python", f"benchmarks/{name}.py", *PROFILES[name][profile])
                continue
            rc, secs = run_benchmark(name, PROFILES[name][profile], env)
            print(f"[{name}: exit {rc}, {secs:.0f} s]")
            if rc:
                failed.append(name)
        if args.dry_run:
            return 0

    figures = collect(args.results, device)
    meta = {k: v for k, v in metadata().items() if k != "command"}
    meta["profile"] = profile
    path = write_combined(args.results, device, figures, meta)
    n = sum(len(r) for r in figures.values())
    print(f"\n{n} figures from {len(figures)} benchmarks -> {os.path.relpath(path, ROOT)}")
    if not args.no_readme:
        changed = update_readme(args.readme, render_table(newest_combined(args.results)))
        print("README results table", "updated" if changed else "unchanged")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
