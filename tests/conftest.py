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
# XLA's older CPU code emitters compile this suite's programs about 2.5x faster than the
# default fusion emitters (gp_bo's ask 6.2 -> 2.2 CPU-s; the whole suite 783 -> 520 s on 2
# cores) with the same per-operation accuracy (max ulp error of exp, log, tanh, sqrt, rsqrt,
# division, log1p and erf measured equal). Results differ from the default emitters by rounding
# only; a test that compares two *different* programs bit for bit compiles them with the
# default emitters (``helpers.DEFAULT_EMITTERS``). XLA aborts on a flag it does not know, so
# the flag is used only where a subprocess accepts it (once, in the process that starts the
# pytest-xdist workers; they inherit the environment), and never when you set it yourself;
# JAXHPO_TEST_EMITTERS=default runs the suite with XLA's default emitters.
_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
if ("xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", "")
        and "JAXHPO_TEST_EMITTERS" not in os.environ):
    import subprocess
    import sys

    _flags = f"{os.environ['XLA_FLAGS']} {_EMITTERS}"
    try:
        _ok = subprocess.run(
            [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(2).block_until_ready()"],
            env={**os.environ, "XLA_FLAGS": _flags, "JAX_PLATFORMS": "cpu"},
            capture_output=True, timeout=300).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        _ok = False
    os.environ["JAXHPO_TEST_EMITTERS"] = "legacy" if _ok else "default"
    if _ok:
        os.environ["XLA_FLAGS"] = _flags

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


def _declared_modules(requirements=None) -> dict[str, str]:
    """Top-level module -> requirement string, for the packages of the ``test`` extra (the
    modules each installed distribution provides; its own name when it is not installed)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    owners: dict[str, list[str]] = {}
    for module, dists in md.packages_distributions().items():
        for d in dists:
            owners.setdefault(d.lower().replace("_", "-"), []).append(module)
    out = {}
    for text in _test_requirements() if requirements is None else requirements:
        name = Requirement(text).name.lower().replace("_", "-")
        modules = [m for m in owners.get(name, []) if not m.startswith("_")]
        own = name.replace("-", "_")
        for m in [own] if own in modules or not modules else modules:
            out[m] = text
    return out


def missing_test_requirements(requirements=None, do_import: bool = False) -> list[str]:
    """One line per requirement of the ``test`` extra that is not installed, is too old, or
    whose top-level module cannot be found (or, with ``do_import``, does not import)."""
    import importlib
    import importlib.metadata as md
    import importlib.util

    from packaging.requirements import Requirement

    requirements = _test_requirements() if requirements is None else list(requirements)
    modules = _declared_modules(requirements)
    out = []
    for text in requirements:
        req = Requirement(text)
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            out.append(f"{text}: not installed")
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(f"{text}: version {version} is installed")
            continue
        for module in sorted(m for m, t in modules.items() if t == text):
            try:
                if do_import:
                    importlib.import_module(module)
                elif importlib.util.find_spec(module) is None:
                    raise ImportError("no such module")
            except Exception as e:  # noqa: BLE001 - any import failure is a broken install
                out.append(f"{text}: import {module} fails: {type(e).__name__}: {e}")
    return out


def pytest_sessionstart(session):
    """Fail the run, before any test, when a dependency of the ``test`` extra is missing:
    tests that need one must fail, never skip."""
    problems = missing_test_requirements()
    if problems:
        raise pytest.UsageError(
            "the test suite needs every package of pyproject.toml's `test` extra:\n  "
            + "\n  ".join(problems) + "\ninstall them with: pip install -e '.[test]'")


# ``pytest.importorskip`` of a declared test dependency imports it outright: an installed but
# broken package (its import raises) fails the tests that need it instead of skipping them.
# Importing every package at session start would cost seconds on every run.
_importorskip = pytest.importorskip
_DECLARED = None


def _importorskip_declared(modname, *args, **kwargs):
    global _DECLARED
    if _DECLARED is None:
        _DECLARED = _declared_modules()
    if modname.split(".")[0] in _DECLARED:
        import importlib

        importlib.import_module(modname)
    return _importorskip(modname, *args, **kwargs)


pytest.importorskip = _importorskip_declared
