# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA evaluation's work, behind ``python -m memvit.eval`` and the training loop's evaluations:
:func:`predict` (the model clip after clip over a split in stream order, with memory),
:func:`score` (frame-mAP and the report files) and :func:`evaluate` (both, under DDP too).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cli import progress_interval
from ..files import write_json


@dataclass
class Predictions:
    """Scores of every box the model saw, in the order it saw them (box-major per keyframe)."""

    videos: list[str]
    secs: list[int]
    boxes: np.ndarray  # (N, 4) normalised x1, y1, x2, y2
    scores: np.ndarray  # (N, classes) sigmoid scores; column k is AVA id k + 1
    clips: int = 0
    seconds: float = 0.0
    problems: int = 0

    @staticmethod
    def merge(parts: Sequence[Predictions]) -> Predictions:
        classes = next((p.scores.shape[1] for p in parts if p.scores.size), 0)
        return Predictions(
            videos=[v for p in parts for v in p.videos], secs=[s for p in parts for s in p.secs],
            boxes=np.concatenate([p.boxes.reshape(-1, 4) for p in parts]) if parts else np.zeros((0, 4)),
            scores=np.concatenate([p.scores.reshape(-1, classes) for p in parts]) if parts else np.zeros((0, 0)),
            clips=sum(p.clips for p in parts), seconds=max((p.seconds for p in parts), default=0.0),
            problems=sum(p.problems for p in parts))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@torch.no_grad()
def predict(model: nn.Module, loader: Any, *, device: torch.device | str = "cpu", autocast: bool = False,
            progress: bool = True, desc: str = "eval") -> Predictions:
    """Run the detector over ``loader`` (batches of :func:`memvit.data.ava.ava_collate`) in stream
    order, from empty memory; the memory the model had before is restored afterwards (so an
    evaluation in the middle of a training epoch leaves the training streams intact)."""
    from tqdm import tqdm

    module = unwrap(model)
    saved = module.memory.get_state() if module.memory is not None else None
    was_training = model.training
    model.eval()
    if module.memory is not None:
        module.memory.reset()
    device = torch.device(device)
    videos, secs, boxes, scores = [], [], [], []
    clips = problems = 0
    start = time.perf_counter()
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, unit="it", dynamic_ncols=True,
                          mininterval=progress_interval()):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = model(batch["video"].to(device), video_ids=batch["video_ids"],
                            boxes=batch["boxes"].to(device))
            videos += [v for v, _ in batch["box_keys"]]
            secs += [s for _, s in batch["box_keys"]]
            boxes.append(batch["ori_boxes"].numpy())
            scores.append(out.float().cpu().numpy())
            clips += len(batch["video_ids"])
            problems += len(batch["problems"])
    finally:
        if module.memory is not None:
            module.memory.set_state(saved)
        model.train(was_training)
    classes = module.head.projection.out_features
    return Predictions(videos, secs, np.concatenate(boxes) if boxes else np.zeros((0, 4)),
                       np.concatenate(scores) if scores else np.zeros((0, classes)), clips,
                       time.perf_counter() - start, problems)


def gather_predictions(predictions: Predictions) -> Predictions:
    """Every rank's predictions on every rank (DDP evaluation), in rank order."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return predictions
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, predictions)
    return Predictions.merge(parts)


def score(predictions: Predictions, cfg: Any, *, mode: str = "pyslowfast", out_dir: str | None = None,
          split: str = "test") -> dict:
    """Frame-mAP of the predictions against the config's ground truth; writes the report files.
    ``split "val"`` without ``AVA.FULL_TEST_ON_VAL`` scores against the ground truth of the
    keyframes it predicts (seconds divisible by 4), as the reference's mini ground truth."""
    from ..data.ava_files import BoxTable, read_boxes_csv, read_excluded_timestamps, read_label_map
    from .ava_map import frame_map, group_map
    from .report import format_summary, write_evaluation

    ava = cfg.AVA
    label_map = read_label_map(os.path.join(ava.ANNOTATION_DIR, ava.LABEL_MAP_FILE))
    groundtruth = read_boxes_csv(os.path.join(ava.ANNOTATION_DIR, ava.GROUNDTRUTH_FILE))
    if split == "val" and not ava.FULL_TEST_ON_VAL:
        groundtruth = [row for row in groundtruth if row.sec % 4 == 0]
    exclusion = os.path.join(ava.ANNOTATION_DIR, ava.EXCLUSION_FILE)
    excluded = read_excluded_timestamps(exclusion) if ava.EXCLUSION_FILE and os.path.isfile(exclusion) else set()
    ids = label_map.ids
    if max(ids) > predictions.scores.shape[1]:
        raise ValueError(f"the label map has class id {max(ids)} but the model has {predictions.scores.shape[1]} "
                         "outputs (MODEL.NUM_CLASSES)")
    detections = BoxTable.from_class_scores(predictions.videos, predictions.secs, predictions.boxes,
                                            predictions.scores[:, [i - 1 for i in ids]], ids)
    result = frame_map(groundtruth, detections, label_map, excluded, mode=mode)
    summary = format_summary(result, label_map)
    chance_classes = chance_per_class(groundtruth, detections, label_map, excluded, mode)
    chance = None if chance_classes is None else float(np.nanmean(list(chance_classes.values())))
    if chance is not None:
        summary += f"\n  chance level (the same boxes with random scores): {100 * chance:.2f}"
    seconds = predictions.seconds
    report: dict[str, Any] = {"map": result.map, "chance_map": chance, "mode": mode,
                              "chance_per_class": None if chance_classes is None else
                              {str(k): v for k, v in chance_classes.items()},
                              "groups": group_map(result, label_map),
                              "per_class": {str(k): v for k, v in result.per_class.items()}, "summary": summary,
                              "clips": predictions.clips, "seconds": seconds,
                              "clips_per_second": predictions.clips / seconds if seconds else 0.0,
                              "problems": predictions.problems}
    if out_dir is not None:
        paths = write_evaluation(out_dir, result, label_map, detections)
        report["files"] = {k: str(v) for k, v in paths.items()}
        write_json(os.path.join(out_dir, "summary.json"), report, indent=1, default=float)  # atomically
    return report


def chance_per_class(groundtruth: Any, detections: Any, label_map: Any, excluded: Any, mode: str, draws: int = 5,
                     limit: int = 2_000_000) -> dict[int, float] | None:
    """Per-class AP of the same boxes scored at random (mean of a few seeded draws): what "above
    chance" means for a data set whose proposals already sit on the persons. Skipped (None)
    above ``limit`` detections, where it would cost more than the evaluation."""
    from dataclasses import replace

    from .ava_map import frame_map

    if len(detections) > limit or len(detections) == 0:
        return None
    rng = np.random.default_rng(0)
    draws_ap = [frame_map(groundtruth, replace(detections, extra=rng.random(len(detections))), label_map, excluded,
                          mode=mode).per_class for _ in range(draws)]
    return {c: float(np.mean([d[c] for d in draws_ap])) for c in draws_ap[0]}


def evaluate(model: nn.Module, cfg: Any, *, split: str = "test", mode: str = "pyslowfast", out_dir: str | None = None,
             device: torch.device | str = "cpu", progress: bool = True, num_replicas: int = 1,
             rank: int = 0) -> dict | None:
    """Predict over ``split`` (``"test"``: full frames; ``"val"``: centre crops) and score.

    Under DDP every rank predicts its streams and rank 0 scores; the others return None.
    """
    from ..data.loader import build_loader

    loader = build_loader(cfg, split, num_replicas=num_replicas, rank=rank, device=device)
    predictions = predict(model, loader, device=device, autocast=cfg.TRAIN.MIXED_PRECISION, progress=progress,
                          desc=f"eval {split}")
    if cfg.TEST.FLIP_AVERAGE:
        flipped_cfg = cfg.clone()
        flipped_cfg.AVA.TEST_FORCE_FLIP = not cfg.AVA.TEST_FORCE_FLIP
        loader = build_loader(flipped_cfg, split, num_replicas=num_replicas, rank=rank, device=device)
        flipped = predict(model, loader, device=device, autocast=cfg.TRAIN.MIXED_PRECISION, progress=progress,
                          desc=f"eval {split} flipped")
        predictions = flip_average(predictions, flipped)
    predictions = gather_predictions(predictions)
    if rank != 0:
        return None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    return score(predictions, cfg, mode=mode, out_dir=out_dir, split=split)


def flip_average(plain: Predictions, flipped: Predictions) -> Predictions:
    """``TEST.FLIP_AVERAGE`` (ours): each box's score is the mean of its scores on the plain and on
    the horizontally flipped clip. The flipped pass is a whole pass of its own (its memory holds
    flipped clips) over the same keyframes and boxes, in the same order."""
    if plain.videos != flipped.videos or plain.secs != flipped.secs or not np.array_equal(plain.boxes, flipped.boxes):
        raise RuntimeError("the flipped evaluation pass saw other boxes than the plain one")
    return Predictions(plain.videos, plain.secs, plain.boxes, (plain.scores + flipped.scores) / 2,
                       plain.clips + flipped.clips, plain.seconds + flipped.seconds, plain.problems + flipped.problems)
