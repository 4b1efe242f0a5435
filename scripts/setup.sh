#!/usr/bin/env bash
# Creates .venv (if missing), installs the pinned dependencies and builds memvit_ext.
# Idempotent: a second run only rebuilds what changed. Environment: MEMVIT_NO_CUDA=1 for a
# CPU-only build, TORCH_CUDA_ARCH_LIST to pick CUDA archs, PYTHON to pick the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
echo "== installing pinned dependencies (requirements/ci.txt)"
python -m pip install -q --upgrade pip
python -m pip install -q -r requirements/ci.txt
echo "== building memvit_ext (C++ kernels; CUDA kernels when a toolkit and a CUDA torch are present)"
start=$(date +%s)
MAX_JOBS=${MAX_JOBS:-$(nproc)} python -m pip install -q --no-build-isolation -e .
echo "== build took $(( $(date +%s) - start )) s"
