#!/usr/bin/env bash
# Serve the demo (examples/demo.py) on http://127.0.0.1:8000/. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"

exec .venv/bin/python examples/demo.py
