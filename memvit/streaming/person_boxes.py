# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Where the person boxes of a keyframe come from: a CSV, the full frame, or a local detector.

Every source returns normalised ``(x1, y1, x2, y2)`` boxes and a score per box. A CSV source
also fixes *which* keyframes are processed (the seconds it has boxes for, AVA's protocol);
the others leave the keyframe schedule to the caller.
"""

from __future__ import annotations

import os

import numpy as np

from ..cli import UserError
from ..data.ava_files import read_boxes_csv

COCO_PERSON = 1  # torchvision's COCO detectors: label 1 is "person"


class BoxSourceError(UserError, ValueError):
    """Boxes that cannot be used for this video (the message says why)."""


class FullFrameBoxes:
    """One box covering the whole frame: the default when no person boxes are given."""

    name = "full frame"
    keyframes: list[float] | None = None

    def boxes(self, time_s: float, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[0.0, 0.0, 1.0, 1.0]], dtype=np.float32), np.ones(1, dtype=np.float32)


class CsvBoxes:
    """Boxes of one video from an AVA-format CSV (detector output or ground truth).

    AVA's detector files leave the action column empty and put a score in column 8; only rows
    scoring ``>= threshold`` are kept (PySlowFast's ``AVA.DETECTION_SCORE_THRESH``). Rows with an
    action id are ground truth, whose column 8 is a person id: they are all kept. A box listed
    once per action counts once. Keyframes are the CSV's seconds minus ``time_offset``.
    """

    def __init__(self, path: str, video_id: str, threshold: float = 0.9, time_offset: float = 0.0,
                 max_boxes: int = 100) -> None:
        if not os.path.isfile(path):
            raise BoxSourceError(f"{path}: no such boxes CSV")
        rows = read_boxes_csv(path)
        videos = sorted({row.video for row in rows})
        mine = [row for row in rows if row.video == video_id]
        if not mine:
            listed = ", ".join(videos[:8]) + (", ..." if len(videos) > 8 else "")
            raise BoxSourceError(f"{path} has no boxes for video {video_id!r} (it names {len(videos)} other "
                                 f"video(s): {listed or 'none'}); pass --video-id to name this video as the CSV does")
        self.name = f"{os.path.basename(path)} (video {video_id})"
        self.time_offset = time_offset
        by_sec: dict[int, dict[tuple[float, ...], float]] = {}
        for row in mine:
            score = 1.0 if row.extra is None or row.action is not None else row.extra
            if row.action is None and score < threshold:
                continue
            boxes = by_sec.setdefault(row.sec, {})
            boxes[row.box] = max(score, boxes.get(row.box, score))
        self.by_sec = {sec: boxes for sec, boxes in by_sec.items() if boxes}
        if not self.by_sec:
            raise BoxSourceError(f"{path}: no box of video {video_id!r} scores >= {threshold} (--box-threshold)")
        self.max_boxes = max_boxes
        self.keyframes: list[float] | None = [sec - time_offset for sec in sorted(self.by_sec)]

    def boxes(self, time_s: float, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sec = int(round(time_s + self.time_offset))
        items = sorted(self.by_sec.get(sec, {}).items(), key=lambda kv: -kv[1])[:self.max_boxes]
        boxes = np.array([box for box, _ in items], dtype=np.float32).reshape(-1, 4)
        return boxes, np.array([score for _, score in items], dtype=np.float32)


class TorchvisionPersonDetector:
    """A torchvision COCO detector (Faster R-CNN by default) run on keyframes, weights from a local file.

    ``weights``: a state dict (or a checkpoint holding it under ``"model"`` or ``"state_dict"``)
    for ``torchvision.models.detection.<arch>(num_classes=91)``, e.g. the file torchvision's
    ``FasterRCNN_ResNet50_FPN_Weights.COCO_V1`` downloads; it is read with
    ``weights_only=True`` and nothing is downloaded. Keeps persons scoring ``>= threshold``.
    """

    def __init__(self, weights: str, arch: str = "fasterrcnn_resnet50_fpn", threshold: float = 0.9,
                 max_boxes: int = 100, device: str = "cpu") -> None:
        import torch
        import torchvision.models.detection as detection

        if not os.path.isfile(weights):
            raise BoxSourceError(f"{weights}: no such detector weights file")
        builder = getattr(detection, arch, None)
        if builder is None or not callable(builder):
            raise BoxSourceError(f"unknown detector {arch!r}: use a builder of torchvision.models.detection, "
                                 "e.g. fasterrcnn_resnet50_fpn")
        model = builder(weights=None, weights_backbone=None, num_classes=91)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file: one clear message
            raise BoxSourceError(f"{weights}: cannot read detector weights ({type(error).__name__}: {error})") from None
        for key in ("model", "state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise BoxSourceError(f"{weights} does not fit torchvision's {arch}: {error}") from None
        self.model = model.eval().to(device)
        self.device = device
        self.threshold, self.max_boxes = threshold, max_boxes
        self.name = f"{arch} ({os.path.basename(weights)}, persons >= {threshold})"
        self.keyframes: list[float] | None = None

    def boxes(self, time_s: float, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        height, width = image.shape[:2]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255).to(self.device)
        with torch.no_grad():
            out = self.model([tensor])[0]
        keep = (out["labels"] == COCO_PERSON) & (out["scores"] >= self.threshold)
        boxes, scores = out["boxes"][keep].cpu().numpy(), out["scores"][keep].cpu().numpy()
        order = np.argsort(-scores, kind="stable")[:self.max_boxes]
        boxes = boxes[order] / np.array([width, height, width, height], dtype=np.float32)
        boxes = np.clip(boxes, 0.0, 1.0)
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[ok].astype(np.float32), scores[order][ok].astype(np.float32)

