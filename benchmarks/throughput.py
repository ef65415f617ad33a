"""Population training throughput: member-steps per second, vmapped vs sequential.

For MLPs (``40 -> W -> W -> 10``) and 1-D CNNs on MNIST-1D, batch 128, Adam:

* (a) ``vmapped``: ``jaxhpo.train.Population(trainer, P).train`` — every member in one
  ``jit(vmap(scan))`` program, the population sharded over every device (on a CPU the script
  makes each core an XLA device, see ``jaxhpo.train.auto_mesh``);
* (b) ``python_loop``: what a user writes with Optuna today — a jitted train step (plain Flax
  model + ``optax.adam``, batch sampled on device) called from Python, one member after
  another; timed on ``min(P, --loop-members)`` members (its cost is linear in P);
* (c) ``scan_each``: one member at a time, each a jitted ``lax.scan`` over the steps.

(b) and (c) run on one device, as a user's sequential loop does.

FLOP/s: 3 x forward FLOPs x batch per member-step (forward + backward), against the best dense
``f32`` matmul measured in the same run (the device's practical peak). Memory: XLA's compiled
memory analysis (arguments + outputs + temporaries, per device) of the vmapped train program
vs P.

    python benchmarks/throughput.py                       # CPU sizes
    python benchmarks/throughput.py --pops 1,8,64,256,1024 --widths 32,128,512   # GPU
"""

from __future__ import annotations

import os

# One XLA host device per core, so populations shard over the cores (see
# jaxhpo.train.auto_mesh); must be set before JAX starts. No effect on GPU/TPU devices.
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count()}")

import argparse
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jaxhpo  # noqa: E402
from _common import print_table, write_result  # noqa: E402
from jaxhpo.train import Population, Trainer, cnn, mlp, mnist1d  # noqa: E402

BATCH = 128


def matmul_peak() -> float:
    """Best f32 FLOP/s of square matmuls (n = 256..2048) on the default device."""
    best = 0.0
    for n in (256, 512, 1024, 2048):
        a = jnp.ones((n, n), jnp.float32)
        f = jax.jit(lambda a: a @ a)
        f(a).block_until_ready()
        reps = max(3, int(2e10 / (2 * n**3)))
        t0 = time.perf_counter()
        for _ in range(reps):
            out = f(a)
        out.block_until_ready()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def space_and_hp(pop: int, width: int):
    space = jaxhpo.Space({"lr": jaxhpo.Float(1e-4, 1e-2, log=True)})
    hp = {"lr": jnp.geomspace(1e-4, 1e-2, pop).astype(jnp.float32)}
    return space, hp


def vmapped(model, data, pop, steps, width):
    space, hp = space_and_hp(pop, width)
    tr = Trainer(model, data, space=space, max_batch_size=BATCH,
                 defaults={"optimizer": "adam", "width": width})
    p = Population(tr, pop)
    state = p.init(jax.random.key(0), hp)
    state, _ = p.train(state, hp, steps)  # compile + warm up
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    state, _ = p.train(state, hp, steps)
    jax.block_until_ready(state)
    sec = time.perf_counter() - t0
    mem = p._train.lower(state, hp, p._data, steps=steps, eval_every=None).compile()
    ma = mem.memory_analysis()
    nbytes = None
    if ma is not None:
        nbytes = int(ma.argument_size_in_bytes + ma.output_size_in_bytes
                     + ma.temp_size_in_bytes)
    flops = float(tr.model.cost(tr._arch(tr.hparams({})))["flops"])
    return pop * steps / sec, flops, nbytes


class PlainMLP(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.width)(x))
        h = nn.relu(nn.Dense(self.width)(h))
        return nn.Dense(10)(h)


class PlainCNN(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        h = x[..., None]
        h = nn.relu(nn.Conv(self.width, (5,), strides=2)(h))
        h = nn.relu(nn.Conv(self.width, (3,))(h))
        h = nn.relu(nn.Conv(self.width, (3,), strides=2)(h))
        h = nn.relu(nn.Conv(self.width, (3,), strides=2)(h))
        return nn.Dense(10)(h.reshape(h.shape[0], -1))


def python_loop(kind, data, pop, steps, width, members):
    """(b): jitted step per call, members one after another (timed on ``members`` of them)."""
    module = PlainMLP(width) if kind == "mlp" else PlainCNN(width)
    x_tr, y_tr = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    tx = optax.adam(1e-3)

    @jax.jit
    def step(params, opt_state, key):
        idx = jax.random.randint(key, (BATCH,), 0, x_tr.shape[0])

        def loss(p):
            out = module.apply({"params": p}, x_tr[idx])
            return optax.softmax_cross_entropy_with_integer_labels(out, y_tr[idx]).mean()

        g = jax.grad(loss)(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    n = min(pop, members)
    key = jax.random.key(0)
    p0 = module.init(key, x_tr[:1])["params"]
    step(p0, tx.init(p0), key)  # compile
    t0 = time.perf_counter()
    for m in range(n):
        params = module.init(jax.random.fold_in(key, m), x_tr[:1])["params"]
        opt_state = tx.init(params)
        for s in range(steps):
            params, opt_state = step(params, opt_state, jax.random.fold_in(key, s))
        jax.block_until_ready(params)
    return n * steps / (time.perf_counter() - t0)


def scan_each(model, data, pop, steps, width, members):
    """(c): one member at a time, each a jitted lax.scan (timed on ``members`` of them)."""
    space, hp = space_and_hp(1, width)
    tr = Trainer(model, data, space=space, max_batch_size=BATCH,
                 defaults={"optimizer": "adam", "width": width})
    p = Population(tr, 1)
    state = p.init(jax.random.key(0), hp)
    jax.block_until_ready(p.train(state, hp, steps))  # compile
    n = min(pop, members)
    t0 = time.perf_counter()
    for m in range(n):
        state = p.init(jax.random.key(m), hp)
        state, _ = p.train(state, hp, steps)
        jax.block_until_ready(state)
    return n * steps / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pops", default="1,8,64,256")
    ap.add_argument("--widths", default="32,128")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--cnn-width", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--loop-steps", type=int, default=100)
    ap.add_argument("--loop-members", type=int, default=8)
    args = ap.parse_args(argv)
    data = mnist1d()
    peak = matmul_peak()
    print(f"dense matmul peak: {peak / 1e9:.1f} GFLOP/s on {jax.devices()[0]}")
    rows = []
    configs = []
    for kind in args.models.split(","):
        widths = [int(w) for w in args.widths.split(",")] if kind == "mlp" else [args.cnn_width]
        configs += [(kind, w) for w in widths]
    for kind, width in configs:
        model = (mlp(10, max_width=width, max_depth=2) if kind == "mlp"
                 else cnn(10, ndim=1, max_width=width, max_depth=1))
        for pop in (int(p) for p in args.pops.split(",")):
            a, flops, nbytes = vmapped(model, data, pop, args.steps, width)
            b = python_loop(kind, data, pop, args.loop_steps, width, args.loop_members)
            c = scan_each(model, data, pop, args.steps, width, args.loop_members)
            achieved = a * 3 * flops * BATCH
            rows.append({"model": kind, "width": width, "pop": pop, "vmapped": a,
                         "python_loop": b, "scan_each": c, "x_vs_loop": a / b,
                         "x_vs_scan": a / c, "GFLOP/s": achieved / 1e9,
                         "pct_peak": 100 * achieved / peak,
                         "MiB": None if nbytes is None else nbytes / 2**20})
            print_table(rows[-1:], list(rows[-1]), "") if len(rows) == 1 else print(
                "  ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                          for v in rows[-1].values()))
    print_table(rows, list(rows[0]), "member-steps/s (batch 128, Adam); x_vs_*: vmapped speed-up; "
                                     "pct_peak: achieved / dense-matmul FLOP/s; MiB: XLA memory "
                                     "of the vmapped train program")
    print(f"\nwrote {write_result('throughput', {'peak_flops': peak, 'rows': rows})}")


if __name__ == "__main__":
    main()
