"""Optuna interop: write a jaxhpo History into an Optuna study (any storage), read one back.

With a study in an Optuna storage (SQLite, PostgreSQL, a journal file...), ``optuna-dashboard``
and ``optuna.visualization`` work on a jaxhpo run; a study read back seeds a jaxhpo strategy
(``minimize(..., warm_start=History.from_optuna(study, space))``). Optuna is an optional
dependency, imported here only.

Mapping: ``Float`` -> ``FloatDistribution(low, high, log)``, ``Int`` -> ``IntDistribution``,
``Categorical`` -> ``CategoricalDistribution`` (choices Optuna cannot hold, i.e. other than
``None``/``bool``/``int``/``float``/``str``, go in as their ``repr``); inactive conditional
parameters are left out of the trial's params, as Optuna does. Status: ``ok`` -> COMPLETE,
``stopped`` -> PRUNED, ``failed``/``diverged`` -> FAIL. Every metric goes to the trial's user
attributes (``metric:<name>``), with fidelity, number, generation and member. Constraint values
(``Trial.constraints``, feasible when ``<= 0`` in both libraries) go where Optuna's samplers put
``constraints_func``'s values, so ``study.best_trial`` and the dashboard filter the same trials:
``create_trial(constraints={name: value})`` (Optuna >= 5) or the ``"constraints"`` system
attribute (a list, earlier versions); both are read back.
"""

from __future__ import annotations

import math

import numpy as np

from jaxhpo._history import DIVERGED, FAILED, OK, STOPPED, History, Trial


def _optuna():
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Optuna interop needs optuna: pip install optuna") from e
    return optuna


def _plain(c) -> bool:
    return c is None or isinstance(c, (bool, int, float, str))


def distributions(space) -> dict:
    """``{name: optuna distribution}`` of a Space."""
    from jaxhpo._space import Categorical, Int

    optuna = _optuna()
    out = {}
    for n in space.names:
        p = space[n]
        if isinstance(p, Categorical):
            out[n] = optuna.distributions.CategoricalDistribution(
                [c if _plain(c) else repr(c) for c in p.choices])
        elif isinstance(p, Int):
            out[n] = optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[n] = optuna.distributions.FloatDistribution(float(p.low), float(p.high),
                                                            log=p.log)
    return out


def to_optuna(history: History, space, study, *, study_name: str | None = None,
              curves: dict | None = None):
    """Add every trial of ``history`` to an Optuna study; returns the study.

    Args:
      history: the trials (``Result.history``, ``TuneResult.history`` or a journal's).
      space: the run's Space (for the parameter distributions).
      study: an ``optuna.Study``, or a storage URL (``"sqlite:///run.db"``) where a study named
        ``study_name`` (default ``"jaxhpo"``) is created with the history's directions.
      curves: ``{trial number: curve}`` (``TuneResult.curves``: values per report, or
        ``[step, value]`` pairs) written as intermediate values.
    """
    optuna = _optuna()
    if isinstance(study, str):
        study = optuna.create_study(storage=study, study_name=study_name or "jaxhpo",
                                    directions=list(history.directions))
    elif not isinstance(study, optuna.Study):
        raise TypeError(f"study must be an optuna.Study or a storage URL, got "
                        f"{type(study).__name__}")
    if list(study.directions) != [optuna.study.StudyDirection.MINIMIZE if d == "minimize"
                                  else optuna.study.StudyDirection.MAXIMIZE
                                  for d in history.directions]:
        raise ValueError(f"the study's directions {study.directions} differ from the run's "
                         f"{history.directions}")
    if len(history.objectives) > 1:
        study.set_metric_names(list(history.objectives))
    dists = distributions(space)
    state = optuna.trial.TrialState
    import inspect

    named = "constraints" in inspect.signature(optuna.trial.create_trial).parameters
    for t in history:
        params = {n: (v if _plain(v) else repr(v)) for n, v in t.params.items() if n in dists}
        ok = t.values is not None and all(math.isfinite(v) for v in t.values)
        status = {OK: state.COMPLETE, STOPPED: state.PRUNED}.get(t.status, state.FAIL)
        if status == state.COMPLETE and not ok:
            status = state.FAIL
        values = list(t.values) if status == state.COMPLETE else None
        inter = {}
        for i, c in enumerate((curves or {}).get(t.number, [])):
            step, v = (c[0], c[1]) if isinstance(c, (list, tuple)) else (i + 1, c)
            if v is not None and math.isfinite(v):
                inter[int(step)] = float(v)
        attrs = {"number": t.number, "generation": t.generation, "member": t.member,
                 "fidelity": t.fidelity, "jaxhpo_status": t.status, "error": t.error,
                 **{f"metric:{k}": (v if math.isfinite(v) else None)
                    for k, v in t.metrics.items()}}
        extra = {}
        if t.constraints is not None:
            names = history.constraints if len(history.constraints) == len(t.constraints) \
                else [str(i) for i in range(len(t.constraints))]
            extra = ({"constraints": dict(zip(names, t.constraints))} if named else
                     {"system_attrs": {"constraints": list(t.constraints)}})
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={n: dists[n] for n in params}, values=values,
            state=status, intermediate_values=inter, user_attrs=attrs, **extra))
    return study


def from_optuna(study, space) -> History:
    """The finished trials of an Optuna study as a jaxhpo History on ``space`` (e.g. to
    warm-start a strategy). Parameters must fit the space; running trials are left out."""
    optuna = _optuna()
    state = optuna.trial.TrialState
    names = study.metric_names or (["value"] if len(study.directions) == 1 else
                                   [f"objective_{i}" for i in range(len(study.directions))])
    dirs = ["minimize" if d == optuna.study.StudyDirection.MINIMIZE else "maximize"
            for d in study.directions]
    history = History(list(names), dirs)
    status_of = {state.COMPLETE: OK, state.PRUNED: STOPPED, state.FAIL: FAILED}
    for i, ot in enumerate(study.get_trials(deepcopy=False)):
        cons = _constraints_of(ot)
        if cons and not history.constraints:
            history.constraints = list(cons)
        if ot.state not in status_of:
            continue
        params = {n: _choice(space, n, v) for n, v in ot.params.items()}
        x = space.encode(params)
        status = status_of[ot.state]
        values = list(ot.values) if ot.values is not None else None
        if status == STOPPED and values is None and ot.intermediate_values:
            values = [ot.intermediate_values[max(ot.intermediate_values)]]
        if ot.user_attrs.get("jaxhpo_status") == DIVERGED:
            status = DIVERGED
        metrics = {k[7:]: (math.nan if v is None else v) for k, v in ot.user_attrs.items()
                   if k.startswith("metric:")}
        if values is not None:
            metrics.update(zip(names, values))
        full = space.to_params(np.asarray(x))
        history.append(Trial(
            number=i, generation=ot.user_attrs.get("generation", i),
            member=ot.user_attrs.get("member", 0), x=[float(v) for v in x], params=full,
            inactive=space.inactive_names(full), metrics=metrics, values=values,
            status=status, error=ot.user_attrs.get("error"),
            fidelity=ot.user_attrs.get("fidelity"),
            constraints=[float(v) for v in cons.values()] if cons else None,
            timestamp=ot.datetime_complete.timestamp() if ot.datetime_complete else 0.0))
    return history


def _constraints_of(ot) -> dict:
    """An Optuna trial's constraint values ``{name: value}`` (either storage format)."""
    cons = getattr(ot, "constraints", None)  # Optuna >= 5
    if isinstance(cons, dict):
        return dict(cons)
    old = ot.system_attrs.get("constraints")
    return {str(i): v for i, v in enumerate(old)} if old is not None else {}


def _choice(space, name, v):
    """Optuna's stored value -> the space's own choice (``repr``-ed choices mapped back)."""
    from jaxhpo._space import Categorical

    if name not in space.names:
        raise ValueError(f"the study has parameter {name!r}, which the space lacks")
    p = space[name]
    if isinstance(p, Categorical) and v not in p.choices:
        for c in p.choices:
            if repr(c) == v:
                return c
    return v
