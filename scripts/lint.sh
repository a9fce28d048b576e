#!/usr/bin/env bash
# Lint and format check (ruff, configured in pyproject.toml): set up (if needed), then both checks.
# Extra arguments go to both (e.g. a path). Fails if either check finds something.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${QEU_VENV:-.venv}/bin/activate"
status=0
ruff check "${@:-.}" || status=1
ruff format --check "${@:-.}" || status=1
exit "$status"
