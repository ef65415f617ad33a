#!/usr/bin/env bash
# Create (or reuse) .venv, install jaxhpo with its test extra, run the whole test suite.
# Extra arguments go to pytest (e.g. tests/test_space.py, -k name, PYTEST_WORKERS=1 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
# One pytest worker per core (pytest-xdist); tests are grouped by file so each worker compiles a
# file's shared functions once.
exec .venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-auto}" --dist loadfile "$@"
