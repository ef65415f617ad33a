"""Train one population across several hosts with jax.distributed (the scale-out path).

Run the same command on every host (here: 2 hosts, host 0 at 10.0.0.1):

    python scripts/multihost_example.py --coordinator 10.0.0.1:1234 --num-hosts 2 --host-id 0
    python scripts/multihost_example.py --coordinator 10.0.0.1:1234 --num-hosts 2 --host-id 1

Each host contributes its local devices; the population axis is sharded over all of them with a
one-axis ``jax.sharding.Mesh``; every host runs the identical program (SPMD), and each holds
only its own members' state. On one machine without arguments it runs single-process over the
local devices (e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` on CPU).
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

import jaxhpo
from jaxhpo.train import Population, Trainer, mlp, mnist1d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coordinator", help="host:port of process 0 (omit for one process)")
    ap.add_argument("--num-hosts", type=int, default=1)
    ap.add_argument("--host-id", type=int, default=0)
    ap.add_argument("--members-per-device", type=int, default=8)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, num_processes=args.num_hosts,
                                   process_id=args.host_id)
    devices = jax.devices()  # every host's devices, in the same order on all hosts
    mesh = Mesh(np.array(devices), ("pop",))
    size = args.members_per_device * len(devices)
    space = jaxhpo.Space({"lr": jaxhpo.Float(1e-4, 1e-1, log=True),
                          "width": jaxhpo.Int(16, 128, log=True)})
    trainer = Trainer(mlp(10, max_width=128), mnist1d(), space=space)
    pop = Population(trainer, size, mesh=mesh)
    strategy = jaxhpo.strategies.quasi_random(space, size)
    x, _ = strategy.ask(jax.random.key(1), strategy.init(jax.random.key(0)))  # same on all hosts
    hp = space.decode(x)
    state = pop.init(jax.random.key(2), hp)
    state, _ = pop.train(state, hp, args.steps)
    acc = multihost_utils.process_allgather(pop.evaluate(state, hp, "val")["accuracy"],
                                            tiled=True)
    if jax.process_index() == 0:
        best = int(np.nanargmax(acc))
        print(f"{size} members on {len(devices)} devices / {jax.process_count()} hosts; best "
              f"val accuracy {acc[best]:.3f} with {space.to_params(np.asarray(x[best]))}")


if __name__ == "__main__":
    main()
