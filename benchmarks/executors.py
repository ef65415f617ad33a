"""Python objectives on executors: trials per second of ``minimize(..., executor=...)``.

An objective that sleeps ``--sleep`` seconds (a stand-in for a training job that waits on
something other than this machine's cores) is run with random search, ``--pop`` trials per
generation, on one worker and on ``--workers`` workers of each executor: a real Dask
``distributed.LocalCluster`` (worker processes, started here), a ``ProcessPoolExecutor`` and a
``ThreadPoolExecutor``. The speed-up is the ratio of trials per second measured in the same run.

    python benchmarks/executors.py                      # 4 workers, 0.5 s trials, 16 per generation
    python benchmarks/executors.py --workers 8 --sleep 0.2
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float, Space  # noqa: E402
from jaxhpo.strategies import random_search  # noqa: E402

SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


class Sleeper:
    def __init__(self, seconds):
        self.seconds = seconds

    def __call__(self, p):
        time.sleep(self.seconds)
        return (p["x"] - 0.5) ** 2 + p["y"]


def rate(executor, args) -> float:
    """Trials per second of one run (2 generations; the first, warming workers up, excluded)."""
    strategy = random_search(SPACE, args.pop)
    fn = Sleeper(args.sleep)
    jaxhpo.minimize(fn, SPACE, strategy, num_generations=1, key=0, executor=executor,
                    progress=False)
    t0 = time.perf_counter()
    jaxhpo.minimize(fn, SPACE, strategy, num_generations=args.gens, key=1, executor=executor,
                    progress=False)
    return args.gens * args.pop / (time.perf_counter() - t0)


def dask_executor(n):
    import distributed

    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster)
    return client, cluster


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--pop", type=int, default=16)
    ap.add_argument("--gens", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for name in ("dask", "processes", "threads"):
        rates = {}
        for n in (1, args.workers):
            if name == "dask":
                client, cluster = dask_executor(n)
                try:
                    rates[n] = rate(client.get_executor(), args)
                finally:
                    client.close()
                    cluster.close()
            elif name == "processes":
                with cf.ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as ex:
                    rates[n] = rate(ex, args)
            else:
                with cf.ThreadPoolExecutor(n) as ex:
                    rates[n] = rate(ex, args)
        rows.append({"executor": name, "workers": args.workers, "trials/s (1 worker)": rates[1],
                     f"trials/s ({args.workers} workers)": rates[args.workers],
                     "speed-up": rates[args.workers] / rates[1]})
        print(rows[-1], flush=True)
    print_table(rows, list(rows[0]), f"minimize(executor=...): {args.sleep} s trials, "
                                     f"{args.pop} per generation")
    print(write_result("executors", {"args": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()
