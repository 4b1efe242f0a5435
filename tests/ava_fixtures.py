# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A tiny AVA-format data set and a tiny model for the data, evaluation and training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memvit.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "synthetic.yaml")


def make_tiny_ava(root: Path) -> Path:
    """2 + 2 synthetic videos of 12 s at 96 x 128 (about 2 s to write)."""
    generate(root, videos_train=2, videos_val=2, seconds=12, size=(96, 128), seed=0, progress=False)
    return root


def overrides(data: Path, out: Path, extra: dict[str, object] | None = None) -> list[str]:
    """``KEY VALUE`` overrides: configs/synthetic.yaml on the tiny data with a smaller model."""
    values = {
        "AVA.FRAME_DIR": data / "frames", "AVA.FRAME_LIST_DIR": data / "frame_lists",
        "AVA.ANNOTATION_DIR": data / "annotations", "OUTPUT_DIR": out,
        "DATA.NUM_FRAMES": 8, "DATA.SAMPLING_RATE": 2, "DATA.TRAIN_CROP_SIZE": 64, "DATA.TEST_CROP_SIZE": 64,
        "DATA.TRAIN_JITTER_SCALES": "[64, 72]", "MVIT.EMBED_DIM": 16, "TRAIN.BATCH_SIZE": 4, "TEST.BATCH_SIZE": 2,
        "DATA_LOADER.NUM_WORKERS": 0, "SOLVER.MAX_EPOCH": 2, "TRAIN.EVAL_PERIOD": 1, "LOG_PERIOD": 1,
        "TRAIN.STREAM_GROUPS": 1,  # the reference's layout: 20 keyframes are too few for the quick start's groups
        **(extra or {}),
    }
    return [item for key, value in values.items() for item in (key, str(value))]


def box_image(box, size=(120, 160)) -> np.ndarray:
    """A clip of 2 frames, black with a white rectangle at the normalised box (x1, y1, x2, y2)."""
    h, w = size
    frames = np.zeros((2, h, w, 3), np.uint8)
    x1, y1, x2, y2 = (np.array(box) * [w, h, w, h]).round().astype(int)
    frames[:, y1:y2, x1:x2] = 255
    return frames
