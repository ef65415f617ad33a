"""Gaussian processes and acquisition functions as fixed-shape JAX programs.

* kernels for mixed spaces: :class:`InputSpec` (from a :class:`jaxhpo.Space`),
  :func:`kernel_matrix` (ARD Matern-5/2 or RBF, integer rounding, categorical overlap);
* the GP: :class:`GPParams`, :func:`log_marginal_likelihood`, :func:`log_prior`, :func:`fit`
  (MAP by multi-start L-BFGS), :func:`posterior` (factor once) and :func:`predict` (many times);
* acquisitions: :func:`log_ei`, :func:`ei`, :func:`ucb`, :func:`pi`, :func:`log_pi`,
  :func:`log_h`.

The Bayesian-optimization strategy built on these is :func:`jaxhpo.strategies.gp_bo`; how it
runs them in float64 without a global x64 flag (and keeps float64 out of its state) is
documented in one place, ``jaxhpo/gp/_precision.py``.
"""

from jaxhpo.gp._acquisition import (ACQUISITIONS, acquisition_value, ei, log1mexp, log_ei,
                                    log_h, log_pi, pi, ucb)
from jaxhpo.gp._gp import (GPParams, Posterior, append_rows, cholesky_with_retries, cross_cov,
                           fit, log_marginal_likelihood, log_prior, posterior, predict,
                           sample_prior, standardize)
from jaxhpo.gp._kernels import (InputSpec, correlation, kernel_matrix, scaled_sq_dist,
                                snap_to_bins, transform_inputs)

__all__ = [
    "ACQUISITIONS", "GPParams", "InputSpec", "Posterior", "acquisition_value", "append_rows",
    "cholesky_with_retries", "correlation", "cross_cov", "ei", "fit", "kernel_matrix",
    "log1mexp", "log_ei", "log_h", "log_marginal_likelihood", "log_pi", "log_prior", "pi",
    "posterior", "predict", "sample_prior", "scaled_sq_dist", "snap_to_bins", "standardize",
    "transform_inputs", "ucb",
]
