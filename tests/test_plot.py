"""jaxhpo.plot: every plot renders to a valid PNG (Agg, headless) and draws the right data.

Independent truths: the best-so-far line is the closed-form cumulative min (max) of the ok
trials' values; Pareto points are those no other point dominates (brute-force check); regret
medians are numpy's median of the per-seed curves in the JSON; parallel-coordinate lines are
the trials' unit-cube points with a log axis's middle tick at the geometric mean; learning
curves are the values the objective reported and trials end where the scheduler stopped them;
PBT schedules follow the exploit events written into the record by hand.
"""

import json
import math
import struct
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import jaxhpo  # noqa: E402
import jaxhpo.plot as P  # noqa: E402
from jaxhpo import Categorical, Float, History, Int, Space, Trial  # noqa: E402
from jaxhpo import schedulers as S  # noqa: E402
from jaxhpo.strategies import random_search  # noqa: E402
from helpers import curve_objective

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "width": Int(16, 256, log=True),
               "opt": Categorical(["sgd", "adam"]),
               "mom": Float(0.0, 0.99, condition={"opt": "sgd"})})


def objective(key, hp):
    v = (jnp.log10(hp["lr"]) + 2.5) ** 2 + (hp["width"] - 64) ** 2 / 1e4 + hp["opt"]
    return jnp.where(hp["lr"] > 0.05, jnp.nan, v)  # some trials diverge


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("plot") / "run.jsonl"
    res = jaxhpo.minimize(objective, SPACE, random_search(SPACE, 16), num_generations=3, key=1,
                          journal=path, progress=False)
    return res, path


def check_png(path, fig, dpi):
    """A real PNG of the figure's pixel size, not a stub."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    fw, fh = fig.get_size_inches() * dpi
    assert abs(w - fw) <= 2 and abs(h - fh) <= 2, (w, h, fw, fh)
    assert len(data) > 5000


def _plain(text: str) -> str:
    """A tick label as read: mathtext markup (``$\\mathdefault{10^{-4}}$``) left out."""
    for markup in ("$", "\\mathdefault", "\\times", "{", "}", "^", "\\"):
        text = text.replace(markup, "")
    return text


def assert_readable(fig, max_chars: int = 10):
    """At the figure's default size (Agg): no two tick labels of an axis overlap and none is
    longer than ``max_chars``; the same for each group of parallel-coordinate tick
    annotations (same ``gid``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    groups = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            tol = 1e-9 * max(abs(hi - lo), 1e-300)
            labels = [lab for locs, labs in ((axis.get_majorticklocs(),
                                              axis.get_majorticklabels()),
                                             (axis.get_minorticklocs(),
                                              axis.get_minorticklabels()))
                      for loc, lab in zip(locs, labs)
                      if lab.get_visible() and lab.get_text() and lo - tol <= loc <= hi + tol]
            groups.append((f"{ax.get_title() or ax.get_xlabel()} {axis.axis_name}", labels))
        by_gid = {}
        for t in ax.texts:
            if (t.get_gid() or "").startswith("tick:"):
                by_gid.setdefault(t.get_gid(), []).append(t)
        groups += [(f"{ax.get_title()} {g}", ts) for g, ts in by_gid.items()]
    for where, labels in groups:
        for lab in labels:
            assert len(_plain(lab.get_text())) <= max_chars, (where, lab.get_text())
        boxes = [lab.get_window_extent(renderer) for lab in labels]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5
                           and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5)
                assert not overlap, (where, labels[i].get_text(), labels[j].get_text())


def save(fig, tmp_path, name, dpi=60):
    """Check the figure's tick labels for readability, then that it renders to a PNG."""
    assert_readable(fig)
    out = tmp_path / f"{name}.png"
    fig.savefig(out, dpi=dpi)
    check_png(out, fig, dpi)
    return out


# Every plot function, each rendered through save() (readability + PNG) by its tests below.
CHECKED = {"history", "parallel_coordinates", "slices", "pareto", "regret", "learning_curves",
           "pbt_schedules", "contour", "importance", "edf", "timeline"}


def test_every_plot_function_is_checked_for_readability():
    assert set(P.__all__) - {"RunView", "read_journal"} == CHECKED


def test_import_jaxhpo_does_not_import_matplotlib():
    code = "import sys, jaxhpo, jaxhpo.plot; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_matplotlib_says_how_to_install(monkeypatch, run):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"jaxhpo\[plot\]"):
        P.history(run[0])


# ---------------------------------------------------------------------------- history
def test_history_best_so_far_is_the_cumulative_min(run, tmp_path):
    res, path = run
    vals = np.array([t.values[0] if t.status == "ok" else np.nan for t in res.history])
    assert np.isnan(vals).any() and (~np.isnan(vals)).any()  # both kinds are exercised
    expected = np.fmin.accumulate(vals)
    for src in (res, path, res.history):  # Result, journal, bare History agree
        fig = P.history(src)
        ax = fig.axes[0]
        line = next(ln for ln in ax.lines if ln.get_label() == "best so far")
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
        bad = next(c for c in ax.collections if c.get_label().startswith("failed"))
        assert len(bad.get_offsets()) == int(np.isnan(vals).sum())
    save(fig, tmp_path, "history")


def test_history_maximize_uses_the_running_max(tmp_path):
    vals = [0.1, 0.5, None, 0.3, 0.7, 0.6]
    trials = [Trial(number=i, generation=i, member=0, x=[0.5], params={"a": 0.5}, inactive=[],
                    metrics={}, values=None if v is None else [v],
                    status="failed" if v is None else "ok") for i, v in enumerate(vals)]
    h = History(["acc"], ["maximize"], trials)
    fig = P.history(h)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "best so far")
    np.testing.assert_allclose(line.get_ydata(), [0.1, 0.5, 0.5, 0.5, 0.7, 0.7])
    save(fig, tmp_path, "history_max")
    from matplotlib.figure import Figure

    own = Figure()
    left, right = own.subplots(1, 2)
    assert P.history(h, ax=right) is own and right.lines and not left.lines


# ---------------------------------------------------------------------------- parallel coordinates
def test_parallel_coordinates_lines_are_the_unit_cube_points(run, tmp_path):
    res, _ = run
    fig = P.parallel_coordinates(res)
    ax = fig.axes[0]
    segs = ax.collections[0].get_segments()
    ok = [t for t in res.history if t.status == "ok"]
    assert len(segs) == len(ok)
    vals = np.array([t.value for t in ok])
    # worst first, so the best trial is drawn on top
    order = np.argsort(-vals, kind="stable")
    for seg, i in zip(segs, order):
        t = ok[i]
        want = [-0.1 if n in t.inactive else t.x[j] for j, n in enumerate(SPACE.names)]
        np.testing.assert_allclose(seg[:4, 1], want, rtol=1e-6)
        np.testing.assert_allclose(seg[4, 1], (vals[i] - vals.min()) / np.ptp(vals), rtol=1e-6)
    assert any("mom" in t.inactive for t in ok) and any("mom" in t.params for t in ok)
    ticks = {n: {round(a.xy[1], 6): a.get_text() for a in ax.texts if a.get_gid() == f"tick:{n}"}
             for n in SPACE.names}
    assert ticks["lr"][0.5] == f"{math.sqrt(1e-4 * 1e-1):.3g}"  # log axis: geometric mean
    assert ticks["lr"][0.0] == "0.0001" and ticks["lr"][1.0] == "0.1"
    assert ticks["width"][0.0] == "16" and ticks["width"][1.0] == "256"
    assert ticks["opt"] == {0.25: "sgd", 0.75: "adam"}
    assert ticks["mom"][-0.1] == "inactive"
    save(fig, tmp_path, "parallel")


def test_parallel_coordinates_needs_a_space_with_a_bare_history(run):
    res, _ = run
    with pytest.raises(ValueError, match="space="):
        P.parallel_coordinates(res.history)
    fig = P.parallel_coordinates(res.history, space=SPACE, params=["lr", "opt"])
    assert fig.axes[0].collections[0].get_segments()[0].shape == (3, 2)
    with pytest.raises(ValueError, match="not in the space"):
        P.parallel_coordinates(res, params=["nope"])
    with pytest.raises(TypeError, match="Result, TuneResult, History or a journal path"):
        P.parallel_coordinates(42)


# ---------------------------------------------------------------------------- slices
def test_slices_one_panel_per_parameter(run, tmp_path):
    res, path = run
    fig = P.slices(path)
    panels = [a for a in fig.axes if a.get_xlabel() in SPACE.names]
    assert [a.get_xlabel() for a in panels] == list(SPACE.names)
    ok = [t for t in res.history if t.status == "ok"]
    by = {a.get_xlabel(): a for a in panels}
    lr = by["lr"].collections[0].get_offsets()
    np.testing.assert_allclose(lr[:, 0], [t.params["lr"] for t in ok], rtol=1e-6)
    np.testing.assert_allclose(lr[:, 1], [t.value for t in ok], rtol=1e-6)
    assert by["lr"].get_xscale() == "log" and by["width"].get_xscale() == "log"
    assert by["mom"].get_xscale() == "linear"
    # a conditional parameter only shows the trials where it was active
    assert len(by["mom"].collections[0].get_offsets()) == sum("mom" in t.params for t in ok)
    assert [t.get_text() for t in by["opt"].get_xticklabels()] == ["sgd", "adam"]
    save(fig, tmp_path, "slices")


# ---------------------------------------------------------------------------- Pareto
def _history(values, directions):
    trials = [Trial(number=i, generation=0, member=i, x=[0.5], params={"a": 0.5}, inactive=[],
                    metrics={}, values=list(map(float, v)), status="ok")
              for i, v in enumerate(values)]
    return History([f"f{j}" for j in range(len(directions))], directions, trials)


def _brute_front(v):
    n = len(v)
    return np.array([not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i])
                             for j in range(n) if j != i) for i in range(n)])


@pytest.mark.parametrize("directions", [["minimize", "minimize"], ["minimize", "maximize"]])
def test_pareto_highlights_exactly_the_non_dominated(directions, tmp_path):
    vals = np.random.default_rng(0).uniform(size=(60, 2))
    fig = P.pareto(_history(vals, directions))
    ax = fig.axes[0]
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    front = _brute_front(vals * sign)
    np.testing.assert_allclose(np.sort(ax.collections[1].get_offsets()[:, 0]),
                               np.sort(vals[front, 0]))
    np.testing.assert_allclose(np.sort(ax.collections[0].get_offsets()[:, 0]),
                               np.sort(vals[~front, 0]))
    np.testing.assert_array_equal(front, jaxhpo.pareto_mask(vals * sign))
    save(fig, tmp_path, "pareto")


def test_pareto_three_objectives_pairwise_or_a_clear_error(tmp_path):
    vals = np.random.default_rng(1).uniform(size=(40, 3))
    h = _history(vals, ["minimize"] * 3)
    with pytest.raises(ValueError, match="pairwise=True"):
        P.pareto(h)
    fig = P.pareto(h, pairwise=True)
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == 3
    front = _brute_front(vals)
    for a in panels:  # non-domination over all three objectives in every panel
        assert len(a.collections[1].get_offsets()) == front.sum()
    save(fig, tmp_path, "pareto3")
    fig = P.pareto(h, objectives=["f0", "f2"])
    assert fig.axes[0].get_ylabel().startswith("f2")
    with pytest.raises(ValueError, match="multi-objective"):
        P.pareto(_history(vals[:, :1], ["minimize"]))


# ---------------------------------------------------------------------------- regret
def test_regret_medians_are_numpys_median_of_the_seeds(tmp_path):
    rng = np.random.default_rng(2)
    evals = [1, 2, 4, 8, 16, 32]
    per_seed = {s: np.sort(rng.lognormal(size=(7, len(evals))), axis=1)[:, ::-1]
                for s in ("random_search", "tpe")}
    doc = {"benchmark": "quality", "evals": 32, "results": {"branin": {
        s: {"regret_at": {"32": {"median": 0, "q25": 0, "q75": 0}},
            "curve": {"evals": evals, "per_seed": v.tolist()}} for s, v in per_seed.items()},
        "hartmann6": {"tpe": {"regret_at": {"16": {"median": 0.5, "q25": 0.2, "q75": 0.9},
                                            "32": {"median": 0.1, "q25": 0.05, "q75": 0.3}}}}}}
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(doc))
    fig = P.regret(path)
    axes = {a.get_title(): a for a in fig.axes}
    for s, v in per_seed.items():
        line = next(ln for ln in axes["branin"].lines if ln.get_label() == s)
        np.testing.assert_allclose(line.get_xdata(), evals)
        np.testing.assert_allclose(line.get_ydata(), np.median(v, axis=0))
        band = axes["branin"].collections[list(per_seed).index(s)]
        ys = band.get_paths()[0].vertices[:, 1]
        np.testing.assert_allclose(ys.min(), np.quantile(v, 0.25, axis=0).min())
        np.testing.assert_allclose(ys.max(), np.quantile(v, 0.75, axis=0).max())
    # files without per-seed curves: the stored checkpoint medians
    line = axes["hartmann6"].lines[0]
    np.testing.assert_allclose(line.get_xdata(), [16, 32])
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.1])
    save(fig, tmp_path, "regret")
    fig = P.regret([path], functions=["branin"], strategies=["tpe"])
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["tpe"]
    with pytest.raises(ValueError, match="not in the results"):
        P.regret(path, functions=["levy"])
    with pytest.raises(ValueError, match="quality"):
        P.regret({"benchmark": "overhead", "rows": []})


# ---------------------------------------------------------------------------- learning curves
def test_learning_curves_mark_stops_and_rungs(tmp_path):
    space = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})
    sched = S.ASHA(10, 90, mode="stopping")
    journal = tmp_path / "tune.jsonl"
    res = jaxhpo.tune(curve_objective, space, random_search(space, 4), sched, max_trials=16,
                      eval_every=10, key=0, journal=journal, progress=False)
    stopped = [t for t in res.history if t.status == "stopped"]
    assert stopped and any(t.status == "ok" for t in res.history)
    for src in (res, journal):
        fig = P.learning_curves(src, rungs=sched.milestones())
        ax = fig.axes[0]
        curves = ax.lines[:len(res.history)]
        for ln, t in zip(curves, res.history):  # exactly the reported values, step by step
            f = (t.params["a"] - 0.3) ** 2 + (t.params["b"] - 0.6) ** 2
            steps = np.arange(10, t.fidelity + 1, 10)
            np.testing.assert_allclose(ln.get_xdata(), steps)
            np.testing.assert_allclose(ln.get_ydata(), f + 1.0 / steps, rtol=1e-6)
        marks = {c.get_label(): c.get_offsets() for c in ax.collections}
        want = sorted((t.fidelity, t.values[0]) for t in stopped)
        np.testing.assert_allclose(sorted(map(tuple, marks["stopped"])), want, rtol=1e-6)
        vlines = [ln.get_xdata()[0] for ln in ax.lines[len(res.history):]]
        assert vlines == sched.milestones()
        # a trial is marked promoted at each rung below the step where it ended
        n_prom = sum(1 for t in res.history for r in sched.milestones() if t.fidelity > r)
        assert len(marks["promoted"]) == n_prom
    save(fig, tmp_path, "curves")
    # rungs inferred from where trials were stopped
    fig = P.learning_curves(res)
    assert sorted({t.fidelity for t in stopped}) == [ln.get_xdata()[0]
                                                     for ln in fig.axes[0].lines[16:]]
    with pytest.raises(ValueError, match="no learning curves"):
        P.learning_curves(History(["v"], ["minimize"], []))


def test_learning_curves_of_the_trainer_engine_spread_rounds_over_the_fidelity():
    from jaxhpo.plot._runs import _curve_xy

    s, v = _curve_xy([0.5, 0.4, 0.3], 60.0)
    np.testing.assert_allclose(s, [20, 40, 60])
    np.testing.assert_allclose(v, [0.5, 0.4, 0.3])


# ---------------------------------------------------------------------------- PBT schedules
def test_pbt_schedules_follow_the_exploit_events(tmp_path):
    space = Space({"lr": Float(1e-3, 1e-1, log=True), "opt": Categorical(["a", "b", "c"])})
    x0 = np.array([[0.0, 0.1], [0.5, 0.5], [1.0, 0.9]], np.float32)
    rec = S.pbt_record_init(x0, 2)
    x1 = x0.copy()
    x1[2] = [0.25, 0.1]  # round 1 at step 20: slot 2 copies slot 0, explores to lr 3.16e-3
    rec = S.pbt_record_update(rec, 20, np.array([0, 1, 0]), np.array([False, False, True]), x1)
    x2 = x1.copy()
    x2[1] = [0.75, 0.9]  # round 2 at step 40: slot 1 copies slot 2, lr 3.16e-2, opt "c"
    rec = S.pbt_record_update(rec, 40, np.array([0, 2, 2]), np.array([False, True, False]), x2)
    sched = {i: S.pbt_lineage(rec, i) for i in range(3)}
    res = jaxhpo.TuneResult(History(["loss"], ["minimize"], []), space, None, 0, 0.0,
                            schedules=sched)
    fig = P.pbt_schedules(res, max_steps=60)
    axes = {a.get_title(): a for a in fig.axes}
    lines = {ln.get_label(): ln for ln in axes["lr"].lines}
    # member 1's weights: slot 0 (lr 1e-3) until 20, slot 2 (3.16e-3) until 40, then 3.16e-2
    np.testing.assert_allclose(lines["member 1"].get_xdata(), [0, 20, 40, 60])
    np.testing.assert_allclose(lines["member 1"].get_ydata(),
                               [1e-3, 10 ** -2.5, 10 ** -1.5, 10 ** -1.5], rtol=1e-5)
    np.testing.assert_allclose(lines["member 0"].get_ydata(), [1e-3, 1e-3], rtol=1e-5)
    opt = {ln.get_label(): ln for ln in axes["opt"].lines}
    np.testing.assert_allclose(opt["member 1"].get_ydata(), [0, 0, 2, 2])  # a, a, c
    assert axes["lr"].get_yscale() == "log"
    save(fig, tmp_path, "pbt")
    with pytest.raises(ValueError, match="PBT"):
        P.pbt_schedules(jaxhpo.TuneResult(History(["l"], ["minimize"], []), space, None, 0,
                                          0.0))


def test_read_journal_skips_a_torn_line_and_never_writes(run, tmp_path):
    res, path = run
    torn = tmp_path / "torn.jsonl"
    data = path.read_bytes() + b'{"type": "trial", "number": 99, "gen'
    torn.write_bytes(data)
    view = P.read_journal(torn)
    assert torn.read_bytes() == data
    assert [t.number for t in view.history] == [t.number for t in res.history]
    assert view.space == SPACE and view.history.objectives == ["value"]
    with pytest.raises(ValueError, match="not a jaxhpo journal"):
        (tmp_path / "x.jsonl").write_text('{"a": 1}\n')
        P.read_journal(tmp_path / "x.jsonl")


# ---------------------------------------------------------------------------- log axes
def test_slices_log_axes_have_short_separate_labels(run, tmp_path):
    res, _ = run
    fig = P.slices(res)
    by = {a.get_xlabel(): a for a in fig.axes}
    assert_readable(fig)
    lo, hi = by["lr"].get_xlim()
    shown = [lab.get_text() for loc, lab in zip(by["lr"].get_xticks(),
                                                by["lr"].get_xticklabels()) if lo <= loc <= hi]
    want = [s for v, s in ((1e-4, "1e-4"), (1e-3, "0.001"), (1e-2, "0.01"), (1e-1, "0.1"))
            if lo <= v <= hi]
    assert shown == want
    from jaxhpo.plot._trials import log_ticks, short_number

    for a, b in ((1e-4, 1e-1), (16, 256), (1e-6, 1e6), (0.5, 0.9), (3.0, 3000.0)):
        t = log_ticks(a, b)
        assert 2 <= len(t) <= 6 and np.all((t >= a) & (t <= b)), (a, b, t)
        assert all(len(short_number(v)) <= 6 for v in t)
    assert [short_number(v) for v in (1e-5, 2e-4, 0.003, 1000.0, 5e4)] == \
        ["1e-5", "2e-4", "0.003", "1000", "5e4"]


# ---------------------------------------------------------------------------- contour
def test_contour_draws_the_trials_on_the_spaces_scales(run, tmp_path):
    res, _ = run
    ok = [t for t in res.history if t.status == "ok"]
    fig = P.contour(res, params=("lr", "width"))
    ax = fig.jaxhpo_panels[("lr", "width")]
    pts = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(pts[:, 0], [t.params["lr"] for t in ok], rtol=1e-5)
    np.testing.assert_allclose(pts[:, 1], [t.params["width"] for t in ok], rtol=1e-5)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    save(fig, tmp_path, "contour")
    fig = P.contour(res)  # all four: the lower triangle of a 3 x 3 grid
    assert len(fig.jaxhpo_panels) == 6
    ax = fig.jaxhpo_panels[("opt", "mom")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sgd", "adam"]
    # mom is only active with sgd: only those trials are drawn
    assert len(ax.collections[-1].get_offsets()) == sum("mom" in t.params for t in ok)
    save(fig, tmp_path, "contour_grid")
    with pytest.raises(ValueError, match="at least two"):
        P.contour(res, params=["lr"])


def test_contour_interpolation_passes_through_the_trials():
    from jaxhpo.plot._study import interpolate

    pts = np.array([[0.1, 0.2], [0.9, 0.8], [0.5, 0.1]])
    vals = np.array([1.0, 3.0, -2.0])
    np.testing.assert_allclose(interpolate(pts, vals, pts, np.array([False, False])), vals)
    # two points: the midpoint is their mean (equal inverse-distance weights)
    mid = interpolate(pts[:2], vals[:2], np.array([[0.5, 0.5]]), np.array([False, False]))
    np.testing.assert_allclose(mid, [2.0])
    # a categorical coordinate: another choice is at distance 1, whatever the bin order
    z = interpolate(np.array([[0.25, 0.5], [0.75, 0.5]]), np.array([0.0, 10.0]),
                    np.array([[0.25, 0.4]]), np.array([True, False]))
    w0, w1 = 1 / 0.1 ** 2, 1 / (1 + 0.1 ** 2)
    np.testing.assert_allclose(z, [10.0 * w1 / (w0 + w1)])


# ---------------------------------------------------------------------------- importance, EDF
def test_importance_bars_are_the_importances(run, tmp_path):
    res, _ = run
    fig = P.importance(res, method="ped_anova")
    ax = fig.axes[0]
    imp = jaxhpo.importance(res, "ped_anova")
    bars = sorted(ax.patches, key=lambda b: -b.get_y())  # top to bottom
    np.testing.assert_allclose([b.get_width() for b in bars], list(imp.values()))
    labels = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in labels] == list(imp)
    save(fig, tmp_path, "importance")


def test_edf_is_the_fraction_of_trials_at_or_below(run, tmp_path):
    res, path = run
    vals = np.sort([t.value for t in res.history if t.status == "ok"])
    other = _history(np.arange(5.0)[:, None] * 2, ["minimize"])
    fig = P.edf({"random": res, "other": other})
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["random", "other"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), vals, rtol=1e-6)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.arange(1, len(vals) + 1) / len(vals))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.2, 0.4, 0.6, 0.8, 1.0])
    save(fig, tmp_path, "edf")
    assert P.edf(path).axes[0].lines[0].get_label() == "run 0"
    with pytest.raises(ValueError, match="labels"):
        P.edf([res, path], labels=["one"])


# ---------------------------------------------------------------------------- timeline
def _segment_history():
    """Hand-made slot records: trial 0 paused in slot 0 then promoted into slot 1 and
    completed; trial 1 stopped in slot 1; trial 2 exploited (PBT) in slot 0, then completed."""
    rec = [(0, "ok", [[0, 10.0, 12.0, "paused"], [1, 14.0, 17.0, None]]),
           (1, "stopped", [[1, 10.0, 14.0, None]]),
           (2, "ok", [[0, 12.0, 13.0, "exploited"], [0, 13.0, 16.0, None]])]
    trials = [Trial(number=n, generation=0, member=n, x=[0.5], params={"a": 0.5}, inactive=[],
                    metrics={}, values=[1.0], status=st, segments=seg) for n, st, seg in rec]
    return History(["v"], ["minimize"], trials)


def test_timeline_bars_follow_the_recorded_slots(tmp_path):
    fig = P.timeline(_segment_history())
    ax = fig.axes[0]
    got = {c.get_label(): sorted((p.get_y() + p.get_height() / 2, p.get_x(), p.get_width(),
                                  p.get_hatch()) for p in c) for c in ax.containers}
    assert got == {"completed (full budget)": [(0.0, 3.0, 3.0, None), (1.0, 4.0, 3.0, "///")],
                   "stopped by the scheduler": [(1.0, 0.0, 4.0, None)],
                   "paused at a rung": [(0.0, 0.0, 2.0, None)],
                   "PBT exploit (weights replaced)": [(0.0, 2.0, 1.0, None)]}
    save(fig, tmp_path, "timeline")


def test_tune_records_slots_and_the_timeline_draws_them(tmp_path):
    """The slot engine's records (HyperBand pauses and promotes): a slot runs one trial at a
    time; every stretch but a trial's last ended in a pause; the trials that reached a
    higher rung than the one they started at were promoted; the journal keeps the records."""
    import jax.numpy as jnp
    from jaxhpo.train import TrainingProgram

    prog = TrainingProgram(init=lambda key, hp: {"w": jnp.ones((2,))},
                           step=lambda s, key, hp: ({"w": s["w"] * (1.0 - hp["lr"])}, {}),
                           evaluate=lambda s, hp: {"loss": 0.5 * jnp.sum(s["w"] ** 2)})
    space = Space({"lr": Float(0.01, 0.2, log=True)})
    journal = tmp_path / "tune.jsonl"
    res = jaxhpo.tune(prog, space, random_search(space, 2), S.HyperBand(10, 30, eta=3),
                      max_trials=6, population_size=2, eval_every=10, metric="loss", key=5,
                      progress=False, test_split=False, journal=journal)
    segs = [(t, s) for t in res.history for s in t.segments]
    assert {s[0] for _, s in segs} == {0, 1}
    for slot in (0, 1):
        spans = sorted((s[1], s[2]) for _, s in segs if s[0] == slot)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    for t in res.history:
        assert all(s[3] == "paused" for s in t.segments[:-1])
        assert all(a[2] <= b[1] for a, b in zip(t.segments, t.segments[1:]))
    assert any(len(t.segments) > 1 for t in res.history)  # a promotion happened
    assert {t.number: t.segments for t in P.read_journal(journal).history} == \
        {t.number: t.segments for t in res.history}
    fig = P.timeline(journal)
    n_bars = sum(len(c) for c in fig.axes[0].containers)
    assert n_bars == len(segs)
    assert sum(p.get_hatch() == "///" for c in fig.axes[0].containers for p in c) == \
        sum(len(t.segments) - 1 for t in res.history)
