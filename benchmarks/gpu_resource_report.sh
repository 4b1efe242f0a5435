#!/usr/bin/env bash
# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
#
# Static report of the CUDA kernels, no GPU needed: registers, spills, stack per kernel from
# ptxas (-Xptxas -v), and the tensor-core instructions (HMMA) in the SASS.
#   bash benchmarks/gpu_resource_report.sh [archs...]     (default: 80 90)
set -eu -o pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-nvcc}
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || ls .venv/lib/python3*/site-packages/triton/backends/nvidia/bin/cuobjdump 2>/dev/null | head -1)}
TMP=$(mktemp -d)
ARCHS=${*:-80 90}
FLAGS="-std=c++17 -O3 --use_fast_math --expt-relaxed-constexpr -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__"
printf "%-6s %-44s %5s %6s %6s %6s\n" arch kernel regs stack spill hmma
for arch in $ARCHS; do
  for src in csrc/cuda/*.cu; do
    obj="$TMP/$(basename "$src" .cu)_$arch.o"
    # shellcheck disable=SC2086
    $NVCC $FLAGS -gencode "arch=compute_$arch,code=sm_$arch" -Xptxas -v -c "$src" -o "$obj" 2> "$obj.log"
    sass=""
    [ -n "$CUOBJDUMP" ] && sass=$("$CUOBJDUMP" -sass "$obj" 2>/dev/null || true)
    awk -v arch="$arch" '
      /Compiling entry function/ { match($0, /_Z[^'"'"']*/); name = substr($0, RSTART, RLENGTH) }
      /bytes stack frame/ { stack = $1; spill = $5 + $9 }
      /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) if ($i == "Used") regs = $(i + 1); print arch, name, regs, stack, spill }
    ' "$obj.log" | while read -r a name regs stack spill; do
      short=$(echo "$name" | c++filt | sed 's/memvit::cuda:://g; s/(memvit::cuda::Params)//; s/__nv_bfloat16/bf16/; s/__half/fp16/')
      hmma="-"
      if [ -n "$sass" ]; then
        hmma=$(echo "$sass" | awk -v fn="$name" '/Function :/ { on = ($3 == fn) } on && /HMMA/ { n++ } END { print n + 0 }')
      fi
      printf "%-6s %-44s %5s %6s %6s %6s\n" "sm_$a" "$short" "$regs" "$stack" "$spill" "$hmma"
    done
  done
done
rm -rf "$TMP"
