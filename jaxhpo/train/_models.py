"""Models for population training: a tiny protocol, a zoo, and adapters for Flax linen / NNX.

A :class:`Model` is three pure functions. Architecture hyperparameters arrive as traced scalars
in ``arch`` (``width``, ``depth``, ``activation``, ``dropout``), so members of one vmapped
population can differ in architecture without recompiling:

* **width** by masking: layers are built at ``max_width``; hidden units ``>= width`` are
  multiplied by 0, so they get no gradient and do not affect the output;
* **depth** by gating residual blocks: ``h = h + gate_l * block_l(h)`` with ``gate_l = l < depth``;
* **activation** by selection among a static tuple of functions;
* **dropout** with a traced rate (a custom mask; ``flax.linen.Dropout`` needs a static rate).

The price of masking is compute: every member runs at the maximum size (documented in the
throughput benchmark). Cost figures (active parameter count, forward FLOPs per example) are
computed for the *active* architecture.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxhpo._validate import check_int

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu, "silu": jax.nn.silu,
    "elu": jax.nn.elu, "sigmoid": jax.nn.sigmoid, "leaky_relu": jax.nn.leaky_relu,
}


def width_mask(width, max_width: int, dtype):
    """``f[max_width]`` 0/1 mask of the active units, or ``None`` when ``width`` is ``None``
    (statically the full width: no masking cost)."""
    if width is None:
        return None
    return (jnp.arange(max_width) < width).astype(dtype)


def gate(layer: int, depth):
    """Residual gate of block ``layer``: ``layer < depth`` (``1`` when ``depth`` is ``None``)."""
    return 1.0 if depth is None else (layer < depth)


def _masked(h, mask):
    return h if mask is None else h * mask


class Model(NamedTuple):
    """A model for the population engine.

    Attributes:
      init: ``init(key, x_example) -> (params, model_state)`` at maximum size; ``x_example``
        is one batch ``f32[B, ...]``. ``model_state`` holds non-trainable collections (e.g.
        batch statistics, NNX RNG counters), ``{}`` if none.
      apply: ``apply(params, model_state, x, arch, key, train) -> (outputs, model_state)``;
        ``arch`` is a dict of traced scalars (an entry may be ``None``, or a Python int for
        ``activation``, when it is fixed: the model then skips that mask / gate / dropout /
        selection at trace time), ``key`` drives dropout, ``train`` is static.
      cost: ``cost(arch) -> {"param_count": f32[], "flops": f32[]}``: active trainable
        parameters and forward FLOPs per example (multiply-add = 2 FLOPs).
      activations: the activation names the ``activation`` index refers to.
      max_width, max_depth: the sizes the masks cut down from (``None`` for adapters).
      name: for logs.
    """

    init: Callable
    apply: Callable
    cost: Callable
    activations: tuple[str, ...] = ()
    max_width: int | None = None
    max_depth: int | None = None
    name: str = "model"


def dropout(x, rate, key, train: bool):
    """Inverted dropout with a traced ``rate``; ``rate=None`` means statically off."""
    if not train or rate is None:
        return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(key, keep, x.shape)
    return jnp.where(mask, x / jnp.maximum(keep, 1e-6), 0.0)


def select_activation(names: Sequence[str], index, x):
    """``ACTIVATIONS[names[index]](x)``; a traced ``index`` computes each and selects, a Python
    int picks statically."""
    if isinstance(index, int):
        return ACTIVATIONS[names[index]](x)
    if len(names) == 1:
        return ACTIVATIONS[names[0]](x)
    out = ACTIVATIONS[names[0]](x)
    for i, n in enumerate(names[1:], start=1):
        out = jnp.where(index == i, ACTIVATIONS[n](x), out)
    return out


def _check_activations(activations):
    activations = tuple(activations)
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if not activations or unknown:
        raise ValueError(f"activations must be names from {sorted(ACTIVATIONS)}, got "
                         f"{list(activations)}")
    return activations


def _check_size(v, arg):
    return check_int(v, arg, 1)


# --------------------------------------------------------------------------------- MLP
class _MLP(nn.Module):
    max_width: int
    max_depth: int
    num_outputs: int
    activations: tuple[str, ...]

    @nn.compact
    def __call__(self, x, arch, key, train):
        x = x.reshape(x.shape[0], -1)
        mask = width_mask(arch["width"], self.max_width, x.dtype)
        keys = jax.random.split(key, self.max_depth)
        h = nn.Dense(self.max_width, name="in")(x)
        h = _masked(select_activation(self.activations, arch["activation"], h), mask)
        h = dropout(h, arch["dropout"], keys[0], train)
        for l in range(1, self.max_depth):
            b = nn.Dense(self.max_width, name=f"block{l}")(h)
            b = _masked(select_activation(self.activations, arch["activation"], b), mask)
            b = dropout(b, arch["dropout"], keys[l], train)
            h = h + gate(l, arch["depth"]) * b
        return nn.Dense(self.num_outputs, name="out")(h)


def mlp(num_outputs: int, *, max_width: int = 128, max_depth: int = 2,
        activations: Sequence[str] = ("relu",)) -> Model:
    """Residual MLP: ``in -> W``, then ``depth - 1`` gated ``W -> W`` blocks, then ``W -> out``.

    With ``depth = 2`` this is the classic ``in -> W -> W -> out`` MLP plus a skip connection.

    Args:
      num_outputs: output size (classes).
      max_width, max_depth: the largest width / number of hidden layers a member may use.
      activations: selectable activation names (``arch["activation"]`` indexes them).
    """
    max_width, max_depth = _check_size(max_width, "max_width"), _check_size(max_depth,
                                                                               "max_depth")
    acts = _check_activations(activations)
    module = _MLP(max_width, max_depth, _check_size(num_outputs, "num_outputs"), acts)
    init, apply, shapes = _zoo_fns(module, max_width, max_depth)

    def cost(arch):
        w = jnp.asarray(_or(arch["width"], max_width), jnp.float32)
        hidden = jnp.asarray(_or(arch["depth"], max_depth), jnp.float32) - 1.0
        n_in = float(math.prod(shapes["x"]))
        macs = n_in * w + hidden * w * w + w * num_outputs
        params = macs + w + hidden * w + num_outputs
        return {"param_count": params, "flops": 2.0 * macs}

    return Model(init, apply, cost, acts, max_width, max_depth, "mlp")


# --------------------------------------------------------------------------------- CNN
class PatchConv(nn.Module):
    """``nn.Conv`` (SAME padding, same parameter layout) computed as im2col + matmul.

    Under ``vmap`` over members ``nn.Conv`` becomes a grouped convolution, and inside a loop
    body XLA's CPU backend runs convolutions through a slow path. Building the patches from
    strided slices (cheap, parameter-free) and multiplying by the kernel turns each layer into
    a batched matmul, which is fast in both situations.
    """

    features: int
    kernel_size: tuple[int, ...]
    strides: int = 1

    @nn.compact
    def __call__(self, x):
        nd = len(self.kernel_size)
        c_in = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (*self.kernel_size, c_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        spatial = x.shape[1:1 + nd]
        out = [math.ceil(n / self.strides) for n in spatial]
        pads = []
        for n, o, k in zip(spatial, out, self.kernel_size):
            total = max((o - 1) * self.strides + k - n, 0)
            pads.append((total // 2, total - total // 2))
        xp = jnp.pad(x, [(0, 0)] + pads + [(0, 0)])
        cols = []
        for offset in itertools.product(*(range(k) for k in self.kernel_size)):
            idx = tuple(slice(o, o + (n - 1) * self.strides + 1, self.strides)
                        for o, n in zip(offset, out))
            cols.append(xp[(slice(None),) + idx])
        patches = jnp.concatenate(cols, axis=-1)  # (window..., channel) order, like the kernel
        return patches @ kernel.reshape(-1, self.features) + bias


class _CNN(nn.Module):
    ndim: int
    max_width: int
    max_depth: int
    num_outputs: int
    activations: tuple[str, ...]
    kernel: int

    @nn.compact
    def __call__(self, x, arch, key, train):
        if x.ndim == self.ndim + 1:  # no channel axis
            x = x[..., None]
        mask = width_mask(arch["width"], self.max_width, x.dtype)
        act = lambda h: _masked(select_activation(self.activations, arch["activation"], h), mask)
        keys = jax.random.split(key, self.max_depth + 3)
        k = (self.kernel,) * self.ndim
        k3 = (3,) * self.ndim
        h = act(PatchConv(self.max_width, k, strides=2, name="stem")(x))
        for l in range(self.max_depth):
            b = act(PatchConv(self.max_width, k3, name=f"block{l}")(h))
            b = dropout(b, arch["dropout"], keys[l], train)
            h = h + gate(l, arch["depth"]) * b
        h = act(PatchConv(self.max_width, k3, strides=2, name="down1")(h))
        h = act(PatchConv(self.max_width, k3, strides=2, name="down2")(h))
        h = dropout(h.reshape(h.shape[0], -1), arch["dropout"], keys[-1], train)
        return nn.Dense(self.num_outputs, name="out")(h)


def cnn(num_outputs: int, *, ndim: int = 1, max_width: int = 32, max_depth: int = 1,
        activations: Sequence[str] = ("relu",), kernel: int = 5) -> Model:
    """1-D or 2-D CNN: a stride-2 stem, ``depth`` gated residual 3-wide conv blocks, two
    stride-2 convs and a linear head (the shape of the MNIST-1D paper's CNN, Greydanus 2020).

    Args:
      num_outputs: classes.
      ndim: 1 for sequences ``f32[B, L]`` / ``f32[B, L, C]``, 2 for images ``f32[B, H, W(, C)]``.
      max_width: maximum channels (``arch["width"]`` masks them).
      max_depth: maximum residual blocks (``arch["depth"]`` in ``[0, max_depth]`` gates them).
      activations: selectable activation names.
      kernel: stem kernel size.
    """
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    acts = _check_activations(activations)
    module = _CNN(ndim, _check_size(max_width, "max_width"), _check_size(max_depth, "max_depth"),
                  _check_size(num_outputs, "num_outputs"), acts, _check_size(kernel, "kernel"))
    init, apply, shapes = _zoo_fns(module, max_width, max_depth)

    def cost(arch):
        w = jnp.asarray(_or(arch["width"], max_width), jnp.float32)
        depth = jnp.asarray(_or(arch["depth"], max_depth), jnp.float32)
        x_shape = shapes["x"] + ((1,) if len(shapes["x"]) == ndim else ())
        spatial, c_in = x_shape[:-1], x_shape[-1]
        s1 = [math.ceil(s / 2) for s in spatial]
        s2 = [math.ceil(s / 2) for s in s1]
        s3 = [math.ceil(s / 2) for s in s2]
        p1, p2, p3 = math.prod(s1), math.prod(s2), math.prod(s3)
        kk, k3 = kernel**ndim, 3**ndim
        macs = (p1 * kk * c_in * w + depth * p1 * k3 * w * w + p2 * k3 * w * w
                + p3 * k3 * w * w + p3 * w * num_outputs)
        params = (kk * c_in * w + w + depth * (k3 * w * w + w) + 2 * (k3 * w * w + w)
                  + p3 * w * num_outputs + num_outputs)
        return {"param_count": params, "flops": 2.0 * macs}

    return Model(init, apply, cost, acts, max_width, max_depth, f"cnn{ndim}d")


def _zoo_fns(module, max_width, max_depth):
    """``init``/``apply`` of a zoo module; ``init`` records the example shape for ``cost``."""
    shapes = {}

    def init(key, x):
        shapes["x"] = tuple(x.shape[1:])
        params = module.init(key, x, _full_arch(max_width, max_depth), key, False)["params"]
        return params, {}

    def apply(params, model_state, x, arch, key, train):
        return module.apply({"params": params}, x, arch, key, train), model_state

    return init, apply, shapes


def _or(value, default):
    return default if value is None else value


def _full_arch(width, depth):
    return {"width": width, "depth": depth, "activation": 0, "dropout": 0.0}


# --------------------------------------------------------------------------------- adapters
class _FixedCost:
    """Parameter count and XLA's forward-FLOP estimate of a fixed architecture, computed once
    from shapes only (safe to call while tracing)."""

    def __init__(self):
        self.example = None
        self.value = None

    def record(self, x):
        self.example = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype)

    def __call__(self, init, forward):
        if self.value is None:
            if self.example is None:
                raise ValueError("call model.init before model.cost")
            params, state = jax.eval_shape(init, jax.random.key(0), self.example)
            count = sum(math.prod(p.shape) for p in jax.tree.leaves(params))
            try:
                ca = jax.jit(forward).lower(params, state, self.example).compile()
                ca = ca.cost_analysis()
                ca = ca[0] if isinstance(ca, (list, tuple)) else ca
                flops = float(ca.get("flops", 0.0))
            except Exception:  # best effort: not every backend reports FLOPs
                flops = 0.0
            self.value = (float(count), flops)
        return {"param_count": jnp.float32(self.value[0]), "flops": jnp.float32(self.value[1])}


def from_linen(module: nn.Module, *, train_kwarg: str | None = None,
               mutable: Sequence[str] = ()) -> Model:
    """Adapt an unmodified ``flax.linen`` module called as ``module(x)`` or ``module(x, train=b)``.

    Args:
      module: the linen module; its ``__call__`` takes the input batch.
      train_kwarg: name of the module's boolean train/eval keyword (e.g. ``"train"``), if any.
        Dropout inside the module draws from the ``"dropout"`` RNG stream, fed per member.
      mutable: non-trainable collections updated in training (e.g. ``["batch_stats"]``).

    Architecture hyperparameters do not apply (the module is fixed); optimizer and training
    hyperparameters do. ``cost`` reports the parameter count and XLA's FLOP estimate.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_linen needs a flax.linen.Module, got {type(module).__name__}")
    mutable = list(mutable)
    fixed = _FixedCost()

    def forward(variables, x, key, train):
        kw = {train_kwarg: train} if train_kwarg else {}
        if train and mutable:
            return module.apply(variables, x, rngs={"dropout": key}, mutable=mutable, **kw)
        return module.apply(variables, x, rngs={"dropout": key}, **kw), {}

    def init(key, x):
        fixed.record(x)
        kw = {train_kwarg: False} if train_kwarg else {}
        variables = module.init({"params": key, "dropout": key}, x, **kw)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def apply(params, model_state, x, arch, key, train):
        out, new = forward({"params": params, **model_state}, x, key, train)
        return out, {**model_state, **new}

    def cost(arch):
        return fixed(init, lambda p, s, x: forward({"params": p, **s}, x, jax.random.key(0),
                                                   False)[0])

    return Model(init, apply, cost, (), None, None, type(module).__name__)


def from_nnx(make_model: Callable[[Any], Any]) -> Model:
    """Adapt a Flax NNX module via ``nnx.split`` / ``nnx.merge``.

    Args:
      make_model: ``make_model(rngs: nnx.Rngs) -> nnx.Module`` whose ``__call__(x)`` returns the
        outputs. Trainable state is every ``nnx.Param``; the rest (RNG counters, batch stats) is
        carried per member as ``model_state``. ``model.train()`` / ``model.eval()`` select the
        mode when the module has them.
    """
    from flax import nnx

    if not callable(make_model):
        raise TypeError("from_nnx needs a callable make_model(rngs) -> nnx.Module")
    graph = {}
    fixed = _FixedCost()

    def init(key, x):
        fixed.record(x)
        model = make_model(nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1)))
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        graph["def"] = graphdef
        return params, rest

    def apply(params, model_state, x, arch, key, train):
        model = nnx.merge(graph["def"], params, model_state)
        if hasattr(model, "train") and hasattr(model, "eval"):
            model.train() if train else model.eval()
        out = model(x)
        _, _, new_state = nnx.split(model, nnx.Param, ...)
        return out, new_state

    def cost(arch):
        return fixed(init, lambda p, s, x: apply(p, s, x, arch, None, False)[0])

    return Model(init, apply, cost, (), None, None, "nnx")
