# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The person tracker over keyframes (memvit.streaming.tracking) on moving boxes whose identities the
test knows, against hand-computed expectations; and the identity-switch count it is judged by."""

from __future__ import annotations

import numpy as np
import pytest

from memvit.streaming.tracking import BoxTracker, box_iou, identity_switches


def box_at(cx: float, cy: float = 0.5, w: float = 0.1, h: float = 0.4) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def track(sequence, tracker=None, times=None):
    """Run the tracker over ``[(ids, boxes), ...]``; returns ``[(track ids, boxes), ...]``."""
    tracker = tracker or BoxTracker()
    times = times if times is not None else [float(k) for k in range(len(sequence))]
    return [(tracker.update(boxes, t), boxes) for (_, boxes), t in zip(sequence, times)]


def walkers(rng, people: int, keyframes: int, jitter: float = 0.0):
    """People side by side walking the same way at nearly the same speed (never crossing: gaps of 0.11
    between boxes close by at most 0.006 a keyframe), boxes jittered."""
    starts = np.linspace(0.1, 0.9, people) + rng.uniform(-0.02, 0.02, people)
    ys = rng.uniform(0.3, 0.7, people)
    speeds = rng.uniform(-0.03, 0.03) + rng.uniform(-0.003, 0.003, people)  # normalised units per keyframe (1 s)
    out = []
    for k in range(keyframes):
        boxes = np.array([box_at(x + v * k, y, 0.05, 0.2) for x, y, v in zip(starts, ys, speeds)])
        out.append((list(range(people)), boxes + rng.normal(0, jitter, boxes.shape)))
    return out


def test_box_iou_against_hand_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], float)
    b = np.array([[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 2, 2]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 0, 1], [0, 0, 0.25]])


def test_identity_switches_counts_swaps_and_gaps():
    """Hand-made tracks: a swap is 2 switches (one per person); an unlinked keyframe between links is a
    fragmentation; a person first linked late is neither."""
    a, b = box_at(0.2), box_at(0.7)
    truth = [([1, 2], np.array([a, b]))] * 5
    assert identity_switches(truth, [([7, 9], np.array([a, b]))] * 5).switches == 0
    swapped = [([7, 9], np.array([a, b]))] * 2 + [([9, 7], np.array([a, b]))] * 3
    errors = identity_switches(truth, swapped)
    assert (errors.switches, errors.fragmentations, errors.links, errors.tracks) == (2, 0, 10, 2)
    gap = [([7, 9], np.array([a, b])), ([9], np.array([b])), ([7, 9], np.array([a, b]))] + [([], np.zeros((0, 4)))] * 2
    errors = identity_switches(truth, gap)
    assert (errors.switches, errors.fragmentations, errors.misses, errors.links) == (0, 1, 5, 5)
    far = [([7, 9], np.array([box_at(0.25), b]))] * 5  # IoU 1/3 < 0.5: never linked
    assert identity_switches(truth, far).misses == 5


def test_no_switch_without_crossing(gen):
    """Parallel walkers with detector jitter: every person keeps the id it got at the first keyframe."""
    rng = np.random.default_rng(int(gen.initial_seed()))
    truth = walkers(rng, people=int(rng.integers(2, 7)), keyframes=15, jitter=0.004)
    predicted = track(truth)
    first = list(predicted[0][0])
    assert first == list(range(1, len(first) + 1))
    assert all(list(ids) == first for ids, _ in predicted)
    errors = identity_switches(truth, predicted)
    assert (errors.switches, errors.fragmentations, errors.misses, errors.tracks) == (0, 0, 0, len(first))


def crossing(k: int, turn_back: bool) -> np.ndarray:
    """Two people of the same size walking toward each other, 0.1 per keyframe; at keyframe 4 they stand
    at the same place; then they go on (crossing) or turn back."""
    step = 4 - abs(4 - k) if turn_back else k
    return np.array([box_at(0.1 + 0.1 * step), box_at(0.9 - 0.1 * step)])


def test_crossing_at_constant_velocity_keeps_ids():
    """The constant-velocity guess carries both through the crossing: 0 switches."""
    truth = [([1, 2], crossing(k, turn_back=False)) for k in range(9)]
    predicted = track(truth)
    assert [list(ids) for ids, _ in predicted] == [[1, 2]] * 9
    assert identity_switches(truth, predicted).switches == 0


def test_meeting_and_turning_back_swaps_ids():
    """The documented limit: boxes alone cannot tell "met and turned back" from "crossed". The tracker
    bets on crossing, so each person takes the other's id after keyframe 4: 2 switches."""
    truth = [([1, 2], crossing(k, turn_back=True)) for k in range(9)]
    predicted = track(truth)
    assert [list(ids) for ids, _ in predicted] == [[1, 2]] * 5 + [[2, 1]] * 4
    errors = identity_switches(truth, predicted)
    assert (errors.switches, errors.fragmentations) == (2, 0)


@pytest.mark.parametrize("hidden", [1, 2, 3])
def test_a_hidden_person_keeps_its_id_for_max_missed_keyframes(hidden):
    """A walker hidden for ``hidden`` keyframes comes back under its id while hidden <= max_missed (2),
    its track coasting on its velocity; later it gets a new id."""
    tracker = BoxTracker(max_missed=2)
    ids = []
    for k in range(8):
        seen = not 2 <= k < 2 + hidden
        boxes = np.array([box_at(0.1 + 0.08 * k), box_at(0.8, 0.5)] if seen else [box_at(0.8, 0.5)])
        ids.append(list(tracker.update(boxes, float(k))))
    walker = [row[0] for row in ids if len(row) == 2]
    assert walker == ([1] * 8 if hidden <= 2 else [1, 1] + [3] * (8 - 2 - hidden))[:len(walker)]
    assert all(row[-1] == 2 for row in ids)


def test_full_frame_and_empty_keyframes():
    tracker = BoxTracker()
    assert [list(tracker.update([[0, 0, 1, 1]], t)) for t in (0.0, 0.5, 1.0)] == [[1]] * 3
    assert list(tracker.update(np.zeros((0, 4)), 1.5)) == []
    with pytest.raises(ValueError, match="time order"):
        tracker.update([[0, 0, 1, 1]], 1.0)
    with pytest.raises(ValueError):
        BoxTracker(min_iou=0)


def test_irregular_keyframe_times():
    """Velocity is per second: keyframes 0.5 s and 2 s apart (a CSV's seconds, dropped live clips)."""
    times = [0.0, 0.5, 1.0, 3.0, 3.5, 5.5]
    truth = [([1, 2], np.array([box_at(0.1 + 0.12 * t), box_at(0.75 - 0.1 * t, 0.55)])) for t in times]
    predicted = track(truth, times=times)
    assert [list(ids) for ids, _ in predicted] == [[1, 2]] * len(times)
