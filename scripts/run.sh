#!/usr/bin/env bash
# The main job: set up (if needed), then `kedro run` on the embedded defaults. Extra
# arguments go to kedro run, e.g. `bash scripts/run.sh --pipelines ridge_analysis`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${QEU_VENV:-.venv}/bin/activate"
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1 MLFLOW_DISABLE_TELEMETRY=true
# Figures go to files through the catalog: matplotlib's non-interactive backend, chosen here rather
# than by the node modules (which would impose it on a notebook that imports them).
export MPLBACKEND="${MPLBACKEND:-Agg}"
kedro run "$@"
