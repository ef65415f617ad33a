"""Crash campaign: SIGKILL runs at random points, resume them, compare with uninterrupted runs.

Four small runs ("kinds"), each with a journal:

* ``minimize``: ``jaxhpo.minimize`` of a JAX-native objective with CMA-ES (one journal write of a
  whole generation's trials + one state record per generation);
* ``minimize_python``: a Python objective with TPE (one journal write per trial);
* ``tune_asha``: ``jaxhpo.tune`` of a tiny Trainer with ASHA (promotion mode: trials pause at
  rungs, are parked and promoted), checkpoint every round;
* ``tune_hyperband``: the same with HyperBand (synchronous rungs, dropped trials);
* ``tune_python``: ``jaxhpo.tune`` of a Python objective reporting a learning curve, with ASHA in
  stopping mode (one journal write per ended trial; failures and stopped trials included).

A kill lands at one of these phases (cycled over the runs of a kind), at a random call index:

* ``journal_write``: in the middle of a journal append (half of the bytes written, fsynced,
  then SIGKILL: a torn last line);
* ``after_write``: right after a journal append, before anything else (state, checkpoint);
* ``checkpoint``: while the tune checkpoint is being written (``.ckpt.tmp`` half written);
* ``rung``: inside the scheduler's rung decision (``report``), before it returns;
* ``delay``: SIGKILL from the parent after a random delay (anywhere, compilation included).

The hooks are installed by the worker process (monkeypatching, env var ``JAXHPO_CRASH``), so the
library carries no test code. After each kill the run is resumed (sometimes killed again); the
final resumed run must equal the uninterrupted reference: the same trials (numbers, x, values,
statuses, fidelities), and the journal must hold every completed trial exactly once.

Usage::

    python scripts/crash_campaign.py --runs 20        # the campaign (table + JSON result)
    python scripts/crash_campaign.py --worker tune_asha --journal j.jsonl --out r.json [--resume]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KINDS = ("minimize", "minimize_python", "tune_asha", "tune_hyperband", "tune_python")
PHASES = {"minimize": ("journal_write", "after_write", "delay"),
          "minimize_python": ("journal_write", "after_write", "delay"),
          "tune_asha": ("journal_write", "after_write", "checkpoint", "rung", "delay"),
          "tune_hyperband": ("journal_write", "after_write", "checkpoint", "rung", "delay"),
          "tune_python": ("journal_write", "after_write", "rung", "delay")}


# ---------------------------------------------------------------------------- the runs
def run_kind(kind: str, journal: str, resume: bool = False):
    """Run one small journaled run; returns the normalized trials (see :func:`normalize`)."""
    import jax.numpy as jnp

    import jaxhpo
    from jaxhpo import Float, Space
    from jaxhpo import schedulers as S
    from jaxhpo import strategies as J

    if kind == "minimize":
        space = Space({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)})
        f = jaxhpo.functions.branin()
        import jax

        def objective(key, hp):
            jax.debug.callback(lambda: _count_evaluation(1))
            return f.fn(jnp.stack([hp["x"], hp["y"]]))

        res = jaxhpo.minimize(objective, space,
                              J.cma_es(space, 8), num_generations=6, key=1, journal=journal,
                              resume=resume, progress=False)
    elif kind == "minimize_python":
        space = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})

        def obj(p):
            _count_evaluation(1)
            v = (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2
            if p["a"] > 0.9:  # some trials fail, some diverge: statuses must survive too
                raise RuntimeError("boom")
            return math.nan if p["b"] > 0.95 else v

        res = jaxhpo.minimize(obj, space, J.tpe(space, 4, n_startup_trials=4),
                              num_generations=8, key=2, journal=journal, resume=resume,
                              progress=False)
    elif kind == "tune_python":
        space = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})

        def curve(params, trial):
            _count_evaluation(1)
            f = (params["a"] - 0.3) ** 2 + (params["b"] - 0.6) ** 2
            if params["a"] > 0.93:
                raise RuntimeError("boom")
            for s in range(10, 91, 10):
                trial.report(s, f + 1.0 / s)
                if trial.should_stop():
                    raise jaxhpo.StopTrial()
            return f + 1.0 / 90

        res = jaxhpo.tune(curve, space, J.tpe(space, 4, n_startup_trials=4),
                          S.ASHA(10, 90, eta=3, mode="stopping"), max_trials=24, eval_every=10,
                          key=4, journal=journal, resume=resume, progress=False)
    else:
        from jaxhpo.train import Trainer, mlp, synthetic_classification

        space = Space({"learning_rate": Float(1e-3, 0.3, log=True),
                       "init_scale": Float(0.5, 2.0)})
        data = synthetic_classification(300, 8, 3, seed=1)
        trainer = Trainer(mlp(3, max_width=16), data, space=space, max_batch_size=16)
        if kind == "tune_asha":
            sched, n = S.ASHA(10, 90, eta=3), 12
        else:
            sched, n = S.HyperBand(10, 90, eta=3), 17
        res = jaxhpo.tune(trainer, space, J.random_search(space, 4), sched, max_trials=n,
                          population_size=4, eval_every=10, metric="accuracy",
                          direction="maximize", key=3, journal=journal, resume=resume,
                          progress=False)
    return normalize(res.history)


EVALS_FILE = os.environ.get("JAXHPO_EVALS")


def _count_evaluation(n: int = 1) -> None:
    """Append ``n`` evaluations to the side file (survives SIGKILL: one fsynced line each)."""
    if EVALS_FILE:
        with open(EVALS_FILE, "a") as f:
            f.write(f"{n}\n")
            f.flush()
            os.fsync(f.fileno())


def normalize(history) -> list[dict]:
    """Trials without their timing fields, sorted by number (JSON-able, NaN as None)."""
    out = []
    for t in sorted(history, key=lambda t: t.number):
        out.append({"number": t.number, "generation": t.generation, "member": t.member,
                    "x": [float(v) for v in t.x], "status": t.status, "fidelity": t.fidelity,
                    "values": None if t.values is None else
                    [None if not math.isfinite(v) else float(v) for v in t.values]})
    return out


def journal_trials(path: str) -> list[dict]:
    """Every trial record in the journal (the whole file must parse: no torn line left)."""
    with open(path) as f:
        lines = [ln for ln in f.read().split("\n") if ln.strip()]
    return [r for r in map(json.loads, lines) if r.get("type") == "trial"]


def journal_trials_tolerant(path: str) -> list[dict]:
    """The trial records of a possibly torn journal (as a killed run left it)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for ln in f:
            try:
                r = json.loads(ln)
            except json.JSONDecodeError:
                break
            if r.get("type") == "trial":
                out.append(r)
    return out


def compare(ref: list[dict], got: list[dict], journal: str | None = None,
            rtol: float = 1e-6) -> list[str]:
    """Differences between a resumed run and the reference; ``[]`` when equal."""
    errs = []
    if [t["number"] for t in got] != [t["number"] for t in ref]:
        errs.append(f"trial numbers differ: {len(got)} vs {len(ref)} trials")
        return errs
    for a, b in zip(got, ref):
        for k in ("generation", "member", "status", "fidelity"):
            if a[k] != b[k]:
                errs.append(f"trial {b['number']}: {k} {a[k]!r} != {b[k]!r}")
        if not all(math.isclose(u, v, rel_tol=0, abs_tol=1e-6) for u, v in zip(a["x"], b["x"])):
            errs.append(f"trial {b['number']}: x differs")
        va, vb = a["values"], b["values"]
        if (va is None) != (vb is None) or (va is not None and not all(
                (u is None and v is None) or (u is not None and v is not None and
                                              math.isclose(u, v, rel_tol=rtol, abs_tol=1e-9))
                for u, v in zip(va, vb))):
            errs.append(f"trial {b['number']}: values {va} != {vb}")
    if journal is not None:
        recs = journal_trials(journal)
        keys = [r["number"] for r in recs]
        if len(keys) != len(set(keys)):
            errs.append(f"journal records {len(keys) - len(set(keys))} trial(s) twice")
        if sorted(set(keys)) != [t["number"] for t in ref]:
            errs.append(f"journal holds {len(set(keys))} distinct trials, expected {len(ref)}")
    return errs


# ---------------------------------------------------------------------------- kill hooks
COUNTS: dict[str, int] = {}


def install_hooks(spec: str | None) -> None:
    """Patch the journal, the tune checkpoint and the schedulers' ``report``.

    ``spec`` = ``"phase:n"`` kills the process at the n-th call of that phase; ``None`` only
    counts calls (written to ``COUNTS``).
    """
    from jaxhpo import _journal, _tune, _tune_slots
    from jaxhpo.schedulers import _policies

    phase, n = (spec.split(":")[0], int(spec.split(":")[1])) if spec else (None, 0)

    def hit(p):
        COUNTS[p] = COUNTS.get(p, 0) + 1
        return p == phase and COUNTS[p] == n

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    write = _journal.Journal.write

    def patched_write(self, *records):
        if hit("journal_write"):
            data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records).encode()
            if self._f is None:
                self.open()
            self._f.flush()
            with open(self.path, "ab") as f:  # a torn append: half the bytes reach the disk
                f.write(data[:max(1, len(data) // 2)])
                f.flush()
                os.fsync(f.fileno())
            die()
        write(self, *records)
        if hit("after_write"):
            die()

    _journal.Journal.write = patched_write

    save = _tune.write_json_atomic

    def patched_save(path, doc):
        if hit("checkpoint"):
            with open(path + ".tmp", "w") as f:  # the new checkpoint, half written
                f.write(json.dumps(doc)[:100])
                f.flush()
                os.fsync(f.fileno())
            die()
        save(path, doc)

    _tune.write_json_atomic = patched_save

    step = _tune_slots.SlotEngine.step

    def counted_step(self):  # rounds trained: a resumed run re-trains what it replays
        out = step(self)
        if out is not None:
            COUNTS["evaluations"] = COUNTS.get("evaluations", 0) + 1
            _count_evaluation(1)
        return out

    _tune_slots.SlotEngine.step = counted_step

    for cls in (_policies.ASHA, _policies.HyperBand):
        def patched_report(self, *a, _orig=cls.report, **k):
            if hit("rung"):
                die()
            return _orig(self, *a, **k)
        cls.report = patched_report


def evaluations(journal: str) -> int:
    """Objective evaluations (tune populations: rounds trained) counted in the side file."""
    path = journal + ".evals"
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(int(line) for line in f if line.strip())


def worker(args) -> None:
    import jax

    jax.config.update("jax_compilation_cache_dir", os.path.join(ROOT, ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    install_hooks(os.environ.get("JAXHPO_CRASH"))
    t0 = time.perf_counter()
    trials = run_kind(args.worker, args.journal, args.resume)
    with open(args.out, "w") as f:
        json.dump({"trials": trials, "counts": COUNTS, "seconds": time.perf_counter() - t0}, f)


# ---------------------------------------------------------------------------- the campaign
def spawn(kind, journal, out, resume, crash=None, delay=None, timeout=300):
    """Run a worker; returns ``(killed, seconds)``."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAXHPO_CRASH", None)
    env["JAXHPO_EVALS"] = journal + ".evals"
    if crash:
        env["JAXHPO_CRASH"] = crash
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--journal", journal,
           "--out", out] + (["--resume"] if resume else [])
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=delay if delay is not None else timeout)
    except subprocess.TimeoutExpired:
        if delay is None:
            p.kill()
            raise
        os.kill(p.pid, signal.SIGKILL)
        p.communicate()
    rc = p.returncode
    if rc not in (0, -signal.SIGKILL):
        raise RuntimeError(f"worker {kind} failed (rc={rc}):\n{err.decode()[-3000:]}")
    return rc == -signal.SIGKILL, time.perf_counter() - t0


def campaign(runs: int, seed: int, workdir: str) -> dict:
    rng = random.Random(seed)
    os.makedirs(workdir, exist_ok=True)
    refs = {}
    for kind in KINDS:  # uninterrupted references, counting the hook calls
        j = os.path.join(workdir, f"ref-{kind}.jsonl")
        for p in (j, j + ".ckpt", j + ".evals"):
            if os.path.exists(p):
                os.remove(p)
        out = j + ".out.json"
        _, secs = spawn(kind, j, out, False)
        with open(out) as f:
            refs[kind] = json.load(f) | {"wall": secs, "evals": evaluations(j)}
        errs = compare(refs[kind]["trials"], refs[kind]["trials"], j)
        assert not errs, errs
        print(f"reference {kind}: {len(refs[kind]['trials'])} trials, {secs:.1f} s, "
              f"hook calls {refs[kind]['counts']}", flush=True)
    rows = []
    for r in range(runs):
        kind = KINDS[r % len(KINDS)]
        j = os.path.join(workdir, f"run{r}-{kind}.jsonl")
        for p in (j, j + ".ckpt", j + ".ckpt.tmp", j + ".evals"):
            if os.path.exists(p):
                os.remove(p)
        out = j + ".out.json"
        kills, phases = 0, []
        num_kills = 1 if rng.random() < 0.7 else 2
        for attempt in range(num_kills):
            # every phase of every kind gets hit: phases cycle, the call index is random
            phases_k = PHASES[kind]
            phase = phases_k[(r // len(KINDS) + 2 * attempt) % len(phases_k)]
            if phase == "delay":
                delay = rng.uniform(1.0, refs[kind]["wall"])
                killed, _ = spawn(kind, j, out, attempt > 0, delay=delay)
                phases.append(f"delay {delay:.1f}s" + ("" if killed else " (finished)"))
            else:  # a resumed run makes fewer calls: aim the second kill at its first quarter
                count = max(1, refs[kind]["counts"].get(phase, 1))
                n = rng.randint(1, count if attempt == 0 else max(1, count // 4))
                killed, _ = spawn(kind, j, out, attempt > 0, crash=f"{phase}:{n}")
                phases.append(f"{phase} #{n}" + ("" if killed else " (not reached)"))
            kills += killed
        spawn(kind, j, out, True)  # the final resume, never killed
        with open(out) as f:
            got = json.load(f)["trials"]
        errs = compare(refs[kind]["trials"], got, j)
        recs = journal_trials(j)
        numbers = [t["number"] for t in recs]
        ref_numbers = {t["number"] for t in refs[kind]["trials"]}
        rows.append({"run": r, "kind": kind, "kills": kills, "phases": "; ".join(phases),
                     "trials": len(got), "equal": not errs, "errors": errs[:3],
                     "lost": len(ref_numbers - set(numbers)),
                     "duplicated": len(numbers) - len(set(numbers)),
                     "mismatched": sum("differ" in e or "values" in e for e in errs),
                     "re_evaluated": evaluations(j) - refs[kind]["evals"]})
        print(rows[-1], flush=True)
    return {"rows": rows, "references": {k: {"trials": len(v["trials"]), "counts": v["counts"],
                                             "seconds": v["wall"]} for k, v in refs.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "crash_campaign"))
    ap.add_argument("--worker", choices=KINDS)
    ap.add_argument("--journal")
    ap.add_argument("--out")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    sys.path.insert(0, ROOT)
    from benchmarks._common import print_table, write_result

    t0 = time.perf_counter()
    res = campaign(args.runs, args.seed, args.workdir)
    rows = res["rows"]
    print_table(rows, ["run", "kind", "kills", "trials", "equal", "lost", "duplicated",
                       "mismatched", "re_evaluated", "phases"],
                f"Crash campaign: {len(rows)} runs, {sum(r['kills'] for r in rows)} SIGKILLs")
    by_phase = {}
    for r in rows:
        for p in r["phases"].split("; "):
            name = p.split(" ")[0]
            hit = not p.endswith(")")
            by_phase.setdefault(name, [0, 0])[0 if hit else 1] += 1
    print_table([{"phase": k, "kills": v[0], "missed": v[1]} for k, v in sorted(by_phase.items())],
                ["phase", "kills", "missed"], "Kills per phase (missed: run ended first)")
    ok = all(r["equal"] for r in rows)
    print(f"\nall resumed runs equal the uninterrupted ones: {ok}  "
          f"({time.perf_counter() - t0:.0f} s)")
    print(write_result("crash_campaign", res | {"by_phase": by_phase, "all_equal": ok,
                                                "seed": args.seed}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
