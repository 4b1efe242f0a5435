#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up and build; the fused op on the real
# MeMViT-16 layer shapes against the PyTorch reference (build info, agreement, timings); the
# MeMViT-16 model: the paper's parameter/FLOP counts and clip-after-clip inference and a
# training step with memory, fused op vs fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
echo "== the op on the MeMViT-16 attention layers"
python -m memvit_ext
echo "== MeMViT-16 (Kinetics-400 classifier): parameters and GFLOPs, empty and filled memory"
python -m memvit.flops --cfg configs/k400_16.yaml
echo "== MeMViT-16 AVA model: inference clip after clip (memory filled) and a training step"
python -m memvit.benchmark --cfg configs/ava_16.yaml --batch 1 --clips 3 --train-steps 1
