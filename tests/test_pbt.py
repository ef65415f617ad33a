"""PBT (Jaderberg et al. 2017): truncation selection, explore factors in the natural space,
resample frequency, the hyperparameter-schedule record, and no retrace."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo import Categorical, Float, Int, Space
from jaxhpo.schedulers import (pbt_exploit, pbt_lineage, pbt_perturb, pbt_record_init,
                               pbt_record_update)

perturb = jax.jit(pbt_perturb, static_argnames=("space", "factors", "resample_prob"))
decode = jax.jit(lambda x: SPACE.decode(x))
exploit_ = jax.jit(pbt_exploit, static_argnames="fraction")

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "wd": Float(0.0, 1.0),
               "width": Int(8, 512, log=True), "layers": Int(1, 10),
               "opt": Categorical(["a", "b", "c", "d"])})


def test_bottom_quarter_copies_from_top_quarter():
    fitness = jnp.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4])
    seen = set()
    for s in range(40):
        src, exploit = exploit_(jax.random.key(s), fitness)
        src, exploit = np.asarray(src), np.asarray(exploit)
        # ceil(0.25 * 8) = 2: the worst two (slots 2 and 6) copy from the best two (1 and 5).
        assert set(np.flatnonzero(exploit)) == {2, 6}
        assert set(src[[2, 6]]) <= {1, 5}
        np.testing.assert_array_equal(np.delete(src, [2, 6]), np.delete(np.arange(8), [2, 6]))
        seen |= set(src[[2, 6]])
    assert seen == {1, 5}                                   # both top members get drawn


def test_diverged_always_exploit_and_inactive_slots_are_ignored():
    fitness = jnp.array([0.5, jnp.nan, 0.9, 0.3, jnp.inf, 0.2, -jnp.inf, 0.4])
    src, exploit = pbt_exploit(jax.random.key(0), fitness, fraction=0.25)
    assert set(np.flatnonzero(np.asarray(exploit))) == {1, 4, 6}   # 3 diverged > k = 2
    assert set(np.asarray(src)[[1, 4, 6]]) <= {3, 5}
    active = jnp.array([True, True, True, True, False, False, True, True])
    fitness = jnp.array([0.5, 0.6, 0.9, 0.3, 0.0, 0.01, 0.8, 0.4])
    for s in range(10):
        src, exploit = exploit_(jax.random.key(s), fitness, active, fraction=0.2)
        # 6 active, ceil(1.2) = 2: worst active 2 and 6 copy from the best active 3 and 7.
        assert set(np.flatnonzero(np.asarray(exploit))) == {2, 6}
        assert set(np.asarray(src)[[2, 6]]) <= {3, 7}


def test_perturbation_factors_are_exact_in_natural_space():
    n = 4000
    x = jax.random.uniform(jax.random.key(0), (n, SPACE.dim), minval=0.1, maxval=0.9)
    new = perturb(jax.random.key(1), x, SPACE, resample_prob=0.0)
    old, got = decode(x), decode(new)
    for name in ("lr", "wd"):
        ratio = np.asarray(got[name]) / np.asarray(old[name])
        lo, hi = SPACE[name].low, SPACE[name].high
        inside = (np.asarray(old[name]) * 1.2 < hi) & (np.asarray(old[name]) * 0.8 > lo)
        near = np.isclose(ratio, 0.8, rtol=1e-4) | np.isclose(ratio, 1.2, rtol=1e-4)
        assert near[inside].all(), name
        assert abs(np.mean(np.isclose(ratio[inside], 1.2, rtol=1e-4)) - 0.5) < 0.05
    for name in ("width", "layers"):
        p, v, w = SPACE[name], np.asarray(old[name]), np.asarray(got[name])
        cand = [np.clip(np.round(v * f), p.low, p.high) for f in (0.8, 1.2)]
        assert ((w == cand[0]) | (w == cand[1])).all(), name
    i, j = np.asarray(old["opt"]), np.asarray(got["opt"])
    assert (np.abs(i - j) <= 1).all() and (i[(i > 0) & (i < 3)] != j[(i > 0) & (i < 3)]).all()


def test_clipping_at_the_bounds():
    x = jnp.array([[1.0, 1.0, 1.0, 1.0, 0.99], [0.0, 0.0, 0.0, 0.0, 0.0]])
    for s in range(5):
        new = perturb(jax.random.key(s), x, SPACE, resample_prob=0.0)
        assert jnp.all((new >= 0) & (new <= 1))
        got = decode(new)
        assert float(got["lr"][0]) <= 0.1 + 1e-6 and float(got["lr"][1]) >= 1e-4 * (1 - 1e-5)


def test_resample_frequency_is_a_quarter():
    n = 20000
    x = jnp.full((n, SPACE.dim), 0.5)
    new = perturb(jax.random.key(3), x, SPACE)             # resample_prob = 0.25
    ratio = np.asarray(decode(new)["lr"]) / float(decode(x)["lr"][0])
    perturbed = np.isclose(ratio, 0.8, rtol=1e-4) | np.isclose(ratio, 1.2, rtol=1e-4)
    assert abs(np.mean(~perturbed) - 0.25) < 0.015


def test_record_and_lineage():
    x0 = jnp.arange(4, dtype=jnp.float32)[:, None] / 10 * jnp.ones((4, 2))
    rec = pbt_record_init(x0, max_rounds=3)
    update = jax.jit(pbt_record_update)
    # Round 1 at step 100: slot 3 copies slot 0 and gets x=0.9. Round 2 at step 200: slot 1
    # copies slot 3 and gets x=0.8. Round 3 at step 300: nobody exploits.
    x1 = x0.at[3].set(0.9)
    rec = update(rec, 100, jnp.array([0, 1, 2, 0]), jnp.array([0, 0, 0, 1], bool), x1)
    x2 = x1.at[1].set(0.8)
    rec = update(rec, 200, jnp.array([0, 3, 2, 3]), jnp.array([0, 1, 0, 0], bool), x2)
    rec = update(rec, 300, jnp.arange(4), jnp.zeros(4, bool), x2)
    lin = pbt_lineage(rec, 1)
    assert [(s["step"], s["slot"], s["copied_from"]) for s in lin] == \
        [(0, 0, None), (100, 3, 0), (200, 1, 3)]
    np.testing.assert_allclose([s["x"][0] for s in lin], [0.0, 0.9, 0.8])
    assert [s["step"] for s in pbt_lineage(rec, 2)] == [0]
    rec = update(rec, 400, jnp.arange(4), jnp.zeros(4, bool), x2)     # beyond capacity: dropped
    assert int(rec.count) == 4 and int(rec.step[-1]) == 300


def test_one_pbt_round_compiles_once():
    traces = []

    @jax.jit
    def round_(key, rec, x, fitness, step):
        traces.append(1)
        k1, k2 = jax.random.split(key)
        src, exploit = pbt_exploit(k1, fitness)
        x_new = jnp.where(exploit[:, None], pbt_perturb(k2, x[src], SPACE), x)
        return pbt_record_update(rec, step, src, exploit, x_new), x_new

    x = SPACE.sample(jax.random.key(0), 8)
    rec = pbt_record_init(x, 5)
    for r in range(5):
        f = jax.random.uniform(jax.random.key(10 + r), (8,))
        rec, x = round_(jax.random.key(r), rec, x, f, 100 * (r + 1))
    assert len(traces) == 1 and int(rec.count) == 5


def test_errors():
    f = jnp.zeros(8)
    for bad in (0.0, 0.6, -0.1, float("nan")):
        with pytest.raises(ValueError, match="fraction"):
            pbt_exploit(jax.random.key(0), f, fraction=bad)
    x = jnp.zeros((2, SPACE.dim))
    with pytest.raises(ValueError, match="resample_prob"):
        pbt_perturb(jax.random.key(0), x, SPACE, resample_prob=1.5)
    with pytest.raises(ValueError, match="factors"):
        pbt_perturb(jax.random.key(0), x, SPACE, factors=(0.8,))
    with pytest.raises(ValueError, match="x must"):
        pbt_perturb(jax.random.key(0), x[:, :2], SPACE)
    with pytest.raises(ValueError, match="max_rounds"):
        pbt_record_init(x, 0)
