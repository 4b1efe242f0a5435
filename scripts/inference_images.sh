#!/usr/bin/env bash
# The pictures of docs/inference.md: the demo video through a randomly initialised tiny MeMViT
# (configs/ava_16.yaml shrunk by overrides, the synthetic set's 8 class names), then one
# annotated frame and the score timeline copied to docs/images/. About a minute on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m memvit.demo --out "$work/demo.mp4" --seconds 8 --size 360 480 --boxes "$work/boxes.csv" --seed 4
python -c "from memvit.data.synthetic import DEFAULT_CLASSES, label_map_text; print(label_map_text(DEFAULT_CLASSES))" \
    > "$work/labels.pbtxt"
python -m memvit.infer --cfg configs/ava_16.yaml --video "$work/demo.mp4" --boxes "$work/boxes.csv" \
    --label-map "$work/labels.pbtxt" --out "$work/out" --draw-top-k 2 --no-progress --seed 0 \
    MODEL.NUM_CLASSES 8 MVIT.DEPTH 4 MVIT.EMBED_DIM 16 MVIT.DIM_MUL "[[1, 2.0], [3, 2.0]]" \
    MVIT.HEAD_MUL "[[1, 2.0], [3, 2.0]]" MEMVIT.EXCLUDE_LAYERS "[1]"
mkdir -p docs/images
python - "$work/out" <<'EOF'
import sys

import av
from PIL import Image

out = sys.argv[1]
with av.open(f"{out}/annotated.mp4") as container:
    for i, frame in enumerate(container.decode(video=0)):
        if i == 4 * 30:  # the keyframe at 4 s
            frame.to_image().quantize(colors=128, dither=Image.Dither.NONE).save(
                "docs/images/inference_frame.png", optimize=True)
            break
Image.open(f"{out}/timeline.png").convert("P", palette=Image.ADAPTIVE).save(
    "docs/images/inference_timeline.png", optimize=True)
EOF
ls -l docs/images/inference_frame.png docs/images/inference_timeline.png
