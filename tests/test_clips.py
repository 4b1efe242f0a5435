# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Evaluation and streaming inference cut and prepare a config's test clips the same way: both read
memvit.data.clips.clip_recipe, so every field agrees, whatever the config says."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch
from ava_fixtures import CONFIG

from memvit.config import ConfigError, load_config
from memvit.data.ava_files import FPS
from memvit.data.clips import clip_recipe, clip_window, transform_from_config
from memvit.streaming import ClipSpec


def random_cfg(rng: np.random.Generator, **fixed: object):
    values = {
        "DATA.NUM_FRAMES": int(rng.integers(1, 17)), "DATA.SAMPLING_RATE": int(rng.integers(1, 9)),
        "DATA.TEST_CROP_SIZE": int(rng.integers(16, 64)), "DATA.TRAIN_CROP_SIZE": int(rng.integers(16, 64)),
        "DATA.MEAN": str([round(float(v), 3) for v in rng.uniform(0.2, 0.6, 3)]),
        "DATA.STD": str([round(float(v), 3) for v in rng.uniform(0.1, 0.4, 3)]),
        "AVA.MEAN_STD_ORDER": str(rng.choice(["bgr", "rgb"])), "AVA.BGR": bool(rng.random() < 0.5),
        "AVA.IMG_PROC_BACKEND": str(rng.choice(["cv2", "pytorch"])), **fixed,
    }
    return load_config(CONFIG, [item for key, value in values.items() for item in (key, str(value))])


def test_eval_test_transform_and_streaming_clip_spec_agree_field_by_field(gen):
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    cfg = random_cfg(rng)
    recipe, spec, transform = clip_recipe(cfg), ClipSpec.from_config(cfg), transform_from_config(cfg, "test")
    # the clip: frames, rate and timeline
    assert (spec.num_frames, spec.sampling_rate, spec.fps) == (recipe.num_frames, recipe.sampling_rate, recipe.fps)
    assert (recipe.num_frames, recipe.sampling_rate, recipe.fps) == (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, FPS)
    center = int(rng.integers(0, 1000))
    assert spec.frame_indices(center) == clip_window(center, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE).tolist()
    # the pre-processing: every field of the streaming transform is evaluation's
    streaming = spec.transform
    for field in ("mode", "crop_size", "mean", "std", "bgr", "backend", "force_flip"):
        assert getattr(streaming, field) == getattr(transform, field), field
    assert transform.crop_size == recipe.short_side == cfg.DATA.TEST_CROP_SIZE
    assert (transform.mean, transform.std, transform.bgr, transform.backend) == \
        (recipe.mean, recipe.std, recipe.bgr, recipe.backend)
    # and so do the clips they make
    height, width = (int(v) for v in rng.integers(20, 90, 2))
    frames = rng.integers(0, 256, (cfg.DATA.NUM_FRAMES, height, width, 3), dtype=np.uint8)
    boxes = np.array([[0.1, 0.2, 0.6, 0.9]], np.float32)
    got, got_boxes = spec.prepare_with_boxes(frames, boxes)
    want, want_boxes = transform(frames, boxes)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got_boxes, want_boxes, rtol=0, atol=0)


def test_the_recipe_keeps_the_flip_for_evaluation(gen):
    """AVA.TEST_FORCE_FLIP flips evaluation's clips (the reference's test); streaming has no flip."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    cfg = random_cfg(rng, **{"AVA.TEST_FORCE_FLIP": True})
    assert clip_recipe(cfg).force_flip and transform_from_config(cfg, "test").force_flip
    assert "force_flip" not in {f.name for f in dataclasses.fields(ClipSpec)}


def test_an_unknown_resize_backend_is_refused_by_both(gen):
    """Streaming used to read any value but "cv2" as "pytorch" while evaluation refused it. The
    config refuses it at load (a user error, exit 2); a config changed after loading is refused by
    both builders alike."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    with pytest.raises(ConfigError, match="AVA.IMG_PROC_BACKEND 'opencv'"):
        random_cfg(rng, **{"AVA.IMG_PROC_BACKEND": "opencv"})
    cfg = random_cfg(rng)
    cfg.AVA.IMG_PROC_BACKEND = "opencv"
    for build in (ClipSpec.from_config, lambda c: transform_from_config(c, "test")):
        with pytest.raises(ValueError, match="AVA.IMG_PROC_BACKEND"):
            build(cfg)


def test_streaming_does_not_import_the_training_dataset():
    """memvit.streaming prepares clips through memvit.data.clips, not memvit.data.ava (the dataset)."""
    import subprocess

    code = ("import sys, memvit.streaming as s; from memvit.config import get_default_config; "
            "s.ClipSpec.from_config(get_default_config()).transform; "
            "print('memvit.data.ava' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
