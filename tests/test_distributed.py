"""minimize and tune across two real jax.distributed processes on this machine (CPU, gloo
collectives, coordinator on 127.0.0.1).

Independent truth: the single-process runs with the same keys. Every process runs the same
driver loop; the population is sharded over both processes' devices; process 0 writes the
journals (and tune's checkpoint), and a resume of both processes reuses them. One pair of
processes runs every scenario (starting JAX's runtime twice costs more than the runs).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp

import jaxhpo
from jaxhpo import schedulers as S
from jaxhpo.strategies import cma_es, random_search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F = jaxhpo.functions.branin()

WORKER = textwrap.dedent("""
    import json, os, sys
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, tmp, resume = sys.argv[1:5]
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(pid))
    sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"], "tests"))
    import test_distributed as T
    import jaxhpo
    assert jax.process_count() == 2 and len(jax.devices()) == 2
    out = {"minimize": T.branin_run(4 if resume == "1" else 3, os.path.join(tmp, "j.jsonl"),
                                    resume == "1")}

    def crash_after(event):  # a kill of both processes after 6 trials ended
        if resume == "0" and len(event.history) >= 6:
            raise SystemExit(0)

    with open(os.path.join(tmp, f"out{pid}.json"), "w") as fh:  # before the kill
        json.dump(out, fh)
    out["tune"] = T.tune_run(journal=os.path.join(tmp, "t.jsonl"), resume=resume == "1",
                             callbacks=[crash_after], checkpoint_every=1)
    out["program"] = T.program_run()
    with open(os.path.join(tmp, f"out{pid}.json"), "w") as fh:
        json.dump(out, fh)
""")


def _rows(res):
    return json.loads(json.dumps([[t.number, t.x, t.values, t.status] for t in res.history]))


def branin_run(gens, journal=None, resume=False):
    """CMA-ES on Branin as a vmapped JAX objective."""
    return _rows(jaxhpo.minimize(lambda key, hp: F.fn(jnp.stack([hp["x0"], hp["x1"]])),
                                 F.space, cma_es(F.space, 8), num_generations=gens, key=3,
                                 journal=journal, resume=resume, progress=False))


def decay_space():
    return jaxhpo.Space({"lr": jaxhpo.Float(0.01, 0.2, log=True),
                         "width": jaxhpo.Categorical([2, 3], static=True)})


def decay_program():
    """w <- w (1 - lr) from noisy ones of a static width: members differ in state shape."""
    from jaxhpo.train import TrainingProgram

    return TrainingProgram(
        init=lambda key, hp: {"w": jnp.ones((hp["width"],))
                              + 0.1 * jax.random.normal(key, (hp["width"],))},
        step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
        evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2)})


def tune_run(**kw):
    """HyperBand on the training program: members parked and put back across static groups."""
    space = decay_space()
    return _rows(jaxhpo.tune(decay_program(), space, random_search(space, 4),
                             S.HyperBand(10, 90, eta=3), max_trials=17, population_size=8,
                             eval_every=10, metric="loss", key=5, progress=False,
                             test_split=False, **kw))


def program_run():
    """minimize on the training program at a fixed budget."""
    space = decay_space()
    return _rows(jaxhpo.minimize(decay_program(), space, cma_es(space, 8), steps=20,
                                 num_generations=2, metric="loss", key=1, progress=False))


def _pair(tmp_path, resume):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT)  # the same XLA flags: the same float rounding
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), str(tmp_path),
                               resume], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for i in (0, 1)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    return [json.load(open(tmp_path / f"out{i}.json")) for i in (0, 1)]


def _trial_numbers(path):
    return sorted(r["number"] for r in map(json.loads, open(path)) if r["type"] == "trial")


def test_two_processes_equal_one_process_and_resume(tmp_path):
    """minimize on a JAX objective (3 generations, then resumed to 4), tune on a training
    program (killed in both processes after 6 trials, then resumed) and minimize on the
    program, each sharded over two processes, equal the one-process runs with the same keys;
    process 0 wrote each trial once."""
    want = {"minimize": branin_run(4), "tune": tune_run(), "program": program_run()}
    a, b = _pair(tmp_path, "0")
    assert a == b == {"minimize": want["minimize"][:24]}
    assert _trial_numbers(tmp_path / "j.jsonl") == list(range(24))
    assert 6 <= len(_trial_numbers(tmp_path / "t.jsonl")) < 17
    a, b = _pair(tmp_path, "1")  # both resume: one more generation; the rest of the tune run
    assert a == b == want
    assert _trial_numbers(tmp_path / "j.jsonl") == list(range(32))
    assert _trial_numbers(tmp_path / "t.jsonl") == list(range(17))  # none twice
