# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Clips straight from video files (AVA.VIDEO_DIR): equal to the clips of the frame folders
``prepare_ava`` writes from the same video (within JPEG error), at another frame rate, from any
reading order, and damaged files counted and reported, never raised in a worker."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from ava_fixtures import CONFIG

from memvit.config import load_config
from memvit.data.ava import build_ava_dataset
from memvit.data.ava_files import BoxRow, read_boxes_csv, write_boxes_csv
from memvit.data.extract_frames import ExtractionParams
from memvit.data.prepare_ava import prepare_ava
from memvit.data.video_source import VideoClipReader, index_video

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (72, 96)  # H, W


def frame_image(k: int, rng_shift: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Smooth content (codec- and JPEG-friendly) whose mean level encodes the frame number ``k``."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    base = (k * 7 + rng_shift) % 200 + 20
    img = np.stack([base + 0.2 * x, base + 0.1 * y, np.full_like(x, base, dtype=float)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_video(path: Path, seconds: float, fps: int, gop: int | None = None, shift: int = 0, *,
                codec: str = "libx264", b_frames: int | None = 2, options: dict[str, str] | None = None,
                size: tuple[int, int] = SIZE) -> int:
    """``seconds`` of :func:`frame_image` at ``fps``; ``gop``, ``b_frames`` None: the encoder's default."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if b_frames is not None:
            stream.codec_context.max_b_frames = b_frames
        stream.options = {"crf": "12"} if options is None else options
        count = int(seconds * fps)
        for k in range(count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame_image(k, shift, size), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return count


@pytest.fixture(scope="module")
def own_videos(tmp_path_factory):
    """Two 25 fps videos (another frame rate than the 30 fps timeline), keyframes every 0.4 s, their
    ground truth at seconds 1..4 (own videos: the timeline starts at 0), and prepare_ava's folders."""
    root = tmp_path_factory.mktemp("own")
    videos = root / "videos"
    videos.mkdir()
    shift = int(np.random.default_rng().integers(0, 50))  # fresh content each run
    write_video(videos / "cam_a.mp4", 5.0, 25, 10, shift)
    write_video(videos / "cam_b.mkv", 4.5, 25, 10, shift + 17)
    (root / "annotations").mkdir()
    rows = [BoxRow(v, sec, (0.1, 0.2, 0.6, 0.9), 1 + sec % 3, 1.0) for v, secs in
            (("cam_a", range(1, 5)), ("cam_b", range(1, 5))) for sec in secs]
    for name in ("ava_train_v2.2.csv", "ava_val_predicted_boxes.csv"):  # prepare_ava lists both in train.csv
        write_boxes_csv(root / "annotations" / name, rows)
    params = ExtractionParams(start=Fraction(0), duration=Fraction(5), fps=Fraction(30), quality=95)
    summary = prepare_ava(videos, root / "frames_out", annotations_dir=root / "annotations", params=params,
                          progress=False)
    assert not summary.failed
    return root


def cfg_for(root: Path, source: str):
    values = {
        "AVA.ANNOTATION_DIR": root / "annotations", "AVA.TIMELINE_START": 0, "AVA.KEYFRAME_RANGE": "[]",
        "AVA.FRAME_DIR": root / "frames_out" / "frames", "AVA.FRAME_LIST_DIR": root / "frames_out" / "frame_lists",
        "AVA.TEST_LISTS": "['train.csv']", "AVA.TRAIN_LISTS": "['train.csv']",
        "DATA.NUM_FRAMES": 8, "DATA.SAMPLING_RATE": 4, "DATA.TEST_CROP_SIZE": 64, "DATA.TRAIN_CROP_SIZE": 64,
        "DATA.TRAIN_JITTER_SCALES": "[64, 72]", "AVA.TEST_PREDICT_BOX_LISTS": "['ava_val_predicted_boxes.csv']",
        "AVA.DETECTION_SCORE_THRESH": 0.5,
    }
    if source == "videos":
        values["AVA.VIDEO_DIR"] = root / "videos"
    return load_config(CONFIG, [item for k, v in values.items() for item in (k, str(v))])


@pytest.mark.parametrize("split", ["test", "train"])
def test_clips_from_videos_equal_clips_from_prepare_ava_folders(own_videos, split):
    from_frames = build_ava_dataset(cfg_for(own_videos, "frames"), split)
    from_videos = build_ava_dataset(cfg_for(own_videos, "videos"), split)
    assert [(k.video, k.sec) for k in from_videos.keyframes] == [(k.video, k.sec) for k in from_frames.keyframes]
    assert len(from_videos) == 8
    assert from_videos.source.lengths == from_frames.source.lengths  # the same clamping at the ends
    for i in range(len(from_videos)):
        a, b = from_frames[i], from_videos[i]
        assert a["problems"] == [] and b["problems"] == []
        torch.testing.assert_close(a["boxes"], b["boxes"])
        diff = (a["video"] - b["video"]).abs() * 0.225 * 255  # back to pixel levels
        assert diff.mean() < 1.5 and diff.max() < 24, (i, float(diff.mean()), float(diff.max()))


def test_the_keyframe_frame_is_the_one_on_screen_at_its_second(own_videos):
    """At 25 fps, timeline frame i (i/30 s) shows source frame floor(i * 25 / 30): checked by the
    content's level code, decoding in stream order, jumping back, and jumping forward."""
    start = Fraction(0)
    index = index_video(own_videos / "videos" / "cam_a.mp4", start)
    assert index.length == 150  # 5 s at 30 fps
    assert len(index.keyframes) >= 10  # gop 10 at 25 fps
    reader = VideoClipReader(index, start)
    plan = [list(range(0, 64, 4)), list(range(30, 94, 4)), list(range(60, 124, 4)), list(range(2, 20, 3)),
            list(range(120, 150)), [149, 149, 149]]
    for indices in plan:
        frames, problems = reader.frames(indices)
        assert problems == []
        levels = frames[:, :, :, 2].astype(float).mean(axis=(1, 2))
        source = np.array([i * 25 // 30 for i in indices])  # the 25 fps frame on screen at i / 30 s
        offsets = (levels - 20 - source * 7) % 200  # the fixture's random shift, the same for every frame
        wrapped = (offsets - offsets[0] + 100) % 200 - 100
        np.testing.assert_allclose(wrapped, 0, atol=2.5)
    assert reader.seeks <= 4  # forward windows decode on; only the jumps open a new pass


def test_forward_reading_does_not_seek_and_gaps_past_keyframes_do(own_videos):
    index = index_video(own_videos / "videos" / "cam_a.mp4", Fraction(0))
    reader = VideoClipReader(index, Fraction(0))
    for center in range(16, 134, 30):  # every second, overlapping windows
        reader.frames(list(range(center - 16, center + 16, 4)))
    assert reader.seeks == 1
    reader = VideoClipReader(index, Fraction(0))
    reader.frames(list(range(0, 16)))
    reader.frames(list(range(110, 126)))  # 3.7 s on, keyframes every 0.4 s in between
    assert reader.seeks == 2


def test_between_clips_a_reader_holds_only_the_frames_the_next_clips_show(own_videos):
    """A process serving many streams keeps a reader per stream between turns: each holds only the decoded
    frames its announced next clips show (and their RGB), reads on without a step back, and closes its
    decoder where the stream leaves the video; the clips are those of a reader that holds everything."""
    index = index_video(own_videos / "videos" / "cam_a.mp4", Fraction(0))
    lean, plain = VideoClipReader(index, Fraction(0)), VideoClipReader(index, Fraction(0))
    rng = np.random.default_rng()
    clips = [sorted(int(c) + int(rng.integers(-2, 3)) + k for k in range(-16, 16, 4))
             for c in range(18, 133, 30)]  # every second, jittered
    for k, indices in enumerate(clips):
        upcoming = [i for clip in clips[k + 1:k + 3] for i in clip]
        held, _ = lean.frames(indices, upcoming)
        full, _ = plain.frames(indices)
        np.testing.assert_array_equal(held, full)
        assert set(lean._buffer) <= set(upcoming) and len(lean._rgb) <= len(lean._buffer)
        assert len(lean._buffer) < len(plain._buffer) or not upcoming
    assert lean.seeks == 1 and lean._container is None  # no step back; the last clip closed the decoder
    assert lean.decoded <= plain.decoded


def test_damaged_videos_are_reported_and_skipped_never_raised(own_videos, tmp_path, caplog):
    videos = tmp_path / "videos"
    videos.mkdir()
    good = (own_videos / "videos" / "cam_a.mp4").read_bytes()
    (videos / "cam_a.mp4").write_bytes(good)
    (videos / "cam_b.mp4").write_bytes(b"not a video at all")
    root = tmp_path
    (root / "annotations").mkdir()
    for name in ("ava_val_predicted_boxes.csv",):
        (root / "annotations" / name).write_text((own_videos / "annotations" / name).read_text())
    cfg = cfg_for(root, "videos")
    with caplog.at_level(logging.WARNING):
        dataset = build_ava_dataset(cfg, "test")
    assert {k.video for k in dataset.keyframes} == {"cam_a"}
    assert "cam_b.mp4" in caplog.text
    # Damaged after indexing (a truncated MP4 loses its index and no longer opens; a truncated
    # Matroska file decodes up to the cut): the clips come back with their problems, nothing raises.
    (videos / "cam_a.mp4").write_bytes(good[: len(good) // 2])
    sample = dataset[len(dataset) - 1]
    assert sample["problems"] and "cam_a.mp4" in sample["problems"][0]
    assert sample["boxes"].numel() == 0  # nothing to learn or score: the row keeps its place only
    mkv = (own_videos / "videos" / "cam_b.mkv").read_bytes()
    (videos / "cam_b.mkv").write_bytes(mkv)
    index = index_video(videos / "cam_b.mkv", Fraction(0))
    (videos / "cam_b.mkv").write_bytes(mkv[: len(mkv) // 2])
    reader = VideoClipReader(index, Fraction(0))
    early, problems = reader.frames(list(range(0, 16)))
    assert early is not None and problems == []
    late, problems = reader.frames(list(range(index.length - 16, index.length)))
    assert late is None or problems


def test_a_missing_video_folder_is_a_user_error(own_videos, tmp_path):
    from memvit.data.ava import MissingDataError

    cfg = cfg_for(own_videos, "videos")
    cfg.AVA.VIDEO_DIR = str(tmp_path / "nowhere")
    with pytest.raises(MissingDataError, match="AVA.VIDEO_DIR"):
        build_ava_dataset(cfg, "test")


class _WorkerTagged:
    """A dataset whose samples name, among their problems, the DataLoader worker that read them."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getattr__(self, name):
        return getattr(self.dataset, name)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        info = torch.utils.data.get_worker_info()
        sample = self.dataset[key]
        return {**sample, "problems": [*sample["problems"], f"worker {info.id if info else None}"]}


@pytest.mark.parametrize("groups", [1, 2])
def test_the_loader_keeps_each_stream_on_one_worker_and_gives_the_same_batches(own_videos, groups):
    """Two workers, each decoding its own streams forward: the same batches, in the same order, as one
    process. One group: the rows are dealt out and put back together in row order; groups a multiple of
    the workers: whole batches, group g on worker g % 2."""
    from memvit.data.loader import StreamRowLoader, stream_loader, stream_sampler

    cfg = cfg_for(own_videos, "videos")
    cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.STREAM_GROUPS = 3, groups
    dataset = _WorkerTagged(build_ava_dataset(cfg, "train"))

    def batches(workers):
        cfg.DATA_LOADER.NUM_WORKERS = workers
        sampler = stream_sampler(cfg, dataset, "train")
        loader = stream_loader(cfg, dataset, sampler)
        assert isinstance(loader, StreamRowLoader) == (groups == 1 and workers == 2)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(parallel) == len(serial) == len(stream_sampler(cfg, dataset, "train"))
    workers_of: dict[int, set[str]] = {}
    for a, b in zip(serial, parallel):
        assert a["box_keys"] == b["box_keys"] and a["streams"] == b["streams"] and a["secs"] == b["secs"]
        torch.testing.assert_close(a["video"], b["video"])
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["labels"], b["labels"])
        assert a["problems"] == ["worker None"] * 3
        tags = b["problems"]
        assert len(tags) == 3  # one a row, in row order for whole batches (the parts' order for dealt rows)
        rows = tags if groups > 1 else [tags[0], tags[2], tags[1]]  # worker 0 reads rows 0 and 2
        for stream, tag in zip(b["streams"], rows):
            workers_of.setdefault(stream, set()).add(tag)
    assert all(len(tags) == 1 for tags in workers_of.values()), workers_of
    assert set.union(*workers_of.values()) == {"worker 0", "worker 1"}


def test_test_clips_of_other_sizes_are_evaluated_one_stream_at_a_time(own_videos, tmp_path, caplog):
    """Full-frame test clips of a wider video cannot share a batch with the others: said at the start, and
    the evaluation runs one stream per process instead of failing halfway (once it failed after training)."""
    import shutil

    from memvit.data.loader import build_loader

    root = tmp_path / "own"
    shutil.copytree(own_videos, root, ignore=shutil.ignore_patterns("frames_out"))
    write_video(root / "videos" / "cam_w.mp4", 4.0, 25, 10, size=(72, 160))
    boxes = root / "annotations" / "ava_val_predicted_boxes.csv"
    rows = read_boxes_csv(boxes)
    write_boxes_csv(boxes, [*rows, *(BoxRow("cam_w", sec, (0.2, 0.2, 0.5, 0.9), 1, 0.9) for sec in (1, 2, 3))])
    cfg = cfg_for(root, "videos")
    cfg.TEST.BATCH_SIZE = 3
    with caplog.at_level(logging.WARNING, logger="memvit.data.loader"):
        batches = list(build_loader(cfg, "test"))
    assert "2 sizes (64x85 (2 videos, e.g. cam_a), 64x142 (1 videos, e.g. cam_w))" in caplog.text
    assert "TEST.BATCH_SIZE 3 is taken as 1" in caplog.text
    assert all(len(batch["video_ids"]) == 1 for batch in batches)
    assert sorted((b["video_ids"][0], b["secs"][0]) for b in batches) == sorted(
        {(row.video, row.sec) for row in read_boxes_csv(boxes)})
    caplog.clear()
    cfg.AVA.ANNOTATION_DIR = str(own_videos / "annotations")  # one size: batches of 3 as asked, nothing said
    with caplog.at_level(logging.WARNING, logger="memvit.data.loader"):
        assert max(len(b["video_ids"]) for b in build_loader(cfg, "test")) == 3
    assert "taken as 1" not in caplog.text


def test_a_splits_videos_are_those_its_ground_truth_names(own_videos, tmp_path):
    """One person-box file for every video serves both splits: evaluation reads the videos of
    AVA.GROUNDTRUTH_FILE only (frame lists say this for frame folders)."""
    import shutil

    annotations = tmp_path / "annotations"
    shutil.copytree(own_videos / "annotations", annotations)
    write_boxes_csv(annotations / "ava_val_v2.2.csv", [BoxRow("cam_b", 2, (0.1, 0.2, 0.6, 0.9), 1, 1.0)])
    cfg = cfg_for(own_videos, "videos")
    cfg.AVA.ANNOTATION_DIR = str(annotations)
    assert {k.video for k in build_ava_dataset(cfg, "test").keyframes} == {"cam_b"}
    assert {k.video for k in build_ava_dataset(cfg, "train").keyframes} == {"cam_a", "cam_b"}


def test_the_row_loader_resumes_mid_epoch_where_the_sampler_says(own_videos):
    """Resume: the sampler's saved iteration is where the row loader starts, with the batches an
    uninterrupted epoch gives from there."""
    from memvit.data.ava import build_ava_dataset
    from memvit.data.loader import StreamRowLoader, stream_loader, stream_sampler

    cfg = cfg_for(own_videos, "videos")
    cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.STREAM_GROUPS = 2, 1  # one group: the rows are dealt out
    cfg.DATA_LOADER.NUM_WORKERS = 2
    dataset = build_ava_dataset(cfg, "train")
    sampler = stream_sampler(cfg, dataset, "train")
    sampler.set_epoch(1)
    whole = list(stream_loader(cfg, dataset, sampler, epoch=1))
    state = sampler.state_dict(2)
    resumed_sampler = stream_sampler(cfg, dataset, "train")
    resumed_sampler.load_state_dict(state)
    loader = stream_loader(cfg, dataset, resumed_sampler, epoch=1)
    assert isinstance(loader, StreamRowLoader) and len(loader) == len(whole) - 2
    rest = list(loader)
    assert [b["box_keys"] for b in rest] == [b["box_keys"] for b in whole[2:]]
    for a, b in zip(rest, whole[2:]):
        torch.testing.assert_close(a["video"], b["video"])


def test_readers_opened_in_this_process_do_not_cross_a_fork(own_videos):
    """A reader opened outside a DataLoader worker decodes with threads; in a forked child those threads are
    gone and freeing the inherited decoder hung a worker once. Readers are closed before every fork."""
    from memvit.data.ava import build_ava_dataset
    from memvit.data.streams import StreamKey

    dataset = build_ava_dataset(cfg_for(own_videos, "videos"), "train")
    first = dataset[StreamKey(0, 0, 0)]
    readers = list(dataset.source._readers.values())
    assert readers and all(r._container is not None for r in readers)  # open here
    pid = os.fork()
    if pid == 0:  # the child: no open decoder inherited, nothing to free
        os._exit(0 if all(r._container is None for r in readers) else 3)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    torch.testing.assert_close(dataset[StreamKey(0, 0, 0)]["video"], first["video"])  # reopened where it reads


@pytest.mark.parametrize("workers,groups", [(2, 1), (2, 40), (0, 40)])
def test_streams_taking_turns_keep_their_readers_open(own_videos, workers, groups):
    """TRAIN.STREAM_GROUPS: a process serving many streams keeps a reader per stream, so no stream's turn
    reopens its video and seeks (a reader cache smaller than the turns would miss every time)."""
    from memvit.data.ava import build_ava_dataset
    from memvit.data.loader import stream_loader, stream_sampler

    cfg = cfg_for(own_videos, "videos")
    cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.STREAM_GROUPS, cfg.DATA_LOADER.NUM_WORKERS = 4, groups, workers
    dataset = build_ava_dataset(cfg, "train")
    stream_loader(cfg, dataset, stream_sampler(cfg, dataset, "train"))
    served = 4 // max(1, workers) * groups
    assert dataset.source.open_readers >= served + 1
    assert dataset.source.open_readers <= max(32, 2 * served)


@pytest.mark.parametrize("fps,threads", [(30, 1), (25, 1), (60, 0)])
def test_frames_no_clip_shows_are_not_decoded_and_clips_stay_exact(tmp_path, fps, threads):
    """Told the next clips' frames (as the dataset tells it), a reader skips the non-reference frames no clip
    will show (x264's default B-frames here): training clips a second apart, their frames jittered, decode
    fewer frames, and every clip, in any reading order (not the announced one, none announced, jumps back,
    the clamped ends), is pixel for pixel the clip of a reader that decodes everything."""
    import dataclasses

    rng = np.random.default_rng()
    path = tmp_path / "v.mp4"
    write_video(path, 6, fps, shift=int(rng.integers(0, 50)), b_frames=None)  # x264's GOP, bf 3 and b-pyramid
    index = index_video(path, Fraction(0))
    assert len(index.pts) == 6 * fps
    everything = dataclasses.replace(index, pts=np.zeros(0, np.int64))  # no frame times: decodes every frame
    skipping, full = VideoClipReader(index, Fraction(0), threads=threads), VideoClipReader(everything, Fraction(0))

    def clip(center: int) -> list[int]:  # 8 frames every 4, jittered by [-2, 2) as in training, clamped
        window = np.arange(center - 16, center + 16, 4) + rng.integers(-2, 2, 8)
        return np.clip(np.sort(window), 0, index.length - 1).tolist()

    phase = int(rng.integers(0, 30))
    plan = [clip(phase + 30 * s) for s in range(6)]
    for k, indices in enumerate(plan):
        upcoming = plan[k + 1] if k + 1 < len(plan) else []
        got, problems = skipping.frames(indices, upcoming)
        assert problems == []
        assert np.array_equal(got, full.frames(indices)[0])
    assert skipping.decoded < 0.8 * full.decoded, (skipping.decoded, full.decoded)
    assert skipping.seeks == 1  # no clip had to be decoded again
    surprises = [(clip(phase + 2), clip(phase + 30)), (clip(phase + 31), clip(phase + 60)), (clip(phase + 62), None),
                 (clip(index.length - 2), []), ([0, 0, 1], None)]
    surprises += [(sorted(rng.integers(0, index.length, 6).tolist()), clip(90)) for _ in range(4)]
    for indices, upcoming in surprises:
        got, problems = skipping.frames(indices, upcoming)
        assert problems == []
        assert np.array_equal(got, full.frames(indices)[0]), indices


def test_training_announces_each_streams_next_clip_and_never_decodes_a_clip_twice(own_videos):
    """In stream order with frame jitter (training), what the dataset announces to a stream's reader is the
    clip that stream reads next, so no clip is decoded again; and fewer frames are decoded than without it."""
    from memvit.data.loader import stream_sampler
    from memvit.data.video_source import VideoClipReader

    cfg = cfg_for(own_videos, "videos")
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.DATA.NUM_FRAMES = 16  # MeMViT-16's clip: a clip's window holds frames of the next two
    assert cfg.DATA.PERTURB_AVA_FRAMES
    counts = {}
    for skip in (True, False):
        VideoClipReader.skip_unneeded = skip
        try:
            dataset = build_ava_dataset(cfg, "train")
            sampler = stream_sampler(cfg, dataset, "train")
            sampler.set_epoch(3)
            announced: dict[int, tuple[str, list[int]]] = {}
            for batch in sampler:
                for key in batch:
                    keyframe = dataset.keyframes[key.index]
                    indices = dataset.clip_indices(keyframe, key.epoch)
                    if key.stream in announced and announced[key.stream][0] == keyframe.video:
                        assert announced[key.stream][1][: len(indices)] == indices
                    announced[key.stream] = (keyframe.video, dataset.upcoming(key, indices[-1]))
                    assert dataset[key]["problems"] == []
            readers = list(dataset.source._readers.values())
        finally:
            VideoClipReader.skip_unneeded = True
        assert sum(r.seeks for r in readers) == len(readers)  # one pass per stream and video: nothing decoded twice
        counts[skip] = sum(r.decoded for r in readers)
    assert counts[True] < 0.9 * counts[False], counts


@pytest.mark.parametrize("codec,suffix", [("libsvtav1", ".mkv"), ("mpeg4", ".avi")])
def test_other_codecs_give_the_clips_of_a_full_decode(tmp_path, codec, suffix):
    """AV1 (libdav1d reads skip_frame only when it opens: it must not be asked to skip, or a whole pass
    loses frames) and MPEG-4 part 2 with B-frames (skipped): announced training clips equal a full decode."""
    import dataclasses

    if codec not in av.codecs_available:
        pytest.skip(f"no {codec} encoder in this FFmpeg")
    rng = np.random.default_rng()
    path = tmp_path / f"v{suffix}"
    write_video(path, 4, 30, shift=int(rng.integers(0, 50)), codec=codec,
                options={"preset": "12", "svtav1-params": "log-level=0"} if codec == "libsvtav1" else {})
    index = index_video(path, Fraction(0))
    everything = dataclasses.replace(index, pts=np.zeros(0, np.int64))
    skipping, full = VideoClipReader(index, Fraction(0), threads=1), VideoClipReader(everything, Fraction(0))
    plan = [np.clip(np.arange(c - 16, c + 16, 4) + rng.integers(-2, 2, 8), 0, index.length - 1).tolist()
            for c in range(20, index.length, 30)]
    for k, indices in enumerate(plan):
        got, problems = skipping.frames(indices, plan[k + 1] if k + 1 < len(plan) else [])
        assert problems == []
        assert np.array_equal(got, full.frames(indices)[0])
    assert skipping.seeks == 1
