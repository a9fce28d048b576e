#!/usr/bin/env bash
# The tests: set up (if needed), then pytest on $QEU_TEST_WORKERS (default 2) pytest-xdist workers,
# each test file on one worker (its module fixtures run once). Extra arguments go to pytest;
# `-n 0` runs in one process (for -s, --pdb).
# Tests on real data read ../shared/data and are skipped, with the reason, where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian Chromium for the kedro-viz browser test (installs only when missing and root).
bash scripts/install_browser.sh
# shellcheck disable=SC1091
. "${QEU_VENV:-.venv}/bin/activate"
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1 MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export MPLBACKEND="${MPLBACKEND:-Agg}"  # figures are saved, never shown
python -m pytest -n "${QEU_TEST_WORKERS:-2}" --dist loadfile "$@"
