# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Annotations: ground-truth boxes and labels at every keyframe, excluded timestamps and a simulated
person detector; :func:`build_split` plans a split until every class has a box in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ava_files import FIRST_SECOND, BoxRow, sec_to_frame
from .body import Rect, body_parts, person_box, simulate
from .classes import DEFAULT_CLASSES, ActionClass, SyntheticParameterError
from .plan import DETECT, EXCLUDE, VideoPlan, plan_split, stream

DETECTION_SCORE_THRESH = 0.9  # PySlowFast's AVA.DETECTION_SCORE_THRESH: detections at or above count as persons
Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclass(frozen=True)
class KeyframeBox:
    """One person at one keyframe: its true box and its class ids (a row per id in the CSV)."""

    video: str
    sec: int
    person_id: int
    box: Box
    class_ids: tuple[int, ...]


def _normalise(rect: Rect, size: tuple[int, int]) -> Box:
    height, width = size
    x1, y1, x2, y2 = rect
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def annotate_video(plan: VideoPlan, classes: Sequence[ActionClass]) -> list[KeyframeBox]:
    """Every person at every keyframe, with the labels of its timeline (persons without one are skipped)."""
    ids = {c.behaviour: i + 1 for i, c in enumerate(classes)}
    tracks = [simulate(p, plan.num_frames) for p in plan.persons]
    rows = []
    for sec in plan.keyframes:
        k, t = sec_to_frame(sec), float(sec - FIRST_SECOND)
        for person, track in zip(plan.persons, tracks):
            class_ids = tuple(sorted(ids[b] for b in plan.labels_at(person, t) if b in ids))
            if class_ids:
                box = _normalise(person_box(body_parts(person.height, track[k])), plan.size)
                rows.append(KeyframeBox(plan.name, sec, person.person_id, box, class_ids))
    return rows


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two normalised boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _clip_box(box: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in box)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


P_NEAR_FALSE, P_BACKGROUND_FALSE = 0.35, 0.4


def detect(rng: np.random.Generator, truth: Sequence[Box]) -> list[tuple[Box, float]]:
    """A person detector's output at one keyframe: every person found (jittered, score >= 0.9) plus
    low-score false positives, some next to a person (a shifted box) and some on the background."""
    out = []
    for box in truth:
        w, h = box[2] - box[0], box[3] - box[1]
        found = box
        for _ in range(20):
            cand = _clip_box(np.asarray(box) + rng.normal(0, 0.04, 4) * (w, h, w, h))
            if iou(cand, box) > 0.7:
                found = cand
                break
        out.append((found, float(rng.uniform(DETECTION_SCORE_THRESH, 0.9995))))
    for box in truth:
        if rng.random() < P_NEAR_FALSE:
            w, h = box[2] - box[0], box[3] - box[1]
            dx = rng.choice((-1, 1)) * rng.uniform(0.55, 0.9) * w
            scale = rng.uniform(0.6, 1.0)
            cand = _clip_box((box[0] + dx, box[3] - h * scale, box[0] + dx + w * scale, box[3]))
            if cand[2] > cand[0] and cand[3] > cand[1] and all(iou(cand, b) < 0.4 for b in truth):
                out.append((cand, float(rng.uniform(0.2, 0.85))))
    if rng.random() < P_BACKGROUND_FALSE:
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.25, 0.5)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        cand = (x, y, x + w, y + h)
        if all(iou(cand, b) < 0.3 for b in truth):
            out.append((cand, float(rng.uniform(0.02, 0.6))))
    return out


def groundtruth_rows(rows: Sequence[KeyframeBox], excluded: set[tuple[str, int]]) -> list[BoxRow]:
    """AVA's ground-truth rows, one per (person, action), the person id in column 8 (written with
    ``write_boxes_csv(..., extra_decimals=0)``); excluded keyframes are unannotated, as in AVA."""
    return [BoxRow(r.video, r.sec, r.box, cid, float(r.person_id))
            for r in rows if (r.video, r.sec) not in excluded for cid in r.class_ids]


@dataclass
class SplitData:
    plans: list[VideoPlan]
    rows: list[KeyframeBox]
    excluded: list[tuple[str, int]]
    detections: list[BoxRow]  # the simulated person detector's boxes (no action, a score)
    attempt: int

    def class_counts(self, num_classes: int) -> list[int]:
        """Positive boxes per class id (index 0 = id 1) over the annotated (not excluded) keyframes."""
        skip = set(self.excluded)
        counts = [0] * num_classes
        for r in self.rows:
            if (r.video, r.sec) not in skip:
                for cid in r.class_ids:
                    counts[cid - 1] += 1
        return counts


MAX_ATTEMPTS = 200


def build_split(split: str, videos: int, seconds: int, size: tuple[int, int], seed: int,
                classes: Sequence[ActionClass] = DEFAULT_CLASSES) -> SplitData:
    """Plan a split until every class has a box in it (re-drawing the whole split), then annotate it.

    Excluded timestamps are drawn among the keyframes (about 3%, at least one) and lose their labels,
    like AVA's; the detector still sees them.
    """
    for attempt in range(MAX_ATTEMPTS):
        plans = plan_split(split, videos, seconds, size, seed, attempt, classes)
        rows = [r for p in plans for r in annotate_video(p, classes)]
        keys = [(p.name, s) for p in plans for s in p.keyframes]
        rng = stream(seed, split, attempt, EXCLUDE)
        n_excluded = max(1, round(0.03 * len(keys)))
        excluded = sorted(keys[i] for i in rng.choice(len(keys), size=n_excluded, replace=False))
        data = SplitData(plans, rows, excluded, [], attempt)
        if min(data.class_counts(len(classes))) > 0:
            break
    else:
        raise SyntheticParameterError(f"{split}: no plan in {MAX_ATTEMPTS} attempts gives every class a box; "
                           "use more videos or longer ones")
    truth: dict[tuple[str, int], list[Box]] = {k: [] for k in keys}
    for r in rows:
        truth[(r.video, r.sec)].append(r.box)
    rng = stream(seed, split, attempt, DETECT)
    for video, sec in keys:
        for box, score in detect(rng, truth[(video, sec)]):
            data.detections.append(BoxRow(video, sec, box, None, score))
    return data

