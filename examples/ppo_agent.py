"""The PPO agent (LSTM policy choosing hyperparameters one by one) on Hartmann-6, vs random search.

``ppo_agent`` samples a batch of configurations per ``ask`` (one episode each, one action per
hyperparameter), and with ``model_based=True`` a learned reward model adds imagined PPO updates
while the policy's KL divergence stays under a threshold. Hartmann-6 has a known optimum, so the
example prints the regret of both searches at equal evaluations.

    python examples/ppo_agent.py [--evaluations 128] [--batch 16] [--seeds 1]
"""

from __future__ import annotations

import argparse

import numpy as np

import jaxhpo
from jaxhpo.functions import hartmann6
from jaxhpo.strategies import ppo_agent, random_search


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evaluations", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args(argv)

    tf = hartmann6()
    generations = args.evaluations // args.batch
    out = {}
    for name, make in [("ppo_agent", lambda: ppo_agent(tf.space, args.batch)),
                       ("random_search", lambda: random_search(tf.space, args.batch))]:
        regrets = [tf.regret(jaxhpo.minimize(tf.objective, tf.space, make(),
                                             num_generations=generations, key=seed,
                                             progress=False).best_value)
                   for seed in range(args.seeds)]
        out[name] = float(np.median(regrets))
        print(f"{name:14s} median regret after {generations * args.batch} evaluations: "
              f"{out[name]:.3f}  (per seed {np.round(regrets, 3).tolist()})")
    return out


if __name__ == "__main__":
    main()
