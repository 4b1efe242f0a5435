#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, then run the fused op on the real
# MeMViT-16 layer shapes against the PyTorch reference (build info, agreement, timings).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m memvit_ext "$@"
