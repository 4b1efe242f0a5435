# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA files and frame-mAP: hand-computed AP cases, a loop oracle on random data, strict readers, report files.

The expected APs are worked out in the comments (VOC all-point AP: precision made
non-increasing from the right, summed over the recall steps). The random-data tests compare
against ``oracle_map`` below, a plain-Python loop written from the rules, sharing no code with
the package. Parity with the official scorer code itself: tests/test_ava_eval_official.py.
"""

from __future__ import annotations

import csv
import logging
import math

import numpy as np
import pytest
import torch

from memvit.data.ava_files import (
    AvaFormatError,
    BoxRow,
    BoxTable,
    LabelMap,
    ava_group,
    read_boxes_csv,
    read_excluded_timestamps,
    read_frame_list,
    read_label_map,
    write_boxes_csv,
)
from memvit.evaluation import ava_map, average_precision, format_summary, frame_map, group_map, write_evaluation

# The 60 classes AVA v2.2 evaluates.
AVA60 = [1, *range(3, 16), 17, 20, 22, 24, *range(26, 31), 34, 36, 37, 38, 41, 43, *range(45, 50), 51, 52, 54,
         *range(56, 71), 72, 73, 74, *range(76, 81)]
MODES = ("pyslowfast", "activitynet")


@pytest.fixture
def rng(gen: torch.Generator) -> np.random.Generator:
    """NumPy generator seeded from the shared fresh-seed fixture (seed printed on failure)."""
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))


def label_map(ids=(1, 2, 3)) -> LabelMap:
    return LabelMap(names={i: f"action {i}" for i in ids}, groups={i: ava_group(i) for i in ids})


def gt(video, sec, box, action):
    return BoxRow(video, sec, tuple(box), action, 1.0)


def det(video, sec, box, action, score):
    return BoxRow(video, sec, tuple(box), action, score)


A = (0.1, 0.1, 0.4, 0.9)  # two disjoint person boxes
B = (0.6, 0.1, 0.9, 0.9)
FAR = (0.45, 0.0, 0.55, 0.05)  # overlaps neither


def ap_of(groundtruth, detections, cls=1, mode="pyslowfast", ids=(1, 2, 3), **kw) -> float:
    return frame_map(groundtruth, detections, label_map(ids), mode=mode, **kw).per_class[cls]


# ----------------------------------------------------------------------------- hand-computed AP


@pytest.mark.parametrize("mode", MODES)
def test_perfect_detections_score_one_and_no_detections_zero(mode):
    g = [gt("v", 902, A, 1), gt("v", 902, B, 1), gt("v", 903, A, 2)]
    d = [det("v", 902, A, 1, 0.3), det("v", 902, B, 1, 0.9), det("v", 903, A, 2, 0.5)]
    r = frame_map(g, d, label_map(), mode=mode)
    assert r.per_class[1] == 1.0 and r.per_class[2] == 1.0 and r.map == 1.0
    assert math.isnan(r.per_class[3])  # no ground truth: NaN, not in the mean
    assert r.num_gt == {1: 2, 2: 1, 3: 0} and r.num_detections == {1: 2, 2: 1, 3: 0}
    empty = frame_map(g, [], label_map(), mode=mode)
    assert empty.per_class[1] == 0.0 and empty.per_class[2] == 0.0 and empty.map == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_one_false_positive_first_middle_last(mode):
    g = [gt("v", 902, A, 1), gt("v", 902, B, 1)]  # 2 ground truths
    # FP first: ranks FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1; envelope 2/3 everywhere:
    # AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3
    d = [det("v", 902, FAR, 1, 0.9), det("v", 902, A, 1, 0.8), det("v", 902, B, 1, 0.7)]
    assert ap_of(g, d, mode=mode) == pytest.approx(2 / 3, abs=1e-15)
    # FP in the middle: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; envelope 1, 2/3, 2/3:
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    d = [det("v", 902, A, 1, 0.9), det("v", 902, FAR, 1, 0.8), det("v", 902, B, 1, 0.7)]
    assert ap_of(g, d, mode=mode) == pytest.approx(5 / 6, abs=1e-15)
    # FP last: precision 1, 1, 2/3 at recall 1/2, 1, 1: full recall at precision 1 -> AP = 1
    d = [det("v", 902, A, 1, 0.9), det("v", 902, B, 1, 0.8), det("v", 902, FAR, 1, 0.7)]
    assert ap_of(g, d, mode=mode) == 1.0


def test_duplicate_detection_is_a_false_positive_and_the_modes_differ_on_visit_order():
    g = [gt("v", 902, A, 1)]
    # The duplicate with the higher score comes second in input order.
    d = [det("v", 902, A, 1, 0.3), det("v", 902, A, 1, 0.9)]
    # pyslowfast visits in input order: 0.3 takes the box (TP), 0.9 is the duplicate (FP).
    # Ranked by score: FP(0.9), TP(0.3): precision 0, 1/2 at recall 0, 1 -> AP = 1 * 1/2 = 1/2
    assert ap_of(g, d, mode="pyslowfast") == 0.5
    # activitynet visits by score: 0.9 is the TP, 0.3 the FP: ranks TP, FP -> AP = 1
    assert ap_of(g, d, mode="activitynet") == 1.0
    # Listed best first, both modes agree.
    assert ap_of(g, d[::-1], mode="pyslowfast") == ap_of(g, d[::-1], mode="activitynet") == 1.0


@pytest.mark.parametrize("mode", MODES)
def test_excluded_keyframes_leave_both_sides(mode):
    g = [gt("v", 902, A, 1), gt("v", 903, A, 1)]
    d = [det("v", 902, A, 1, 0.8), det("v", 903, B, 1, 0.9)]  # 903: a miss and a false positive
    # Counted: ranks FP(0.9), TP(0.8) with 2 gt: precision 0, 1/2 at recall 0, 1/2 -> AP = 1/2 * 1/2
    assert ap_of(g, d, mode=mode) == 0.25
    assert ap_of(g, d, mode=mode, excluded={("v", 903)}) == 1.0
    r = frame_map(g, d, label_map(), excluded={("v", 903), ("other", 902)}, mode=mode)
    assert r.num_gt[1] == 1 and r.num_detections[1] == 1


def test_detections_on_keyframes_without_ground_truth():
    g = [gt("v", 902, A, 1), gt("v", 904, A, 99)]  # 904 has ground truth, but only of a class not evaluated
    d = [det("v", 902, A, 1, 0.5), det("v", 903, A, 1, 0.9)]
    # pyslowfast: 903 (no ground truth at all) is a false positive ranked first -> AP = 1 * 1/2
    assert ap_of(g, d, mode="pyslowfast") == 0.5
    # activitynet: keyframes absent from the ground truth are ignored -> AP = 1
    assert ap_of(g, d, mode="activitynet") == 1.0
    # 904 is in the ground truth (a row of another class), so both count a detection there as a FP.
    d2 = [det("v", 902, A, 1, 0.5), det("v", 904, A, 1, 0.9)]
    assert ap_of(g, d2, mode="pyslowfast") == ap_of(g, d2, mode="activitynet") == 0.5


def test_class_without_ground_truth_is_nan_and_left_out_of_the_mean():
    g = [gt("v", 902, A, 1), gt("v", 902, B, 2)]
    d = [det("v", 902, A, 1, 0.9), det("v", 902, FAR, 2, 0.9), det("v", 902, B, 3, 0.9)]
    r = frame_map(g, d, label_map())
    assert r.per_class[1] == 1.0 and r.per_class[2] == 0.0 and math.isnan(r.per_class[3])
    assert r.map == 0.5  # mean of classes 1 and 2 only
    assert r.num_detections[3] == 1
    # Ground truth and detections of classes outside the label map are ignored entirely.
    r2 = frame_map(g + [gt("v", 902, A, 7)], d + [det("v", 902, A, 7, 0.99)], label_map())
    assert r2.per_class == pytest.approx(r.per_class, nan_ok=True) and 7 not in r2.per_class


def test_activitynet_keeps_the_top_50_detections_per_keyframe_over_all_classes():
    g = [gt("v", 902, A, 1)]
    # 50 false positives of class 2 outscore the only true positive (class 1, score 0.01).
    d = [det("v", 902, B, 2, 0.5 + i / 100) for i in range(50)] + [det("v", 902, A, 1, 0.01)]
    assert ap_of(g, d, mode="pyslowfast") == 1.0  # no cap
    # 51 on the keyframe: class 1's detection is the 51st by score and is dropped -> AP 0
    r = frame_map(g, d, label_map(), mode="activitynet")
    assert r.per_class[1] == 0.0 and r.num_detections == {1: 0, 2: 50, 3: 0}
    assert ap_of(g, d[1:], mode="activitynet") == 1.0  # 50 in all: kept
    # The cap is per keyframe: the same 50 on another keyframe do not push it out.
    moved = [det("v", 903, r_.box, r_.action, r_.extra) for r_ in d[:50]]
    assert ap_of(g + [gt("v", 903, A, 3)], moved + d[50:], mode="activitynet") == 1.0


@pytest.mark.parametrize("mode", MODES)
def test_iou_exactly_one_half_matches_and_just_below_does_not(mode):
    g = [gt("v", 902, (0.0, 0.0, 0.5, 1.0), 1)]  # area 1/2 (all values exact in binary)
    # inside, area 1/4: IoU = (1/4) / (1/2) = 0.5 exactly -> TP
    assert ap_of(g, [det("v", 902, (0.0, 0.0, 0.25, 1.0), 1, 0.9)], mode=mode) == 1.0
    # area 1/4 * 31/32: IoU = 31/64 < 0.5 -> FP
    assert ap_of(g, [det("v", 902, (0.0, 0.0, 0.25, 0.96875), 1, 0.9)], mode=mode) == 0.0
    # a stricter threshold turns the exact 0.5 into a miss
    assert ap_of(g, [det("v", 902, (0.0, 0.0, 0.25, 1.0), 1, 0.9)], mode=mode, iou_threshold=0.75) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_best_overlap_already_taken_is_a_false_positive_even_if_another_box_is_free(mode):
    ga, gb = (0.0, 0.0, 0.5, 1.0), (0.2, 0.0, 0.7, 1.0)  # full-height boxes, x ranges [0, .5] and [.2, .7]
    g = [gt("v", 902, ga, 1), gt("v", 902, gb, 1)]
    # det 1 = ga (IoU 1 with ga, 0.3/0.7 with gb): TP on ga.
    # det 2 = x [.05, .6]: IoU with ga = .45/.6 = .75, with gb = .4/.65 = .615 >= .5 but ga is its best
    # and ga is taken -> FP (no fallback to gb). Ranks TP, FP with 2 gt: AP = 1/2 * 1 = 1/2
    d = [det("v", 902, ga, 1, 0.9), det("v", 902, (0.05, 0.0, 0.6, 1.0), 1, 0.8)]
    assert ap_of(g, d, mode=mode) == 0.5


def test_equal_scores_keep_input_order_and_empty_detection_boxes_are_dropped():
    g = [gt("v", 902, A, 1)]
    tp, fp = det("v", 902, A, 1, 0.5), det("v", 903, A, 1, 0.5)
    assert ap_of(g, [tp, fp]) == 1.0  # ranks TP, FP
    assert ap_of(g, [fp, tp]) == 0.5  # ranks FP, TP: AP = 1 * 1/2
    empty = det("v", 902, (0.5, 0.1, 0.5, 0.9), 1, 0.99)  # x2 == x1: dropped, not a FP
    for mode in MODES:
        r = frame_map(g, [empty, tp], label_map(), mode=mode)
        assert r.per_class[1] == 1.0 and r.num_detections[1] == 1


@pytest.mark.parametrize("mode", MODES)
def test_empty_inputs_and_zero_area_ground_truth(mode):
    r = frame_map([], [], label_map(), mode=mode)
    assert math.isnan(r.map) and all(math.isnan(ap) for ap in r.per_class.values())
    # A zero-area ground truth still counts (the official code keeps it) but can never be matched:
    # 1 TP of 2 gt at precision 1 -> AP = 1/2
    g = [gt("v", 902, A, 1), gt("v", 902, (0.5, 0.5, 0.5, 0.9), 1)]
    d = [det("v", 902, A, 1, 0.9), det("v", 902, (0.45, 0.45, 0.55, 0.95), 1, 0.8)]
    r = frame_map(g, d, label_map(), mode=mode)
    assert r.num_gt[1] == 2 and r.per_class[1] == 0.5


def test_average_precision_of_a_ranked_list():
    # ranks TP, FP, TP, FP with 4 gt: precision 1, 1/2, 2/3, 1/2 at recall 1/4, 1/4, 1/2, 1/2;
    # envelope at the recall steps: 1 (0 -> 1/4), 2/3 (1/4 -> 1/2): AP = 1/4 + 1/4 * 2/3 = 5/12
    assert average_precision(np.array([True, False, True, False]), 4) == pytest.approx(5 / 12, abs=1e-15)
    assert average_precision(np.array([], dtype=bool), 3) == 0.0
    with pytest.raises(ValueError, match="num_gt"):
        average_precision(np.array([True]), 0)


def test_group_map_and_argument_checks():
    ids = (1, 2, 20, 21, 70)  # pose 1, 2; person-object 20, 21; person-person 70
    g = [gt("v", 902, A, c) for c in (1, 2, 20)]
    d = [det("v", 902, A, 1, 0.9), det("v", 902, FAR, 2, 0.9), det("v", 902, A, 20, 0.9)]
    r = frame_map(g, d, label_map(ids))
    groups = group_map(r, label_map(ids))
    assert groups["pose"] == 0.5 and groups["person-object"] == 1.0 and math.isnan(groups["person-person"])
    with pytest.raises(ValueError, match="mode"):
        frame_map(g, d, label_map(ids), mode="coco")
    with pytest.raises(ValueError, match="iou_threshold"):
        frame_map(g, d, label_map(ids), iou_threshold=0.0)
    with pytest.raises(ValueError, match="score"):
        frame_map(g, [BoxRow("v", 902, A, 1, None)], label_map(ids))


# ----------------------------------------------------------------------------- loop oracle, random data


def oracle_map(groundtruth, detections, ids, excluded, mode, thr=0.5, cap=50):
    """Per-class AP from the rules, one detection at a time (see the module docstring of ava_map)."""
    ids = set(ids)
    gt_keys = {(r.video, r.sec) for r in groundtruth if (r.video, r.sec) not in excluded}
    gts: dict = {}
    for r in groundtruth:
        if (r.video, r.sec) not in excluded and r.action in ids:
            gts.setdefault((r.video, r.sec, r.action), []).append(r.box)
    per_key: dict = {}
    for i, r in enumerate(detections):
        key = (r.video, r.sec)
        if key in excluded or r.action not in ids or (mode == "activitynet" and key not in gt_keys):
            continue
        per_key.setdefault(key, []).append((i, r))
    ranked: dict = {c: [] for c in ids}
    for key, items in per_key.items():
        if mode == "activitynet":
            items = sorted(items, key=lambda t: (-t[1].extra, t[0]))[:cap]
        taken = set()
        for i, r in items:
            x1, y1, x2, y2 = r.box
            if not (x1 < x2 and y1 < y2):
                continue
            best, best_j = -1.0, None
            for j, (gx1, gy1, gx2, gy2) in enumerate(gts.get((*key, r.action), [])):
                h = max(0.0, min(y2, gy2) - max(y1, gy1))
                w = max(0.0, min(x2, gx2) - max(x1, gx1))
                iou = h * w / ((y2 - y1) * (x2 - x1) + (gy2 - gy1) * (gx2 - gx1) - h * w)
                if iou > best:
                    best, best_j = iou, j
            hit = best_j is not None and best >= thr and (key, r.action, best_j) not in taken
            if hit:
                taken.add((key, r.action, best_j))
            ranked[r.action].append((-r.extra, i, hit))
    out = {}
    for c in ids:
        n_gt = sum(len(v) for k, v in gts.items() if k[2] == c)
        if n_gt == 0:
            out[c] = math.nan
            continue
        tp = 0
        points = []  # (recall, precision)
        for k, (_, _, hit) in enumerate(sorted(ranked[c]), 1):
            tp += hit
            points.append((tp / n_gt, tp / k))
        ap, prev_recall = 0.0, 0.0
        for k, (recall, _) in enumerate(points):
            if recall != prev_recall:
                ap += (recall - prev_recall) * max(p for _, p in points[k:])
                prev_recall = recall
        out[c] = ap
    return out


def random_rows(rng: np.random.Generator, ids, n_videos=4, n_secs=10, grid=8, score_levels=None):
    """Boxes on a coarse grid (exact IoU ties, IoU exactly 0.5) with jittered and duplicate detections."""
    def box():
        x1, y1 = rng.integers(0, grid - 1, 2)
        x2, y2 = rng.integers(x1 + 1, grid + 1), rng.integers(y1 + 1, grid + 1)
        return (x1 / grid, y1 / grid, x2 / grid, y2 / grid)

    g, d, excluded = [], [], set()
    for v in range(n_videos):
        for s in range(902, 902 + n_secs):
            persons = [box() for _ in range(rng.integers(0, 4))]
            for p in persons:
                for c in rng.choice(ids + [999], size=rng.integers(1, 3), replace=False):
                    g.append(gt(f"v{v}", s, p, int(c)))
            if rng.random() < 0.15:
                excluded.add((f"v{v}", s))
            boxes = persons + [box() for _ in range(rng.integers(0, 3))]
            boxes += [persons[0]] if persons and rng.random() < 0.3 else []  # exact duplicate
            if rng.random() < 0.1:
                boxes.append((0.5, 0.5, 0.5, 0.75))  # empty
            for b in rng.permutation(len(boxes)):
                for c in ids + [999]:
                    score = rng.random() if score_levels is None else rng.integers(score_levels) / score_levels
                    d.append(det(f"v{v}", s, boxes[b], int(c), float(score)))
    return g, d, excluded


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("score_levels", [None, 4])  # 4 levels: many equal scores
def test_matches_the_loop_oracle_on_random_data(rng, monkeypatch, mode, score_levels):
    ids = [1, 5, 20, 64]
    g, d, excluded = random_rows(rng, ids, score_levels=score_levels)
    # Keyframes here have up to 35 detections: a cap of 7 makes activitynet's cut bite.
    monkeypatch.setattr(ava_map, "ACTIVITYNET_DETECTIONS_PER_KEYFRAME", 7)
    r = frame_map(g, d, label_map(ids), excluded, mode=mode)
    expected = oracle_map(g, d, ids, excluded, mode, cap=7)
    for c in ids:
        assert r.per_class[c] == pytest.approx(expected[c], abs=1e-12, nan_ok=True), c
    assert r.map == pytest.approx(np.nanmean([expected[c] for c in ids]), abs=1e-12)
    # The column form gives the same numbers as the rows.
    again = frame_map(BoxTable.from_rows(g), BoxTable.from_rows(d), label_map(ids), excluded, mode=mode)
    assert again.per_class == pytest.approx(r.per_class, nan_ok=True)


def test_from_class_scores_is_box_major_like_pyslowfast(rng):
    ids = [1, 5, 20]
    boxes = np.array([A, B, FAR])
    scores = rng.random((3, 3))
    table = BoxTable.from_class_scores(["v", "v", "w"], [902, 902, 903], boxes, scores, ids)
    rows = [det(v, s, b, c, float(scores[i, j]))
            for i, (v, s, b) in enumerate(zip(["v", "v", "w"], [902, 902, 903], boxes.tolist()))
            for j, c in enumerate(ids)]
    assert table.action.tolist() == [r.action for r in rows] and table.extra.tolist() == [r.extra for r in rows]
    assert table.video.tolist() == [r.video for r in rows] and table.box.tolist() == [list(r.box) for r in rows]
    g = [gt("v", 902, A, 1), gt("w", 903, B, 20)]
    assert frame_map(g, table, label_map(ids)).per_class == pytest.approx(
        frame_map(g, rows, label_map(ids)).per_class, nan_ok=True)
    with pytest.raises(ValueError, match="shape"):
        BoxTable.from_class_scores(["v"], [902], boxes[:1], scores, ids)


# ----------------------------------------------------------------------------- readers


def write_text(path, text):
    path.write_text(text)
    return path


def test_label_map_v22_label_blocks_any_layout(tmp_path):
    p = write_text(tmp_path / "v22.pbtxt", """
# AVA v2.2
label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}

label {
    name: "talk to (e.g., self, a person, a group)"
	label_id: 79
    label_type: PERSON_INTERACTION
}
label { name: "carry/hold (an object)" label_id: 17 label_type: OBJECT_MANIPULATION }
""")
    lm = read_label_map(p)
    assert lm.names == {1: "bend/bow (at the waist)", 79: "talk to (e.g., self, a person, a group)",
                        17: "carry/hold (an object)"}
    assert lm.groups == {1: "pose", 79: "person-person", 17: "person-object"}
    assert lm.ids == [1, 17, 79]


def test_label_map_v21_item_blocks_take_groups_from_id_ranges(tmp_path):
    blocks = "".join(f'item {{\n  name: "a{i}"\n  id: {i}\n}}\n' for i in (1, 14, 15, 63, 64, 80))
    lm = read_label_map(write_text(tmp_path / "v21.pbtxt", blocks))
    assert lm.groups == {1: "pose", 14: "pose", 15: "person-object", 63: "person-object", 64: "person-person",
                         80: "person-person"}
    assert lm.names[63] == "a63"


@pytest.mark.parametrize("text, line, match", [
    ('item {\n  name: "a"\n  id: 1\n}\nitem {\n  name: "b"\n}\n', 5, "no id"),
    ('item {\n  name: "a"\n  id: 1\n}\nitem {\n  name: "b"\n  id: 1\n}\n', 7, "twice"),
    ('label {\n  name: "a"\n  label_id: 1\n  label_type: PERSON_DANCING\n}\n', 4, "label_type"),
    ('item {\n  name: "a"\n  id: x1\n}\n', 3, "not an integer"),
    ('item {\n  name: "a"\n  id: 81\n}\n', 3, "1..80"),
    ('item {\n  name: "a"\n  id: 1\n', 1, "not closed"),
    ('item {\n  name: "a"\n  id: 1\n}\nclass {\n}\n', 5, "expected a 'label"),
    ('item {\n  name: "a\n  id: 1\n}\n', 2, "unexpected character"),
    ('\n\n', 1, "no label or item"),
])
def test_label_map_errors_name_file_and_line(tmp_path, text, line, match):
    p = write_text(tmp_path / "bad.pbtxt", text)
    with pytest.raises(AvaFormatError, match=match) as err:
        read_label_map(p)
    assert err.value.line == line and str(err.value).startswith(f"{p}:{line}: ")


GOOD_ROWS = "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1\n-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,9,1\n"


def test_read_boxes_csv_ground_truth_and_detector_files(tmp_path):
    rows = read_boxes_csv(write_text(tmp_path / "gt.csv", GOOD_ROWS + "\nvid2,1798,0.5,0.5,0.6,0.7,12,3\n"))
    assert rows[0] == BoxRow("-5KQ66BBWC4", 902, (0.077, 0.151, 0.283, 0.811), 80, 1.0, 1)
    assert [(r.action, r.extra, r.line) for r in rows] == [(80, 1.0, 1), (9, 1.0, 2), (12, 3.0, 4)]
    p = write_text(tmp_path / "det.csv", "v,0902,0.1,0.2,0.3,0.4,,0.95\nv,0902,0.1,0.2,0.3,0.4,-1,0.5\n"
                   "v,0903,0.1,0.2,0.3,0.4,,0.9\nv,0904,0.1,0.2,0.3,0.4,3\n")
    rows = read_boxes_csv(p)
    assert [(r.sec, r.action, r.extra) for r in rows] == [(902, None, 0.95), (902, None, 0.5), (903, None, 0.9),
                                                          (904, 3, None)]
    p = write_text(tmp_path / "det2.csv", "v,0902,0.1,0.2,0.3,0.4,,0.95\nv,0902,0.1,0.2,0.3,0.4,-1,0.5\n"
                   "v,0903,0.1,0.2,0.3,0.4,,0.9\n")
    assert [r.line for r in read_boxes_csv(p, score_threshold=0.9)] == [1, 3]  # >= threshold kept


@pytest.mark.parametrize("bad, match", [
    ("v,0902,0.1,0.2,0.3,0.4", "columns"),
    ("v,0902,0.1,0.2,0.3,0.4,1,1,7", "columns"),
    ("v,09:02,0.1,0.2,0.3,0.4,1,1", "timestamp"),
    ("v,0902,0.1,zero,0.3,0.4,1,1", "y1"),
    ("v,0902,0.1,0.2,0.3,nan,1,1", "finite"),
    ("v,0902,0.3,0.2,0.3,0.4,1,1", "empty box"),
    ("v,0902,0.1,0.5,0.3,0.4,1,1", "empty box"),
    ("v,0902,0.1,0.2,1.6,0.4,1,1", "outside"),
    ("v,0902,12,20,300,400,1,1", "outside"),
    ("v,0902,0.1,0.2,0.3,0.4,walk,1", "action id"),
    ("v,0902,0.1,0.2,0.3,0.4,0,1", "positive"),
    ("v,0902,0.1,0.2,0.3,0.4,1,high", "column 8"),
    (",0902,0.1,0.2,0.3,0.4,1,1", "video"),
])
def test_read_boxes_csv_errors_name_file_and_line(tmp_path, bad, match):
    p = write_text(tmp_path / "boxes.csv", GOOD_ROWS + bad + "\n")
    with pytest.raises(AvaFormatError, match=match) as err:
        read_boxes_csv(p)
    assert err.value.line == 3 and str(err.value).startswith(f"{p}:3: ")


def test_read_boxes_csv_score_threshold_needs_a_score(tmp_path):
    p = write_text(tmp_path / "boxes.csv", "v,0902,0.1,0.2,0.3,0.4,1,0.9\nv,0902,0.1,0.2,0.3,0.4,1\n")
    with pytest.raises(AvaFormatError, match="score") as err:
        read_boxes_csv(p, score_threshold=0.5)
    assert err.value.line == 2


def test_read_boxes_csv_clips_slightly_out_of_range_boxes_and_counts_them(tmp_path, caplog):
    p = write_text(tmp_path / "gt.csv", GOOD_ROWS + "v,0902,-0.0002,0.2,1.0001,0.4,1,1\n"
                   "v,0903,0.1,0.2,0.3,0.4,1,1\nv,0904,0.1,0.2,0.3,1.03,1,1\n")
    with caplog.at_level(logging.WARNING, logger="memvit.data.ava_files"):
        rows = read_boxes_csv(p)
    assert rows[2].box == (0.0, 0.2, 1.0, 0.4) and rows[4].box == (0.1, 0.2, 0.3, 1.0)
    assert rows[3].box == (0.1, 0.2, 0.3, 0.4)
    [record] = caplog.records
    assert "clipped 2 box" in record.getMessage() and "line 3" in record.getMessage()
    caplog.clear()
    read_boxes_csv(write_text(tmp_path / "ok.csv", GOOD_ROWS))
    assert not caplog.records


def test_excluded_timestamps(tmp_path):
    p = write_text(tmp_path / "ex.csv", "-5KQ66BBWC4,0934\n\n1j20qq1JyX4,1798\n")
    assert read_excluded_timestamps(p) == {("-5KQ66BBWC4", 934), ("1j20qq1JyX4", 1798)}
    for bad, match in (("v,0902,1\n", "2 columns"), ("v,09.5\n", "timestamp")):
        p = write_text(tmp_path / "bad.csv", "v,0901\n" + bad)
        with pytest.raises(AvaFormatError, match=match) as err:
            read_excluded_timestamps(p)
        assert str(err.value).startswith(f"{p}:2: ")


HEADER = "original_vido_id video_id frame_id path labels\n"


def frame_line(video, index, frame):
    return f'{video} {index} {frame} {video}/{video}_{frame + 1:06d}.jpg ""\n'


def test_frame_list_orders_frames_by_id(tmp_path):
    lines = [frame_line("vidA", 0, f) for f in (0, 1, 2)] + [frame_line("vidB", 1, f) for f in (1, 0)]
    paths = read_frame_list(write_text(tmp_path / "train.csv", HEADER + "".join(lines)))
    assert paths == {"vidA": ["vidA/vidA_000001.jpg", "vidA/vidA_000002.jpg", "vidA/vidA_000003.jpg"],
                     "vidB": ["vidB/vidB_000001.jpg", "vidB/vidB_000002.jpg"]}


@pytest.mark.parametrize("frames, line, match", [
    ([0, 1, 3, 4], 4, "frame_id 2 is missing"),  # gap: named at the first frame after it
    ([1, 2], 2, "frame_id 0 is missing"),
    ([0, 1, 1, 2], 4, "repeated .first at line 3"),
    ([0, 2, 1, 0], 5, "repeated .first at line 2"),
])
def test_frame_list_gaps_and_duplicates_name_the_line(tmp_path, frames, line, match):
    p = write_text(tmp_path / "train.csv", HEADER + "".join(frame_line("vidA", 0, f) for f in frames))
    with pytest.raises(AvaFormatError, match=match) as err:
        read_frame_list(p)
    assert err.value.line == line and str(err.value).startswith(f"{p}:{line}: ")


@pytest.mark.parametrize("text, line, match", [
    (frame_line("vidA", 0, 0), 1, "header"),
    (HEADER + frame_line("vidA", 0, 0) + "vidA 0 1 vidA/x.jpg\n", 3, "5 space-separated"),
    (HEADER + frame_line("vidA", 0, 0) + "vidA 0 one vidA/x.jpg \"\"\n", 3, "frame_id"),
    (HEADER + frame_line("vidA", 0, 0) + frame_line("vidA", 1, 1), 3, "video_id 1 here but 0 at line 2"),
])
def test_frame_list_malformed_lines(tmp_path, text, line, match):
    p = write_text(tmp_path / "val.csv", text)
    with pytest.raises(AvaFormatError, match=match) as err:
        read_frame_list(p)
    assert err.value.line == line


def test_write_boxes_csv_official_format_and_round_trip(tmp_path, rng):
    rows = [BoxRow("-5KQ66BBWC4", 902, (0.077, 0.151, 0.283, 0.811), 80, 0.1234567),
            BoxRow("vid", 1798, (0.5, 0.25, 0.75, 1.0), 12, 0.5)]
    p = tmp_path / "pred.csv"
    write_boxes_csv(p, rows)
    assert p.read_text().splitlines() == ["-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,0.123457",
                                          "vid,1798,0.500,0.250,0.750,1.000,12,0.500000"]
    back = read_boxes_csv(p)
    assert [(r.video, r.sec, r.box, r.action) for r in back] == [(r.video, r.sec, r.box, r.action) for r in rows]
    scores = np.round(rng.random((4, 2)), 6)
    table = BoxTable.from_class_scores(["a", "a", "b", "c"], [902, 903, 902, 1000], np.tile(A, (4, 1)), scores, [3, 7])
    write_boxes_csv(p, table)
    back = read_boxes_csv(p)
    assert [r.extra for r in back] == table.extra.tolist() and [r.action for r in back] == table.action.tolist()
    assert [r.sec for r in back] == table.sec.tolist()


# ----------------------------------------------------------------------------- report


def test_write_evaluation_files_and_summary(tmp_path, rng):
    import matplotlib.image

    names = {c: f"action {c}" for c in AVA60}
    names[79] = "talk to (e.g., self, a person, a group)"
    lm = LabelMap(names=names, groups={c: ava_group(c) for c in AVA60})
    assert len(lm.ids) == 60
    g, d = [], []
    for c in AVA60[:-1]:  # the last class has no ground truth
        g.append(gt("v", 902 + c, A, c))
        d.append(det("v", 902 + c, A if rng.random() < 0.7 else B, c, float(rng.random())))
    result = frame_map(g, d, lm)
    paths = write_evaluation(tmp_path / "eval", result, lm, d)
    assert set(paths) == {"predictions", "per_class_ap", "plot"} and all(p.is_file() for p in paths.values())

    image = matplotlib.image.imread(paths["plot"])
    assert image.ndim == 3 and image.shape[0] > 600 and image.shape[1] > 600  # 60 readable rows
    with open(paths["per_class_ap"], newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["id"]) for r in table] == AVA60
    by_id = {int(r["id"]): r for r in table}
    assert by_id[79]["name"] == names[79] and by_id[79]["group"] == "person-person"
    assert float(by_id[1]["ap"]) == pytest.approx(result.per_class[1], abs=1e-6)
    assert math.isnan(float(by_id[80]["ap"])) and by_id[80]["num_gt"] == "0"
    assert [(r.video, r.sec, r.action) for r in read_boxes_csv(paths["predictions"])] == [
        (r.video, r.sec, r.action) for r in d]

    summary = format_summary(result, lm)
    assert f"{100 * result.map:.2f}" in summary and "59 of 60" in summary
    for group, value in group_map(result, lm).items():
        assert group in summary and f"{100 * value:.2f}" in summary
