# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""StreamingDetector: pre-processing against PySlowFast's recipe, memory carried per stream, and
several streams batched that start and end at different times, each equal to its solo run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from media import normalise, solo_run
from test_model import TINY

from memvit import StreamingDetector
from memvit.models import create_memvit
from memvit.streaming.detector import ClipSpec

pytestmark = pytest.mark.usefixtures("one_thread")
SPEC = ClipSpec(num_frames=8, sampling_rate=4, short_side=64)


def tiny_ava(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return create_memvit(**{**TINY, "head": "ava", "num_classes": 7, **kwargs}).eval()


def random_frames(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    return rng.integers(0, 256, (8, *size, 3), dtype=np.uint8)


def random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    corner = rng.uniform(0, 0.5, (count, 2))
    return np.concatenate([corner, corner + rng.uniform(0.2, 0.5, (count, 2))], axis=1).astype(np.float32)


def test_clip_window_is_avas(gen):
    """16x4: frames c-32 ... c+28 every 4 (PySlowFast's range(c - L/2, c + L/2, rate)), clamped to the video."""
    spec = ClipSpec()
    center = int(torch.randint(40, 400, (1,), generator=gen))
    assert spec.frame_indices(center) == list(range(center - 32, center + 32, 4))
    assert spec.frame_indices(3, 50) == [0] * 8 + list(range(3, 32, 4))
    assert spec.frame_indices(40, 50) == list(range(8, 49, 4)) + [49] * 5
    assert spec.span_seconds == pytest.approx(64 / 30)


@pytest.mark.parametrize("size", [(48, 80), (90, 50), (64, 64)])
def test_prepare_is_pyslowfast_test_transform(gen, size):
    """Short side to TEST_CROP_SIZE with the full frame kept (cv2 bilinear on uint8), /255, mean/std."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    frames = random_frames(rng, size)
    got = SPEC.prepare(frames)
    expected = normalise(frames, 64)
    assert got.shape == expected.shape and min(got.shape[2:]) == 64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_pytorch_backend_resizes_floats_bilinearly(gen):
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    frames = random_frames(rng, (40, 72))
    spec = ClipSpec(num_frames=8, short_side=64, resize_backend="pytorch")
    floats = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    resized = torch.nn.functional.interpolate(floats, size=(64, 115), mode="bilinear", align_corners=False)
    expected = ((resized - 0.45) / 0.225).permute(1, 0, 2, 3)
    torch.testing.assert_close(spec.prepare(frames), expected)


def test_streams_batched_equal_solo_runs(gen):
    """Three streams that start, pause and end at different times, one with another frame size:
    each stream's scores equal the model on that video alone, and aligned caches share a batch."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    model = tiny_ava()
    detector = StreamingDetector(model, SPEC)
    # Rounds of the loop; each stream takes part in some of them (in time order). a and d start
    # together; b joins at round 2 and lines up with a once both caches are full (round 6).
    plan = {"a": range(0, 9), "b": range(2, 8), "c": [1, 2, 4, 5], "d": range(0, 3)}
    sizes = {"a": (64, 96), "b": (64, 96), "c": (72, 64), "d": (64, 96)}
    inputs = {name: [] for name in plan}
    outputs = {name: [] for name in plan}
    batches = []
    model.register_forward_hook(lambda module, args, out: batches[-1].append(args[0].shape[0]))
    for step in range(9):
        batches.append([])
        this_round = {}
        for name, steps in plan.items():
            if step in steps:
                frames = random_frames(rng, sizes[name])
                boxes = random_boxes(rng, int(rng.integers(0, 4)))
                inputs[name].append((frames, boxes))
                this_round[name] = (frames, boxes)
        result = detector.step_many(this_round)
        assert list(result) == list(this_round)
        assert all(detector.steps_of(name) == list(plan[name]).index(step) + 1 for name in this_round)
        for name, detections in result.items():
            np.testing.assert_array_equal(detections.boxes, this_round[name][1])
            outputs[name].append(detections.scores)
        for name, steps in plan.items():
            if step == max(steps):
                detector.end(name)
    assert detector.streams == [] and detector.steps_of("a") == 0
    # One forward per group of equal caches and frame sizes: (a, d) together, then (a, b) once aligned.
    assert [sorted(b, reverse=True) for b in batches] == [[2], [2, 1], [2, 1, 1], [1, 1], [1, 1, 1], [1, 1, 1],
                                                          [2], [2], [1]]
    for name in plan:
        clips = [normalise(frames, 64) for frames, _ in inputs[name]]
        expected = solo_run(model, clips, [boxes for _, boxes in inputs[name]])
        for got, want in zip(outputs[name], expected):
            np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


def test_memory_is_carried_and_end_forgets_it(gen):
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    model = tiny_ava()
    detector = StreamingDetector(model, SPEC)
    clips = [random_frames(rng, (64, 64)) for _ in range(4)]
    boxes = random_boxes(rng, 2)
    carried = [detector.step(c, boxes, stream="s").scores for c in clips]
    fresh = StreamingDetector(model, SPEC).step(clips[-1], boxes).scores
    assert detector.memory_of("s") is not None and len(detector.memory_of("s").video_ids) == 4
    assert not np.allclose(carried[-1], fresh, atol=1e-4)  # the memory changes the last clip's scores
    detector.end("s")
    np.testing.assert_allclose(detector.step(clips[-1], boxes, stream="s").scores, fresh, rtol=0, atol=1e-6)
    detector.reset()
    assert detector.streams == []


def test_full_frame_box_by_default_and_box_checks():
    model = tiny_ava()
    detector = StreamingDetector(model, SPEC)
    frames = np.zeros((8, 64, 80, 3), np.uint8)
    out = detector.step(frames)
    np.testing.assert_array_equal(out.boxes, [[0, 0, 1, 1]])
    assert out.scores.shape == (1, 7) and len(out.top_k(3)[0]) == 3
    assert detector.step(frames, np.zeros((0, 4))).scores.shape == (0, 7)  # no person: memory still advances
    with pytest.raises(ValueError, match="max_boxes"):
        detector.step(frames, np.tile([[0.1, 0.1, 0.5, 0.5]], (9, 1)))
    with pytest.raises(ValueError, match="normalised"):
        detector.step(frames, [[10, 10, 50, 50]])
    with pytest.raises(ValueError, match="uint8"):
        detector.step(frames.astype(np.float32))


def test_classifier_streams_equal_solo_runs(gen):
    """A Kinetics head streams too: one row of class probabilities per clip."""
    rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))
    torch.manual_seed(0)
    model = create_memvit(**{**TINY, "head": "kinetics", "num_classes": 5}).eval()
    detector = StreamingDetector(model, SPEC)
    frames = {name: [random_frames(rng, (64, 64)) for _ in range(5)] for name in ("x", "y")}
    got = {name: [] for name in frames}
    for step in range(5):
        for name, det in detector.step_many({n: (frames[n][step], None) for n in frames}).items():
            got[name].append(det.scores)
    for name in frames:
        with torch.no_grad():
            model.memory.reset()
            for clip, scores in zip(frames[name], got[name]):
                want = model(normalise(clip, 64)[None], video_ids=["v"]).numpy()
                np.testing.assert_allclose(scores, want, rtol=0, atol=2e-6)


def test_torch_hub_entry_points(tmp_path):
    """hubconf.py: the presets by name (source="local"), weights from a local checkpoint, strictly."""
    from memvit.checkpoint import CheckpointError, save_checkpoint

    repo = str(Path(__file__).resolve().parents[1])
    model = torch.hub.load(repo, "memvit_16_16x4", source="local", head="ava")
    assert sum(p.numel() for p in model.parameters()) == 42_230_624 and not model.training
    model = torch.hub.load(repo, "memvit_24_32x3", source="local", head="kinetics", num_classes=600)
    assert model.head.projection.out_features == 600
    trained = tiny_ava(seed=3)
    save_checkpoint(tmp_path / "tiny.pyth", trained)
    loaded = torch.hub.load(repo, "memvit_16_16x4", source="local", head="ava", num_classes=7,
                            checkpoint=str(tmp_path / "tiny.pyth"), **TINY)
    for (name, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match="does not match"):
        torch.hub.load(repo, "memvit_16_16x4", source="local", checkpoint=str(tmp_path / "tiny.pyth"))
    detector = torch.hub.load(repo, "streaming_detector", source="local", preset="memvit_16_16x4", **TINY)
    assert isinstance(detector, StreamingDetector)
    assert (detector.clip_spec.num_frames, detector.clip_spec.sampling_rate, detector.clip_spec.short_side) == \
        (16, 4, 224)


def test_top_k_ranks_all_classes_or_a_subset():
    """Hand-computed: the k best (0-based class index, score) per box, best first, ties in class order;
    the same ranking over a subset is what the infer outputs write (label-map classes only)."""
    from memvit.streaming import Detections

    scores = np.array([[0.1, 0.9, 0.5, 0.9], [0.7, 0.2, 0.3, 0.0]], dtype=np.float32)
    det = Detections(boxes=np.zeros((2, 4), dtype=np.float32), scores=scores)
    assert det.top_k(3) == [[(1, pytest.approx(0.9)), (3, pytest.approx(0.9)), (2, pytest.approx(0.5))],
                            [(0, pytest.approx(0.7)), (2, pytest.approx(0.3)), (1, pytest.approx(0.2))]]
    assert det.top_k(2, classes=[0, 2]) == [[(2, pytest.approx(0.5)), (0, pytest.approx(0.1))],
                                            [(0, pytest.approx(0.7)), (2, pytest.approx(0.3))]]
