# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Draws docs/images/architecture.png, the picture of docs/architecture.md.

    python scripts/architecture_diagram.py [--out docs/images/architecture.png]

Rooms are boxes (a folder or a module), arrows are what travels between them: a frame (orange),
a clip (blue), a config or a model (grey). Positions are hand-placed on a 16 x 10 grid.
"""

from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from memvit.files import atomic_path  # noqa: E402

FRAME, CLIP, CONFIG = "#d55e00", "#0072b2", "#666666"
ROOM = {"input": "#f2f2f2", "command": "#fff3cd", "data": "#e3f1fb", "model": "#e6f4ea", "work": "#fbe9e7",
        "op": "#ede7f6"}

# name -> (x, y, width, height, kind, title, lines)
BOXES = {
    "videos": (0.2, 8.3, 2.6, 1.2, "input", "your videos / AVA movies", ["files FFmpeg decodes"]),
    "annotations": (0.2, 6.7, 2.6, 1.2, "input", "annotations", ["AVA CSVs, label map,", "person boxes"]),
    "yaml": (0.2, 4.2, 2.6, 1.2, "input", "configs/*.yaml", ["PySlowFast keys + overrides"]),
    "pyth": (0.2, 2.6, 2.6, 1.2, "input", "checkpoint .pyth", ["PySlowFast layout"]),
    "camera": (0.2, 0.4, 2.6, 1.2, "input", "file / camera / URL", ["streamed, clip after clip"]),

    "prepare": (3.6, 8.1, 3.4, 1.6, "data", "data/prepare_ava", ["extract_frames + timeline:", "30 fps JPEG folders",
                                                                 "and frame lists"]),
    "format": (3.6, 6.3, 3.4, 1.5, "data", "data/ava_files", ["the AVA format: names,", "readers and writers"]),
    "dataset": (7.7, 6.9, 3.4, 2.6, "data", "data/ava + clips + streams", ["keyframe -> clip window,",
                                                                           "box-aware transforms;",
                                                                           "stream order: row i walks",
                                                                           "one video second by second"]),
    "loader": (7.7, 5.3, 3.4, 1.2, "data", "data/loader", ["one DataLoader for train/eval"]),
    "cli": (3.6, 3.3, 3.4, 2.4, "command", "cli + config + checkpoint",
            ["parse --cfg KEY VALUE,", "load_model: seed,", "strict weights, device;", "UserError -> exit 2"]),
    "video_io": (3.6, 0.3, 3.4, 1.5, "data", "streaming/video_io",
                 ["onto the 30 fps timeline", "(data/timeline rule)"]),

    "work": (11.6, 6.9, 4.3, 2.6, "work", "training/  +  evaluation/", ["trainer, resume, solver, distributed,",
                                                                      "run_log  <- python -m memvit.train",
                                                                      "engine (stream-order predict), ava_map,",
                                                                      "report  <- python -m memvit.eval"]),
    "models": (11.6, 4.3, 4.3, 1.9, "model", "models/", ["MeMViT: MViTv2 blocks, memory cache",
                                                         "+ compression, box head; memory is",
                                                         "explicit state"]),
    "op": (13.0, 2.3, 2.9, 1.5, "op", "memvit_ext", ["the op: C++/CUDA kernels,", "PyTorch reference, SDPA"]),
    "streaming": (7.7, 0.3, 3.4, 2.2, "work", "streaming/", ["detector (memory per stream),", "runner, person_boxes,",
                                                             "drawing, onnx_step", "<- memvit.infer / export"]),
    "outputs": (13.0, 0.2, 2.9, 1.7, "input", "outputs", ["checkpoints, logs, mAP,", "predictions, annotated.mp4,",
                                                          "ONNX"]),
}

# (from, to, colour, label, connection style)
ARROWS = [
    ("videos", "prepare", FRAME, "frames", "arc3"),
    ("annotations", "format", CONFIG, "", "arc3"),
    ("prepare", "format", FRAME, "", "arc3"),
    ("format", "dataset", FRAME, "frames + boxes", "arc3"),
    ("dataset", "loader", CLIP, "", "arc3"),
    ("loader", "work", CLIP, "clips in stream order", "arc3"),
    ("yaml", "cli", CONFIG, "config", "arc3"),
    ("pyth", "cli", CONFIG, "weights", "arc3"),
    ("cli", "models", CONFIG, "the model", "arc3"),
    ("work", "models", CLIP, "", "arc3"),
    ("models", "op", CLIP, "q, memory k/v", "arc3"),
    ("camera", "video_io", FRAME, "frames", "arc3"),
    ("video_io", "streaming", FRAME, "", "arc3"),
    ("streaming", "models", CLIP, "clip", "arc3"),
    ("streaming", "outputs", CONFIG, "", "arc3"),
]


def centre(name: str) -> tuple[float, float]:
    x, y, w, h, *_ = BOXES[name]
    return x + w / 2, y + h / 2


def draw(out: str) -> None:
    fig, ax = plt.subplots(figsize=(16, 10), dpi=100)
    ax.set_xlim(0, 16)
    ax.set_ylim(0, 10)
    ax.axis("off")
    patches = {}
    for name, (x, y, w, h, kind, title, lines) in BOXES.items():
        patch = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12", linewidth=1.2,
                               edgecolor="#333333", facecolor=ROOM[kind], zorder=2)
        ax.add_patch(patch)
        patches[name] = patch
        ax.text(x + w / 2, y + h - 0.28, title, ha="center", va="center", fontsize=12, weight="bold", zorder=3,
                family="monospace" if "/" in title or "_" in title else None)
        for i, line in enumerate(lines):
            ax.text(x + w / 2, y + h - 0.62 - 0.3 * i, line, ha="center", va="center", fontsize=9.5, zorder=3)
    for start, end, colour, label, style in ARROWS:
        arrow = FancyArrowPatch(centre(start), centre(end), patchA=patches[start], patchB=patches[end],
                                arrowstyle="-|>", mutation_scale=16, linewidth=2, color=colour,
                                connectionstyle=style, zorder=1)
        ax.add_patch(arrow)
        if label:
            (x0, y0), (x1, y1) = centre(start), centre(end)
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.12, label, ha="center", va="bottom", fontsize=9, color=colour,
                    zorder=4, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
    legend = [("a frame", FRAME), ("a clip", CLIP), ("a config, weights, results", CONFIG)]
    ax.legend(handles=[plt.Line2D([], [], color=c, linewidth=3, label=t) for t, c in legend], loc="upper center",
              bbox_to_anchor=(0.5, 1.04), ncol=3, frameon=False, fontsize=11)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("docs", "images", "architecture.png"))
    draw(parser.parse_args().out)


if __name__ == "__main__":
    main()
