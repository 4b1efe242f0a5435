# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA frame-mAP at IoU 0.5, in NumPy, reproducing both official scorers.

Both official AVA scorers wrap the 2018 TF object-detection ``PascalDetectionEvaluator``; they
feed it differently, and their numbers for one model differ by up to several points:

* ``mode="pyslowfast"`` (default): PySlowFast's ``ava_eval_helper``, which facebookresearch/MeMViT
  reports. Detections are matched in the order they are given (PySlowFast gives them box-major,
  see :meth:`BoxTable.from_class_scores`), every detection counts, and detections on keyframes
  without ground truth are false positives.
* ``mode="activitynet"``: the ActivityNet challenge scorer ``get_ava_performance.py``. Only the 50
  highest-scoring detections per keyframe (over all classes) are kept and matched in descending
  score order; detections on keyframes absent from the ground truth are ignored.

Shared rules: a keyframe is (video, second); excluded keyframes are dropped from both sides;
classes outside the label map are ignored; empty detection boxes (x2 <= x1 or y2 <= y1) are
dropped. Per keyframe and class each detection takes the ground-truth box it overlaps most (the
first on ties) and is a true positive iff that IoU >= threshold and the box is still free;
there is no fallback to a next-best free box. Per class, detections of all keyframes are ranked
by score and scored with VOC all-point AP (area under the precision envelope); a class with
ground truth and no detections scores 0, one without ground truth NaN (left out of the mean).

Ties are where the official code is not deterministic (it ranks with NumPy's unstable
``argsort``): here equal scores keep the order the detections were given in, and a cut at the
50th detection keeps the earlier of equal scores.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..data.ava_files import AVA_GROUPS, BoxRow, BoxTable, LabelMap

Mode = Literal["pyslowfast", "activitynet"]
MODES: tuple[str, ...] = ("pyslowfast", "activitynet")
ACTIVITYNET_DETECTIONS_PER_KEYFRAME = 50


@dataclass(frozen=True)
class MapResult:
    """Per-class AP and their mean; every dict is keyed by the label map's class ids."""

    map: float  # mean of the per-class APs that are not NaN (classes with ground truth)
    per_class: dict[int, float]  # NaN for a class without ground truth
    num_gt: dict[int, int]
    num_detections: dict[int, int]  # detections scored (after exclusions, the cap, empty boxes)
    mode: str
    iou_threshold: float


def frame_map(groundtruth: Sequence[BoxRow] | BoxTable, detections: Sequence[BoxRow] | BoxTable,
              label_map: LabelMap, excluded: Collection[tuple[str, int]] = frozenset(),
              mode: Mode = "pyslowfast", iou_threshold: float = 0.5) -> MapResult:
    """AVA frame-mAP of ``detections`` (score in ``extra``, class in ``action``) against ``groundtruth``.

    ``mode`` picks which official scorer to reproduce (module docstring). Ground-truth boxes of
    zero area count towards the number of ground truths but can never be matched, as in the
    official code.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    gt = groundtruth if isinstance(groundtruth, BoxTable) else BoxTable.from_rows(groundtruth)
    det = detections if isinstance(detections, BoxTable) else BoxTable.from_rows(detections)
    class_ids = np.asarray(label_map.ids, dtype=np.int64)
    ex_video = np.asarray([v for v, _ in excluded], dtype=str)
    ex_sec = np.asarray([s for _, s in excluded], dtype=np.int64)
    gt_frame, det_frame, ex_frame = _keyframe_codes((gt.video, det.video, ex_video), (gt.sec, det.sec, ex_sec))

    gt_keep = ~np.isin(gt_frame, ex_frame)
    det_keep = ~np.isin(det_frame, ex_frame) & np.isin(det.action, class_ids)
    if mode == "activitynet":  # keyframes of any ground-truth row count, whatever its class
        det_keep &= np.isin(det_frame, gt_frame[gt_keep])
    gt_keep &= np.isin(gt.action, class_ids)
    det_idx = np.flatnonzero(det_keep)  # visit order: as given
    if np.isnan(det.extra[det_idx]).any():
        raise ValueError("every detection of an evaluated class needs a score (BoxRow.extra)")
    if mode == "activitynet":
        det_idx = _top_per_keyframe(det_idx, det_frame[det_idx], det.extra[det_idx],
                                    ACTIVITYNET_DETECTIONS_PER_KEYFRAME)
    b = det.box[det_idx]
    det_idx = det_idx[(b[:, 0] < b[:, 2]) & (b[:, 1] < b[:, 3])]
    gt_idx = np.flatnonzero(gt_keep)

    n_cls = len(class_ids)
    gt_cls = np.searchsorted(class_ids, gt.action[gt_idx])
    det_cls = np.searchsorted(class_ids, det.action[det_idx])
    is_tp = _match(det_frame[det_idx] * n_cls + det_cls, det.box[det_idx],
                   gt_frame[gt_idx] * n_cls + gt_cls, gt.box[gt_idx], iou_threshold)

    num_gt = np.bincount(gt_cls, minlength=n_cls)
    num_det = np.bincount(det_cls, minlength=n_cls)
    scores = det.extra[det_idx]
    by_class = np.argsort(det_cls.astype(np.int16 if n_cls < 2**15 else np.int64), kind="stable")  # radix sort
    ends = np.cumsum(num_det)
    ap = np.full(n_cls, np.nan)
    for c in np.flatnonzero(num_gt):
        members = by_class[ends[c] - num_det[c]:ends[c]]
        ranked = members[_rank_descending(scores[members], det_idx[members])]
        ap[c] = average_precision(is_tp[ranked], int(num_gt[c]))
    ids = class_ids.tolist()
    return MapResult(map=_nanmean(ap), per_class=dict(zip(ids, ap.tolist())), num_gt=dict(zip(ids, num_gt.tolist())),
                     num_detections=dict(zip(ids, num_det.tolist())), mode=mode, iou_threshold=iou_threshold)


def group_map(result: MapResult, label_map: LabelMap) -> dict[str, float]:
    """Mean AP per AVA group (pose, person-object, person-person), over classes with ground truth."""
    return {group: _nanmean(np.array([ap for c, ap in result.per_class.items() if label_map.groups[c] == group]))
            for group in AVA_GROUPS}


def average_precision(is_tp: np.ndarray, num_gt: int) -> float:
    """VOC all-point AP of detections in rank order (best first), ``is_tp`` marking true positives.

    Precision is made non-increasing from the right (the envelope) and integrated over the recall
    steps, the VOC 2010+ definition; an empty list scores 0.
    """
    if num_gt < 1:
        raise ValueError(f"AP needs at least one ground truth, got num_gt={num_gt}")
    if len(is_tp) == 0:
        return 0.0
    tp = np.cumsum(is_tp, dtype=np.int64)
    recall = np.concatenate([[0.0], tp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], tp / np.arange(1, len(tp) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _keyframe_codes(videos: Sequence[np.ndarray], secs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Dense codes 0..F-1 of the (video, second) pairs, shared across the given arrays."""
    video = _factorize(np.concatenate(videos))
    sec = np.concatenate(secs).astype(np.int64)
    lo = int(sec.min()) if sec.size else 0
    span = int(sec.max()) - lo + 1 if sec.size else 1
    codes = _factorize(video * span + (sec - lo))
    return np.split(codes, np.cumsum([len(v) for v in videos])[:-1])


def _factorize(values: np.ndarray) -> np.ndarray:
    """Dense int64 codes of ``values`` in sorted order of the values.

    Only the first value of each run of equal neighbours is sorted: box files list a keyframe's
    rows together, so this sorts ~one value per keyframe instead of one per detection.
    """
    if not values.size:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    _, code = np.unique(values[starts], return_inverse=True)
    return np.repeat(code.astype(np.int64), np.diff(np.r_[starts, len(values)]))


def _rank_descending(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Order of ``scores``, highest first, equal scores by ascending ``tiebreak``.

    An unstable argsort (much faster than a stable one) then re-sorts only the runs of equal
    scores, which are rare.
    """
    order = np.argsort(-scores)
    ranked = scores[order]
    tied = np.r_[False, ranked[1:] == ranked[:-1]]  # equal to the previous one
    if tied.any():
        in_run = np.flatnonzero(tied | np.r_[tied[1:], False])
        run = np.cumsum(~tied)[in_run]
        order[in_run] = order[in_run][np.lexsort((tiebreak[order[in_run]], run))]
    return order


def _top_per_keyframe(idx: np.ndarray, frame: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``idx`` per keyframe, grouped by keyframe, each group by descending score.

    ``frame`` and ``score`` belong to ``idx``; equal scores keep ``idx`` order.
    """
    n = len(idx)
    rank = np.empty(n, dtype=np.int64)
    rank[_rank_descending(score, idx)] = np.arange(n)
    order = np.argsort(frame * n + rank)  # unique keys: an unstable sort is exact
    first = np.r_[True, frame[order][1:] != frame[order][:-1]]
    position = np.arange(n)
    place = position - np.maximum.accumulate(np.where(first, position, 0))
    return idx[order[place < k]]


def _match(det_group: np.ndarray, det_box: np.ndarray, gt_group: np.ndarray, gt_box: np.ndarray,
           iou_threshold: float) -> np.ndarray:
    """True-positive flags of detections (in visit order) against ground truth of the same group.

    A group is one (keyframe, class). Every detection is paired with every ground truth of its
    group; its best pair (first on ties, in ground-truth order) decides; a ground truth goes to
    the first detection in visit order that picks it with IoU >= threshold.
    """
    is_tp = np.zeros(len(det_group), dtype=bool)
    order = np.argsort(gt_group, kind="stable")
    sorted_group = gt_group[order]
    lo = np.searchsorted(sorted_group, det_group, "left")
    count = np.searchsorted(sorted_group, det_group, "right") - lo
    total = int(count.sum())
    if total == 0:
        return is_tp
    pair_det = np.repeat(np.arange(len(det_group)), count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    pair_gt = order[np.repeat(lo, count) + offset]
    iou = box_iou(det_box[pair_det], gt_box[pair_gt])

    has_gt = count > 0
    seg_start = (np.cumsum(count) - count)[has_gt]
    best = np.maximum.reduceat(iou, seg_start)
    at_best = np.flatnonzero(iou == np.repeat(best, count[has_gt]))
    det_at_best = pair_det[at_best]  # ascending: keep the first pair of each detection
    best_pair = at_best[np.r_[True, det_at_best[1:] != det_at_best[:-1]]]
    hit = best_pair[iou[best_pair] >= iou_threshold]
    _, first_claim = np.unique(pair_gt[hit], return_index=True)  # hit is in visit order
    is_tp[pair_det[hit[first_claim]]] = True
    return is_tp


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of paired boxes ``a[i]``, ``b[i]`` (x1, y1, x2, y2); 0 where ``b[i]`` is empty.

    Same floating-point operations as the official ``np_box_ops.iou``, so a pair sits on the same
    side of the threshold in both.
    """
    h = np.maximum(0.0, np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]))
    w = np.maximum(0.0, np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]))
    inter = h * w
    area_a = (a[:, 3] - a[:, 1]) * (a[:, 2] - a[:, 0])
    area_b = (b[:, 3] - b[:, 1]) * (b[:, 2] - b[:, 0])
    valid_b = (b[:, 0] < b[:, 2]) & (b[:, 1] < b[:, 3])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(valid_b, inter / (area_a + area_b - inter), 0.0)
