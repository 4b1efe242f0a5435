# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA v2.2 for a memory model: keyframes, clips, collate (the clip window and the box-aware
transforms are :mod:`memvit.data.clips`, the file formats :mod:`memvit.data.ava_files`).

Built from PyTorchVideo's parts (``FrameVideo`` for frame folders, the box-aware functions of
``pytorchvideo.transforms.functional``), extended here, and only here, where MeMViT needs more
than PyTorchVideo 0.1.5 gives:

* keyframes come from the box files as PySlowFast reads them (ground truth plus detector boxes
  above ``AVA.DETECTION_SCORE_THRESH``, rows of one box merged by their coordinate text, as
  PySlowFast, or by value with ``AVA.MERGE_BOXES_BY_VALUE``; seconds 902-1798), not from
  PyTorchVideo's ``Ava``, which ignores detector boxes and score thresholds;
* frames are addressed through the frame lists, not by listing folders (a stray file in a
  frame folder shifts every frame silently in PyTorchVideo), and clips at a video's ends are
  padded by repeating the edge frame as PySlowFast does (PyTorchVideo drops them silently);
* a missing or corrupt JPEG is replaced by the nearest readable frame of the clip and
  reported (PyTorchVideo and PySlowFast raise inside the DataLoader worker);
* augmentation is drawn once per video and epoch, so a memory model sees consistent views of
  one video across its clips (:class:`memvit.data.streams.StreamKey` carries the epoch);
* ``random_crop_with_boxes`` draws its offsets from torch's global generator (which would tie
  the crop to the DataLoader worker, not to the video) and returns a bare tensor when no crop
  is needed: the crop is drawn in :class:`~memvit.data.clips.AvaTransform` and its boxes moved
  with ``crop_boxes``; ``short_side_scale_with_boxes`` scales its input boxes in place: it gets a copy;
* a collate function for the ragged boxes (the default collate fails on AVA samples).

Samples are dicts; :func:`ava_collate` makes the model's batch: ``video (B, 3, T, H, W)``,
``boxes (K, 5)`` rows ``[batch index, x1, y1, x2, y2]`` in input pixels, ``labels (K, classes)``
multi-hot, ``video_ids`` (one per row, for the memory) and the original normalised boxes with
their ``(video, sec)`` for writing predictions.
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
import torch
from pytorchvideo.data.frame_video import FrameVideo

from ..cli import UserError
from .ava_files import (
    FIRST_SECOND,
    FPS,
    KEYFRAME_SECONDS,
    AvaFormatError,
    BoxRow,
    read_boxes_csv,
    read_frame_list,
    sec_to_frame,
)
from .clips import AvaTransform, clip_window, transform_from_config
from .streams import StreamKey
from .video_source import VideoClipReader, VideoIndex, VideoIndexError, find_videos, index_video

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- keyframes
@dataclass(frozen=True)
class Keyframe:
    """One keyframe: its boxes (normalised x1, y1, x2, y2) and each box's AVA action ids
    (empty: a detector box with no action, a negative in training)."""

    video: str
    sec: int
    boxes: np.ndarray
    labels: tuple[tuple[int, ...], ...]


@dataclass
class LoadReport:
    """What loading the keyframes skipped, to log once."""

    absent: str = "the frame lists"
    videos_absent: set[str] = field(default_factory=set)
    keyframes_outside_video: list[tuple[str, int]] = field(default_factory=list)
    seconds_outside_valid_range: int = 0
    valid_range: tuple[int, int] | None = None

    def log(self, split: str) -> None:
        if self.videos_absent:
            names = sorted(self.videos_absent)
            logger.warning("AVA %s: skipped the boxes of %d video(s) absent from %s: %s%s", split,
                           len(names), self.absent, ", ".join(names[:10]), " ..." if len(names) > 10 else "")
        if self.keyframes_outside_video:
            logger.warning("AVA %s: skipped %d keyframe(s) past the end of their video, e.g. %s", split,
                           len(self.keyframes_outside_video), self.keyframes_outside_video[:5])
        if self.seconds_outside_valid_range and self.valid_range is not None:
            logger.info("AVA %s: ignored %d box row(s) outside seconds %d-%d (AVA.KEYFRAME_RANGE)", split,
                        self.seconds_outside_valid_range, *self.valid_range)


def load_keyframes(box_files: Sequence[tuple[str, bool]], lengths: Mapping[str, int], *,
                   score_threshold: float, num_classes: int, split: str = "", merge_by_value: bool = False,
                   timeline_start: float = FIRST_SECOND, keyframe_range: Sequence[int] | None = None,
                   absent: str = "the frame lists") -> list[Keyframe]:
    """Keyframes of a split from its box files, as PySlowFast reads them.

    ``box_files``: ``(path, is_ground_truth)``. Ground-truth rows are all kept; detector rows
    only with a score (column 8) ``>= score_threshold``. Rows of one keyframe with the same box
    are one box carrying every label; "the same box" is PySlowFast's rule, the same coordinate
    text (``0.1`` and ``0.100`` are two boxes), or with ``merge_by_value`` (ours) the same
    values. ``lengths``: timeline frames of each video the split has (frame-list or video order).
    Videos keep that order, seconds ascend; only seconds in ``keyframe_range`` (first, last; AVA's
    902-1798 by default; empty: any) of videos in ``lengths`` whose keyframe frame exists (its index
    on a timeline starting at ``timeline_start``) are kept (the skips are logged, ``absent`` names
    where missing videos were looked for). An action id outside ``1..num_classes`` is an error
    naming the line.
    """
    first, last = (KEYFRAME_SECONDS.start, KEYFRAME_SECONDS.stop - 1) if keyframe_range is None else \
        (tuple(keyframe_range) or (-math.inf, math.inf))
    limited = keyframe_range is None or len(keyframe_range) > 0
    report = LoadReport(absent=absent, valid_range=(first, last) if limited else None)
    merged: dict[tuple[str, int], dict[Any, tuple[tuple[float, ...], list[int]]]] = {}
    for path, is_gt in box_files:
        rows = read_boxes_csv(path) if is_gt else _detector_rows(path, score_threshold)
        for row in rows:
            if not first <= row.sec <= last:
                report.seconds_outside_valid_range += 1
                continue
            if row.video not in lengths:
                report.videos_absent.add(row.video)
                continue
            if row.action is not None and not 1 <= row.action <= num_classes:
                raise AvaFormatError(path, row.line, f"action id {row.action} is outside 1..{num_classes} "
                                     "(MODEL.NUM_CLASSES)")
            same = tuple(row.box) if merge_by_value or row.box_text is None else row.box_text
            _, labels = merged.setdefault((row.video, row.sec), {}).setdefault(same, (tuple(row.box), []))
            if row.action is not None:
                labels.append(row.action)
    order = {video: i for i, video in enumerate(lengths)}
    keyframes = []
    for (video, sec), boxes in sorted(merged.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        if not 0 <= sec_to_frame(sec, timeline_start) < lengths[video]:
            report.keyframes_outside_video.append((video, sec))
            continue
        keyframes.append(Keyframe(video, sec, np.array([b for b, _ in boxes.values()], dtype=np.float32).reshape(-1, 4),
                                  tuple(tuple(dict.fromkeys(labels)) for _, labels in boxes.values())))
    report.log(split)
    return keyframes


def _detector_rows(path: str, score_threshold: float) -> list[BoxRow]:
    """Detector boxes above the threshold. A ground-truth file listed among the "predicted"
    boxes (the released AVA configs do this) has person ids in column 8: PySlowFast compares
    them with the threshold too, which keeps every row with a person id >= 1; so does this."""
    return [row for row in read_boxes_csv(path) if row.extra is not None and row.extra >= score_threshold]


# ---------------------------------------------------------------------------------- frames
class AvaFrameVideo(FrameVideo):
    """PyTorchVideo's ``FrameVideo`` over one AVA frame folder, addressed by frame index.

    ``frames(indices)`` loads exactly the given indices (repeats allowed, PySlowFast's clamped
    clip windows) and survives unreadable files: each is replaced by the nearest readable
    frame of the clip and reported; ``None`` when no frame of the clip can be read.
    ``upcoming`` (the next clips' frames, which a video decoder uses) is not needed here.
    """

    def frames(self, indices: Sequence[int], upcoming: Sequence[int] | None = None) -> tuple[np.ndarray | None,
                                                                                                list[str]]:
        problems: list[str] = []
        decoded: dict[int, np.ndarray | None] = {}
        for index in dict.fromkeys(indices):
            path = self._video_frame_to_path(index)
            decoded[index] = _read_rgb(path)
            if decoded[index] is None:
                problems.append(f"unreadable frame {path}")
        good = [i for i, img in decoded.items() if img is not None]
        if not good:
            return None, problems
        shape = decoded[good[0]].shape
        out = []
        for index in indices:
            img = decoded[index]
            if img is None or img.shape != shape:
                if img is not None:
                    problems.append(f"frame {self._video_frame_to_path(index)} has size {img.shape[:2]}, "
                                    f"the clip {shape[:2]}")
                img = decoded[min(good, key=lambda g: abs(g - index))]
            out.append(img)
        return np.stack(out), problems


def _read_rgb(path: str) -> np.ndarray | None:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolders:
    """Clips from JPEG frame folders addressed through the frame lists (PySlowFast's layout)."""

    absent = "the frame lists"

    def __init__(self, frame_lists: dict[str, list[str]], frame_dir: str) -> None:
        self.frame_lists, self.frame_dir = frame_lists, frame_dir
        self.lengths = {video: len(paths) for video, paths in frame_lists.items()}
        self._videos: dict[str, AvaFrameVideo] = {}

    def reader(self, video: str, stream: int = 0) -> AvaFrameVideo:
        if video not in self._videos:
            paths = [os.path.join(self.frame_dir, p) for p in self.frame_lists[video]]
            self._videos[video] = AvaFrameVideo.from_frame_paths(paths, fps=FPS)
        return self._videos[video]

    def frame_size(self, video: str) -> tuple[int, int] | None:
        paths = self.frame_lists[video]
        for path in paths[:: max(1, len(paths) // 16)]:
            img = _read_rgb(os.path.join(self.frame_dir, path))
            if img is not None:
                return img.shape[:2]
        return None


class VideoFiles:
    """Clips decoded from the video files themselves (``AVA.VIDEO_DIR``, :mod:`memvit.data.video_source`).

    Each process (each DataLoader worker) keeps up to :attr:`open_readers` videos open, the most
    recently used: one per stream row it serves, decoding forward.
    """

    absent = "AVA.VIDEO_DIR"
    open_readers = 32

    def __init__(self, indexes: Mapping[str, VideoIndex], timeline_start: float | Fraction) -> None:
        self.indexes = dict(indexes)
        self.start = Fraction(repr(timeline_start) if isinstance(timeline_start, float) else timeline_start)
        self.lengths = {video: index.length for video, index in self.indexes.items()}
        self._readers: OrderedDict[tuple[int, str], VideoClipReader] = OrderedDict()

    def serve_streams(self, streams: int) -> None:
        """Keep a reader open for each of the ``streams`` one process serves, and one more for each
        stream crossing into its next video: streams taking turns (``TRAIN.STREAM_GROUPS``) would
        otherwise close each other's readers before their next turn, and reopen and seek every clip."""
        self.open_readers = max(type(self).open_readers, 2 * streams)

    def reader(self, video: str, stream: int = 0) -> VideoClipReader:
        """The reader of ``video`` for ``stream``: two streams in one video (the sampler cuts streams
        anywhere) each keep their own position, so neither makes the other seek."""
        key = (stream, video)
        if key in self._readers:
            self._readers.move_to_end(key)
        else:
            in_worker = torch.utils.data.get_worker_info() is not None  # workers share the cores: one thread each
            self._readers[key] = VideoClipReader(self.indexes[video], self.start, FPS, threads=1 if in_worker else 0)
            while len(self._readers) > self.open_readers:
                self._readers.popitem(last=False)[1].close()
        return self._readers[key]

    def frame_size(self, video: str) -> tuple[int, int] | None:
        return self.indexes[video].size


def index_videos(video_dir: str, videos: Sequence[str], timeline_start: float) -> dict[str, VideoIndex]:
    """Index the files of ``videos`` found in ``video_dir`` (ids without a file are left out, for the
    keyframe loader to report; files that cannot serve clips are reported here and left out)."""
    if not os.path.isdir(video_dir):
        raise MissingDataError(f"no video folder {video_dir} (AVA.VIDEO_DIR)")
    files = find_videos(video_dir)
    start = Fraction(repr(timeline_start) if isinstance(timeline_start, float) else timeline_start)
    indexes, broken = {}, []
    for video in videos:
        if video in files:
            try:
                indexes[video] = index_video(files[video], start, FPS)
            except VideoIndexError as error:
                broken.append(str(error))
    if broken:
        logger.warning("AVA.VIDEO_DIR: %d video(s) cannot give clips; their keyframes are skipped: %s", len(broken),
                       "; ".join(broken[:10]) + (" ..." if len(broken) > 10 else ""))
    if not indexes:
        raise MissingDataError(f"none of the {len(videos)} video(s) the box files name has a usable file in "
                               f"{video_dir} (AVA.VIDEO_DIR; a file is <video id>.<ext>, e.g. "
                               f"{videos[0] if videos else 'VIDEO'}.mp4)")
    return indexes


def split_videos(cfg: Any, split: str, box_files: Sequence[tuple[str, bool]]) -> list[str]:
    """The videos of a split read from ``AVA.VIDEO_DIR`` (no frame lists say which): those its ground
    truth names (training: ``AVA.TRAIN_GT_BOX_LISTS``; evaluation: ``AVA.GROUNDTRUTH_FILE``, when it
    exists), so a person-box file covering every video serves both splits; else those its box files
    name."""
    ava = cfg.AVA
    if split == "train":
        truth = [(path, True) for path, is_gt in box_files if is_gt]
    else:
        path = os.path.join(ava.ANNOTATION_DIR, ava.GROUNDTRUTH_FILE)
        truth = [(path, True)] if ava.GROUNDTRUTH_FILE and os.path.isfile(path) else []
    named = videos_named(box_files)
    if not truth:
        return named
    wanted = set(videos_named(truth))
    kept = [video for video in named if video in wanted]
    if len(kept) < len(named):
        logger.info("AVA %s: %d video(s) of the box files are not in the split's ground truth and are left out",
                    split, len(named) - len(kept))
    return kept


def videos_named(box_files: Sequence[tuple[str, bool]]) -> list[str]:
    """Video ids in the first column of the box files, in order of first appearance (cheap: no parsing)."""
    named: dict[str, None] = {}
    for path, _ in box_files:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                video = line.split(",", 1)[0].strip()
                if video and not video.startswith("#"):
                    named[video] = None
    return list(named)


# ---------------------------------------------------------------------------------- dataset
class AvaDataset(torch.utils.data.Dataset):
    """Keyframes of one AVA split as samples for :class:`memvit.data.streams.StreamBatchSampler`.

    Args:
        keyframes: from :func:`load_keyframes`.
        source: where clips come from: :class:`FrameFolders` (``AVA.FRAME_DIR`` and the frame
            lists) or :class:`VideoFiles` (``AVA.VIDEO_DIR``).
        timeline_start: the video time of timeline frame 0 (``AVA.TIMELINE_START``, AVA: 900).
        num_frames, sampling_rate: the clip (``DATA.NUM_FRAMES`` x ``DATA.SAMPLING_RATE``),
            centred on the keyframe: frames ``center - L/2 .. center + L/2 - 1`` every
            ``sampling_rate``, clamped to the video.
        transform: an :class:`AvaTransform`.
        num_classes: width of the multi-hot labels (AVA id ``k`` is column ``k - 1``).
        perturb_frames: ``DATA.PERTURB_AVA_FRAMES`` (training): each frame index jitters by
            ``[-rate/2, rate/2)``, the first only forward and the last only backward.
        max_boxes: boxes per clip the model holds; more are dropped (logged).
        seed: base of the per-video augmentation draws.
    """

    def __init__(self, keyframes: Sequence[Keyframe], source: FrameFolders | VideoFiles, *, num_frames: int,
                 sampling_rate: int, transform: AvaTransform, num_classes: int, perturb_frames: bool = False,
                 max_boxes: int = 100, seed: int = 0, timeline_start: float = FIRST_SECOND) -> None:
        self.keyframes = list(keyframes)
        self.source = source
        self.timeline_start = timeline_start
        self.num_frames, self.sampling_rate = num_frames, sampling_rate
        self.transform = transform
        self.num_classes = num_classes
        self.perturb_frames = perturb_frames
        self.max_boxes = max_boxes
        self.seed = seed
        self.video_index = {video: i for i, video in enumerate(source.lengths)}
        # The keyframe a stream reads after each one (the same video's next second; None: the last one)
        self._following: list[int | None] = [None] * len(self.keyframes)
        by_video: dict[str, list[int]] = {}
        for index, keyframe in enumerate(self.keyframes):
            by_video.setdefault(keyframe.video, []).append(index)
        for indices in by_video.values():
            indices.sort(key=lambda i: self.keyframes[i].sec)
            for this, following in zip(indices, indices[1:]):
                self._following[this] = following

    def __len__(self) -> int:
        return len(self.keyframes)

    @property
    def decodes_forward(self) -> bool:
        """Clips come from video files, decoded forward: the loader keeps each stream on one worker."""
        return isinstance(self.source, VideoFiles)

    def keyframe_ids(self) -> list[tuple[str, int]]:
        """``(video, sec)`` of every sample, for the stream sampler."""
        return [(k.video, k.sec) for k in self.keyframes]

    def frame_indices(self, keyframe: Keyframe, rng: np.random.Generator | None = None) -> list[int]:
        """The clip's frame indices in its folder (PySlowFast's window, clamped to the video)."""
        indices = clip_window(sec_to_frame(keyframe.sec, self.timeline_start), self.num_frames, self.sampling_rate)
        if rng is not None and self.perturb_frames:
            rate = self.sampling_rate
            jitter = rng.integers((-rate) // 2, rate // 2, size=len(indices)) if rate // 2 > (-rate) // 2 else \
                np.zeros(len(indices), dtype=np.int64)
            jitter[0] = rng.integers(0, rate // 2) if rate // 2 > 0 else 0
            jitter[-1] = rng.integers((-rate) // 2, 0) if rate > 1 else 0
            indices = indices + jitter
        return np.clip(indices, 0, self.source.lengths[keyframe.video] - 1).tolist()

    def clip_indices(self, keyframe: Keyframe, epoch: int) -> list[int]:
        """The clip's frames in an epoch (the frame jitter is drawn per keyframe and epoch)."""
        rng = np.random.default_rng([self.seed, epoch, self.video_index[keyframe.video], keyframe.sec])
        return self.frame_indices(keyframe, rng)

    def upcoming(self, key: StreamKey, last: int) -> list[int]:
        """The frames the stream of ``key`` reads next (the video's next keyframes, as far as their clips can reach
        back to frame ``last`` of this one, jitter included), so a video decoder can skip what no clip shows."""
        out: list[int] = []
        following = self._following[key.index]
        while following is not None:
            indices = self.clip_indices(self.keyframes[following], key.epoch)
            out += indices
            if indices[0] > last:
                break
            following = self._following[following]
        return out

    def __getitem__(self, key: StreamKey | int) -> dict[str, Any]:
        if not isinstance(key, StreamKey):
            key = StreamKey(int(key), 0, 0)
        keyframe = self.keyframes[key.index]
        video_index = self.video_index[keyframe.video]
        # One augmentation draw per (video, epoch); frame jitter per keyframe (clip_indices).
        view_rng = np.random.default_rng([self.seed, key.epoch, video_index])
        problems: list[str] = []
        boxes, labels = keyframe.boxes, keyframe.labels
        if len(boxes) > self.max_boxes:
            problems.append(f"{keyframe.video} {keyframe.sec}: {len(boxes)} boxes, kept the first {self.max_boxes}")
            boxes, labels = boxes[: self.max_boxes], labels[: self.max_boxes]
        reader = self.source.reader(keyframe.video, key.stream)  # a video reader per stream: each reads forward
        indices = self.clip_indices(keyframe, key.epoch)
        upcoming = self.upcoming(key, indices[-1]) if self.decodes_forward else None
        frames, frame_problems = reader.frames(indices, upcoming)
        problems += frame_problems
        valid = frames is not None
        if not valid:
            problems.append(f"{keyframe.video} {keyframe.sec}: no readable frame in the clip; the keyframe is skipped")
            height, width = self.source.frame_size(keyframe.video) or (self.transform.crop_size,) * 2
            frames = np.zeros((self.num_frames, height, width, 3), dtype=np.uint8)
        for problem in problems:
            logger.warning("AVA: %s", problem)
        video, pixel_boxes = self.transform(frames, boxes, view_rng)
        multi_hot = torch.zeros(len(boxes), self.num_classes)
        for i, ids in enumerate(labels):
            for action in ids:
                multi_hot[i, action - 1] = 1.0
        if not valid:  # the row still runs (its stream keeps its place) but has nothing to learn or score
            pixel_boxes, multi_hot, boxes = pixel_boxes[:0], multi_hot[:0], boxes[:0]
        return {"video": video, "boxes": pixel_boxes, "labels": multi_hot,
                "ori_boxes": torch.from_numpy(np.ascontiguousarray(boxes)), "video_id": keyframe.video,
                "sec": keyframe.sec, "stream": key.stream, "problems": problems}


def check_clip_sizes(sizes: set[tuple[int, ...]]) -> None:
    """Clips of one batch must have one size."""
    if len(sizes) > 1:
        raise ValueError(f"clips of different sizes {sorted(sizes)} cannot share a batch: full-frame test "
                         "clips of videos with other aspect ratios need TEST.BATCH_SIZE 1 per process "
                         "(the reference's setting) or a cropping mode")


def ava_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack stream rows into the model's batch (boxes get their row's index as column 0)."""
    check_clip_sizes({tuple(s["video"].shape) for s in samples})
    boxes = [torch.cat([torch.full((len(s["boxes"]), 1), float(i)), s["boxes"]], dim=1) for i, s in enumerate(samples)]
    return {
        "video": torch.stack([s["video"] for s in samples]),
        "boxes": torch.cat(boxes) if boxes else torch.zeros(0, 5),
        "labels": torch.cat([s["labels"] for s in samples]),
        "ori_boxes": torch.cat([s["ori_boxes"] for s in samples]),
        "box_keys": [(s["video_id"], s["sec"]) for s in samples for _ in range(len(s["boxes"]))],
        "video_ids": [s["video_id"] for s in samples],
        "secs": [s["sec"] for s in samples],
        "streams": [s["stream"] for s in samples],
        "problems": [p for s in samples for p in s["problems"]],
    }


# ---------------------------------------------------------------------------------- from a config
DATA_HINT = ("AVA: python -m memvit.data.prepare_ava --videos VIDEOS --out data/ava (docs/training.md, "
             "section 1, Data); or try the synthetic quick start: bash scripts/demo.sh")


class MissingDataError(UserError, FileNotFoundError):
    """A data file or folder a config names is not there: says which key names it and what writes it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, DATA_HINT)


def read_frame_lists(frame_list_dir: str, names: Sequence[str], frame_dir: str) -> dict[str, list[str]]:
    """Video -> frame paths of the listed frame-list files; checks every video's first and last
    frame exist (a frame list naming a folder that is not there is an error naming both)."""
    frame_lists: dict[str, list[str]] = {}
    for name in names:
        path = os.path.join(frame_list_dir, name)
        if not os.path.isfile(path):
            missing = frame_list_dir if not os.path.isdir(frame_list_dir) else path
            raise MissingDataError(f"no AVA data: {missing} does not exist "
                                   "(AVA.FRAME_LIST_DIR / AVA.TRAIN_LISTS, AVA.TEST_LISTS)")
        for video, paths in read_frame_list(path).items():
            frame_lists[video] = paths
            for frame in (paths[0], paths[-1]):
                if not os.path.isfile(os.path.join(frame_dir, frame)):
                    raise MissingDataError(f"{path} lists video {video} but {os.path.join(frame_dir, frame)} does "
                                           "not exist (AVA.FRAME_DIR)")
    return frame_lists


def build_ava_dataset(cfg: Any, split: str) -> AvaDataset:
    """The AVA dataset a PySlowFast-style config describes: ``split`` is ``"train"``, ``"val"``
    (the training loop's evaluation: centre crop) or ``"test"`` (full frames, as the reference's
    test)."""
    ava, data = cfg.AVA, cfg.DATA
    train = split == "train"
    lists = ava.TRAIN_LISTS if train else ava.TEST_LISTS
    frame_lists = None if ava.VIDEO_DIR else read_frame_lists(ava.FRAME_LIST_DIR, lists, ava.FRAME_DIR)
    if train:
        box_files = [(os.path.join(ava.ANNOTATION_DIR, f), True) for f in ava.TRAIN_GT_BOX_LISTS]
        box_files += [(os.path.join(ava.ANNOTATION_DIR, f), False) for f in ava.TRAIN_PREDICT_BOX_LISTS]
    else:
        box_files = [(os.path.join(ava.ANNOTATION_DIR, f), False) for f in ava.TEST_PREDICT_BOX_LISTS]
    for path, _ in box_files:
        if not os.path.isfile(path):
            raise MissingDataError(f"AVA box file not found: {path} (AVA.ANNOTATION_DIR / AVA.*_BOX_LISTS)")
    source: FrameFolders | VideoFiles
    if frame_lists is None:
        source = VideoFiles(index_videos(ava.VIDEO_DIR, split_videos(cfg, split, box_files), ava.TIMELINE_START),
                            ava.TIMELINE_START)
    else:
        source = FrameFolders(frame_lists, ava.FRAME_DIR)
    keyframes = load_keyframes(box_files, source.lengths, score_threshold=ava.DETECTION_SCORE_THRESH,
                               num_classes=cfg.MODEL.NUM_CLASSES, split=split,
                               merge_by_value=ava.MERGE_BOXES_BY_VALUE, timeline_start=ava.TIMELINE_START,
                               keyframe_range=ava.KEYFRAME_RANGE, absent=source.absent)
    if split == "val" and not ava.FULL_TEST_ON_VAL:
        # PySlowFast's quick validation subset (seconds divisible by 4): the training loop's
        # evaluation only; its test split is always full.
        keyframes = [k for k in keyframes if k.sec % 4 == 0]
    transform = transform_from_config(cfg, split)
    return AvaDataset(keyframes, source, num_frames=data.NUM_FRAMES, timeline_start=ava.TIMELINE_START,
                      sampling_rate=data.SAMPLING_RATE, transform=transform, num_classes=cfg.MODEL.NUM_CLASSES,
                      perturb_frames=train and data.PERTURB_AVA_FRAMES, max_boxes=cfg.MEMVIT.MAX_BOXES,
                      seed=cfg.RNG_SEED)


def keyframe_count_text(dataset: AvaDataset) -> str:
    videos = {k.video for k in dataset.keyframes}
    boxes = sum(len(k.boxes) for k in dataset.keyframes)
    return f"{len(dataset)} keyframes, {boxes} boxes, {len(videos)} videos"


__all__ = ["AvaDataset", "AvaFrameVideo", "FrameFolders", "Keyframe", "MissingDataError", "VideoFiles", "ava_collate",
           "check_clip_sizes",
           "build_ava_dataset", "index_videos", "load_keyframes", "read_frame_lists", "split_videos",
           "videos_named"]
