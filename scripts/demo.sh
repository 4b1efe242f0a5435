#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up and build; write the built-in synthetic
# AVA-format data (data/synthetic); train configs/synthetic.yaml (a small MeMViT, on CPU unless
# a GPU is there); evaluate it on the synthetic test split and print the frame-mAP and where the
# predictions, plots and TensorBoard logs are. Extra arguments are config overrides (KEY VALUE).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
. .venv/bin/activate
echo "== synthetic AVA-format data (data/synthetic)"
python -m memvit.data.synthetic --out data/synthetic --quiet
echo "== training configs/synthetic.yaml (output/synthetic)"
python -m memvit.train --cfg configs/synthetic.yaml "$@"
echo "== done in $(( $(date +%s) - start )) s"
