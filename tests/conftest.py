"""Shared test configuration: CPU, unoptimized XLA code, a persistent compilation cache,
float32 defaults, and a session-start check that every package of the ``test`` extra is
installed (a missing one fails the run; no test skips for it)."""

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
import pytest  # noqa: E402

# One cache directory per pytest-xdist worker: jax writes cache entries without a lock, so two
# processes sharing a directory could read each other's half-written files.
_cache = os.path.join(os.path.dirname(__file__), "..", ".jax_cache",
                      os.environ.get("PYTEST_XDIST_WORKER", "main"))
try:
    jax.config.update("jax_compilation_cache_dir", os.path.abspath(_cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
except Exception:  # pragma: no cover - older/newer jax without these options
    pass


# ------------------------------------------------------------------ declared test dependencies
_PYPROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pyproject.toml")


def _test_requirements(path: str = _PYPROJECT) -> list[str]:
    """The requirement strings of pyproject.toml's ``test`` extra (``[]`` without the file)."""
    if not os.path.isfile(path):  # tests copied out of a source checkout
        return []
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import re

        text = open(path, encoding="utf-8").read()
        found = re.search(r"^test\s*=\s*\[(.*?)\]", text, re.S | re.M)
        return re.findall(r'"([^"]+)"', found.group(1)) if found else []
    with open(path, "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["test"]


def missing_test_requirements(requirements=None, do_import: bool = True) -> list[str]:
    """One line per requirement of the ``test`` extra that is not installed, is too old, or
    whose top-level module does not import."""
    import importlib
    import importlib.metadata as md

    from packaging.requirements import Requirement

    owners: dict[str, list[str]] = {}
    for module, dists in md.packages_distributions().items():
        for d in dists:
            owners.setdefault(d.lower().replace("_", "-"), []).append(module)
    out = []
    for text in _test_requirements() if requirements is None else requirements:
        req = Requirement(text)
        name = req.name.lower().replace("_", "-")
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            out.append(f"{text}: not installed")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(f"{text}: version {version} is installed")
            continue
        modules = [m for m in owners.get(name, []) if not m.startswith("_")]
        own = name.replace("-", "_")
        for module in ([own] if own in modules else sorted(modules)) if do_import else []:
            try:
                importlib.import_module(module)
            except Exception as e:  # noqa: BLE001 - any import failure is a broken install
                out.append(f"{text}: import {module} fails: {type(e).__name__}: {e}")
    return out


def pytest_sessionstart(session):
    """Fail the run, before any test, when a dependency of the ``test`` extra is missing:
    tests that need one must fail, never skip (``pytest.importorskip`` would hide it)."""
    # The controller imports each package; pytest-xdist workers only check the metadata.
    problems = missing_test_requirements(do_import="PYTEST_XDIST_WORKER" not in os.environ)
    if problems:
        raise pytest.UsageError(
            "the test suite needs every package of pyproject.toml's `test` extra:\n  "
            + "\n  ".join(problems) + "\ninstall them with: pip install -e '.[test]'")
