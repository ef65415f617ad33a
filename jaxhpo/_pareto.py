"""Pareto utilities usable with any strategy's results: non-dominated fronts and the
hypervolume indicator (Zitzler & Thiele 1998) for two or three minimized objectives."""

from __future__ import annotations

import numpy as np

from jaxhpo._history import pareto_mask


def pareto_front(values) -> np.ndarray:
    """The non-dominated rows of ``values f[n, m]`` (minimized), sorted by the first column."""
    v = np.asarray(values, np.float64)
    v = v[np.all(np.isfinite(v), axis=1)]
    front = v[pareto_mask(v)]
    return front[np.argsort(front[:, 0], kind="stable")]


def _hv2(points: np.ndarray, ref: np.ndarray) -> float:
    front = pareto_front(points)
    front = front[np.all(front < ref, axis=1)]
    if not len(front):
        return 0.0
    widths = np.diff(np.append(front[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - front[:, 1])))


def hypervolume(values, reference) -> float:
    """Hypervolume dominated by ``values f[n, m]`` (minimized, m = 2 or 3) up to ``reference``.

    Exact: a sweep over the first objective for m = 2; slicing along the third objective (the
    HSO scheme, While et al., IEEE TEC 2006) for m = 3. Points not strictly better than the
    reference in every objective contribute nothing; NaN/inf rows are ignored.
    """
    v = np.asarray(values, np.float64)
    ref = np.asarray(reference, np.float64)
    if v.ndim != 2 or v.shape[1] not in (2, 3) or ref.shape != (v.shape[1],):
        raise ValueError(f"hypervolume needs values f[n, 2 or 3] and a matching reference, got "
                         f"shapes {v.shape} and {ref.shape}")
    v = v[np.all(np.isfinite(v), axis=1) & np.all(v < ref, axis=1)]
    if not len(v):
        return 0.0
    if v.shape[1] == 2:
        return _hv2(v, ref)
    z = np.unique(np.append(v[:, 2], ref[2]))
    total = 0.0
    for lo, hi in zip(z[:-1], z[1:]):
        total += (hi - lo) * _hv2(v[v[:, 2] <= lo][:, :2], ref[:2])
    return float(total)
