"""The ``jaxhpo`` command line: run a test function or the demo, summarize and plot journals,
resume runs, forward to the benchmarks of a source checkout.

    jaxhpo run --function branin --strategy tpe --trials 64 --batch 8 --seed 0 --journal out.jsonl
    jaxhpo summary out.jsonl
    jaxhpo plot out.jsonl --kind parallel --out parallel.png
    jaxhpo resume out.jsonl --trials 128
    jaxhpo bench quality --quick

``run`` writes its settings next to the journal (``<journal>.cli.json``), so ``resume`` needs
nothing but the journal's path. Argument errors exit with status 2 and a message naming the
argument; ``main(argv)`` returns the exit status of a successful command.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import textwrap
from collections import Counter

SIDECAR = ".cli.json"
SIDECAR_FORMAT = "jaxhpo-cli"
DEMO_SPACE = {"lr": ("Float", 1e-4, 1e-2, True), "width": ("Int", 16, 128, True),
              "weight_decay": ("Float", 1e-4, 3e-1, True), "dropout": ("Float", 0.0, 0.4, False)}
PLOT_KINDS = ("history", "parallel", "slices", "pareto", "curves", "regret", "contour",
              "importance", "edf", "timeline")
# registry entries that shrink a strategy for the conformance tests' speed: the CLI builds
# these with the library's defaults instead
_FULL_DEFAULTS = ("gp_bo", "ppo_agent")


# ---------------------------------------------------------------------------- argument types
def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {s!r}")
    return v


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None


def _int_list(s: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 10,30,90, got {s!r}") from None


def _benchmarks_dir() -> str | None:
    """``benchmarks/`` of the source checkout this jaxhpo was imported from, if any."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = os.path.join(here, "benchmarks")
    return d if os.path.isfile(os.path.join(d, "_common.py")) else None


def _benchmarks() -> dict[str, str]:
    """``{name: first docstring line}`` of the benchmark scripts (read, not imported)."""
    d = _benchmarks_dir()
    if d is None:
        return {}
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".py") and not f.startswith("_"):
            try:
                with open(os.path.join(d, f)) as fh:
                    doc = ast.get_docstring(ast.parse(fh.read())) or ""
            except (OSError, SyntaxError):
                doc = ""
            first = " ".join(doc.strip().split("\n\n")[0].split())  # first paragraph
            out[f[:-3]] = first if len(first) <= 100 else first[:97] + "..."
    return out


# ---------------------------------------------------------------------------- parser
class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions and epilogs to the terminal, but keeps indented lines (examples)."""

    def _fill_text(self, text, width, indent):
        out = []
        for line in text.splitlines():
            if line.startswith("  ") or not line.strip():
                out.append(indent + line)
            else:
                out.append(textwrap.fill(line, width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jaxhpo", formatter_class=_Formatter,
        description="JAX-native hyperparameter optimization from the command line: run a "
                    "strategy on a test function or the MNIST-1D demo, summarize and plot "
                    "journals, resume runs, run the benchmarks of a source checkout.",
        epilog="Run 'jaxhpo COMMAND --help' for a command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "run", help="run a strategy on a built-in test function, or the MNIST-1D demo",
        description="Minimize a built-in test function (jaxhpo.functions) with any registered "
                    "strategy, or (--demo) tune MLPs on MNIST-1D with a vmapped population. "
                    "With --journal every generation is recorded, so 'jaxhpo resume JOURNAL' "
                    "continues a killed run and 'jaxhpo summary/plot JOURNAL' report it.",
        epilog="examples:\n  jaxhpo run --function branin --strategy tpe --trials 64 --batch 8 "
               "--journal out.jsonl\n  jaxhpo run --function hartmann6 --strategy cma_es "
               "--trials 512 --batch 16\n  jaxhpo run --demo --trials 32 --steps 2000\n"
               "  jaxhpo list   (strategies, functions, benchmarks)",
        formatter_class=_Formatter)
    what = r.add_mutually_exclusive_group()
    what.add_argument("--function", default=None, metavar="NAME",
                      help="test function: branin, hartmann3, hartmann6, rosenbrock-D, "
                           "ackley-D, levy-D, styblinski_tang-D, sphere-D (default branin)")
    what.add_argument("--demo", action="store_true",
                      help="the README demo: MLPs on MNIST-1D (lr, width, weight decay, "
                           "dropout), a whole generation trained at once, validation accuracy "
                           "maximized")
    r.add_argument("--strategy", default=None, metavar="NAME",
                   help="a registered strategy (jaxhpo list); default tpe, quasi_random for "
                        "--demo")
    r.add_argument("--trials", type=_positive_int, default=None, metavar="N",
                   help="evaluations, rounded up to whole batches (default 64; 32 for --demo)")
    r.add_argument("--batch", type=_positive_int, default=None, metavar="B",
                   help="population / batch size per generation (default 8; 32 for --demo)")
    r.add_argument("--seed", type=_int, default=0, help="PRNG seed (default 0)")
    r.add_argument("--steps", type=_positive_int, default=2000, metavar="N",
                   help="--demo only: training steps per model (default 2000)")
    r.add_argument("--journal", default=None, metavar="PATH",
                   help="record the run here (JSON Lines) and its settings in PATH.cli.json")
    r.add_argument("--top", type=_positive_int, default=5, metavar="K",
                   help="print the best K trials at the end (default 5)")

    s = sub.add_parser("summary", help="summarize a journal: settings, counts, best trials",
                       description="Print a journal's run settings (header, and the CLI's "
                                   "settings when 'jaxhpo run' wrote it), trial counts by "
                                   "status, the best value (or Pareto front) and a table of "
                                   "the best trials. Works for journals of jaxhpo.minimize, "
                                   "jaxhpo.tune and 'jaxhpo run'.",
                       formatter_class=_Formatter)
    s.add_argument("journal", metavar="JOURNAL", help="journal path (JSON Lines)")
    s.add_argument("--top", type=_positive_int, default=10, metavar="K",
                   help="rows of the best-trials table (default 10)")

    pl = sub.add_parser(
        "plot", help="render a plot of a journal or of benchmark JSON to an image",
        description="Render a jaxhpo.plot figure. INPUT is a journal (kinds history, parallel, "
                    "slices, pareto, curves) or a benchmarks/quality.py result JSON (kind "
                    "regret; several files are merged). Needs matplotlib "
                    "(pip install 'jaxhpo[plot]').",
        epilog="examples:\n  jaxhpo plot out.jsonl --kind history --out history.png\n"
               "  jaxhpo plot out.jsonl --kind parallel --out parallel.png\n"
               "  jaxhpo plot tune.jsonl --kind curves --rungs 10,30,90 --out curves.png\n"
               "  jaxhpo plot benchmarks/results/quality-*.json --out regret.png",
        formatter_class=_Formatter)
    pl.add_argument("inputs", nargs="+", metavar="INPUT", help="journal or quality JSON")
    pl.add_argument("--kind", choices=PLOT_KINDS, default=None,
                    help="what to draw (default: history for a journal, regret for JSON)")
    pl.add_argument("--out", default=None, metavar="FILE",
                    help="image file, format from its extension (.png, .pdf, .svg); default "
                         "INPUT-KIND.png")
    pl.add_argument("--objective", default="0", metavar="NAME|INDEX",
                    help="objective of a multi-objective run for history/parallel/slices")
    pl.add_argument("--params", default=None, metavar="A,B",
                    help="parameters to show (parallel, slices, contour)")
    pl.add_argument("--objectives", default=None, metavar="A,B",
                    help="pareto: the two objectives to plot")
    pl.add_argument("--pairwise", action="store_true",
                    help="pareto with 3+ objectives: one panel per pair")
    pl.add_argument("--rungs", type=_int_list, default=None, metavar="S1,S2,...",
                    help="curves: rung steps to mark (default: inferred from stopped trials)")
    pl.add_argument("--functions", default=None, metavar="F1,F2",
                    help="regret: functions to show")
    pl.add_argument("--strategies", default=None, metavar="S1,S2",
                    help="regret: strategies to show")
    pl.add_argument("--log", action="store_true", help="logarithmic value axis")
    pl.add_argument("--dpi", type=_positive_int, default=120)

    re_ = sub.add_parser("resume", help="continue a run started by 'jaxhpo run'",
                         description="Continue a run recorded by 'jaxhpo run --journal PATH' "
                                     "with the settings saved in PATH.cli.json: completed "
                                     "trials are kept, the strategy state is restored "
                                     "bit-exactly and only missing trials are evaluated. "
                                     "--trials extends a finished run.",
                         formatter_class=_Formatter)
    re_.add_argument("journal", metavar="JOURNAL", help="journal path written by 'jaxhpo run'")
    re_.add_argument("--trials", type=_positive_int, default=None, metavar="N",
                     help="total evaluations (default: the original run's)")
    re_.add_argument("--top", type=_positive_int, default=5, metavar="K",
                     help="print the best K trials at the end (default 5)")

    b = sub.add_parser("bench", help="run a benchmark script of a source checkout",
                       description="Forward to benchmarks/NAME.py of the source checkout this "
                                   "jaxhpo is imported from, with the remaining arguments "
                                   "(e.g. 'jaxhpo bench quality --quick'). Without NAME, list "
                                   "the benchmarks.",
                       epilog="Benchmarks are not installed with the package: clone the "
                              "repository and 'pip install -e .[bench]'.",
                       formatter_class=_Formatter)
    b.add_argument("name", nargs="?", default=None, metavar="NAME", help="benchmark name")
    b.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the benchmark (see 'jaxhpo bench NAME --help')")

    ls = sub.add_parser("list", help="list strategies, test functions and benchmarks",
                        description="List the registered strategies, the built-in test "
                                    "functions and (in a source checkout) the benchmarks.",
                        formatter_class=_Formatter)
    p.commands = {"run": r, "summary": s, "plot": pl, "resume": re_, "bench": b, "list": ls}
    return p


# ---------------------------------------------------------------------------- run / resume
def _settings_from_args(args, parser) -> dict:
    import jaxhpo.functions as F
    from jaxhpo.strategies import REGISTRY

    sub = parser.commands["run"]
    demo = bool(args.demo)
    fn = args.function or (None if demo else "branin")
    if fn is not None:
        try:
            F.get(fn)
        except (ValueError, TypeError) as e:
            sub.error(f"argument --function: {e}")
    strategy = args.strategy or ("quasi_random" if demo else "tpe")
    if strategy not in REGISTRY:
        sub.error(f"argument --strategy: unknown strategy {strategy!r}; choose from "
                  f"{', '.join(sorted(REGISTRY))}")
    if REGISTRY[strategy].num_objectives != 1:
        sub.error(f"argument --strategy: {strategy} is multi-objective "
                  f"({REGISTRY[strategy].num_objectives} objectives) but the test functions and "
                  "the demo have one")
    batch = args.batch or (32 if demo else 8)
    trials = args.trials or (32 if demo else 64)
    return {"demo": demo, "function": fn, "strategy": strategy, "trials": trials,
            "batch": batch, "seed": args.seed, "steps": args.steps if demo else None}


def _problem(settings):
    """``(objective, space, metric, direction, test_function or None)`` of the settings."""
    from jaxhpo import Float, Int, Space

    if settings["demo"]:
        # one XLA host device per core so the population shards over the cores, as
        # scripts/demo.py does; only effective before JAX's first computation in this process
        os.environ.setdefault("XLA_FLAGS",
                              f"--xla_force_host_platform_device_count={os.cpu_count()}")
        from jaxhpo.train import Trainer, mlp, mnist1d

        kinds = {"Float": Float, "Int": Int}
        space = Space({n: kinds[k](lo, hi, log=lg) for n, (k, lo, hi, lg) in DEMO_SPACE.items()})
        trainer = Trainer(mlp(10, max_width=128, max_depth=3, activations=("gelu",)), mnist1d(),
                          space=space, total_steps=settings["steps"],
                          defaults={"optimizer": "adamw", "schedule": "cosine",
                                    "label_smoothing": 0.1})
        return trainer.objective(settings["steps"]), space, "val_accuracy", "maximize", None
    import jaxhpo.functions as F

    tf = F.get(settings["function"])
    return tf.objective, tf.space, None, "minimize", tf


def _strategy(name, space, batch):
    import jaxhpo.strategies as S

    if name in _FULL_DEFAULTS:
        return getattr(S, name)(space, batch)
    return S.REGISTRY[name].make(space, batch)


def _command_line(settings) -> str:
    if settings["demo"]:
        head = f"jaxhpo run --demo --steps {settings['steps']}"
    else:
        head = f"jaxhpo run --function {settings['function']}"
    return (f"{head} --strategy {settings['strategy']} --trials {settings['trials']} "
            f"--batch {settings['batch']} --seed {settings['seed']}")


def _execute(settings, journal, resume, top) -> int:
    import jaxhpo

    objective, space, metric, direction, tf = _problem(settings)
    strategy = _strategy(settings["strategy"], space, settings["batch"])
    pop = strategy.population_size
    gens = math.ceil(settings["trials"] / pop)
    what = "MNIST-1D MLPs (--demo)" if settings["demo"] else tf.name
    print(f"{'resuming' if resume else 'running'} {settings['strategy']} on {what}: "
          f"{gens} generation(s) of {pop} = {gens * pop} trials, seed {settings['seed']}"
          + (f", journal {journal}" if journal else ""), flush=True)
    try:
        res = jaxhpo.minimize(objective, space, strategy, num_generations=gens,
                              key=settings["seed"], metric=metric, direction=direction,
                              journal=journal, resume=resume)
    except KeyboardInterrupt:
        hint = f"; continue with: jaxhpo resume {journal}" if journal else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130
    except ValueError as e:  # e.g. a journal whose settings differ from the sidecar's
        print(f"jaxhpo: error: {e}", file=sys.stderr)
        return 1
    h = res.history
    counts = Counter(t.status for t in h)
    print(f"\n{len(h)} trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    try:
        best = res.best_trial
    except ValueError as e:
        print(f"no best trial: {e}")
        return 1
    line = f"best {h.objectives[0]}: {best.value:.6g} (trial {best.number})"
    if tf is not None:
        line += f"; regret {tf.regret(best.value):.4g} (optimum {tf.optimum_value:.6g})"
    print(line)
    if settings["demo"]:
        print(f"its test accuracy: {best.metrics['test_accuracy']:.4f} (MNIST-1D paper's MLP: "
              "0.68)")
    print(f"best params: {best.params}")
    print()
    rows = _best_rows(h, top)
    _print_table(rows, f"best {len(rows)} trials")
    if journal:
        print(f"\nnext: jaxhpo summary {journal}\n      jaxhpo plot {journal} --kind history "
              f"--out history.png\n      jaxhpo resume {journal} --trials "
              f"{2 * gens * pop}   (more trials)")
    return 0


def _sidecar(journal: str) -> str:
    return os.fspath(journal) + SIDECAR


def cmd_run(args, parser) -> int:
    settings = _settings_from_args(args, parser)
    sub = parser.commands["run"]
    if args.journal:
        if os.path.exists(args.journal) and os.path.getsize(args.journal) > 0:
            sub.error(f"argument --journal: {args.journal!r} already holds a run; continue it "
                      f"with 'jaxhpo resume {args.journal}' or choose a new path")
        d = os.path.dirname(os.path.abspath(args.journal))
        os.makedirs(d, exist_ok=True)
        with open(_sidecar(args.journal), "w") as f:
            json.dump({"format": SIDECAR_FORMAT, "version": 1, "settings": settings,
                       "command": _command_line(settings)}, f, indent=1)
    return _execute(settings, args.journal, False, args.top)


def _load_sidecar(journal: str, sub) -> dict | None:
    path = _sidecar(journal)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            side = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sub.error(f"argument JOURNAL: cannot read the run settings in {path!r}: {e}")
    if side.get("format") != SIDECAR_FORMAT or "settings" not in side:
        sub.error(f"argument JOURNAL: {path!r} is not a 'jaxhpo run' settings file")
    return side


def cmd_resume(args, parser) -> int:
    sub = parser.commands["resume"]
    side = _load_sidecar(args.journal, sub)
    started = os.path.isfile(args.journal) and os.path.getsize(args.journal) > 0
    if side is None or started:  # killed before its header: nothing to read, start afresh
        _read_view(args.journal, sub)  # a readable jaxhpo journal, else exit 2
    if side is None:
        sub.error(f"argument JOURNAL: {args.journal!r} was not written by 'jaxhpo run' (no "
                  f"{os.path.basename(_sidecar(args.journal))} next to it), so its objective "
                  "is unknown here; resume it by calling the script that started it again with "
                  "resume=True: jaxhpo.minimize(..., journal=path, resume=True) or "
                  "jaxhpo.tune(..., journal=path, resume=True)")
    settings = dict(side["settings"])
    if args.trials is not None and started:
        have = len(_read_view(args.journal, sub).history)
        if args.trials < have:
            sub.error(f"argument --trials: the run already holds {have} trials; pass a larger "
                      "total to extend it, or leave --trials out to finish it")
    if args.trials is not None:
        settings["trials"] = args.trials
        with open(_sidecar(args.journal), "w") as f:
            json.dump({**side, "settings": settings, "command": _command_line(settings)}, f,
                      indent=1)
    return _execute(settings, args.journal, True, args.top)


# ---------------------------------------------------------------------------- summary
def _read_view(path, sub):
    from jaxhpo.plot import read_journal

    try:
        return read_journal(path)
    except (FileNotFoundError, ValueError, KeyError) as e:
        sub.error(f"argument JOURNAL: {e}")


def _best_rows(history, k) -> list[dict]:
    """The best ``k`` completed feasible trials (single objective) or the Pareto front
    (several)."""
    import numpy as np

    from jaxhpo.plot._inputs import ok_trials

    done = [t for t in ok_trials(history) if t.feasible]
    if not done:
        return []
    mv = history.minimization_values(done)
    if len(history.directions) == 1:
        order = np.argsort(mv[:, 0], kind="stable")[:k]
        chosen = [done[i] for i in order]
    else:
        chosen = sorted(history.best_trials(), key=lambda t: t.values[0])[:k]
    rows = []
    for rank, t in enumerate(chosen, 1):
        row = {"rank": rank, "trial": t.number}
        for name, v in zip(history.objectives, t.values):
            row[name] = v
        if t.fidelity is not None:
            row["steps"] = t.fidelity
        row.update(t.params)
        rows.append(row)
    return rows


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    return str(v)


def _print_table(rows: list[dict], title: str = "") -> None:
    if not rows:
        print("(no completed trial)")
        return
    cols = list(dict.fromkeys(c for r in rows for c in r))
    cells = [cols] + [[_cell(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    if title:
        print(title)
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _space_line(spec: dict) -> str:
    parts = []
    for name, d in spec.items():
        if d["type"] == "Categorical":
            s = f"{name} in {d['choices']}"
        else:
            s = f"{name} {d['type']}[{d['low']:g}, {d['high']:g}{', log' if d.get('log') else ''}]"
        if d.get("condition"):
            s += f" if {d['condition']}"
        parts.append(s)
    return "; ".join(parts)


def cmd_summary(args, parser) -> int:
    sub = parser.commands["summary"]
    view = _read_view(args.journal, sub)
    side = _load_sidecar(args.journal, sub)
    head, h = view.header, view.history
    driver = head.get("driver", "minimize")
    print(f"journal   {args.journal}  (jaxhpo.{driver}, format version {head.get('version')})")
    if side is not None:
        print(f"command   {side.get('command')}")
    keys = ["strategy", "population_size", "batch", "scheduler", "max_trials", "objective_type",
            "metric"]
    settings = ", ".join(f"{k} {head[k]!r}" if isinstance(head[k], str) else f"{k} {head[k]}"
                         for k in keys if head.get(k) is not None)
    print(f"settings  {settings}")
    print("objective " + ", ".join(f"{n} ({d})" for n, d in zip(h.objectives, h.directions)))
    print(f"space     {_space_line(head['space'])}")
    counts = Counter(t.status for t in h)
    print(f"trials    {len(h)}: " + ", ".join(f"{s} {counts.get(s, 0)}"
                                            for s in ("ok", "stopped", "failed", "diverged")))
    if driver == "minimize":
        gens = sorted({t.generation for t in h})
        print(f"          generations {len(gens)}" + (
            f" (0..{gens[-1]})" if gens else "") + (
            f", population {head.get('population_size')}" if head.get('population_size') else ""))
    if head.get("constraints"):
        done = [t for t in h if t.status in ("ok", "stopped") and t.values is not None]
        print(f"feasible  {sum(t.feasible for t in done)} of {len(done)} completed trials "
              f"(constraints {head['constraints']} <= 0)")
    rows = _best_rows(h, args.top)
    if not rows:
        print("best      no feasible trial" if head.get("constraints") else
              "best      no trial completed")
        return 0
    if len(h.directions) == 1:
        from jaxhpo.plot._inputs import ok_trials

        full = [t for t in ok_trials(h) if t.feasible]
        sign = 1.0 if h.directions[0] == "minimize" else -1.0
        best = min(full, key=lambda t: sign * t.values[0])
        print(f"best      {h.objectives[0]} {best.values[0]:.6g} (trial {best.number})"
              + (f" at {best.fidelity:g} steps" if best.fidelity is not None else ""))
        print(f"          {best.params}")
        title = f"\nbest {len(rows)} trials" + (" (full budget)" if driver == "tune" else "")
    else:
        print(f"pareto    {len(h.best_trials())} non-dominated trials")
        title = f"\nPareto front (first {len(rows)}, by {h.objectives[0]})"
    _print_table(rows, title)
    return 0


# ---------------------------------------------------------------------------- plot
def _is_benchmark_json(path: str) -> bool:
    if not path.endswith(".json"):
        return False
    try:
        with open(path) as f:
            return isinstance(json.load(f), dict)
    except (OSError, json.JSONDecodeError):
        return False


def _split(s):
    return None if s is None else [v for v in s.split(",") if v]


def _check_plot_args(args, kind, view, objective, sub) -> None:
    """Name the flag when --objective, --params or --objectives do not fit the run."""
    from jaxhpo.plot._inputs import objective_index

    h = view.history
    if kind in ("history", "parallel", "slices", "contour", "importance", "edf"):
        try:
            objective_index(h, objective)
        except ValueError as e:
            sub.error(f"argument --objective: {e}")
    if kind in ("parallel", "slices", "contour") and args.params is not None:
        bad = [p for p in _split(args.params) if p not in view.space.names]
        if bad or not _split(args.params):
            sub.error(f"argument --params: {bad or args.params!r} not in the space "
                      f"{list(view.space.names)}")
    if kind == "pareto" and args.objectives is not None:
        for o in _split(args.objectives):
            try:
                objective_index(h, int(o) if o.isdigit() else o)
            except ValueError as e:
                sub.error(f"argument --objectives: {e}")


def cmd_plot(args, parser) -> int:
    sub = parser.commands["plot"]
    for p in args.inputs:
        if not os.path.isfile(p):
            sub.error(f"argument INPUT: {p!r} does not exist")
    bench = [_is_benchmark_json(p) for p in args.inputs]
    kind = args.kind or ("regret" if all(bench) else "history")
    if kind == "regret" and not all(bench):
        sub.error("argument --kind: regret plots benchmarks/quality.py JSON files; "
                  f"{[p for p, b in zip(args.inputs, bench) if not b]} are not")
    if kind != "regret":
        if len(args.inputs) != 1 or bench[0]:
            sub.error(f"argument --kind: {kind} plots one journal; got {args.inputs} (use "
                      "--kind regret for benchmark JSON)")
    try:
        import jaxhpo.plot as P
    except ImportError as e:  # pragma: no cover - matplotlib is in the test extra
        print(f"jaxhpo plot: {e}", file=sys.stderr)
        return 1
    try:
        from jaxhpo.plot._inputs import mpl

        mpl()
    except ImportError as e:
        print(f"jaxhpo plot: {e}", file=sys.stderr)
        return 1
    objective = int(args.objective) if args.objective.lstrip("-").isdigit() else args.objective
    try:
        if kind == "regret":
            fig = P.regret(list(args.inputs), functions=_split(args.functions),
                           strategies=_split(args.strategies), log=True)
        else:
            view = _read_view(args.inputs[0], sub)
            _check_plot_args(args, kind, view, objective, sub)
            if kind == "history":
                fig = P.history(view, objective=objective, log=args.log)
            elif kind == "parallel":
                fig = P.parallel_coordinates(view, params=_split(args.params),
                                             objective=objective)
            elif kind == "slices":
                fig = P.slices(view, params=_split(args.params), objective=objective,
                               log=args.log)
            elif kind == "pareto":
                fig = P.pareto(view, objectives=_split(args.objectives), pairwise=args.pairwise)
            elif kind == "contour":
                fig = P.contour(view, params=_split(args.params), objective=objective)
            elif kind == "importance":
                fig = P.importance(view, objective=objective)
            elif kind == "edf":
                fig = P.edf(view, objective=objective, log=args.log)
            elif kind == "timeline":
                fig = P.timeline(view)
            else:
                fig = P.learning_curves(view, rungs=args.rungs, log=args.log)
    except ValueError as e:
        sub.error(f"argument --kind {kind}: {e}")
    out = args.out or f"{os.path.splitext(os.path.basename(args.inputs[0]))[0]}-{kind}.png"
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    try:
        fig.savefig(out, dpi=args.dpi)
    except ValueError as e:  # unknown image format
        sub.error(f"argument --out: {e}")
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------- bench / list
def cmd_bench(args, parser) -> int:
    sub = parser.commands["bench"]
    d = _benchmarks_dir()
    if d is None:
        sub.error("the benchmarks are not installed with the package; run 'jaxhpo bench' from "
                  "a source checkout (git clone the repository, pip install -e '.[bench]')")
    names = _benchmarks()
    if args.name is None:
        for n, doc in names.items():
            print(f"{n:20s} {doc}")
        return 0
    if args.name not in names:
        sub.error(f"argument NAME: unknown benchmark {args.name!r}; choose from "
                  f"{', '.join(names)}")
    cmd = [sys.executable, os.path.join(d, f"{args.name}.py"), *args.args]
    env = dict(os.environ)
    root = os.path.dirname(d)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.call(cmd, env=env)


def cmd_list(args, parser) -> int:
    from jaxhpo.functions import FUNCTIONS
    from jaxhpo.strategies import REGISTRY

    print("strategies (--strategy):")
    for n, e in REGISTRY.items():
        extra = f"  ({e.num_objectives} objectives)" if e.num_objectives != 1 else ""
        print(f"  {n}{extra}")
    print("test functions (--function; NAME-D sets the dimension of the scalable ones):")
    fixed = ("branin", "hartmann3", "hartmann6")
    print("  " + ", ".join(n if n in fixed else f"{n}-D" for n in FUNCTIONS))
    names = _benchmarks()
    if names:
        print("benchmarks (jaxhpo bench NAME):")
        for n, doc in names.items():
            print(f"  {n:20s} {doc}")
    return 0


COMMANDS = {"run": cmd_run, "summary": cmd_summary, "plot": cmd_plot, "resume": cmd_resume,
            "bench": cmd_bench, "list": cmd_list}


def main(argv=None) -> int:
    """Entry point of ``jaxhpo`` / ``python -m jaxhpo``; returns the exit status.

    Args:
      argv: the arguments (default ``sys.argv[1:]``).

    Returns:
      ``0`` on success (a forwarded benchmark's own status for ``bench``). Argument errors
      raise ``SystemExit(2)`` after printing a message that names the argument.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args, parser)
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
