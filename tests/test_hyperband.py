"""Successive halving and HyperBand: the paper's bracket table, the rung decision, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxhpo.schedulers import (PROMOTE, STOP, hyperband_brackets, successive_halving_decision,
                               successive_halving_rungs)


def test_hyperband_brackets_match_li_et_al_table_for_r81_eta3():
    """Li et al. (2018), Table 1: R = 81, eta = 3."""
    table = {4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
             3: [(34, 3), (11, 9), (3, 27), (1, 81)],
             2: [(15, 9), (5, 27), (1, 81)],
             1: [(8, 27), (2, 81)],
             0: [(5, 81)]}
    brackets = hyperband_brackets(81, 3)
    assert [b.s for b in brackets] == [4, 3, 2, 1, 0]
    for b in brackets:
        assert [(g.n, g.r) for g in b.rungs] == table[b.s]
        assert all(isinstance(g.n, int) for g in b.rungs)


def test_hyperband_exact_powers_and_non_powers():
    # R = 27, eta = 3: s_max = 3 exactly (a float log would give 2.9999...).
    assert [b.s for b in hyperband_brackets(27, 3)] == [3, 2, 1, 0]
    # R = 10, eta = 2: s_max = 3; s=3: n = ceil(4/4 * 8) = 8, r = 10/8.
    top = hyperband_brackets(10, 2)[0]
    assert [(g.n, g.r) for g in top.rungs] == [(8, 1.25), (4, 2.5), (2, 5.0), (1, 10.0)]
    assert [(g.n, g.r) for g in hyperband_brackets(1, 3)[0].rungs] == [(1, 1)]


def test_successive_halving_rungs():
    assert [(g.n, g.r) for g in successive_halving_rungs(27, 1, 3)] == \
        [(27, 1), (9, 3), (3, 9), (1, 27)]
    assert [(g.n, g.r) for g in successive_halving_rungs(10, 2, 2, num_rungs=3)] == \
        [(10, 2), (5, 4), (2, 8)]


@pytest.mark.parametrize("kwargs, arg", [
    (dict(max_resource=81, eta=1), "eta"), (dict(max_resource=81, eta=1.5), "eta"),
    (dict(max_resource=0.5, eta=3), "max_resource"), (dict(max_resource=float("nan")),
                                                      "max_resource")])
def test_hyperband_errors_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        hyperband_brackets(**kwargs)


def test_sh_rung_errors():
    with pytest.raises(ValueError, match="n must"):
        successive_halving_rungs(0, 1)
    with pytest.raises(ValueError, match="r must"):
        successive_halving_rungs(9, 0)
    with pytest.raises(ValueError, match="eta"):
        successive_halving_decision(jnp.zeros(4), eta=0)


def test_sh_decision_keeps_top_third_nan_last():
    m = jnp.array([0.5, jnp.nan, 0.1, 0.3, 0.9, 0.2, jnp.inf, 0.4, 0.05])
    d = np.asarray(successive_halving_decision(m, eta=3))
    # n_i = 9, floor(9 / 3) = 3 kept: values 0.05, 0.1, 0.2 (slots 8, 2, 5).
    assert set(np.flatnonzero(d == PROMOTE)) == {2, 5, 8}
    assert (d[[0, 1, 3, 4, 6, 7]] == STOP).all()


def test_sh_decision_mask_ties_and_diverged_never_promoted():
    m = jnp.array([0.3, 0.3, 0.0, 0.1, jnp.nan, jnp.nan])
    mask = jnp.array([True, True, False, True, True, True])    # slot 2 did not run this rung
    d = np.asarray(successive_halving_decision(m, mask, eta=2))
    # n_i = 5 -> keep 2: slot 3 (0.1) and slot 0 (tie with slot 1, lower index wins).
    np.testing.assert_array_equal(d, [PROMOTE, STOP, STOP, PROMOTE, STOP, STOP])
    # num_keep larger than the finite count: diverged slots still stop.
    d = np.asarray(successive_halving_decision(m, mask, eta=2, num_keep=5))
    np.testing.assert_array_equal(d, [PROMOTE, PROMOTE, STOP, PROMOTE, STOP, STOP])


def test_sh_decision_compiles_once_across_rungs():
    traces = []

    @jax.jit
    def decide(m, mask, keep):
        traces.append(1)
        return successive_halving_decision(m, mask, eta=3, num_keep=keep)

    m = jax.random.uniform(jax.random.key(0), (27,))
    mask = jnp.ones(27, bool)
    for n, keep in [(27, 9), (9, 3), (3, 1)]:
        mask = mask & (jnp.arange(27) < n)
        d = decide(m, mask, keep)
        assert int(jnp.sum(d == PROMOTE)) == keep
    assert len(traces) == 1


def test_sh_decision_vmaps_over_brackets():
    m = jax.random.uniform(jax.random.key(1), (5, 81))
    sizes = jnp.array([81, 34, 15, 8, 5])
    masks = jnp.arange(81)[None, :] < sizes[:, None]
    d = jax.vmap(lambda mm, k: successive_halving_decision(mm, k, eta=3))(m, masks)
    np.testing.assert_array_equal(np.asarray(jnp.sum(d == PROMOTE, 1)), [27, 11, 5, 2, 1])


def test_schedulers_reachable_lazily_from_jaxhpo():
    import subprocess
    import sys

    code = ("import sys, jaxhpo; assert 'jaxhpo.schedulers' not in sys.modules; "
            "assert jaxhpo.schedulers.hyperband_brackets(9, 3)[0].s == 2")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_decision_vocabulary():
    """The rules' int32 codes are :class:`Decision` values (0..5), the exported names are its
    members, and the old second vocabulary (STOPPED) is gone. Truth: of 3 trials eta=3 keeps
    floor(3 / 3) = 1, the lowest metric."""
    from jaxhpo import schedulers as S

    assert [int(d) for d in S.Decision] == list(range(6))
    assert (S.CONTINUE, S.STOP, S.PROMOTE, S.EXPLOIT, S.PAUSE, S.DONE) == tuple(S.Decision)
    codes = jax.jit(successive_halving_decision)(jnp.array([3.0, 1.0, 2.0]))
    assert [S.Decision(int(c)) for c in codes] == [S.STOP, S.PROMOTE, S.STOP]
    assert S.DECISION_NAMES[S.PAUSE] == "pause"
    assert not hasattr(S, "STOPPED") and not hasattr(S._policies, "STOPPED")
