# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Where the person boxes of a keyframe come from: a CSV, the full frame, or a local detector
(a TorchScript file or torchvision builder weights: :func:`load_person_detector`).

Every source returns normalised ``(x1, y1, x2, y2)`` boxes and a score per box. A CSV source
also fixes *which* keyframes are processed (the seconds it has boxes for, AVA's protocol);
the others leave the keyframe schedule to the caller.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Sequence
from typing import Any

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


DEFAULT_ARCH = "fasterrcnn_resnet50_fpn"
DETECTOR_HINT = ("--detector takes a TorchScript detector (torch.jit.save of a module that maps a list of RGB CHW "
                 "float tensors in [0, 1] to a list of dicts with boxes, labels and scores, as torchvision's "
                 "detectors do) or the state dict of a torchvision.models.detection builder (--detector-arch)")


def detector_kind(path: str) -> str:
    """``"torchscript"`` or ``"state_dict"``, from the file's content (not its name).

    Both are zip archives since PyTorch 1.6; a TorchScript archive also holds its code
    (``<name>/code/__torch__/...``). Anything else that is not a zip archive is taken for a
    legacy pickled state dict; whether it is one is said when it is read.
    """
    if not os.path.isfile(path):
        raise BoxSourceError(f"{path}: no such detector file", DETECTOR_HINT)
    try:
        if not zipfile.is_zipfile(path):
            return "state_dict"
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        raise BoxSourceError(f"{path}: cannot read the detector file ({error})", DETECTOR_HINT) from None
    if any("/code/__torch__/" in name or name.endswith("/constants.pkl") for name in names):
        return "torchscript"
    return "state_dict"


def _torchvision_model(path: str, arch: str) -> Any:
    """``torchvision.models.detection.<arch>(num_classes=91)`` with the weights of ``path`` (nothing downloaded)."""
    import torch
    import torchvision.models.detection as detection

    builder = getattr(detection, arch, None)
    if builder is None or not callable(builder) or arch.startswith("_"):
        raise BoxSourceError(f"unknown detector architecture {arch!r}: use a builder of "
                             "torchvision.models.detection, e.g. fasterrcnn_resnet50_fpn (--detector-arch)")
    model = builder(weights=None, weights_backbone=None, num_classes=91)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: one clear message
        raise BoxSourceError(f"{path}: neither a TorchScript detector nor a state dict torch.load reads "
                             f"({type(error).__name__}: {error})", DETECTOR_HINT) from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BoxSourceError(f"{path} holds a {type(state).__name__}, not a state dict", DETECTOR_HINT)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise BoxSourceError(f"{path} does not fit torchvision's {arch}: {error}",
                             "name the builder the weights belong to with --detector-arch") from None
    return model


class PersonDetector:
    """A person detector with torchvision's detection interface, run on keyframes.

    The model takes a list of RGB ``(3, H, W)`` float tensors in [0, 1] (each image at its own
    size) and returns a list of dicts with ``boxes`` (pixels of that image, x1, y1, x2, y2),
    ``labels`` and ``scores``; TorchScript'ed torchvision detectors return ``(losses, detections)``,
    which is accepted too. Boxes labelled ``person_label`` (COCO's 1) scoring ``>= threshold`` are
    kept, the best ``max_boxes``, normalised by the image's width and height and clipped to [0, 1].
    Build one with :func:`load_person_detector`.
    """

    keyframes: list[float] | None = None  # a detector runs on whatever keyframes the caller picks

    def __init__(self, model: Any, name: str, source: str, *, threshold: float = 0.9, max_boxes: int = 100,
                 device: str = "cpu", person_label: int = COCO_PERSON) -> None:
        self.model = model.eval().to(device)
        self.name, self.source, self.device = name, source, device
        self.threshold, self.max_boxes, self.person_label = threshold, max_boxes, person_label

    def detect(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(boxes (N, 4) normalised, scores (N,))`` for each RGB ``uint8`` ``(H, W, 3)`` image, in one call."""
        import torch

        if not images:
            return []
        tensors = [torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).float().div(255)
                   for image in images]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="RCNN always returns")  # scripted torchvision: handled
            try:
                out = self.model(tensors)
            except torch.jit.Error as error:  # raised inside TorchScript: the file does not follow the interface
                raise BoxSourceError(f"{self.source}: the detector failed on {len(images)} RGB image(s) of "
                                     f"{images[0].shape[1]}x{images[0].shape[0]}: {str(error).strip()[-300:]}",
                                     DETECTOR_HINT) from None
        detections = self._detections(out, len(images))
        return [self._persons(found, image.shape[1], image.shape[0]) for found, image in zip(detections, images)]

    def boxes(self, time_s: float, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.detect([image])[0]

    def _detections(self, out: Any, count: int) -> list[dict[str, Any]]:
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict):  # scripted: (losses, detections)
            out = out[1]
        ok = isinstance(out, (list, tuple)) and len(out) == count and all(
            isinstance(d, dict) and all(key in d for key in ("boxes", "labels", "scores")) for d in out)
        if not ok:
            raise BoxSourceError(f"{self.source}: the detector returned {_describe(out)} for {count} image(s), "
                                 "expected a list of dicts with boxes, labels and scores (one per image)",
                                 DETECTOR_HINT)
        return list(out)

    def _persons(self, found: dict[str, Any], width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        boxes = found["boxes"].detach().float().cpu().numpy().reshape(-1, 4)
        labels = found["labels"].detach().cpu().numpy().reshape(-1)
        scores = found["scores"].detach().float().cpu().numpy().reshape(-1)
        keep = (labels == self.person_label) & (scores >= self.threshold) & np.isfinite(boxes).all(axis=1)
        boxes, scores = boxes[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:self.max_boxes]
        boxes = np.clip(boxes[order] / np.array([width, height, width, height], dtype=np.float32), 0.0, 1.0)
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[ok].astype(np.float32), scores[order][ok].astype(np.float32)


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        inner = f" of {type(value[0]).__name__}" if value else ""
        return f"a {type(value).__name__} of {len(value)}{inner}"
    return f"a {type(value).__name__}"


def load_person_detector(path: str, arch: str | None = None, *, threshold: float = 0.9, max_boxes: int = 100,
                         device: str = "cpu", person_label: int = COCO_PERSON) -> PersonDetector:
    """The detector in ``path``: a TorchScript file (``torch.jit.load``; ``arch`` is not needed) or the state
    dict of ``torchvision.models.detection.<arch>`` (default ``fasterrcnn_resnet50_fpn``), read with
    ``weights_only=True``; nothing is downloaded. A file that is neither is a :class:`BoxSourceError` naming it."""
    import torch

    kind = detector_kind(path)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=FutureWarning)
                model = torch.jit.load(path, map_location="cpu")
        except Exception as error:  # a damaged archive or one from a newer PyTorch: one clear message
            raise BoxSourceError(f"{path}: cannot load the TorchScript detector ({type(error).__name__}: "
                                 f"{str(error).strip()[:300]})", DETECTOR_HINT) from None
        label = f"{os.path.basename(path)} (TorchScript"
    else:
        arch = arch or DEFAULT_ARCH
        model = _torchvision_model(path, arch)
        label = f"{arch} ({os.path.basename(path)}"
    person = "persons" if person_label == COCO_PERSON else f"label {person_label}"
    return PersonDetector(model, f"{label}, {person} >= {threshold})", path, threshold=threshold,
                          max_boxes=max_boxes, device=device, person_label=person_label)
