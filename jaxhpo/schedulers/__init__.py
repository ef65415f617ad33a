"""Scheduler decision rules: pure, jit-able functions over fixed-shape per-slot arrays.

A population of ``P`` slots trains in lock-step; at each rung a rule decides per slot with an
``int32`` code, a :class:`Decision` value (``CONTINUE``, ``STOP``, ``PROMOTE``, ``EXPLOIT``,
``PAUSE``, ``DONE``; also exported by name) and, for PBT, which member to copy and the new
hyperparameters. The schedulers answer each round's reports with the same :class:`Decision`
values and hand out :class:`Job` records (ASHA's jitted rules return them too). Metrics are
minimized; NaN/inf = diverged, always stopped. Every rule compiles once for its shapes: state
that grows with the number of trials lives in fixed-capacity buffers with masks or counts.

* median stopping (Golovin et al. 2017): :func:`median_stopping`;
* learning-curve extrapolation (Domhan et al. 2015): :func:`fit_learning_curves`,
  :func:`curve_extrapolation_stopping`;
* successive halving and HyperBand (Jamieson & Talwalkar 2016; Li et al. 2018):
  :func:`hyperband_brackets`, :func:`successive_halving_rungs`,
  :func:`successive_halving_decision`;
* ASHA (Li et al. 2020): :func:`asha_init`, :func:`asha_report`, :func:`asha_get_job`,
  :func:`asha_get_jobs`, :func:`asha_stop_decision`;
* BOHB's budget choice and good/bad split (Falkner et al. 2018; the densities are TPE's):
  :func:`bohb_init`, :func:`bohb_observe`, :func:`bohb_model_data`;
* PBT (Jaderberg et al. 2017): :func:`pbt_exploit`, :func:`pbt_perturb`,
  :func:`pbt_record_init`, :func:`pbt_record_update`, :func:`pbt_lineage`, :func:`pbt_schedules`.

Schedulers for :func:`jaxhpo.tune` (job logic around those rules): :class:`Scheduler` (no
early stopping), :class:`MedianStopping`, :class:`CurveStopping`, :class:`ASHA`,
:class:`HyperBand`, :class:`BOHB`, :class:`PBT`.
"""

from jaxhpo.schedulers._asha import (ASHAState, asha_get_job, asha_get_jobs, asha_init,
                                     asha_report, asha_stop_decision)
from jaxhpo.schedulers._bohb import (BOHBModelData, BOHBObservations, bohb_init,
                                     bohb_model_data, bohb_observe)
from jaxhpo.schedulers._curves import (FAMILY_NAMES, CurveDecision, CurvePrediction,
                                       curve_extrapolation_stopping, fit_learning_curves)
from jaxhpo.schedulers._common import (CONTINUE, DECISION_NAMES, DONE, EXPLOIT, PAUSE, PROMOTE,
                                       STOP, Decision, Job)
from jaxhpo.schedulers._hyperband import (Bracket, Rung, hyperband_brackets,
                                          successive_halving_decision, successive_halving_rungs)
from jaxhpo.schedulers._median import median_stopping, running_averages
from jaxhpo.schedulers._policies import (ASHA, BOHB, PBT, CurveStopping, HyperBand,
                                          MedianStopping, Scheduler)
from jaxhpo.schedulers._pbt import (PBTRecord, pbt_exploit, pbt_lineage, pbt_perturb,
                                    pbt_record_init, pbt_record_update, pbt_schedules)

__all__ = [
    "ASHA", "BOHB", "CurveStopping", "HyperBand", "MedianStopping", "PBT", "Scheduler",
    "Decision", "CONTINUE", "STOP", "PROMOTE", "EXPLOIT", "PAUSE", "DONE", "DECISION_NAMES", "Job",
    "ASHAState", "BOHBModelData", "BOHBObservations", "Bracket", "CurveDecision",
    "CurvePrediction", "FAMILY_NAMES", "PBTRecord", "Rung",
    "asha_get_job", "asha_get_jobs", "asha_init", "asha_report",
    "asha_stop_decision", "bohb_init", "bohb_model_data", "bohb_observe",
    "curve_extrapolation_stopping", "fit_learning_curves", "hyperband_brackets", "median_stopping",
    "pbt_exploit", "pbt_lineage", "pbt_perturb", "pbt_record_init", "pbt_record_update",
    "pbt_schedules",
    "running_averages", "successive_halving_decision", "successive_halving_rungs",
]
