"""Shared test configuration: CPU, unoptimized XLA code, a persistent compilation cache,
float32 defaults."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One OpenBLAS thread: jax's CPU triangular solves with many right-hand sides call OpenBLAS, whose
# worker threads fight over a small machine's cores (a GP fit took ~7x the CPU time with them).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The suite compiles hundreds of small programs and runs each briefly, so compiling dominates
# its time on a CPU: without LLVM's optimization passes XLA compiles about a third faster
# (conformance + training tests, serial, cold cache: 348 s -> 236 s). Set XLA_FLAGS with your
# own --xla_backend_optimization_level to test optimized code instead.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()

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
