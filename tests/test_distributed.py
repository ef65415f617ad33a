"""minimize and tune across two real jax.distributed processes on this machine (CPU, gloo
collectives, coordinator on 127.0.0.1).

Independent truth: the single-process run with the same key. Every process runs the same
driver loop; the population is sharded over both processes' devices; process 0 writes the
journal (and tune's checkpoint), and a resume of both processes reuses it.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

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
    port, pid, journal, out, resume, gens = sys.argv[1:7]
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(pid))
    import jax.numpy as jnp
    import jaxhpo
    from jaxhpo.strategies import cma_es
    f = jaxhpo.functions.branin()
    res = jaxhpo.minimize(lambda key, hp: f.fn(jnp.stack([hp["x0"], hp["x1"]])), f.space,
                          cma_es(f.space, 8), num_generations=int(gens), key=3,
                          journal=journal, resume=resume == "1", progress=False)
    assert jax.process_count() == 2 and len(jax.devices()) == 2
    with open(out, "w") as fh:
        json.dump([[t.number, t.x, t.values] for t in res.history], fh)
    jax.distributed.shutdown()
""")


def _pair(tmp_path, journal, resume, gens, worker=WORKER):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT)  # the same XLA flags: the same float rounding
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(port), str(i), journal,
                               str(tmp_path / f"out{i}.json"), resume, str(gens)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in (0, 1)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    outs = [tmp_path / f"out{i}.json" for i in (0, 1)]
    return [json.load(open(o)) if o.exists() else None for o in outs]


def test_two_processes_equal_one_and_resume(tmp_path):
    single = jaxhpo.minimize(lambda key, hp: F.fn(jnp.stack([hp["x0"], hp["x1"]])), F.space,
                             cma_es(F.space, 8), num_generations=4, key=3, progress=False)
    want = [[t.number, t.x, t.values] for t in single.history]
    journal = str(tmp_path / "j.jsonl")
    a, b = _pair(tmp_path, journal, "0", 3)
    assert a == b == want[:24]
    records = [json.loads(line) for line in open(journal)]
    assert sum(r["type"] == "trial" for r in records) == 24  # process 0 wrote it, once
    a, b = _pair(tmp_path, journal, "1", 4)  # resume both: one more generation
    assert a == b == want
    records = [json.loads(line) for line in open(journal)]
    assert sorted(r["number"] for r in records if r["type"] == "trial") == list(range(32))


TUNE_WORKER = textwrap.dedent("""
    import json, os, sys
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, pid, journal, out, resume, crash = sys.argv[1:7]
    if pid != "-1":
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(pid))
    sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"], "tests"))
    from test_distributed import decay_program, decay_space
    import jaxhpo
    from jaxhpo import schedulers as S
    from jaxhpo.strategies import cma_es, random_search

    def crash_after(event):  # a kill of both processes after 6 trials ended
        if crash == "1" and len(event.history) >= 6:
            raise SystemExit(0)

    space = decay_space()
    runs = [jaxhpo.tune(decay_program(), space, random_search(space, 4),
                        S.HyperBand(10, 90, eta=3), max_trials=17, population_size=8,
                        eval_every=10, metric="loss", key=5, progress=False, test_split=False,
                        checkpoint_every=1, callbacks=[crash_after],
                        journal=None if journal == "-" else journal, resume=resume == "1")]
    if resume == "1":  # and minimize on the same program at a fixed budget
        runs.append(jaxhpo.minimize(decay_program(), space, cma_es(space, 8), steps=20,
                                    num_generations=2, metric="loss", key=1, progress=False))
    with open(out, "w") as fh:
        json.dump([[[t.number, t.x, t.values, t.status] for t in r.history] for r in runs], fh)
""")


def decay_space():
    return jaxhpo.Space({"lr": jaxhpo.Float(0.01, 0.2, log=True),
                         "width": jaxhpo.Categorical([2, 3], static=True)})


def decay_program():
    """w <- w (1 - lr) from noisy ones of a static width: members differ in state shape."""
    import jax

    from jaxhpo.train import TrainingProgram

    return TrainingProgram(
        init=lambda key, hp: {"w": jnp.ones((hp["width"],))
                              + 0.1 * jax.random.normal(key, (hp["width"],))},
        step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
        evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2)})


def test_tune_on_a_training_program_across_two_processes(tmp_path):
    """tune (HyperBand: members parked and put back across static groups) on a user's
    training program, the population sharded over two processes, killed in both after 6 trials
    and resumed, equals the uninterrupted one-process run; so does minimize on the program."""
    space = decay_space()
    want = [jaxhpo.tune(decay_program(), space, random_search(space, 4),
                        S.HyperBand(10, 90, eta=3), max_trials=17, population_size=8,
                        eval_every=10, metric="loss", key=5, progress=False, test_split=False),
            jaxhpo.minimize(decay_program(), space, cma_es(space, 8), steps=20,
                            num_generations=2, metric="loss", key=1, progress=False)]
    want = json.loads(json.dumps([[[t.number, t.x, t.values, t.status] for t in r.history]
                                  for r in want]))
    journal = str(tmp_path / "t.jsonl")
    _pair(tmp_path, journal, "0", "1", TUNE_WORKER)  # killed after 6 trials
    first = [json.loads(line) for line in open(journal)]
    assert 6 <= sum(r["type"] == "trial" for r in first) < len(want[0])
    a, b = _pair(tmp_path, journal, "1", "0", TUNE_WORKER)  # both resume
    assert a == b == want
    numbers = [json.loads(line).get("number") for line in open(journal)]
    assert sorted(n for n in numbers if n is not None) == list(range(17))  # none twice
