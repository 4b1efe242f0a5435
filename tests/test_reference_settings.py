# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The reference's files and settings, nothing silent.

* Every key of the reference's defaults (tests/data/reference_config_keys.yaml, what a reference
  checkpoint's ``cfg`` holds) loads: read by memvit, or known as reference-only and reported as
  ignored; our defaults are the reference's except where listed (and why).
* Settings memvit accepts but does not act on are reported at load with the reason; values it
  cannot honour are refused.
* Reference quirks: the default does what the reference's code does (the paper's numbers came
  from it), each checked against a hand-written statement of the reference's rule; an "ours" key
  gives the intent.
* ``AVA.TEST_FORCE_FLIP`` and ``TEST.FLIP_AVERAGE`` (ours).
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ava_fixtures import CONFIG, box_image, make_tiny_ava, overrides
from fvcore.common.config import CfgNode
from torch import nn

from memvit.config import REFERENCE_ONLY_KEYS, ConfigError, build_model, get_default_config, load_config, model_kwargs
from memvit.data.ava import build_ava_dataset, load_keyframes
from memvit.data.ava_files import read_boxes_csv, read_excluded_timestamps
from memvit.data.clips import AvaTransform, transform_from_config
from memvit.data.loader import build_loader
from memvit.evaluation import engine as memvit_eval
from memvit.streaming.detector import ClipSpec
from memvit.training.solver import clip_gradients, parameter_groups

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = yaml.safe_load((ROOT / "tests" / "data" / "reference_config_keys.yaml").read_text())

# Keys we read whose default is deliberately not the reference's, and why.
DELIBERATE = {
    "AVA.FRAME_DIR": "our data layout (data/ava/...) instead of the authors' cluster paths",
    "AVA.FRAME_LIST_DIR": "our data layout",
    "AVA.ANNOTATION_DIR": "our data layout",
    "MODEL.ARCH": "memvit has one architecture (the reference's default is slowfast)",
    "MODEL.MODEL_NAME": "memvit has one architecture (the reference's default is SlowFast)",
}


def flat(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def nested(pairs):
    tree: dict = {}
    for key, value in pairs.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def reference_cfg_text(**changes) -> str:
    """What ``cfg.dump()`` writes for the reference's defaults (a checkpoint's ``cfg``)."""
    return CfgNode(nested({**REFERENCE, **changes})).dump()


def ours_keys() -> set[str]:
    """Keys get_default_config marks "# ours" in its source."""
    source = (ROOT / "memvit" / "config.py").read_text()
    return {m.group(1) for m in re.finditer(r"^\s+c\.([A-Z0-9_.]+) = .*# ours", source, re.M)}


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "memvit.config" and r.levelno == logging.WARNING]


# ---------------------------------------------------------------------------------- the reference's keys
def test_every_reference_key_is_read_or_known_reference_only_and_ours_are_marked():
    ours = {key for key, _ in flat(get_default_config())}
    reference = set(REFERENCE)
    assert len(reference) == 278
    assert reference - ours - REFERENCE_ONLY_KEYS == set()
    assert REFERENCE_ONLY_KEYS <= reference and not REFERENCE_ONLY_KEYS & ours
    assert ours - reference == ours_keys()  # every key of ours is marked "ours"


def test_a_reference_checkpoints_cfg_loads_and_each_ignored_key_is_reported_once(caplog):
    with caplog.at_level(logging.WARNING, logger="memvit.config"):
        cfg = load_config(text=reference_cfg_text())
    ignored = [m for m in warnings_of(caplog) if "does not use were ignored" in m]
    assert len(ignored) == 1
    names = set(ignored[0].split("ignored: ", 1)[1].split(", "))
    assert names == REFERENCE_ONLY_KEYS
    loaded = dict(flat(cfg))
    for key in set(REFERENCE) - REFERENCE_ONLY_KEYS:
        assert loaded[key] == REFERENCE[key], key


def test_a_typo_key_is_still_refused():
    text = reference_cfg_text(**{"AVA.TEST_FORCE_FLIPP": True})
    with pytest.raises(ConfigError, match=r"unknown config key 'AVA.TEST_FORCE_FLIPP'.*did you mean 'AVA.TEST_FORC"):
        load_config(text=text)


def test_our_defaults_are_the_references_except_where_listed():
    ours = dict(flat(get_default_config()))
    differ = {key for key in set(ours) & set(REFERENCE) if ours[key] != REFERENCE[key]}
    assert differ == set(DELIBERATE)


# ---------------------------------------------------------------------------------- nothing silent
def test_settings_not_acted_on_are_reported_with_the_reason(caplog):
    with caplog.at_level(logging.WARNING, logger="memvit.config"):
        load_config(CONFIG)  # the shipped quick start: nothing to report
        assert warnings_of(caplog) == []
        load_config(CONFIG, ["NUM_SHARDS", "4", "SHARD_ID", "1", "TEST.DATASET", "kinetics",
                             "DATA.INPUT_CHANNEL_NUM", "[3, 3]", "MVIT.ZERO_DECAY_POS_CLS", "True",
                             "MVIT.ZERO_DECAY_POS_CLS_EXEMPT", "False",
                             "SOLVER.CLIP_GRAD_VAL", "1.0"])  # with the config's CLIP_GRAD_L2NORM 5.0
    (line,) = warnings_of(caplog)
    for key in ("NUM_SHARDS = 4 (not read: machines and ranks come from torchrun", "SHARD_ID = 1 (not read",
                "TEST.DATASET = 'kinetics' (not read", "DATA.INPUT_CHANNEL_NUM = [3, 3] (MViT has one pathway",
                "MVIT.ZERO_DECAY_POS_CLS = True (exempts nothing", "SOLVER.CLIP_GRAD_L2NORM = 5.0 (not applied"):
        assert key in line, key
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="memvit.config"):  # the intents asked for: nothing inert
        load_config(CONFIG, ["MVIT.ZERO_DECAY_POS_CLS_EXEMPT", "True", "MVIT.ZERO_DECAY_POS_CLS", "True",
                             "SOLVER.CLIP_GRAD_VAL", "1.0", "SOLVER.CLIP_GRAD_BOTH", "True"])
    assert warnings_of(caplog) == []


def test_values_memvit_cannot_honour_are_refused():
    with pytest.raises(ConfigError, match="TRAIN.CHECKPOINT_TYPE 'caffe2'"):
        load_config(CONFIG, ["TRAIN.CHECKPOINT_TYPE", "caffe2"])
    with pytest.raises(ConfigError, match="AVA.MEAN_STD_ORDER 'rbg'"):
        load_config(CONFIG, ["AVA.MEAN_STD_ORDER", "rbg"])
    with pytest.raises(ConfigError, match="MODEL.MODEL_NAME must be 'MViT'"):
        model_kwargs(load_config(CONFIG, ["MODEL.MODEL_NAME", "SlowFast"]))


# ---------------------------------------------------------------------------------- quirk 1: weight decay
def reference_no_decay(model: nn.Module, zero_wd_1d: bool) -> set[int]:
    """The reference's rule: its no_weight_decay() names (cls_token, rel_pos_h/w/t with
    MVIT.ZERO_DECAY_POS_CLS) are looked for in MODULE names; 1-D parameters and modules named
    ``*.bias`` with ZERO_WD_1D_PARAM."""
    skip = ["rel_pos_h", "rel_pos_w", "rel_pos_t", "cls_token"]
    out = set()
    for name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            if any(k in name for k in skip) or ((param.ndim == 1 or name.endswith(".bias")) and zero_wd_1d):
                out.add(id(param))
    return out


def test_zero_decay_pos_cls_exempts_nothing_as_the_reference_and_the_intent_is_ours():
    cfg = load_config(CONFIG, ["MVIT.ZERO_DECAY_POS_CLS", "True", "MVIT.ZERO_DECAY_POS_CLS_EXEMPT", "False",
                               "SOLVER.ZERO_WD_1D_PARAM", "True"])
    model = build_model(cfg)
    groups = parameter_groups(model, cfg)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert no_decay == reference_no_decay(model, zero_wd_1d=True)
    assert id(model.cls_token) not in no_decay and id(model.blocks[0].attn.rel_pos_h) not in no_decay
    cfg.MVIT.ZERO_DECAY_POS_CLS_EXEMPT = True
    no_decay = {id(p) for g in parameter_groups(model, cfg) if g["weight_decay"] == 0.0 for p in g["params"]}
    assert id(model.cls_token) in no_decay and id(model.blocks[0].attn.rel_pos_h) in no_decay


# ---------------------------------------------------------------------------------- quirk 2: clipping
@pytest.mark.parametrize("val,norm,both,expected_scale", [
    (2.0, 1.0, False, None),  # the reference: by value only
    (2.0, 1.0, True, 1.0 / math.sqrt(8.25)),  # ours: value, then norm (|[2, -2, 0.5]| = sqrt(8.25))
    (None, 1.0, False, 1.0 / math.sqrt(25.25)),  # norm only
])
def test_gradient_clipping_with_both_set_clips_by_value_only(val, norm, both, expected_scale):
    cfg = load_config(CONFIG, ["SOLVER.CLIP_GRAD_VAL", str(val), "SOLVER.CLIP_GRAD_L2NORM", str(norm),
                               "SOLVER.CLIP_GRAD_BOTH", str(both)])
    model = nn.Module()
    model.w = nn.Parameter(torch.zeros(3))
    model.w.grad = torch.tensor([3.0, -4.0, 0.5])
    clip_gradients(model, cfg)
    by_value = torch.tensor([2.0, -2.0, 0.5]) if val else torch.tensor([3.0, -4.0, 0.5])
    scale = expected_scale if expected_scale is not None else 1.0
    torch.testing.assert_close(model.w.grad, by_value * scale, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- quirk 3: FULL_TEST_ON_VAL
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


def tiny_cfg(data, out, extra=None):
    return load_config(CONFIG, overrides(data, out, extra))


def test_quick_validation_subset_is_the_val_splits_only(tiny_data, tmp_path):
    """The reference subsamples seconds divisible by 4 in its "val" mode only (and scores it
    against the ground truth of those seconds); its test split is always full."""
    full = tiny_cfg(tiny_data, tmp_path, {"AVA.FULL_TEST_ON_VAL": True})
    quick = tiny_cfg(tiny_data, tmp_path, {"AVA.FULL_TEST_ON_VAL": False})
    every = build_ava_dataset(full, "test").keyframe_ids()
    assert any(sec % 4 for _, sec in every)
    assert build_ava_dataset(quick, "test").keyframe_ids() == every
    assert build_ava_dataset(quick, "val").keyframe_ids() == [(v, s) for v, s in every if s % 4 == 0]
    assert build_ava_dataset(full, "val").keyframe_ids() == every


def perfect_predictions(cfg, keep) -> memvit_eval.Predictions:
    """Every ground-truth box of the kept keyframes, scored 1 for its classes and 0 elsewhere."""
    ann = Path(cfg.AVA.ANNOTATION_DIR)
    excluded = read_excluded_timestamps(ann / cfg.AVA.EXCLUSION_FILE)
    classes: dict = defaultdict(set)
    for row in read_boxes_csv(ann / cfg.AVA.GROUNDTRUTH_FILE):
        if keep(row.sec) and (row.video, row.sec) not in excluded:
            classes[(row.video, row.sec, row.box)].add(row.action)
    keys = sorted(classes)
    scores = np.zeros((len(keys), cfg.MODEL.NUM_CLASSES))
    for i, key in enumerate(keys):
        scores[i, [a - 1 for a in classes[key]]] = 1.0
    return memvit_eval.Predictions([k[0] for k in keys], [k[1] for k in keys],
                                   np.array([k[2] for k in keys]), scores)


def test_quick_validation_is_scored_against_its_own_keyframes(tiny_data, tmp_path):
    quick = tiny_cfg(tiny_data, tmp_path, {"AVA.FULL_TEST_ON_VAL": False})
    predictions = perfect_predictions(quick, lambda sec: sec % 4 == 0)
    assert memvit_eval.score(predictions, quick, split="val")["map"] == pytest.approx(1.0)
    assert memvit_eval.score(predictions, quick, split="test")["map"] < 1.0  # the test split: every keyframe


# ---------------------------------------------------------------------------------- quirk 4: mean/std order
@pytest.mark.parametrize("bgr", [False, True])
@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_mean_and_std_are_indexed_as_the_references_loader_does(tmp_path, bgr, order):
    """The reference decodes BGR, normalises channel i with DATA.MEAN[i]/STD[i], then reverses
    to RGB (unless AVA.BGR): its MEAN[0] is blue's. ``rgb`` (ours) reads MEAN[0] as red's."""
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 0.125]
    cfg = load_config(CONFIG, ["DATA.MEAN", str(mean), "DATA.STD", str(std), "AVA.BGR", str(bgr),
                               "AVA.MEAN_STD_ORDER", order, "DATA.TEST_CROP_SIZE", "16"])
    rgb = np.array([200, 100, 50], np.float64)
    frames = np.broadcast_to(rgb.astype(np.uint8), (2, 16, 16, 3)).copy()
    if order == "bgr":  # the reference: on the BGR image, then (unless BGR) reversed
        normalised_bgr = (rgb[::-1] / 255 - np.array(mean)) / np.array(std)
        expected = normalised_bgr if bgr else normalised_bgr[::-1]
    else:
        normalised_rgb = (rgb / 255 - np.array(mean)) / np.array(std)
        expected = normalised_rgb[::-1] if bgr else normalised_rgb
    for transform in (transform_from_config(cfg, "test"), ClipSpec.from_config(cfg).transform):
        clip, _ = transform(frames, np.zeros((0, 4), np.float32))
        np.testing.assert_allclose(clip[:, 0, 0, 0].numpy(), expected, rtol=1e-5)


# ---------------------------------------------------------------------------------- quirk 5: box identity
def test_boxes_are_told_apart_by_their_csv_text_as_the_reference(tmp_path):
    frames = {"a": 30 * 10}  # timeline frames per video
    gt = tmp_path / "gt.csv"
    gt.write_text("a,0902,0.1,0.2,0.5,0.9,3,0\n"
                  "a,0902,0.100,0.2,0.5,0.9,7,0\n"  # the same value, other text: a second box
                  "a,0902,0.1,0.2,0.5,0.9,5,0\n")  # the same text: merged with the first
    (keyframe,) = load_keyframes([(str(gt), True)], frames, score_threshold=0.9, num_classes=80)
    assert keyframe.labels == ((3, 5), (7,))
    np.testing.assert_allclose(keyframe.boxes, [[0.1, 0.2, 0.5, 0.9]] * 2)
    (keyframe,) = load_keyframes([(str(gt), True)], frames, score_threshold=0.9, num_classes=80,
                                 merge_by_value=True)
    assert keyframe.labels == ((3, 7, 5),)


def test_merge_boxes_by_value_key_reaches_the_loader(tiny_data, tmp_path):
    ann = Path(tiny_data) / "annotations" / "ava_val_predicted_boxes.csv"
    copy = tmp_path / "annotations"
    copy.mkdir()
    for f in ann.parent.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    first = (copy / ann.name).read_text().splitlines()[0].split(",")
    respelled = first[:2] + [f"{float(first[2]):.6f}"] + first[3:]
    with open(copy / ann.name, "a") as f:
        f.write(",".join(respelled) + "\n")
    counts = {}
    for by_value in (False, True):
        cfg = tiny_cfg(tiny_data, tmp_path, {"AVA.ANNOTATION_DIR": copy, "AVA.MERGE_BOXES_BY_VALUE": by_value})
        dataset = build_ava_dataset(cfg, "test")
        counts[by_value] = sum(len(k.boxes) for k in dataset.keyframes)
    assert counts[False] == counts[True] + 1


# ---------------------------------------------------------------------------------- TEST_FORCE_FLIP
@pytest.mark.parametrize("mode", ["val", "test"])
def test_force_flip_flips_val_and_test_clips_and_their_boxes(mode):
    """The reference at val/test time with AVA.TEST_FORCE_FLIP: image mirrored, boxes
    x1' = W - 1 - x2, x2' = W - 1 - x1 (its flip_boxes), y unchanged."""
    box = np.array([[0.1, 0.25, 0.4, 0.75]], np.float32)
    frames = box_image(box[0], (48, 64))
    plain, plain_boxes = AvaTransform(mode=mode, crop_size=48, color_augmentation=False)(frames, box)
    flipped, flipped_boxes = AvaTransform(mode=mode, crop_size=48, color_augmentation=False,
                                          force_flip=True)(frames, box)
    width = plain.shape[-1]
    assert torch.equal(flipped, plain.flip(-1))
    x1, y1, x2, y2 = plain_boxes[0].tolist()
    assert flipped_boxes[0].tolist() == pytest.approx([width - 1 - x2, y1, width - 1 - x1, y2])
    train = AvaTransform(mode="train", crop_size=48, jitter_scales=(48, 48), color_augmentation=False,
                         random_flip=False, force_flip=True)  # training draws its own flips
    assert torch.equal(train(frames, box, np.random.default_rng(0))[0],
                       AvaTransform(mode="train", crop_size=48, jitter_scales=(48, 48), color_augmentation=False,
                                    random_flip=False)(frames, box, np.random.default_rng(0))[0])


def test_force_flip_from_the_config_keeps_the_original_boxes_for_scoring(tiny_data, tmp_path):
    cfg = tiny_cfg(tiny_data, tmp_path, {"AVA.TEST_FORCE_FLIP": True})
    plain = build_ava_dataset(tiny_cfg(tiny_data, tmp_path), "test")[0]
    flipped = build_ava_dataset(cfg, "test")[0]
    assert torch.equal(flipped["video"], plain["video"].flip(-1))
    assert torch.equal(flipped["ori_boxes"], plain["ori_boxes"])
    width = plain["video"].shape[-1]
    torch.testing.assert_close(flipped["boxes"][:, [0, 2]], width - 1 - plain["boxes"][:, [2, 0]])


# ---------------------------------------------------------------------------------- TEST.FLIP_AVERAGE
def test_flip_average_is_the_mean_of_a_plain_and_a_flipped_pass(tiny_data, tmp_path, monkeypatch):
    cfg = tiny_cfg(tiny_data, tmp_path, {"TEST.FLIP_AVERAGE": True})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    seen = {}
    monkeypatch.setattr(memvit_eval, "score", lambda predictions, cfg, **kw: seen.setdefault("p", predictions))
    memvit_eval.evaluate(model, cfg, split="test", progress=False)
    passes = []
    for flip in (False, True):
        one = tiny_cfg(tiny_data, tmp_path, {"AVA.TEST_FORCE_FLIP": flip})
        passes.append(memvit_eval.predict(model, build_loader(one, "test"), progress=False))
    assert not np.allclose(passes[0].scores, passes[1].scores)  # the flip changes the scores
    got = seen["p"]
    assert got.videos == passes[0].videos and np.array_equal(got.boxes, passes[0].boxes)
    np.testing.assert_allclose(got.scores, (passes[0].scores + passes[1].scores) / 2, rtol=1e-6, atol=1e-7)
    assert got.clips == 2 * passes[0].clips
    other = memvit_eval.Predictions(passes[1].videos, passes[1].secs, passes[1].boxes[::-1], passes[1].scores)
    with pytest.raises(RuntimeError, match="other boxes"):
        memvit_eval.flip_average(passes[0], other)
