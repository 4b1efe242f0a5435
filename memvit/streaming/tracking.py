# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Person tracks from box positions alone: the boxes of successive keyframes linked into people.

:class:`BoxTracker` gets one call per keyframe, in time order, with that keyframe's normalised
``(x1, y1, x2, y2)`` boxes, and returns a track id per box. At a keyframe at time ``t`` it:

1. predicts where each live track is: its last matched box moved by its velocity times the
   seconds since that match (constant velocity of the box centre, size kept; the velocity is the
   centre's displacement between its last two matches per second, averaged 1:1 with the earlier
   estimate so that jitter does not dominate);
2. links predicted and new boxes greedily by IoU, the highest first, pairs with IoU ``>= min_iou``;
3. links what is left by centre distance, the nearest first: the new box's centre must lie within
   ``(0.25 + max_speed * dt)`` track heights of the predicted centre (``dt``: seconds since the
   track's last match) and its height within a factor ``max_scale`` of the track's; this carries
   people who moved more than their own width between keyframes (1 s apart in AVA);
4. gives each box left over a new id (1, 2, 3, ..., never reused);
5. keeps a track that got no box for up to ``max_missed`` keyframes (coasting on its velocity,
   so a person hidden for a moment gets its id back), then drops it.

Limits: there is no appearance model. Two people of similar size whose boxes cross can swap ids
where the constant-velocity guess is wrong (they stop, turn back or change pace while overlapping);
a person missing for more than ``max_missed`` keyframes comes back under a new id; a false box
near a hidden person may take over its track. Because only positions are used, tracking works
the same for boxes from a CSV, a detector or the full frame (one box, so one track).

:func:`identity_switches` counts the errors of tracks against known identities (CLEAR-MOT's
identity switches and fragmentations); ``tests/test_tracking.py`` and ``docs/inference.md`` use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` -> ``(N, M)``: every pair through
    the scorer's IoU (:func:`memvit.evaluation.ava_map.box_iou`), so tracks and frame-mAP agree on overlap."""
    from ..evaluation.ava_map import box_iou as paired_iou

    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return paired_iou(np.repeat(a, len(b), axis=0), np.tile(b, (len(a), 1))).reshape(len(a), len(b))


def _greedy(score: np.ndarray, allowed: np.ndarray, highest_first: bool) -> list[tuple[int, int]]:
    """Pairs (row, column) taken best first among ``allowed``, each row and column at most once;
    ties go to the lower row, then the lower column."""
    rows, cols = np.nonzero(allowed)
    values = score[rows, cols]
    order = np.lexsort((cols, rows, -values if highest_first else values))
    taken_rows, taken_cols, pairs = set(), set(), []
    for i in order:
        r, c = int(rows[i]), int(cols[i])
        if r not in taken_rows and c not in taken_cols:
            taken_rows.add(r)
            taken_cols.add(c)
            pairs.append((r, c))
    return pairs


@dataclass
class _Track:
    id: int
    center: np.ndarray  # (2,) at the last match
    size: np.ndarray  # (2,) width, height at the last match
    time: float  # of the last match
    velocity: np.ndarray  # (2,) centre units per second
    missed: int = 0
    moves: int = 0  # matches after the first (how many displacements the velocity has seen)

    def predicted(self, t: float) -> np.ndarray:
        center = self.center + self.velocity * (t - self.time)
        return np.concatenate([center - self.size / 2, center + self.size / 2])


class BoxTracker:
    """Links each keyframe's boxes to the people of the keyframes before (see the module docstring).

    Args:
        min_iou: smallest IoU between a predicted track box and a new box that links them (step 2).
        max_speed: how far, in the track's heights per second, a person may move beyond the
            constant-velocity guess and still be linked by distance (step 3).
        max_scale: largest ratio of box heights linked by distance (step 3).
        max_missed: keyframes a track may go without a box before it ends.
    """

    def __init__(self, min_iou: float = 0.3, max_speed: float = 1.5, max_scale: float = 1.5,
                 max_missed: int = 2) -> None:
        if not 0 < min_iou <= 1 or max_speed < 0 or max_scale < 1 or max_missed < 0:
            raise ValueError(f"BoxTracker needs 0 < min_iou <= 1, max_speed >= 0, max_scale >= 1, max_missed >= 0; "
                             f"got {min_iou}, {max_speed}, {max_scale}, {max_missed}")
        self.min_iou, self.max_speed, self.max_scale, self.max_missed = min_iou, max_speed, max_scale, max_missed
        self.tracks: list[_Track] = []
        self.started = 0  # ids given so far (the last id given)
        self.last_time: float | None = None

    def update(self, boxes: np.ndarray | Sequence[Sequence[float]], time_s: float) -> np.ndarray:
        """The track id of each box of the keyframe at ``time_s`` (seconds, increasing call to call)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.last_time is not None and time_s < self.last_time:
            raise ValueError(f"keyframes must come in time order: {time_s} after {self.last_time}")
        self.last_time = time_s
        ids = np.zeros(len(boxes), dtype=np.int64)
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-9)
        tracks = self.tracks
        matched: dict[int, int] = {}  # track index -> box index
        if tracks and len(boxes):
            predicted = np.stack([track.predicted(time_s) for track in tracks])
            overlap = box_iou(predicted, boxes)
            matched.update(_greedy(overlap, overlap >= self.min_iou, highest_first=True))
            heights = np.array([track.size[1] for track in tracks])
            gaps = np.array([time_s - track.time for track in tracks])
            distance = np.linalg.norm((predicted[:, None, :2] + predicted[:, None, 2:]) / 2 - centers[None], axis=2)
            distance /= heights[:, None]  # in track heights
            ratio = sizes[None, :, 1] / heights[:, None]
            allowed = ((distance <= 0.25 + self.max_speed * gaps[:, None])
                       & (ratio <= self.max_scale) & (ratio >= 1 / self.max_scale))
            allowed[list(matched), :] = False
            allowed[:, list(matched.values())] = False
            matched.update(_greedy(distance, allowed, highest_first=False))
        alive = []
        for index, track in enumerate(tracks):
            box = matched.get(index)
            if box is None:
                track.missed += 1
                if track.missed <= self.max_missed:
                    alive.append(track)
                continue
            dt = time_s - track.time
            if dt > 0:
                step = (centers[box] - track.center) / dt
                track.velocity = step if track.moves == 0 else (track.velocity + step) / 2
                track.moves += 1
            track.center, track.size, track.time, track.missed = centers[box], sizes[box], time_s, 0
            ids[box] = track.id
            alive.append(track)
        for box in range(len(boxes)):
            if ids[box] == 0:
                self.started += 1
                ids[box] = self.started
                alive.append(_Track(self.started, centers[box], sizes[box], time_s, np.zeros(2)))
        self.tracks = alive
        return ids


@dataclass(frozen=True)
class TrackErrors:
    """How tracks compare with known identities over a sequence of keyframes."""

    switches: int  # a true person linked to another track id than at its previous link
    fragmentations: int  # a true person's linking interrupted (unlinked at a keyframe) and resumed later
    links: int  # (person, keyframe) pairs linked to a track
    misses: int  # (person, keyframe) pairs not linked
    identities: int  # true persons seen
    tracks: int  # track ids given


def identity_switches(truth: Sequence[tuple[Sequence[int], np.ndarray]],
                      predicted: Sequence[tuple[Sequence[int], np.ndarray]], min_iou: float = 0.5) -> TrackErrors:
    """CLEAR-MOT identity switches and fragmentations of tracks against known identities.

    ``truth`` and ``predicted`` hold, per keyframe, ``(ids, boxes)``. At each keyframe a true person
    keeps its previous track if that track's box still overlaps it with IoU ``>= min_iou``; the
    others are linked greedily by IoU (highest first, ``>= min_iou``). A switch is a person linked
    to another track than at its previous link; a fragmentation, a person unlinked at a keyframe
    where it is present after having been linked, and linked again later.
    """
    if len(truth) != len(predicted):
        raise ValueError(f"truth has {len(truth)} keyframes, predicted {len(predicted)}")
    last: dict[int, int] = {}  # person -> track at its last link
    gap: dict[int, bool] = {}  # person -> unlinked since its last link
    switches = fragmentations = links = misses = 0
    identities: set[int] = set()
    tracks: set[int] = set()
    for (true_ids, true_boxes), (track_ids, track_boxes) in zip(truth, predicted):
        true_ids, track_ids = [int(i) for i in true_ids], [int(i) for i in track_ids]
        identities.update(true_ids)
        tracks.update(track_ids)
        overlap = box_iou(true_boxes, track_boxes)
        linked: dict[int, int] = {}  # true index -> track index
        for t, person in enumerate(true_ids):
            if person in last and last[person] in track_ids:
                k = track_ids.index(last[person])
                if overlap[t, k] >= min_iou and k not in linked.values():
                    linked[t] = k
        allowed = overlap >= min_iou
        allowed[list(linked), :] = False
        allowed[:, list(linked.values())] = False
        linked.update(_greedy(overlap, allowed, highest_first=True))
        for t, person in enumerate(true_ids):
            if t not in linked:
                misses += 1
                if person in last:
                    gap[person] = True
                continue
            links += 1
            track = track_ids[linked[t]]
            if person in last and last[person] != track:
                switches += 1
            if gap.get(person):
                fragmentations += 1
            last[person], gap[person] = track, False
    return TrackErrors(switches, fragmentations, links, misses, len(identities), len(tracks))
