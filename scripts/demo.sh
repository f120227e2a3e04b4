#!/usr/bin/env bash
# Serve the chat demo (examples/chat) on http://127.0.0.1:8000/: rooms on the embedded memory
# backend, no external services. Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# The demo needs only the package itself; scripts/test.sh adds the development tools.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

exec .venv/bin/python -m examples.chat
