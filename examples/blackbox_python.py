"""Tune a black-box Python function (no JAX inside) with TPE, journaled and resumable.

The objective is ordinary Python: jaxhpo calls it once per trial with a dict of parameters.
Here it is a noisy 2-D "validation loss" of a made-up model with a categorical choice; run it
twice and the second run resumes from the journal instead of starting over.

    python examples/blackbox_python.py [--trials 40] [--journal /tmp/blackbox.jsonl]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.strategies import tpe

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True),
               "layers": Int(1, 6),
               "activation": Categorical(["relu", "tanh", "gelu"])})


def objective(params: dict) -> float:
    """Pretend validation loss: best at lr = 3e-3, 3 layers, gelu (value 0.1)."""
    loss = (math.log10(params["lr"]) - math.log10(3e-3)) ** 2 + 0.05 * (params["layers"] - 3) ** 2
    loss += {"relu": 0.05, "tanh": 0.2, "gelu": 0.0}[params["activation"]]
    return 0.1 + loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--journal", default=os.path.join(tempfile.gettempdir(), "blackbox.jsonl"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    result = jaxhpo.minimize(objective, SPACE, tpe(SPACE, args.batch, capacity=64),
                             num_generations=args.trials // args.batch, key=args.seed,
                             journal=args.journal, resume=True)
    print(f"{len(result.history)} trials (journal {args.journal}); best loss "
          f"{result.best_value:.4f} (optimum 0.1000) at {result.best_params}")
    return result


if __name__ == "__main__":
    main()
