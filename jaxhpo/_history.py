"""The record of every trial of a run, with export to JSON, CSV and pandas."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

OK, FAILED, DIVERGED, STOPPED = "ok", "failed", "diverged", "stopped"
STATUSES = (OK, FAILED, DIVERGED, STOPPED)


@dataclass
class Trial:
    """One evaluated configuration.

    Attributes:
      number: global trial number, ``generation * population_size + member``.
      generation: the generation (``ask``) that proposed it.
      member: its row in that generation's population.
      x: its unit-cube point (``d`` floats).
      params: the active parameters' values (plain Python values).
      inactive: names of the conditional parameters that were inactive.
      metrics: every metric the objective returned (``NaN`` where non-finite).
      values: the objective value(s), as returned (not negated for maximization); ``None`` when
        the trial failed.
      status: ``"ok"``, ``"failed"`` (the objective raised), ``"diverged"`` (NaN/inf objective) or
        ``"stopped"`` (ended early by a scheduler).
      error: the exception message of a failed trial.
      wall_time: seconds of the evaluation call that produced it (for a vmapped JAX objective,
        the whole generation's batch).
      timestamp: Unix time at which the trial completed.
      fidelity: training budget used (for multi-fidelity runs), else ``None``.
      constraints: the run's constraint values (``constraints=[...]`` of the drivers, in that
        order), as returned: feasible when every one is ``<= 0`` (Optuna's convention), ``NaN``
        where the objective did not return one; ``None`` for a run without constraints (or a
        trial that failed before returning any).
      segments: ``jaxhpo.tune`` on a population: where and when the trial trained, one
        ``[slot, start, end, how]`` per stretch in a slot (Unix times); ``how`` is ``"paused"``
        (parked at a rung; a later stretch is its promotion), ``"exploited"`` (PBT copied
        another member's weights into it; the next stretch continues in the same slot) or
        ``None`` for the last stretch. ``None`` for other runs and older journals.
    """

    number: int
    generation: int
    member: int
    x: list[float]
    params: dict[str, Any]
    inactive: list[str]
    metrics: dict[str, float]
    values: list[float] | None
    status: str
    error: str | None = None
    wall_time: float = 0.0
    timestamp: float = 0.0
    fidelity: float | None = None
    constraints: list[float] | None = None
    segments: list[list] | None = None

    @property
    def feasible(self) -> bool:
        """Whether every constraint value is ``<= 0`` (``True`` without constraints; a NaN
        value is a violation)."""
        return self.constraints is None or all(c <= 0 for c in self.constraints)

    @property
    def violation(self) -> float:
        """The overall constraint violation ``sum(max(c, 0))`` (``inf`` if a value is NaN;
        ``0`` for a feasible trial), as in Deb et al. (2002)."""
        if self.constraints is None:
            return 0.0
        if any(math.isnan(c) for c in self.constraints):
            return math.inf
        return float(sum(max(c, 0.0) for c in self.constraints))

    @property
    def value(self) -> float | None:
        """The single objective value (``None`` for failed trials)."""
        if self.values is None:
            return None
        if len(self.values) != 1:
            raise ValueError("this trial has several objective values; use trial.values")
        return self.values[0]

    def to_record(self) -> dict:
        return {k: _json_safe(v) for k, v in asdict(self).items()}

    @classmethod
    def from_record(cls, rec: dict) -> "Trial":
        rec = {k: v for k, v in rec.items() if k in cls.__dataclass_fields__}
        rec["metrics"] = {k: (math.nan if v is None else v) for k, v in rec["metrics"].items()}
        if rec.get("values") is not None:
            rec["values"] = [math.nan if v is None else v for v in rec["values"]]
        if rec.get("constraints") is not None:
            rec["constraints"] = [math.nan if v is None else v for v in rec["constraints"]]
        return cls(**rec)


def _json_safe(v):
    """NaN/inf become None so the journal is strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def feasible_or_raise(done: Sequence[Trial], names: Sequence[str] = ()) -> list[Trial]:
    """The feasible trials among the completed ``done``; a ValueError naming the
    least-violating trial when there is none (no best trial exists then, as in Optuna)."""
    ok = [t for t in done if t.feasible]
    if done and not ok:
        least = min(done, key=lambda t: t.violation)
        raise ValueError(
            f"no feasible trial: all {len(done)} completed trials violate the constraints "
            f"{list(names) or ''} (feasible when every value is <= 0), so there is no best "
            f"trial; the least-violating is trial {least.number} (constraint values "
            f"{least.constraints}, params {least.params}). Run longer, use a strategy built "
            "with num_constraints=k, or relax the constraints")
    return ok


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """``bool[n]``: rows of ``values f[n, m]`` (minimized) that no other row dominates."""
    v = np.asarray(values, np.float64)
    n = v.shape[0]
    keep = np.ones(n, bool)
    for i in range(n):
        if not keep[i]:
            continue
        dominates_i = np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        if dominates_i.any():
            keep[i] = False
    return keep


@dataclass
class History:
    """All trials of a run, in completion order.

    Attributes:
      objectives: the names of the objective metrics.
      directions: ``"minimize"``/``"maximize"`` per objective.
      trials: the :class:`Trial` records.
      constraints: the names of the constraint metrics (feasible when ``<= 0``; each trial
        holds its values in ``Trial.constraints``). ``best_trial``, ``best_trials`` and
        ``best_so_far`` consider feasible trials only.
    """

    objectives: list[str]
    directions: list[str]
    trials: list[Trial] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self) -> Iterator[Trial]:
        return iter(self.trials)

    def __getitem__(self, i) -> Trial:
        return self.trials[i]

    def append(self, trial: Trial) -> None:
        self.trials.append(trial)

    def completed(self) -> list[Trial]:
        """Trials with status ``ok`` (or ``stopped``, which carry a valid value)."""
        return [t for t in self.trials if t.status in (OK, STOPPED) and t.values is not None]

    def minimization_values(self, trials: Sequence[Trial] | None = None) -> np.ndarray:
        """``f64[n, m]`` objective values oriented so smaller is better."""
        trials = self.completed() if trials is None else trials
        sign = np.array([1.0 if d == "minimize" else -1.0 for d in self.directions])
        if not trials:
            return np.zeros((0, len(self.objectives)))
        return np.array([t.values for t in trials], np.float64) * sign

    def feasible(self) -> list[Trial]:
        """The completed trials whose every constraint value is ``<= 0`` (all completed trials
        of a run without constraints)."""
        return [t for t in self.completed() if t.feasible]

    def best_trial(self) -> Trial:
        """The best completed feasible trial of a single-objective run.

        Raises:
          ValueError: no trial completed, or (with constraints) none is feasible: as Optuna's
            ``study.best_trial`` does, there is then no best trial; the message names the
            least-violating one (``min(trials, key=lambda t: t.violation)``).
        """
        if len(self.objectives) != 1:
            raise ValueError("best_trial is for one objective; use best_trials() (Pareto front)")
        done = self._feasible_or_raise()
        return done[int(np.argmin(self.minimization_values(done)[:, 0]))]

    def _feasible_or_raise(self) -> list[Trial]:
        done = self.completed()
        if not done:
            raise ValueError("no trial completed successfully, so there is no best trial")
        return feasible_or_raise(done, self.constraints)

    def best_trials(self) -> list[Trial]:
        """The non-dominated completed feasible trials (the Pareto front; the best one for
        m = 1); empty when no trial is feasible (as Optuna's ``study.best_trials``)."""
        done = self.feasible()
        if not done:
            return []
        mask = pareto_mask(self.minimization_values(done))
        return [t for t, k in zip(done, mask) if k]

    def best_so_far(self) -> np.ndarray:
        """``f64[n_trials]`` running best (in the user's direction) of a single objective."""
        if len(self.objectives) != 1:
            raise ValueError("best_so_far is for one objective")
        sign = 1.0 if self.directions[0] == "minimize" else -1.0
        v = np.array([sign * t.values[0] if t.status == OK and t.values is not None
                      and t.feasible else np.inf for t in self.trials])
        return sign * np.minimum.accumulate(v) if len(v) else v

    def x_array(self) -> np.ndarray:
        """``f32[n_trials, d]`` unit-cube points of all trials."""
        return np.array([t.x for t in self.trials], np.float32)

    # ----------------------------------------------------------------- Optuna
    def to_optuna(self, study, space, *, study_name: str | None = None, curves=None):
        """Write every trial into an Optuna study (an ``optuna.Study`` or a storage URL such as
        ``"sqlite:///run.db"``), so ``optuna-dashboard`` and ``optuna.visualization`` show the
        run; see :mod:`jaxhpo._optuna` for the mapping. Returns the study."""
        from jaxhpo._optuna import to_optuna

        return to_optuna(self, space, study, study_name=study_name, curves=curves)

    @classmethod
    def from_optuna(cls, study, space) -> "History":
        """An Optuna study's finished trials on ``space`` (e.g. ``warm_start=`` of a run)."""
        from jaxhpo._optuna import from_optuna

        return from_optuna(study, space)

    # ----------------------------------------------------------------- export
    def to_records(self) -> list[dict]:
        return [t.to_record() for t in self.trials]

    def to_json(self, path: str | None = None) -> str:
        """All trials as a JSON document (also written to ``path`` when given)."""
        doc = json.dumps({"objectives": self.objectives, "directions": self.directions,
                          **({"constraints": self.constraints} if self.constraints else {}),
                          "trials": self.to_records()}, indent=1)
        if path is not None:
            with open(path, "w") as f:
                f.write(doc)
        return doc

    def _flat_rows(self) -> tuple[list[str], list[dict]]:
        params = list(dict.fromkeys(k for t in self.trials for k in t.params))
        metrics = list(dict.fromkeys(k for t in self.trials for k in t.metrics))
        cols = (["number", "generation", "member", "status"] + self.objectives
                + [f"params_{p}" for p in params] + [f"metrics_{m}" for m in metrics]
                + ["fidelity", "wall_time", "timestamp", "error"]
                + (["feasible"] if any(t.constraints is not None for t in self.trials) else []))
        rows = []
        for t in self.trials:
            r = {"number": t.number, "generation": t.generation, "member": t.member,
                 "status": t.status, "fidelity": t.fidelity, "wall_time": t.wall_time,
                 "timestamp": t.timestamp, "error": t.error}
            if "feasible" in cols:
                r["feasible"] = t.feasible
            for i, name in enumerate(self.objectives):
                r[name] = None if t.values is None else t.values[i]
            r.update({f"params_{p}": t.params.get(p) for p in params})
            r.update({f"metrics_{m}": t.metrics.get(m) for m in metrics})
            rows.append(r)
        return cols, rows

    def to_csv(self, path: str) -> None:
        """One row per trial: status, objective(s), ``params_*``, ``metrics_*`` columns."""
        cols, rows = self._flat_rows()
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)

    def to_dataframe(self):
        """The same table as :meth:`to_csv` as a ``pandas.DataFrame`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("History.to_dataframe needs pandas: pip install pandas") from e
        cols, rows = self._flat_rows()
        return pd.DataFrame(rows, columns=cols)
