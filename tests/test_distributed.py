"""minimize across two real jax.distributed processes on this machine (CPU, gloo collectives,
coordinator on 127.0.0.1).

Independent truth: the single-process run with the same key. Every process runs the same
driver loop; the population is sharded over both processes' devices; process 0 writes the
journal, and a resume of both processes reuses it.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax.numpy as jnp

import jaxhpo
from jaxhpo.strategies import cma_es

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


def _pair(tmp_path, journal, resume, gens):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=ROOT)  # the same XLA flags: the same float rounding
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(i), journal,
                               str(tmp_path / f"out{i}.json"), resume, str(gens)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in (0, 1)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
    return [json.load(open(tmp_path / f"out{i}.json")) for i in (0, 1)]


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
