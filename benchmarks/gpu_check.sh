#!/usr/bin/env bash
# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
#
# GPU validation of the CUDA kernels, in one command on a GPU machine (about 8 minutes):
#   1. build the extension in place for one architecture (TORCH_CUDA_ARCH_LIST, default 9.0)
#   2. the CUDA tests (tests/test_kernels_cuda.py -m cuda; script mode if pytest is missing)
#   3. compute-sanitizer memcheck and racecheck on tiny shapes (benchmarks/gpu_sanitize.py)
#   4. the benchmark (benchmarks/bench_gpu.py) -> benchmarks/results/<device>-<date>.{json,md}
#   5. the run's results file, benchmarks/results/gpu-check-<device>-<date>.md: each step's exit
#      and, last, "status: passed" only when every step ran and passed. Committed, it is what
#      memvit_ext.ops.CUDA_KERNELS_VALIDATED names to make the kernels serve CUDA by default.
# Logs and results are copied to $OUT when it is set. The short table comes last.
#
#   bash benchmarks/gpu_check.sh                 # everything
#   SKIP_BENCH=1 bash benchmarks/gpu_check.sh    # build + tests + sanitizer only (status: incomplete)
#   BENCH_ARGS="--layers blk0 blk4 --reps 5" bash benchmarks/gpu_check.sh
#   GPU_CHECK_COMMIT=<sha> bash ...              # the commit to record where the copy has no .git
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
COMMIT=${GPU_CHECK_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
exits=()   # STEP=EXIT for the results file
notes=()   # STEP=TEXT
summary() {  # write benchmarks/results/gpu-check-<device>-<date>.md (and copy it to $OUT)
  $PY benchmarks/bench_gpu.py --commit "$COMMIT" --check-summary "${exits[@]}" --check-note "${notes[@]}" \
    | tee "$LOGS/summary.txt"
  local file
  file=$(sed -n 's/^wrote //p' "$LOGS/summary.txt")
  [ -n "${OUT:-}" ] && [ -n "$file" ] && cp "$file" "$OUT/"
}

stamp "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$LOGS/device.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$LOGS/device.txt"

# Nothing to install: the benchmark carries the MeMViT layer shapes as a table (checked against
# the models by tests/test_bench_gpu.py), so the GPU machine's own torch is all it needs.

stamp "build (archs $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"
if ! $PY setup.py build_ext --inplace > "$LOGS/build.log" 2>&1; then
  tail -40 "$LOGS/build.log"
  stamp "BUILD FAILED"
  [ -n "${OUT:-}" ] && cp "$LOGS/build.log" "$OUT/"
  exits+=(build=1)
  summary
  exit 1
fi
exits+=(build=0)
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
exits+=(tests=$rc)
notes+=("tests=$(grep -E '[0-9]+ (passed|failed)' "$LOGS/tests.log" | tail -1)")

SAN=/usr/local/cuda/bin/compute-sanitizer
if [ -x "$SAN" ]; then
  for tool in memcheck racecheck; do
    stamp "compute-sanitizer $tool"
    timeout 150 "$SAN" --tool "$tool" --error-exitcode 3 $PY benchmarks/gpu_sanitize.py > "$LOGS/sanitizer_$tool.log" 2>&1
    rc=$?; [ $rc -ne 0 ] && status=1
    tail -6 "$LOGS/sanitizer_$tool.log"
    stamp "$tool exit $rc"
    exits+=("$tool=$rc")
    notes+=("$tool=$(grep -E 'SUMMARY' "$LOGS/sanitizer_$tool.log" | tail -1 | sed 's/^=* *//')")
  done
else
  stamp "no compute-sanitizer at $SAN: skipped"
  exits+=(memcheck=skipped racecheck=skipped)
fi

if [ "${SKIP_BENCH:-0}" != "1" ]; then
  stamp "benchmark"
  # shellcheck disable=SC2086
  $PY benchmarks/bench_gpu.py --budget-s "${BENCH_BUDGET_S:-200}" ${BENCH_ARGS:-} > "$LOGS/bench.log" 2>&1
  rc=$?; [ $rc -ne 0 ] && status=1
  stamp "benchmark exit $rc"
  exits+=(bench=$rc)
  notes+=("bench=$(grep -E '^(wrote|FAILED kernel row)' "$LOGS/bench.log" | head -3 | tr '\n' ' ')")
else
  exits+=(bench=skipped)
fi
summary

if [ -n "${OUT:-}" ]; then
  newest=$(ls -t benchmarks/results/*.json 2>/dev/null | head -1)
  [ -n "$newest" ] && cp "$newest" "${newest%.json}.md" "$OUT/"
  tar czf "$OUT/gpu_check_logs.tgz" -C "$LOGS" .
fi
stamp "done, status $status"
grep -A40 "^model " "$LOGS/bench.log" 2>/dev/null || tail -20 "$LOGS/bench.log" 2>/dev/null
exit $status
