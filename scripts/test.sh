#!/usr/bin/env bash
# Every check CI runs, in order, stopping at the first failure: lint, format, types, docs, tests.
# Works from any directory; creates .venv on first use. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy  # the files pyproject.toml lists, so that a bare `mypy` checks what CI does
# The docs site, strictly (a broken link or reference fails), into a folder thrown away after.
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --site-dir "$site"
.venv/bin/pytest "$@"
