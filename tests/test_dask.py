"""minimize on a real Dask cluster (distributed.LocalCluster, 2 worker processes).

Independent truth: the sequential run with the same key. A worker process that dies mid-trial
is replaced by Dask, which reruns the trial elsewhere (Dask's ``allowed-failures`` rule), so the
run still equals the sequential one; a resumed run evaluates only what the journal lacks.
"""

import os

import distributed  # the 'dask' extra, installed by the test command
import pytest

import jaxhpo
from jaxhpo import Float, Space
from jaxhpo.strategies import tpe


SPACE = Space({"a": Float(0.0, 1.0), "b": Float(0.0, 1.0)})


def objective(p, marker=None):
    if marker is not None and p["a"] > 0.5 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # this worker process dies mid-trial, once
    return (p["a"] - 0.3) ** 2 + (p["b"] - 0.6) ** 2


class Dying:
    """An objective whose first trial with a > 0.5 kills its worker process."""

    def __init__(self, marker):
        self.marker = marker

    def __call__(self, p):
        return objective(p, self.marker)


def run(fn, executor=None, **kw):
    return jaxhpo.minimize(fn, SPACE, tpe(SPACE, 4, n_startup_trials=4), num_generations=3,
                           key=7, progress=False, executor=executor, **kw)


def rows(res):
    return [(t.number, t.x, t.values, t.status) for t in res.history]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_cluster_equals_sequential_despite_a_dying_worker(client, tmp_path):
    reference = run(objective)
    marker = str(tmp_path / "died")
    res = run(Dying(marker), client.get_executor(), journal=tmp_path / "j.jsonl")
    assert os.path.exists(marker), "a worker really died"
    assert rows(res) == rows(reference)
    # resume: the journal without its last generation's state and two of its trials
    lines = (tmp_path / "j.jsonl").read_text().splitlines(True)
    keep = [ln for ln in lines if not ('"number": 9,' in ln or '"number": 10,' in ln
                                       or '"generation": 2, "leaves"' in ln)]
    (tmp_path / "k.jsonl").write_text("".join(keep))
    counted = str(tmp_path / "count")

    again = run(Counting(counted), client.get_executor(), journal=tmp_path / "k.jsonl",
                resume=True)
    assert rows(again) == rows(reference)
    assert len(os.listdir(counted)) == 2


class Counting:
    """Counts evaluations as files in a folder (visible across worker processes)."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def __call__(self, p):
        open(os.path.join(self.folder, f"{p['a']:.9f}-{p['b']:.9f}"), "w").close()
        return objective(p)
