#!/usr/bin/env bash
# Builds memvit_ext with MEMVIT_NO_CUDA=1 into a scratch folder and checks that build_info()
# reports CPU kernels only (the installed build is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
MEMVIT_NO_CUDA=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} python setup.py -q build_ext \
  --build-lib "$scratch/lib" --build-temp "$scratch/tmp" 2>&1 | grep "memvit_ext build" || true
cp memvit_ext/*.py "$scratch/lib/memvit_ext/"
cd "$scratch"
PYTHONPATH="$scratch/lib" python - <<'PY'
import memvit_ext
info = memvit_ext.build_info()
print("CPU-only build:", info["implementation"])
assert memvit_ext.__file__.startswith(__import__("os").environ["PYTHONPATH"]), memvit_ext.__file__
assert info["extension"] == "loaded" and info["built_cpu_kernels"] and not info["built_cuda_kernels"], info
assert "built without cuda kernels" in info["implementation"]["cuda"], info  # CUDA tensors: the PyTorch fallback
PY
