#!/usr/bin/env bash
# Create (or reuse) .venv, install jaxhpo (with matplotlib for the plots), run the demo.
# Needs only Python >= 3.10; nothing is downloaded at run time (MNIST-1D is generated).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[plot]"
exec .venv/bin/python scripts/demo.py "$@"
