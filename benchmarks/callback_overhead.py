"""Run-time features' cost: callbacks and log lines per generation vs the strategy's ask+tell.

``minimize`` with random search (64 members, 8-d) on a trivial JAX objective, ``--gens``
generations, timed three ways in the same run after compilation: no callbacks and no
progress; ``progress="log"`` (to an in-memory handler) plus a callback that reads every new
trial; and the strategy's jitted ask+tell alone. The figure: the added seconds per generation
as a fraction of ask+tell.

    python benchmarks/callback_overhead.py            # 64 x 8-d, 300 generations
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Space  # noqa: E402
from jaxhpo.strategies import random_search  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pop", type=int, default=64)
    ap.add_argument("--dims", type=int, default=8)
    ap.add_argument("--gens", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(args.dims)})
    strategy = random_search(space, args.pop)
    objective = lambda key, hp: sum((hp[n] - 0.5) ** 2 for n in space.names)
    log = logging.getLogger("jaxhpo")
    log.handlers[:] = [logging.StreamHandler(io.StringIO())]
    log.setLevel(logging.INFO)
    log.propagate = False
    seen = []

    def callback(event):
        seen.append(len(event.trials))

    def run(**kw):
        t0 = time.perf_counter()
        jaxhpo.minimize(objective, space, strategy, num_generations=args.gens, key=0, **kw)
        return (time.perf_counter() - t0) / args.gens

    ask, tell = jax.jit(strategy.ask), jax.jit(strategy.tell)

    def ask_tell():
        state = strategy.init(jax.random.key(0))
        f = jnp.zeros(args.pop)
        t0 = time.perf_counter()
        for g in range(args.gens):
            x, state = ask(jax.random.key(g), state)
            state = tell(state, x, f)
        jax.block_until_ready(state)
        return (time.perf_counter() - t0) / args.gens

    run(progress=False), run(progress="log", callbacks=[callback]), ask_tell()  # compile
    plain = min(run(progress=False) for _ in range(args.repeats))
    full = min(run(progress="log", callbacks=[callback]) for _ in range(args.repeats))
    at = min(ask_tell() for _ in range(args.repeats))
    rows = [{"what": "minimize, no callbacks/progress", "ms/generation": plain * 1e3},
            {"what": "minimize, log lines + callback", "ms/generation": full * 1e3},
            {"what": "ask+tell alone", "ms/generation": at * 1e3},
            {"what": "added / ask+tell", "ms/generation": (full - plain) / at}]
    print_table(rows, ["what", "ms/generation"],
                f"{args.pop} x {args.dims}-d random search, {args.gens} generations")
    print(write_result("callback_overhead", {"args": vars(args), "rows": rows,
                                             "overhead_fraction": (full - plain) / at}))


if __name__ == "__main__":
    main()
