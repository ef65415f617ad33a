"""PPO (jaxhpo.rl) on gymnax CartPole-v1: a feed-forward actor-critic, 5e5 environment steps.

Validates the PPO core as an RL algorithm. Settings are PureJaxRL's CartPole defaults (4
environments x 128 steps per update, 4 epochs x 4 minibatches, lr 2.5e-4 annealed, clip 0.2,
entropy 0.01, GAE lambda 0.95, gamma 0.99, two 64-unit tanh layers). Every ``eval_every`` updates
(5,120 environment steps) the greedy policy plays 10 episodes. Reports per seed the environment
steps until the evaluation mean first reaches 475, the final evaluation mean, the mean of the
training episodes in the last window, and the wall time of the jitted run (compile excluded and
reported separately). Needs ``gymnax``.

    python benchmarks/ppo_cartpole.py --seeds 5 --steps 500000
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table, write_result  # noqa: E402
from jaxhpo.rl import TrainConfig, make_train  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=500_000)
    args = ap.parse_args(argv)
    import gymnax

    env, env_params = gymnax.make("CartPole-v1")
    cfg = TrainConfig(total_steps=args.steps)
    train = jax.jit(make_train(cfg, env, env_params))
    t0 = time.perf_counter()
    compiled = train.lower(jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    rows, per_seed = [], []
    for s in range(args.seeds):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(jax.random.key(s)))
        wall = time.perf_counter() - t0
        ev, tr = np.asarray(out.eval_return), np.asarray(out.train_return)
        hit = np.flatnonzero(ev >= 475)
        steps = int((hit[0] + 1) * cfg.steps_per_eval) if hit.size else None
        per_seed.append({"seed": s, "env_steps_to_475": steps, "final_eval_return": float(ev[-1]),
                         "final_train_return": float(tr[-1]), "wall_s": wall,
                         "eval_curve": ev.tolist(), "train_curve": tr.tolist()})
        rows.append({"seed": s, "steps to 475": steps, "final eval": float(ev[-1]),
                     "last-window train": float(tr[-1]), "wall s": wall})
    print_table(rows, ["seed", "steps to 475", "final eval", "last-window train", "wall s"],
                f"PPO on CartPole-v1, {cfg.num_updates * cfg.num_envs * cfg.num_steps} env "
                f"steps; greedy evaluation over {cfg.eval_episodes} episodes every "
                f"{cfg.steps_per_eval} steps (compile {compile_s:.1f} s)")
    finals = [r["final_eval_return"] for r in per_seed]
    print(f"seeds with final eval >= 475: {sum(f >= 475 for f in finals)}/{len(finals)}; "
          f"median steps to 475: "
          f"{np.median([r['env_steps_to_475'] or np.inf for r in per_seed]):.0f}")
    path = write_result("ppo_cartpole", {"args": vars(args), "compile_s": compile_s,
                                         "config": repr(cfg), "seeds": per_seed})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
