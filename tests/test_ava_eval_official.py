# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Our AVA frame-mAP against the official scorer code itself, on fresh random data.

The oracle is code nobody here wrote: the ``pyslowfast`` 1.0 wheel on PyPI (Apache-2.0, pinned by
hash in ``requirements/oracles.txt``, installed with ``--no-deps`` by ``scripts/setup.sh``) ships
PySlowFast's ``slowfast/utils/ava_eval_helper.py`` and the TF object-detection evaluator
``slowfast/utils/ava_evaluation/`` that both official scorers wrap (that package is, module by
module, the same syntax tree as the ActivityNet repository's ``Evaluation/ava/`` up to imports,
docstrings and ``logging.warn``/``warning``). The files are loaded by path, without importing the rest of
``slowfast`` (which needs fvcore, detectron2 and friends).

* ``mode="pyslowfast"`` is scored by PySlowFast's own ``run_evaluation`` (its feeding and the
  evaluator: nothing of ours on the oracle side).
* ``mode="activitynet"`` is scored by the same official evaluator, fed as the ActivityNet script
  ``Evaluation/get_ava_performance.py`` feeds it. That script is not on PyPI, so its feeding (a
  heap keeping the 50 best detections per keyframe, sorted by descending score; detections on
  keyframes absent from the ground-truth file ignored) is restated in :func:`_activitynet_feed`,
  about ten lines; matching and AP are the official code.

Scores are distinct (continuous random), so the official code's unstable sorts make no
difference; ties are the one place where the official code is not deterministic. The 2017
evaluator uses ``np.float``, ``np.bool`` and ``np.NAN``, which NumPy 2 removed: the loaded
modules see a NumPy with those aliases put back (they were the builtins and ``nan``); numpy itself
is not patched.
"""

from __future__ import annotations

import heapq
import importlib.metadata
import importlib.util
import math
import sys
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from memvit.data.ava_files import BoxRow, LabelMap, ava_group
from memvit.evaluation import frame_map

ORACLE_HINT = "install the pinned oracle: .venv/bin/python -m pip install --no-deps -r requirements/oracles.txt " \
              "(scripts/setup.sh does it)"
MAP_KEY = "PascalBoxes_Precision/mAP@0.5IOU"
AP_KEY = "PascalBoxes_PerformanceByCategory/AP@0.5IOU/{}"


def _slowfast_root() -> Path:
    spec = importlib.util.find_spec("slowfast")  # finds the folder, runs nothing
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the official AVA scorer (package pyslowfast) is not installed: {ORACLE_HINT}")
    root = Path(list(spec.submodule_search_locations)[0])
    try:
        found = importlib.metadata.version("pyslowfast")
    except importlib.metadata.PackageNotFoundError:
        found = "no pyslowfast distribution"
    if found != "1.0" or not (root / "utils" / "ava_eval_helper.py").is_file():
        pytest.fail(f"{root} ({found}) is not the pinned pyslowfast 1.0; {ORACLE_HINT}")
    return root


def _numpy_1() -> types.ModuleType:
    """NumPy with the aliases the 2017 evaluator uses and NumPy 2 removed (``np.float`` etc. were the
    builtins themselves, ``np.NAN`` was ``nan``), for the official modules only: numpy is not patched."""
    shim = types.ModuleType("numpy")
    shim.__getattr__ = lambda name: getattr(np, name)
    shim.float, shim.int, shim.bool, shim.object, shim.NAN = float, int, bool, object, np.nan
    return shim


def _load(name: str, path: Path, package_dir: Path | None = None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def official() -> types.SimpleNamespace:
    """The official evaluator package and PySlowFast's helper, loaded by file path.

    ``ava_eval_helper`` imports ``slowfast.utils.ava_evaluation``: that name (and its two parents,
    as empty stand-ins) is registered only while the helper loads, then removed again.
    """
    root = _slowfast_root()
    names = ["slowfast", "slowfast.utils", "slowfast.utils.ava_evaluation"]
    saved = {n: sys.modules.get(n) for n in names}
    evaluator_dir = root / "utils" / "ava_evaluation"
    try:
        sys.modules["slowfast"] = types.ModuleType("slowfast")
        sys.modules["slowfast.utils"] = types.ModuleType("slowfast.utils")
        package = _load("slowfast.utils.ava_evaluation", evaluator_dir / "__init__.py", evaluator_dir)
        evaluation = importlib.import_module("slowfast.utils.ava_evaluation.object_detection_evaluation")
        fields = importlib.import_module("slowfast.utils.ava_evaluation.standard_fields")
        helper = _load("slowfast.utils.ava_eval_helper", root / "utils" / "ava_eval_helper.py")
        numpy_1 = _numpy_1()
        for module in [helper, *(m for n, m in sys.modules.items() if n.startswith("slowfast.utils.ava_evaluation."))]:
            if getattr(module, "np", None) is np:
                module.np = numpy_1
    finally:
        for n in [*names, "slowfast.utils.ava_eval_helper"] + [m for m in sys.modules
                                                                 if m.startswith("slowfast.utils.ava_evaluation.")]:
            sys.modules.pop(n, None)
        sys.modules.update({n: m for n, m in saved.items() if m is not None})
    return types.SimpleNamespace(package=package, evaluation=evaluation, fields=fields, helper=helper)


@pytest.fixture
def rng(gen: torch.Generator) -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))


def _random_case(rng: np.random.Generator):
    """Ground truth, detections, exclusions and a label-map subset with all the awkward cases.

    Keyframes with and without ground truth, ground truth only of classes outside the label map,
    detections on keyframes without ground truth and of classes outside the map, more than 50
    detections on some keyframes (the ActivityNet cap), jittered copies of ground-truth boxes
    (true positives near IoU 0.5), duplicates, empty detection boxes and zero-area ground truth.
    """
    all_ids = rng.choice(np.arange(1, 81), size=12, replace=False)
    map_ids = sorted(int(i) for i in all_ids[:8])
    outside = [int(i) for i in all_ids[8:]]
    labels = LabelMap(names={i: f"action {i}" for i in map_ids}, groups={i: ava_group(i) for i in map_ids})
    keyframes = [(f"vid{v}", int(s)) for v in range(3) for s in rng.choice(np.arange(902, 1799), 6, replace=False)]
    order = rng.permutation(len(keyframes))
    with_gt = [keyframes[i] for i in order[:12]]
    excluded = {keyframes[i] for i in order[10:14]}  # two with ground truth, two without

    def box(around=None):
        if around is None:
            x1, y1 = rng.uniform(0, 0.7, 2)
            w, h = rng.uniform(0.05, 0.3, 2)
            return (float(x1), float(y1), float(min(x1 + w, 1.0)), float(min(y1 + h, 1.0)))
        x1, y1, x2, y2 = around  # jitter in proportion to the box: IoU with it mostly near 0.4-0.9
        jitter = rng.normal(0, 0.12, 4) * np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        b = np.clip(np.asarray(around) + jitter, 0, 1)
        return tuple(float(v) for v in b)

    groundtruth: list[BoxRow] = []
    persons: dict[tuple[str, int], list[tuple[tuple[float, ...], list[int]]]] = {}
    for k, (video, sec) in enumerate(with_gt):
        pool = outside if k == 0 else map_ids + outside  # keyframe 0: ground truth outside the map only
        persons[video, sec] = [(box(), [int(a) for a in rng.choice(pool, size=rng.integers(1, 4), replace=False)])
                               for _ in range(rng.integers(1, 4))]
        for b, actions in persons[video, sec]:
            groundtruth.extend(BoxRow(video, sec, b, action, 1.0) for action in actions)
    x1, y1, _, _ = groundtruth[-1].box
    groundtruth.append(BoxRow(groundtruth[-1].video, groundtruth[-1].sec, (x1, y1, x1, y1 + 0.1),
                              map_ids[0], 1.0))  # zero-area ground truth: counts, never matched

    detections: list[BoxRow] = []
    for video, sec in keyframes:
        n = int(rng.choice([rng.integers(0, 12), rng.integers(51, 70)]))  # some keyframes over the cap
        near = persons.get((video, sec), [])
        for _ in range(n):
            action = int(rng.choice(map_ids + outside[:1]))
            if near and rng.random() < 0.7:
                person, actions = near[rng.integers(len(near))]
                b = box(person)
                action = int(rng.choice(actions)) if rng.random() < 0.5 else action
            else:
                b = box()
            if rng.random() < 0.03:
                b = (b[0], b[1], b[0], b[3])  # empty: dropped by both
            detections.append(BoxRow(video, sec, b, action, float(rng.random())))
    detections = [detections[i] for i in rng.permutation(len(detections))]
    return groundtruth, detections, excluded, labels


def _key(video: str, sec: int) -> str:
    return f"{video},{sec:04d}"  # PySlowFast's make_image_key


def _pyslowfast_feed(rows: list[BoxRow], whitelist: set[int]):
    """The dicts PySlowFast's ``read_csv`` returns for these rows, in file order (its own code path)."""
    boxes, labels, scores = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in rows:
        if r.action not in whitelist:
            continue
        x1, y1, x2, y2 = r.box
        boxes[_key(r.video, r.sec)].append([y1, x1, y2, x2])
        labels[_key(r.video, r.sec)].append(r.action)
        scores[_key(r.video, r.sec)].append(r.extra)
    return boxes, labels, scores


def _activitynet_feed(rows: list[BoxRow], whitelist: set[int], capacity: int):
    """``get_ava_performance.read_csv``: per keyframe a heap of the ``capacity`` best, then by descending score."""
    entries = defaultdict(list)
    for r in rows:
        if r.action not in whitelist:
            continue
        x1, y1, x2, y2 = r.box
        item = (r.extra, r.action, y1, x1, y2, x2)
        key = _key(r.video, r.sec)
        if capacity < 1 or len(entries[key]) < capacity:
            heapq.heappush(entries[key], item)
        elif r.extra > entries[key][0][0]:
            heapq.heapreplace(entries[key], item)
    boxes, labels, scores = defaultdict(list), defaultdict(list), defaultdict(list)
    for key, entry in entries.items():
        for score, action, y1, x1, y2, x2 in sorted(entry, key=lambda t: -t[0]):
            boxes[key].append([y1, x1, y2, x2])
            labels[key].append(action)
            scores[key].append(score)
    return boxes, labels, scores


def _official_activitynet(official, categories, gt_rows, det_rows, excluded_keys, whitelist):
    """``get_ava_performance.run_evaluation`` on the official evaluator; excluded keyframes left out of the
    ground-truth file (how the current script expresses them), so their detections are ignored."""
    gt_rows = [r for r in gt_rows if _key(r.video, r.sec) not in excluded_keys]
    gt_keys = {_key(r.video, r.sec) for r in gt_rows}  # every row counts, whatever its class
    f = official.fields
    evaluator = official.evaluation.PascalDetectionEvaluator(categories)
    boxes, labels, _ = _activitynet_feed(gt_rows, whitelist, 0)
    for key in boxes:
        evaluator.add_single_ground_truth_image_info(key, {
            f.InputDataFields.groundtruth_boxes: np.array(boxes[key], dtype=float),
            f.InputDataFields.groundtruth_classes: np.array(labels[key], dtype=int),
            f.InputDataFields.groundtruth_difficult: np.zeros(len(boxes[key]), dtype=bool)})
    boxes, labels, scores = _activitynet_feed(det_rows, whitelist, 50)
    for key in boxes:
        if key not in gt_keys:
            continue
        evaluator.add_single_detected_image_info(key, {
            f.DetectionResultFields.detection_boxes: np.array(boxes[key], dtype=float),
            f.DetectionResultFields.detection_classes: np.array(labels[key], dtype=int),
            f.DetectionResultFields.detection_scores: np.array(scores[key], dtype=float)})
    return evaluator.evaluate(), evaluator


def _assert_same(ours, metrics, labels: LabelMap, evaluator) -> None:
    """Bit-equal per-class AP, the same number of detections scored per class (which sees the cap),
    and the same mAP up to the order of the mean's sum (NumPy's nanmean against ours: ~1e-16)."""
    scored = evaluator._evaluation.scores_per_class  # per class index (id - 1): one array per keyframe
    assert {c: sum(len(a) for a in scored[c - 1]) for c in labels.names} == ours.num_detections
    assert math.isclose(ours.map, metrics[MAP_KEY], rel_tol=0, abs_tol=1e-12), (ours.map, metrics[MAP_KEY])
    for class_id, name in labels.names.items():
        theirs = metrics[AP_KEY.format(name)]
        if math.isnan(theirs):
            assert math.isnan(ours.per_class[class_id]), (class_id, ours.per_class[class_id])
        else:
            assert ours.per_class[class_id] == theirs, (class_id, ours.per_class[class_id], theirs)


@pytest.mark.parametrize("trial", range(4))
def test_pyslowfast_mode_equals_pyslowfast_run_evaluation(official, rng, capsys, monkeypatch, trial):
    groundtruth, detections, excluded, labels = _random_case(rng)
    made = []

    def recorded(*args, **kwargs):  # keeps the evaluator the helper makes, to inspect
        made.append(official.evaluation.PascalDetectionEvaluator(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(official.helper, "object_detection_evaluation",
                        types.SimpleNamespace(PascalDetectionEvaluator=recorded))
    ours = frame_map(groundtruth, detections, labels, excluded, mode="pyslowfast")
    categories = [{"id": i, "name": n} for i, n in labels.names.items()]
    whitelist = set(labels.names)
    metrics = official.helper.run_evaluation(
        categories, _pyslowfast_feed(groundtruth, whitelist), _pyslowfast_feed(detections, whitelist),
        {_key(v, s) for v, s in excluded})
    capsys.readouterr()  # run_evaluation pprints its metrics
    _assert_same(ours, metrics, labels, made[0])
    assert 0.0 < ours.map < 1.0, "degenerate case: the data should give a mAP strictly between 0 and 1"


@pytest.mark.parametrize("trial", range(4))
def test_activitynet_mode_equals_official_evaluator_fed_as_get_ava_performance(official, rng, trial):
    groundtruth, detections, excluded, labels = _random_case(rng)
    ours = frame_map(groundtruth, detections, labels, excluded, mode="activitynet")
    categories = [{"id": i, "name": n} for i, n in labels.names.items()]
    metrics, evaluator = _official_activitynet(official, categories, groundtruth, detections,
                                    {_key(v, s) for v, s in excluded}, set(labels.names))
    _assert_same(ours, metrics, labels, evaluator)


def test_the_two_modes_differ_on_this_data(rng):
    """Guards the two tests above: on these cases the scorers' rules (cap, keyframes without ground
    truth, match order) must matter, or agreeing with each official code would prove less."""
    differs = 0
    for _ in range(4):
        groundtruth, detections, excluded, labels = _random_case(rng)
        a = frame_map(groundtruth, detections, labels, excluded, mode="pyslowfast").map
        b = frame_map(groundtruth, detections, labels, excluded, mode="activitynet").map
        differs += abs(a - b) > 1e-6
    assert differs >= 3
