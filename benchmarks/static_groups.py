"""Static groups: no member pays for another's size, and vmapped groups beat a sequential loop.

A user-written TrainingProgram (linen MLP ``40 -> W -> W -> 10`` on MNIST-1D, Adam with a
per-member learning rate, batch 128) in a :class:`jaxhpo.train.Population`:

(a) 64 members with widths {32, 64, 128, 256} (16 each):
    * ``grouped``: width static, one Population of 64 (four compiled group programs);
    * ``alone``: the four groups as four Populations of 16, trained one after another (sum);
    * ``masked``: width traced, every member a 256-wide MLP with the units past its width
      masked off (what a vmapped program must do without static groups).
    Target: grouped <= 1.15x alone, and grouped faster than masked.
(b) vmapped vs sequential at 64 members of one width (32, and 128): one Population of 64 vs
    calling the same compiled per-trial program (a Population of 1) 64 times in a row.
    Target on the 2-core CPU: >= 1.5x at width 32.

Times exclude compilation (every program runs once before timing); each figure is the best of
``--reps`` runs. On a CPU the script makes each core an XLA device (as benchmarks/throughput.py)
so populations shard over the cores; the sequential loop runs on one device, as a user's does.

    python benchmarks/static_groups.py                   # CPU: 64 members, 200 steps
    python benchmarks/static_groups.py --members 1024 --steps 500    # GPU
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo.train import Population, TrainingProgram, mnist1d  # noqa: E402

BATCH = 128
WIDTHS = (32, 64, 128, 256)


class MLP(nn.Module):
    width: int
    mask_width: jax.Array | None = None   # traced active width (masking), else None

    @nn.compact
    def __call__(self, x):
        m = 1.0 if self.mask_width is None else (jnp.arange(self.width) < self.mask_width)
        x = nn.relu(nn.Dense(self.width)(x)) * m
        x = nn.relu(nn.Dense(self.width)(x)) * m
        return nn.Dense(10)(x)


def program(data, masked: bool) -> TrainingProgram:
    x_tr, y_tr = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_va, y_va = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
    model = lambda hp: (MLP(max(WIDTHS), hp["width"]) if masked else MLP(hp["width"]))
    xent = lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    def init(key, hp):
        params = model(hp).init(key, x_tr[:1])["params"]
        return params, optax.adam(hp["lr"]).init(params)

    def step(state, key, hp):
        params, opt = state
        i = jax.random.randint(key, (BATCH,), 0, x_tr.shape[0])
        loss, g = jax.value_and_grad(lambda p: xent(model(hp).apply({"params": p}, x_tr[i]),
                                                    y_tr[i]))(params)
        u, opt = optax.adam(hp["lr"]).update(g, opt, params)
        return (optax.apply_updates(params, u), opt), {"loss": loss}

    def evaluate(state, hp):
        out = model(hp).apply({"params": state[0]}, x_va)
        return {"accuracy": jnp.mean(jnp.argmax(out, -1) == y_va)}
    return TrainingProgram(init, step, evaluate, name="masked" if masked else "static")


def space(static: bool, widths=WIDTHS):
    return jaxhpo.Space({"lr": jaxhpo.Float(1e-4, 1e-2, log=True),
                         "width": jaxhpo.Categorical(list(widths), static=static)})


def hp_for(sp, widths):
    rows = [{"lr": float(lr), "width": int(w)}
            for lr, w in zip(np.geomspace(1e-4, 1e-2, len(widths)), widths)]
    return sp.decode(jnp.asarray(sp.encode_many(rows)))


def timed(fn, reps):
    fn()  # compile + warm up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def trainer_of(pop, sp, widths, steps):
    hp = hp_for(sp, widths)
    state = pop.init(jax.random.key(0), hp)
    jax.block_until_ready(state)
    return lambda: jax.block_until_ready(pop.train(state, hp, steps)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seq-widths", default="32,128")
    args = ap.parse_args(argv)
    data = mnist1d()
    P, steps, reps = args.members, args.steps, args.reps
    per = P // len(WIDTHS)
    mixed = [w for w in WIDTHS for _ in range(per)]

    # (a) static groups vs the groups alone vs masking to 256
    st, masked_sp = space(True), space(False)
    t_group = timed(trainer_of(Population(program(data, False), P, space=st), st, mixed, steps),
                    reps)
    t_alone = {}
    for w in WIDTHS:
        sw = space(True, [w])
        t_alone[w] = timed(trainer_of(Population(program(data, False), per, space=sw), sw,
                                      [w] * per, steps), reps)
    t_mask = timed(trainer_of(Population(program(data, True), P, space=masked_sp), masked_sp,
                              mixed, steps), reps)
    alone = sum(t_alone.values())
    rows_a = [{"config": "grouped (static width)", "seconds": t_group, "x_alone": t_group / alone},
              {"config": "four groups alone (sum)", "seconds": alone, "x_alone": 1.0},
              {"config": "masked to 256 (traced)", "seconds": t_mask, "x_alone": t_mask / alone}]
    rows_a += [{"config": f"  alone: width {w}", "seconds": t, "x_alone": ""}
               for w, t in t_alone.items()]
    print_table(rows_a, ["config", "seconds", "x_alone"],
                f"(a) {P} members, widths {list(WIDTHS)} x {per}, {steps} steps "
                f"(targets: grouped <= 1.15x alone; grouped < masked: "
                f"{t_mask / t_group:.2f}x faster)")

    # (b) vmapped population vs the same compiled per-trial program called sequentially
    rows_b = []
    for w in (int(v) for v in args.seq_widths.split(",")):
        sw = space(True, [w])
        t_vm = timed(trainer_of(Population(program(data, False), P, space=sw), sw, [w] * P,
                                steps), reps)
        one = Population(program(data, False), 1, space=sw)
        run_one = trainer_of(one, sw, [w], steps)
        t_one = timed(run_one, reps)
        rows_b.append({"width": w, "members": P, "vmapped_s": t_vm, "sequential_s": t_one * P,
                       "per_trial_s": t_one, "speedup": t_one * P / t_vm})
    print_table(rows_b, ["width", "members", "vmapped_s", "sequential_s", "per_trial_s",
                         "speedup"],
                f"(b) vmapped groups vs the compiled per-trial program called {P} times "
                f"(sequential = {P} x one trial; target >= 1.5x at width 32)")
    path = write_result("static_groups", {
        "members": P, "steps": steps, "batch": BATCH, "reps": reps, "widths": list(WIDTHS),
        "grouped_s": t_group, "alone_s": t_alone, "alone_sum_s": alone, "masked_s": t_mask,
        "grouped_over_alone": t_group / alone, "masked_over_grouped": t_mask / t_group,
        "sequential": rows_b, "devices": jax.device_count()})
    print(f"\nwrote {path}")
    return {"grouped_over_alone": t_group / alone, "masked_over_grouped": t_mask / t_group,
            "sequential": rows_b}


if __name__ == "__main__":
    main()
