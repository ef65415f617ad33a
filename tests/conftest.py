"""Shared test configuration: CPU, a persistent compilation cache, float32 defaults."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One OpenBLAS thread: jax's CPU triangular solves with many right-hand sides call OpenBLAS, whose
# worker threads fight over a small machine's cores (a GP fit took ~7x the CPU time with them).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

# One cache directory per pytest-xdist worker: jax writes cache entries without a lock, so two
# processes sharing a directory could read each other's half-written files.
_cache = os.path.join(os.path.dirname(__file__), "..", ".jax_cache",
                      os.environ.get("PYTEST_XDIST_WORKER", "main"))
try:
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(_cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
except Exception:  # pragma: no cover - older/newer jax without these options
    pass
