#!/usr/bin/env bash
# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
#
# GPU validation of the CUDA kernels, in one command on a GPU machine (about 8 minutes):
#   1. build the extension in place for one architecture (TORCH_CUDA_ARCH_LIST, default 9.0)
#   2. the CUDA tests (tests/test_kernels_cuda.py -m cuda; script mode if pytest is missing)
#   3. compute-sanitizer memcheck and racecheck on tiny shapes (benchmarks/gpu_sanitize.py)
#   4. the benchmark (benchmarks/bench_gpu.py) -> benchmarks/results/<device>-<date>.{json,md}
# Logs and results are copied to $OUT when it is set. The short table comes last.
#
#   bash benchmarks/gpu_check.sh                 # everything
#   SKIP_BENCH=1 bash benchmarks/gpu_check.sh    # build + tests + sanitizer only
#   BENCH_ARGS="--models 16 --reps 5" bash benchmarks/gpu_check.sh
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${LOGS:-/tmp/memvit_gpu_check}
mkdir -p "$LOGS" benchmarks/results
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
export MEMVIT_SKIP_EMULATOR=1  # the CPU emulator tests belong to CI, not to device time
status=0
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

stamp "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$LOGS/device.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$LOGS/device.txt"

# The benchmark derives its layer shapes from the model (memvit.models.shapes), which needs
# PyTorchVideo and its dependencies: the GPU machine's python has none, so a session carries
# them as wheels in .whl/ (docs/cuda.md says how) and they are installed beside, never over, torch.
if [ -d .whl ] && ls .whl/*.whl > /dev/null 2>&1; then
  stamp "installing carried wheels"
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

stamp "build (archs $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"
if ! $PY setup.py build_ext --inplace > "$LOGS/build.log" 2>&1; then
  tail -40 "$LOGS/build.log"
  stamp "BUILD FAILED"
  [ -n "${OUT:-}" ] && cp "$LOGS/build.log" "$OUT/"
  exit 1
fi
$PY -c "import memvit_ext, json; print(json.dumps(memvit_ext.build_info()))" | tee "$LOGS/build_info.json"

stamp "CUDA tests"
if $PY -c "import pytest" 2>/dev/null; then
  $PY -m pytest tests/test_kernels_cuda.py -m cuda -q -p no:cacheprovider -o addopts="" > "$LOGS/tests.log" 2>&1
else
  $PY tests/test_kernels_cuda.py cuda > "$LOGS/tests.log" 2>&1
fi
rc=$?; [ $rc -ne 0 ] && status=1
tail -25 "$LOGS/tests.log"
stamp "tests exit $rc"

SAN=/usr/local/cuda/bin/compute-sanitizer
if [ -x "$SAN" ]; then
  for tool in memcheck racecheck; do
    stamp "compute-sanitizer $tool"
    timeout 150 "$SAN" --tool "$tool" --error-exitcode 3 $PY benchmarks/gpu_sanitize.py > "$LOGS/sanitizer_$tool.log" 2>&1
    rc=$?; [ $rc -ne 0 ] && status=1
    tail -6 "$LOGS/sanitizer_$tool.log"
    stamp "$tool exit $rc"
  done
else
  stamp "no compute-sanitizer at $SAN: skipped"
fi

if [ "${SKIP_BENCH:-0}" != "1" ]; then
  stamp "benchmark"
  # shellcheck disable=SC2086
  $PY benchmarks/bench_gpu.py --budget-s "${BENCH_BUDGET_S:-200}" ${BENCH_ARGS:-} > "$LOGS/bench.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=1
  stamp "benchmark exit $rc"
fi

if [ -n "${OUT:-}" ]; then
  newest=$(ls -t benchmarks/results/*.json 2>/dev/null | head -1)
  [ -n "$newest" ] && cp "$newest" "${newest%.json}.md" "$OUT/"
  tar czf "$OUT/gpu_check_logs.tgz" -C "$LOGS" .
fi
stamp "done, status $status"
grep -A40 "^model " "$LOGS/bench.log" 2>/dev/null || tail -20 "$LOGS/bench.log" 2>/dev/null
exit $status
