"""Tracking integrations against the real backends, read back with their own readers.

MLflow: a local SQLite tracking store (MLflow 3.18 keeps the ``mlruns/`` file store in
maintenance mode and refuses it by default), read through ``MlflowClient``. TensorBoard: event
files read by TensorBoard's ``EventAccumulator`` and the HParams plugin's own metadata parser.
"""

import math

import pytest

import jaxhpo
from jaxhpo import Categorical, Float, Int, Space
from jaxhpo import schedulers as S
from jaxhpo.integrations import MLflowCallback, TensorBoardCallback
from jaxhpo.strategies import random_search

SPACE = Space({"lr": Float(1e-3, 1.0, log=True), "n": Int(1, 4), "c": Categorical(["a", "b"])})


def curve_fn(p, trial):
    f = math.log10(p["lr"]) ** 2 + p["n"] + (p["c"] == "b")
    for s in range(10, 41, 10):
        trial.report(s, f + 1.0 / s)
        if trial.should_stop():
            raise jaxhpo.StopTrial
    return f + 1.0 / 40


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    d = tmp_path_factory.mktemp("track")
    uri = f"sqlite:///{d / 'mlflow.db'}"
    mlf = MLflowCallback(uri, experiment="e")
    tb = TensorBoardCallback(d / "tb", space=SPACE)
    res = jaxhpo.tune(curve_fn, SPACE, random_search(SPACE, 8),
                      S.ASHA(10, 40, eta=2, mode="stopping"), max_trials=32, key=1,
                      progress=False, callbacks=[mlf, tb])
    return res, uri, d / "tb"


def test_mlflow_holds_every_trial_with_params_metrics_and_curves(logged):
    from mlflow.tracking import MlflowClient

    res, uri, _ = logged
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("e")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {int(r.data.tags["jaxhpo.number"]): r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(children) == [t.number for t in res.history] and len(children) == 32
    for t in res.history:
        r = children[t.number]
        assert r.data.params == {k: str(v) for k, v in t.params.items()}
        assert r.data.tags["jaxhpo.status"] == t.status
        hist = client.get_metric_history(r.info.run_id, "curve")
        assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == \
            [(s, pytest.approx(v)) for s, v in res.curves[t.number]]


def test_tensorboard_hparams_table_lists_every_trial(logged):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata

    res, _, logdir = logged
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    sessions = {}
    for run, tags in content.items():
        for tag, blob in tags.items():
            if tag == metadata.SESSION_START_INFO_TAG:
                info = metadata.parse_session_start_info_plugin_data(blob)
                sessions[run] = {k: (v.number_value if v.HasField("number_value") else
                                     v.string_value) for k, v in info.hparams.items()}
    assert any(metadata.EXPERIMENT_TAG in tags for tags in content.values())
    assert len(sessions) == 32
    for t in res.history:
        got = sessions[f"trial-{t.number:05d}"]
        assert got["n"] == t.params["n"] and got["c"] == t.params["c"]
        assert got["lr"] == pytest.approx(t.params["lr"])
        scalars = mux.Scalars(f"trial-{t.number:05d}", "curve")
        assert [(e.step, pytest.approx(e.value)) for e in scalars] == \
            [(s, v) for s, v in res.curves[t.number]]
