"""ARS V2-t on gymnax CartPole-v1: a linear policy from random search, as in Mania et al. 2018.

The policy is ``action = 1[w . (o - mu) / sigma > 0]`` with running observation statistics
(:class:`jaxhpo.strategies.RunningNorm`, ARS V2) and ``w in [-1, 1]^4`` (a Space of Floats, so
``ars``' unit-cube ``theta`` maps affinely to the weights). Each generation evaluates the ``2N``
antithetic policies for one episode each (vmapped, one ``lax.scan`` of 500 steps); the statistics
are updated from every observation of the generation. Reports, per seed, the generation at which
the mean policy ``theta`` first averages >= 475 over 10 evaluation episodes, the episodes and
environment steps spent until then, and the final mean return. Needs ``gymnax``.

    python benchmarks/ars_cartpole.py --seeds 5 --generations 30
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo import Float  # noqa: E402
from jaxhpo.strategies import RunningNorm, ars  # noqa: E402

HORIZON = 500


def make_rollout(env, params):
    """``rollout(key, w f32[obs], norm) -> (return of the first episode, obs f32[T, obs])``."""
    def rollout(key, w, norm):
        k_reset, k_steps = jax.random.split(key)
        obs, st = env.reset(k_reset, params)

        def step(carry, k):
            obs, st, done, ret = carry
            action = (jnp.dot(w, norm.normalize(obs)) > 0).astype(jnp.int32)
            # gymnax >= 1.0: obs, state, reward, terminated, truncated, info (auto-reset)
            obs2, st2, r, term, trunc, _ = env.step(k, st, action, params)
            ret = ret + jnp.where(done, 0.0, r)
            return (obs2, st2, done | term | trunc, ret), obs

        (_, _, _, ret), seen = jax.lax.scan(step, (obs, st, jnp.bool_(False), jnp.float32(0.0)),
                                            jax.random.split(k_steps, HORIZON))
        return ret, seen
    return rollout


def make_run(num_directions=8, top_directions=4, step_size=0.05, noise=0.05, generations=30,
             eval_episodes=10):
    """``run(key) -> (mean-policy return per generation f32[G], returns f32[G, 2N])``."""
    import gymnax

    env, params = gymnax.make("CartPole-v1")
    obs_dim = env.observation_space(params).shape[0]
    space = jaxhpo.Space({f"w{i}": Float(-1.0, 1.0) for i in range(obs_dim)})
    strategy = ars(space, num_directions, top_directions=top_directions, step_size=step_size,
                   noise=noise)
    rollout = make_rollout(env, params)
    to_w = lambda x: 2.0 * x - 1.0  # noqa: E731  Float(-1, 1) decoded, as space.decode does

    @jax.jit
    def run(key):
        k_init, key = jax.random.split(key)

        def gen(carry, k):
            state, norm = carry
            k_ask, k_roll, k_eval = jax.random.split(k, 3)
            x, state = strategy.ask(k_ask, state)
            ret, seen = jax.vmap(rollout, (0, 0, None))(
                jax.random.split(k_roll, x.shape[0]), to_w(x), norm)
            state = strategy.tell(state, x, -ret)
            norm = norm.update(seen.reshape(-1, obs_dim))
            mean_ret, _ = jax.vmap(rollout, (0, None, None))(
                jax.random.split(k_eval, eval_episodes), to_w(state.theta), norm)
            return (state, norm), (jnp.mean(mean_ret), ret)

        _, out = jax.lax.scan(gen, (strategy.init(k_init), RunningNorm.create(obs_dim)),
                              jax.random.split(key, generations))
        return out
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--generations", type=int, default=30)
    ap.add_argument("--directions", type=int, default=8)
    ap.add_argument("--top", type=int, default=4)
    args = ap.parse_args(argv)
    run = make_run(args.directions, args.top, generations=args.generations)
    rows, per_seed = [], []
    t0 = time.perf_counter()
    for s in range(args.seeds):
        curve, rets = (np.asarray(v) for v in run(jax.random.key(s)))
        hit = np.flatnonzero(curve >= 475)
        g = int(hit[0]) + 1 if hit.size else None
        eps = None if g is None else g * 2 * args.directions
        steps = None if g is None else int(np.sum(np.minimum(rets[:g], HORIZON)))
        per_seed.append({"seed": s, "generations_to_475": g, "episodes_to_475": eps,
                         "env_steps_to_475": steps, "final_mean_return": float(curve[-1]),
                         "curve": curve.tolist()})
        rows.append({"seed": s, "gens to 475": g, "episodes": eps, "env steps": steps,
                     "final return": float(curve[-1])})
    print_table(rows, ["seed", "gens to 475", "episodes", "env steps", "final return"],
                f"ARS V2-t on CartPole-v1: linear policy, N={args.directions}, "
                f"b={args.top}; mean policy's return over 10 episodes")
    print(f"{time.perf_counter() - t0:.1f} s")
    path = write_result("ars_cartpole", {"args": vars(args), "seeds": per_seed})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
