# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA data for a memory model: keyframes as PySlowFast reads them, the exact frames of a clip,
box-aware transforms, stream order (any number of workers, DDP, resume), and bad data."""

from __future__ import annotations

import logging
import math
import os
import random
import shutil

import numpy as np
import pytest
import torch
from ava_fixtures import CONFIG, box_image, make_tiny_ava, overrides

from memvit.config import load_config
from memvit.data.ava import AvaDataset, FrameFolders, Keyframe, ava_collate, build_ava_dataset, load_keyframes
from memvit.data.ava_files import AvaFormatError, sec_to_frame
from memvit.data.clips import AvaTransform
from memvit.data.streams import StreamBatchSampler, StreamKey

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


def tiny_cfg(data, out, extra=None):
    return load_config(CONFIG, overrides(data, out, extra))


# ---------------------------------------------------------------------------------- stream order
def reference_batches(n, world, batch, epoch_order):
    """The reference's layout, from its own index arithmetic: sampler index i = r + W (k b + j)
    (DistributedSampler without shuffling), re-mapped by the dataset to keyframe
    ((i // S) + ceil(N / S) (i % S)) mod N."""
    streams = world * batch
    iters = math.ceil(n / streams)
    out = {}
    for rank in range(world):
        out[rank] = [[epoch_order[((i // streams) + iters * (i % streams)) % n]
                      for i in (rank + world * (k * batch + j) for j in range(batch))] for k in range(iters)]
    return out


@pytest.mark.parametrize("n,world,batch", [(37, 1, 4), (50, 2, 3), (16, 4, 2), (7, 2, 4)])
def test_stream_layout_is_the_reference_layout(n, world, batch):
    rng = random.Random(n)
    keyframes = [(f"v{v}", 902 + s) for v in range(5) for s in range(rng.randint(1, 12))][:n]
    n = len(keyframes)
    for rank in range(world):
        sampler = StreamBatchSampler(keyframes, batch, num_replicas=world, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(2)
        ours = [[key.index for key in b] for b in sampler]
        assert ours == reference_batches(n, world, batch, sampler.epoch_keyframes(2))[rank]


def test_each_row_walks_videos_keyframe_after_keyframe():
    keyframes = [(f"v{v}", sec) for v in range(6) for sec in range(902, 902 + 3 + v)]
    sampler = StreamBatchSampler(keyframes, 3, shuffle=True, seed=0)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        rows = list(zip(*[[keyframes[k.index] for k in b] for b in sampler]))
        for row in rows:
            for (va, sa), (vb, sb) in zip(row, row[1:]):
                assert (va == vb and sb == sa + 1) or va != vb  # the next second of the same video, or a new video
    first = StreamBatchSampler(keyframes, 3, shuffle=True, seed=0)
    assert first.epoch_keyframes(0) != first.epoch_keyframes(1)  # a new video order each epoch
    assert first.epoch_keyframes(1) == StreamBatchSampler(keyframes, 3, shuffle=True, seed=0).epoch_keyframes(1)


@pytest.mark.parametrize("n,world,batch,groups", [(37, 1, 2, 3), (50, 2, 3, 4), (90, 1, 4, 8), (7, 2, 2, 2)])
def test_stream_groups_take_turns_over_the_streams_of_a_larger_batch(n, world, batch, groups):
    """TRAIN.STREAM_GROUPS: G groups of B streams take turns, one per iteration; every stream walks
    exactly the keyframes it walks in the layout of a batch of B x G streams, one per turn."""
    keyframes = [(f"v{i // 11}", 902 + i % 11) for i in range(n)]
    for rank in range(world):
        grouped = StreamBatchSampler(keyframes, batch, num_replicas=world, rank=rank, shuffle=True, seed=5,
                                     groups=groups)
        wide = StreamBatchSampler(keyframes, batch * groups, num_replicas=world, rank=rank, shuffle=True, seed=5)
        grouped.set_epoch(1)
        wide.set_epoch(1)
        assert len(grouped) == len(wide) * groups
        walks: dict[int, list[int]] = {}
        for k, b in enumerate(grouped):
            per_group = batch * world
            assert [key.stream for key in b] == [k % groups * per_group + rank + world * j for j in range(batch)]
            for key in b:
                walks.setdefault(key.stream, []).append(key.index)
        expected: dict[int, list[int]] = {}
        for b in wide:
            for key in b:
                expected.setdefault(key.stream, []).append(key.index)
        assert walks == expected
    with pytest.raises(ValueError, match="groups"):
        StreamBatchSampler(keyframes, 2, wrap=False, groups=2)


@pytest.mark.parametrize("n,world,batch", [(37, 1, 4), (50, 2, 3), (5, 2, 4)])
def test_evaluation_layout_sees_every_keyframe_once_and_shrinks_only_at_the_end(n, world, batch):
    keyframes = [(f"v{i // 7}", 902 + i % 7) for i in range(n)]
    seen = []
    for rank in range(world):
        batches = list(StreamBatchSampler(keyframes, batch, num_replicas=world, rank=rank, wrap=False))
        sizes = [len(b) for b in batches]
        assert sizes == sorted(sizes, reverse=True)  # only the last rows run dry
        for b in batches:
            assert [k.stream for k in b] == [rank + world * j for j in range(len(b))]  # row j keeps stream r + W j
        seen += [k.index for b in batches for k in b]
    assert sorted(seen) == list(range(n))


def test_sampler_resumes_mid_epoch():
    keyframes = [(f"v{i // 9}", 902 + i % 9) for i in range(45)]
    sampler = StreamBatchSampler(keyframes, 4, shuffle=True, seed=1)
    sampler.set_epoch(3)
    full = list(sampler)
    state = sampler.state_dict(iterations_done=5)
    fresh = StreamBatchSampler(keyframes, 4, shuffle=True, seed=1)
    fresh.load_state_dict(state)
    fresh.set_epoch(3)  # the loop sets the epoch again: the position survives
    assert list(fresh) == full[5:]
    assert list(fresh) == full  # the next pass is a whole epoch again
    with pytest.raises(ValueError, match="same data, batch size, stream groups and world size"):
        StreamBatchSampler(keyframes, 2).load_state_dict(state)


# ---------------------------------------------------------------------------------- keyframes
def write_csv(path, rows):
    path.write_text("".join(",".join(str(x) for x in row) + "\n" for row in rows))
    return str(path)


def test_keyframes_merge_ground_truth_and_confident_detector_boxes(tmp_path, caplog):
    frames = {"a": 30 * 10, "b": 30 * 4}  # timeline frames per video
    gt = write_csv(tmp_path / "gt.csv", [
        ("a", 902, 0.1, 0.1, 0.5, 0.9, 3, 0), ("a", 902, 0.1, 0.1, 0.5, 0.9, 7, 0),  # one box, two labels
        ("a", 905, 0.2, 0.2, 0.4, 0.4, 12, 1), ("a", 901, 0.2, 0.2, 0.4, 0.4, 1, 1),  # 901: outside 902-1798
        ("zz", 903, 0.2, 0.2, 0.4, 0.4, 1, 1),  # a video without frames
        ("b", 907, 0.2, 0.2, 0.4, 0.4, 1, 1)])  # past the end of b (4 s of frames)
    det = write_csv(tmp_path / "det.csv", [
        ("a", 902, 0.1, 0.1, 0.5, 0.9, "", 0.95),  # the ground-truth box again: merged, no new label
        ("a", 902, 0.6, 0.1, 0.9, 0.9, "", 0.91),  # a confident detection: a negative box
        ("a", 903, 0.6, 0.1, 0.9, 0.9, "", 0.50),  # below the threshold: dropped
        ("b", 902, 0.3, 0.3, 0.6, 0.6, "", 0.99)])
    with caplog.at_level(logging.WARNING, logger="memvit.data.ava"):
        keyframes = load_keyframes([(gt, True), (det, False)], frames, score_threshold=0.9, num_classes=80)
    assert [(k.video, k.sec) for k in keyframes] == [("a", 902), ("a", 905), ("b", 902)]
    a902 = keyframes[0]
    np.testing.assert_allclose(a902.boxes, [[0.1, 0.1, 0.5, 0.9], [0.6, 0.1, 0.9, 0.9]], rtol=1e-6)
    assert a902.labels == ((3, 7), ())
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "zz" in messages and "('b', 907)" in messages
    bad = write_csv(tmp_path / "bad.csv", [("a", 902, 0.1, 0.1, 0.5, 0.9, 81, 0)])
    with pytest.raises(AvaFormatError, match=r"bad\.csv:1:.*action id 81 is outside 1\.\.80"):
        load_keyframes([(bad, True)], frames, score_threshold=0.9, num_classes=80)


# ---------------------------------------------------------------------------------- frames of a clip
def gray_frames(folder, count, size=(24, 32)):
    """JPEGs whose gray level encodes the frame index (index * 3 % 250), listed in frame order."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = f"{folder.name}_{i + 1:06d}.jpg"
        cv2.imwrite(str(folder / name), np.full((*size, 3), (i * 3) % 250, np.uint8))
        paths.append(f"{folder.name}/{name}")
    return paths


def frame_values(clip, transform):
    """The gray level of each frame of a transformed (normalised) clip."""
    mean, std = torch.tensor(transform.mean), torch.tensor(transform.std)
    pixels = clip * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)
    return (pixels.mean(dim=(0, 2, 3)) * 255).round().tolist()


def test_clip_frames_are_the_keyframe_window_clamped_at_the_ends(tmp_path):
    paths = gray_frames(tmp_path / "v", 40 + 30 * 3)  # second 900 ... 904.3
    (tmp_path / "v" / "Thumbs.db").write_text("not a frame")  # PyTorchVideo's folder listing would shift
    transform = AvaTransform(mode="test", crop_size=24, color_augmentation=False)
    dataset = AvaDataset([Keyframe("v", 902, np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), ((1,),)),
                          Keyframe("v", 904, np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), ((1,),))],
                         FrameFolders({"v": paths}, str(tmp_path)), num_frames=8, sampling_rate=8,
                         transform=transform, num_classes=80)
    center = sec_to_frame(902)
    assert dataset.frame_indices(dataset.keyframes[0]) == [max(0, c) for c in range(center - 32, center + 32, 8)]
    center = sec_to_frame(904)
    late = dataset.frame_indices(dataset.keyframes[1])
    assert late == [min(c, len(paths) - 1) for c in range(center - 32, center + 32, 8)]
    assert late[-2:] == [len(paths) - 1] * 2  # padded with the last frame
    for index in range(2):
        sample = dataset[index]
        expected = [(i * 3) % 250 for i in dataset.frame_indices(dataset.keyframes[index])]
        assert frame_values(sample["video"], transform) == pytest.approx(expected, abs=2)


def test_frame_perturbation_stays_in_its_window():
    dataset = AvaDataset([Keyframe("v", 902, np.zeros((0, 4), np.float32), ())], FrameFolders({"v": ["x"] * 600}, ""),
                         num_frames=16, sampling_rate=4, transform=AvaTransform(), num_classes=80, perturb_frames=True)
    base = dataset.frame_indices(dataset.keyframes[0])
    for seed in range(30):
        jittered = np.array(dataset.frame_indices(dataset.keyframes[0], np.random.default_rng(seed)))
        shift = jittered - np.array(base)
        assert shift.min() >= -2 and shift.max() <= 1  # [-rate/2, rate/2)
        assert 0 <= shift[0] <= 1 and -2 <= shift[-1] <= -1  # the first only forward, the last only backward


def test_unreadable_frames_are_replaced_by_a_neighbour_and_reported(tmp_path):
    paths = gray_frames(tmp_path / "v", 30 * 4)
    transform = AvaTransform(mode="test", crop_size=24, color_augmentation=False)
    keyframe = Keyframe("v", 902, np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), ((1,),))
    dataset = AvaDataset([keyframe], FrameFolders({"v": paths}, str(tmp_path)), num_frames=8, sampling_rate=8,
                         transform=transform, num_classes=80)
    indices = dataset.frame_indices(keyframe)
    (tmp_path / paths[indices[3]]).write_bytes(b"\xff\xd8 truncated")  # corrupt
    (tmp_path / paths[indices[5]]).unlink()  # missing
    sample = dataset[0]
    assert len(sample["problems"]) == 2 and all("unreadable frame" in p for p in sample["problems"])
    values = frame_values(sample["video"], transform)
    assert values[3] == pytest.approx((indices[2] * 3) % 250, abs=2)  # the nearest readable frame
    assert len(sample["boxes"]) == 1
    for i in indices:
        (tmp_path / paths[i]).write_bytes(b"")
    sample = dataset[0]  # nothing readable: the row keeps its place with no box to learn or score
    assert len(sample["boxes"]) == 0 and "skipped" in sample["problems"][-1]


# ---------------------------------------------------------------------------------- transforms
@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_boxes_follow_the_pixels_through_scale_crop_and_flip(mode):
    transform = AvaTransform(mode=mode, crop_size=64, jitter_scales=(64, 80), color_augmentation=False)
    for seed in range(6):
        box = np.array([[0.2, 0.3, 0.45, 0.8]], np.float32)
        original = box.copy()
        clip, boxes = transform(box_image(box[0]), box, np.random.default_rng(seed))
        assert np.array_equal(box, original)  # the keyframe's boxes are never modified
        white = (clip[0, 0] > 0).nonzero()
        if len(white) == 0:
            continue  # cropped away
        y1, x1 = white.min(0).values.tolist()
        y2, x2 = white.max(0).values.tolist()
        assert boxes[0].tolist() == pytest.approx([x1, y1, x2, y2], abs=2.5)


def test_one_augmentation_draw_per_video_and_epoch(tiny_data, tmp_path):
    dataset = build_ava_dataset(tiny_cfg(tiny_data, tmp_path), "train")
    by_video = {}
    for i, k in enumerate(dataset.keyframes):
        by_video.setdefault(k.video, []).append(i)
    first, second = list(by_video.values())[0][:2]
    a, b = dataset[StreamKey(first, 0, 0)], dataset[StreamKey(second, 0, 0)]
    later = dataset[StreamKey(first, 1, 0)]
    # Same view (crop offset, flip, colour) for both keyframes of a video in an epoch: the box of
    # a person that keeps still lands at the same place; a new epoch draws a new view.
    assert a["video"].shape == b["video"].shape
    assert not torch.equal(a["video"], later["video"])
    gray = np.full((2, 96, 128, 3), 128, np.uint8)
    rngs = [np.random.default_rng([dataset.seed, 0, dataset.video_index[dataset.keyframes[i].video]])
            for i in (first, second)]
    view = [dataset.transform(gray, np.zeros((0, 4), np.float32), rng)[0] for rng in rngs]
    assert torch.equal(view[0], view[1])


def test_collate_builds_the_models_batch(tiny_data, tmp_path):
    dataset = build_ava_dataset(tiny_cfg(tiny_data, tmp_path), "train")
    one_box = dict(dataset[3])
    one_box.update({key: one_box[key][:1] for key in ("boxes", "labels", "ori_boxes")})
    samples = [dataset[0], one_box, dataset[7]]
    batch = ava_collate(samples)
    assert batch["video"].shape[0] == 3
    assert batch["boxes"][:, 0].tolist() == [float(i) for i, s in enumerate(samples) for _ in range(len(s["boxes"]))]
    assert batch["labels"].shape == (len(batch["boxes"]), 8)
    assert batch["video_ids"] == [s["video_id"] for s in samples]
    with pytest.raises(RuntimeError):  # PyTorch's default collate cannot stack ragged boxes
        torch.utils.data.default_collate(samples)
    test = build_ava_dataset(tiny_cfg(tiny_data, tmp_path, {"DATA.TEST_CROP_SIZE": 48}), "test")
    wide = dict(test[0], video=torch.zeros(3, 8, 48, 80))
    with pytest.raises(ValueError, match="TEST.BATCH_SIZE 1"):
        ava_collate([test[0], wide])


@pytest.mark.parametrize("size, workers", [(7, 3), (8, 2), (2, 3)])
def test_rows_collated_by_their_workers_interleave_into_the_batch_of_all_rows(size, workers):
    """Worker w collates rows w, w + N, ... (none: None); interleaved, they are ava_collate of all rows:
    clips and per-row lists in row order, boxes by row with their row's index, labels and keys with them."""
    from memvit.data.loader import interleave_rows

    rng = np.random.default_rng()
    samples = []
    for row in range(size):
        n = int(rng.integers(0, 4))  # a row may have no box
        samples.append({"video": torch.randn(3, 2, 4, 5), "boxes": torch.rand(n, 4), "labels": torch.rand(n, 6),
                        "ori_boxes": torch.rand(n, 4), "video_id": f"v{rng.integers(9)}", "sec": row * 7,
                        "stream": int(rng.integers(100)), "problems": [f"row {row}"] * int(rng.integers(0, 2))})
    parts = [ava_collate(samples[w::workers]) if samples[w::workers] else None for w in range(workers)]
    merged, whole = interleave_rows(parts, size), ava_collate(samples)
    for key in ("video", "boxes", "labels", "ori_boxes"):
        assert torch.equal(merged[key], whole[key]), key
    for key in ("box_keys", "video_ids", "secs", "streams"):
        assert merged[key] == whole[key], key
    assert sorted(merged["problems"]) == sorted(whole["problems"])
    if parts[-1] is not None:  # a part of clips of another size
        wide = [*parts[:-1], dict(parts[-1], video=torch.zeros(len(samples[workers - 1::workers]), 3, 2, 4, 6))]
        with pytest.raises(ValueError, match="TEST.BATCH_SIZE 1"):
            interleave_rows(wide, size)


def test_workers_keep_the_stream_order(tiny_data, tmp_path):
    dataset = build_ava_dataset(tiny_cfg(tiny_data, tmp_path), "train")

    def batches(workers):
        sampler = StreamBatchSampler(dataset.keyframe_ids(), 3, shuffle=True, seed=0)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=ava_collate,
                                             num_workers=workers)
        return [(b["video_ids"], b["secs"], b["video"]) for b in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel)
    for (ids_a, secs_a, video_a), (ids_b, secs_b, video_b) in zip(serial, parallel):
        assert (ids_a, secs_a) == (ids_b, secs_b)
        assert torch.equal(video_a, video_b)  # augmentation comes from the key, not from the worker


def test_an_error_raised_in_a_worker_ends_the_run_instead_of_hanging_it():
    """Our workers ignore SIGTERM (the main process handles it), which multiprocessing sends its daemonic
    children at exit: after an error raised in a worker, a failed evaluation once waited forever."""
    import subprocess
    import sys

    script = """
import torch
from memvit.data import loader

class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        if i == 9:
            raise ValueError("sample 9 is bad")
        return torch.zeros(3)

for batch in torch.utils.data.DataLoader(Data(), batch_size=4, num_workers=2, worker_init_fn=loader._ignore_sigterm):
    pass
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "sample 9 is bad" in result.stderr, result.stderr[-2000:]
    assert "killed by signal" not in result.stderr  # the workers' end is not reported as a second error


# ---------------------------------------------------------------------------------- bad data
def test_bad_data_errors_name_the_file(tiny_data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data, broken)
    gt = broken / "annotations" / "ava_train_v2.2.csv"
    lines = gt.read_text().splitlines()
    lines[3] = lines[3].replace(",", ";", 2)
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(AvaFormatError, match=r"ava_train_v2\.2\.csv:4:"):
        build_ava_dataset(tiny_cfg(broken, tmp_path), "train")
    shutil.copyfile(tiny_data / "annotations" / "ava_train_v2.2.csv", gt)
    video = sorted(os.listdir(broken / "frames"))[0]
    shutil.rmtree(broken / "frames" / video)
    with pytest.raises(FileNotFoundError, match=rf"lists video {video} but .* does not exist"):
        build_ava_dataset(tiny_cfg(broken, tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="AVA box file not found"):
        build_ava_dataset(tiny_cfg(tiny_data, tmp_path, {"AVA.TEST_PREDICT_BOX_LISTS": "['missing.csv']"}), "test")
