"""Tracking integrations, as callbacks of :func:`jaxhpo.minimize` and :func:`jaxhpo.tune`.

* :class:`MLflowCallback`: one parent run per study, one child run per trial with its params,
  every metric, and (``tune``) the learning curve as step metrics. Needs ``mlflow`` (or
  ``mlflow-skinny``): ``pip install 'jaxhpo[mlflow]'``.
* :class:`TensorBoardCallback`: event files TensorBoard reads, with the HParams plugin's
  experiment config and one session per trial, so the HParams dashboard's table lists every
  trial; learning curves as scalars. Needs ``tensorboard`` (not TensorFlow):
  ``pip install 'jaxhpo[tensorboard]'``.

Both are plain callbacks (``cb(event)``, see :class:`jaxhpo.RunEvent`); the driver calls their
``close()`` when the run ends. W&B is not included: its client needs a W&B server or account
for anything but offline files, which this project cannot test against.

Example:
  >>> cb = jaxhpo.integrations.MLflowCallback("sqlite:///mlflow.db", experiment="digits")
  >>> jaxhpo.minimize(fn, space, strategy, num_generations=8, callbacks=[cb])
"""

from __future__ import annotations

import math
import os
import time

__all__ = ["MLflowCallback", "TensorBoardCallback"]


def _scalar_params(params: dict) -> dict:
    return {k: (v if isinstance(v, (bool, int, float, str)) else repr(v))
            for k, v in params.items()}


def _curve_points(curve) -> list[tuple[int, float]]:
    """A tune curve (values per report, or ``[step, value]`` pairs) as ``(step, value)``."""
    out = []
    for i, c in enumerate(curve or []):
        step, v = (c[0], c[1]) if isinstance(c, (list, tuple)) else (i + 1, c)
        if v is not None and math.isfinite(v):
            out.append((int(step), float(v)))
    return out


class MLflowCallback:
    """Log a run to MLflow: a parent run for the study, a child run per trial.

    Args:
      tracking_uri: where to log (e.g. ``"sqlite:///mlflow.db"``, an MLflow server URL);
        ``None``: MLflow's default.
      experiment: the MLflow experiment name (created if missing).
      run_name: the parent run's name (default ``"jaxhpo"``).
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "jaxhpo",
                 run_name: str = "jaxhpo"):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise ImportError("MLflowCallback needs mlflow: pip install 'jaxhpo[mlflow]' (or "
                              "mlflow-skinny)") from e
        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (found.experiment_id if found is not None
                              else self.client.create_experiment(experiment))
        self.run_name, self.parent = run_name, None

    def __call__(self, event) -> None:
        if self.parent is None:
            self.parent = self.client.create_run(self.experiment_id, run_name=self.run_name,
                                                 tags={"jaxhpo.driver": event.driver})
        for t in event.trials:
            self._trial(t, event.curves.get(t.number))

    def _trial(self, t, curve) -> None:
        from mlflow.entities import Metric, Param

        run = self.client.create_run(
            self.experiment_id, run_name=f"trial-{t.number}",
            tags={"mlflow.parentRunId": self.parent.info.run_id, "jaxhpo.status": t.status,
                  "jaxhpo.number": str(t.number)})
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, int(t.fidelity or 0)) for k, v in t.metrics.items()
                   if math.isfinite(v)]
        metrics += [Metric("curve", v, now, s) for s, v in _curve_points(curve)]
        params = [Param(k, str(v)) for k, v in _scalar_params(t.params).items()]
        self.client.log_batch(run.info.run_id, metrics=metrics, params=params)
        self.client.set_terminated(run.info.run_id,
                                   "FINISHED" if t.status in ("ok", "stopped") else "FAILED")

    def close(self) -> None:
        if self.parent is not None:
            self.client.set_terminated(self.parent.info.run_id, "FINISHED")


class TensorBoardCallback:
    """Write TensorBoard event files: the HParams experiment and one session per trial.

    Args:
      logdir: the folder TensorBoard is pointed at (``tensorboard --logdir``).
      space: the search space, for the HParams domains (``None``: domains are left out).
    """

    def __init__(self, logdir: str | os.PathLike, space=None):
        try:
            from tensorboard.plugins.hparams import summary_v2  # noqa: F401
            from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa
        except ImportError as e:
            raise ImportError("TensorBoardCallback needs tensorboard: pip install "
                              "'jaxhpo[tensorboard]'") from e
        self.logdir, self.space = os.fspath(logdir), space
        self._config_written = False

    def _write(self, folder, summaries_with_steps) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        writer = EventFileWriter(folder)
        for summary, step in summaries_with_steps:
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()

    def _config(self, metric_names) -> None:
        from tensorboard.plugins.hparams import summary_v2 as hp

        hparams = []
        for n in (self.space.names if self.space is not None else ()):
            p = self.space[n]
            if hasattr(p, "choices"):
                domain = hp.Discrete([c if isinstance(c, (bool, int, float, str)) else repr(c)
                                      for c in p.choices])
            elif type(p).__name__ == "Int":
                domain = hp.IntInterval(int(p.low), int(p.high))
            else:
                domain = hp.RealInterval(float(p.low), float(p.high))
            hparams.append(hp.HParam(n, domain))
        metrics = [hp.Metric(m) for m in metric_names]
        self._write(self.logdir, [(hp.hparams_config_pb(hparams, metrics), 0)])
        self._config_written = True

    def __call__(self, event) -> None:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.hparams import summary_v2 as hp

        if not self._config_written and event.trials:
            self._config(sorted({k for t in event.trials for k in t.metrics}))
        for t in event.trials:
            session = [(hp.hparams_pb(_scalar_params(t.params), trial_id=f"trial-{t.number}"),
                        0)]
            step = int(t.fidelity or 0)
            for k, v in t.metrics.items():
                if math.isfinite(v):
                    session.append((summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                        tag=k, simple_value=float(v))]), step))
            for s, v in _curve_points(event.curves.get(t.number)):
                session.append((summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                    tag="curve", simple_value=v)]), s))
            self._write(os.path.join(self.logdir, f"trial-{t.number:05d}"), session)

    def close(self) -> None:
        pass
