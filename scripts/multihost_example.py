"""Tune one population across several hosts with jax.distributed, through ``jaxhpo.tune``.

Run the same command on every host (here: 2 hosts, host 0 at 10.0.0.1):

    python scripts/multihost_example.py --coordinator 10.0.0.1:1234 --num-hosts 2 --host-id 0
    python scripts/multihost_example.py --coordinator 10.0.0.1:1234 --num-hosts 2 --host-id 1

Each host contributes its local devices and the population's slots are sharded over all of
them (``jaxhpo.train.Population`` builds a one-axis mesh from ``jax.devices()`` when they
divide the population). Every host runs the same driver loop with the same keys (SPMD): the
strategy and the scheduler's decisions are computed identically everywhere, each host trains
only its own members, and host 0 writes the journal and the checkpoint. After a crash, run
the same commands with ``--resume``. On one machine, two processes on 127.0.0.1 (CPU, gloo
collectives) are what ``tests/test_distributed.py`` runs.
"""

from __future__ import annotations

import argparse

import jax


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coordinator", help="host:port of process 0 (omit for one process)")
    ap.add_argument("--num-hosts", type=int, default=1)
    ap.add_argument("--host-id", type=int, default=0)
    ap.add_argument("--slots-per-device", type=int, default=8)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--journal", default="multihost.jsonl")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives
        jax.distributed.initialize(args.coordinator, num_processes=args.num_hosts,
                                   process_id=args.host_id)
    import jaxhpo
    from jaxhpo import schedulers
    from jaxhpo.train import Trainer, mlp, mnist1d

    slots = args.slots_per_device * len(jax.devices())  # every host's devices
    space = jaxhpo.Space({"lr": jaxhpo.Float(1e-4, 1e-1, log=True),
                          "weight_decay": jaxhpo.Float(1e-6, 1e-2, log=True)})
    trainer = Trainer(mlp(10, max_width=64), mnist1d(), space=space)
    res = jaxhpo.tune(trainer, space, jaxhpo.strategies.tpe(space, slots),
                      schedulers.ASHA(100, 900, eta=3), max_trials=args.trials,
                      population_size=slots, eval_every=100, metric="accuracy",
                      direction="maximize", journal=args.journal, resume=args.resume, key=0,
                      progress=jax.process_index() == 0)
    if jax.process_index() == 0:
        print(f"{slots} slots on {len(jax.devices())} devices / {jax.process_count()} hosts: "
              f"best val accuracy {res.best_value:.3f} with {res.best_params}")


if __name__ == "__main__":
    main()
