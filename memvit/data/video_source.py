# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Clips straight from video files (``AVA.VIDEO_DIR``), the alternative to JPEG frame folders.

A clip asks for frames of the dataset's fixed-rate timeline (30 fps, timeline frame ``i`` at
``AVA.TIMELINE_START + i / 30`` seconds of the video). The frame on screen there is chosen by the
rule of :mod:`memvit.data.timeline`, through the same code that writes frame folders
(:func:`memvit.data.extract_frames.select_frames` over :func:`~memvit.data.extract_frames.timed_frames`),
and converted to RGB as the frame folders' JPEGs were encoded: a clip from a video equals the clip
from the folder ``prepare_ava`` writes from it, up to JPEG error.

**Reading order.** The stream sampler walks each video's seconds in order, so a reader decodes
forward and keeps only the frames the current clip window needs (the next clip's window overlaps
it). It seeks only where the stream jumps: backwards, or forward past a source keyframe that lies
at least :data:`SEEK_MIN_GAP_S` ahead (decoding up to the target would cost more than restarting
there). With ``N`` DataLoader workers each worker serves every ``N``-th second of a stream, so
videos with frequent keyframes (``ffmpeg -g 30``) let workers skip what they do not need.

**Index.** A video is indexed once, when the dataset is built, by reading its packets without
decoding: the frame times give the timeline's length (where clips are clamped, as frame folders
are at their last frame) and the keyframe times give the places worth seeking to.

**Damage.** A video that does not open or has no video frames is reported when the dataset is
built and its keyframes are skipped; a decoding error inside a clip ends that reader's pass: the
frames it could not give are replaced by the nearest decoded frame of the clip and reported, as
unreadable JPEGs are. A clip with no decoded frame is skipped by the dataset. Nothing raises in a
DataLoader worker.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import timeline
from .ava_files import FPS
from .extract_frames import select_frames, timed_frames, to_rgb

logger = logging.getLogger(__name__)

AVA_VIDEO_EXTENSIONS = (".mkv", ".mp4", ".webm")  # what AVA's download site serves
VIDEO_EXTENSIONS = AVA_VIDEO_EXTENSIONS + (".mov", ".m4v", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                                           ".flv", ".wmv", ".3gp", ".ogv")
SEEK_MIN_GAP_S = 1.0


def find_videos(videos_dir: str | Path, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> dict[str, Path]:
    """Video id (file name without extension) -> file, for the video files directly in ``videos_dir``.
    Two files of one id: the one whose extension comes first in ``extensions`` is used (logged)."""
    found: dict[str, Path] = {}
    rank = {ext: k for k, ext in enumerate(extensions)}
    for path in sorted(Path(videos_dir).iterdir(), key=lambda p: (p.stem, rank.get(p.suffix.lower(), 99))):
        if path.suffix.lower() not in rank or not path.is_file():
            continue
        if path.stem in found:
            logger.warning("%s: several files (%s, %s); using %s", path.stem, found[path.stem].name, path.name,
                           found[path.stem].name)
            continue
        found[path.stem] = path
    return found


@dataclass(frozen=True)
class VideoIndex:
    """What the dataset needs to know of a video before decoding it.

    ``length``: timeline frames the video covers (from ``start``); ``keyframes``: source keyframe
    times in seconds from the container's start (float: only used to decide where to seek);
    ``size``: ``(height, width)``.
    """

    path: str
    length: int
    keyframes: np.ndarray
    size: tuple[int, int]


class VideoIndexError(RuntimeError):
    """A video that cannot serve clips (does not open, no frames, ends before the timeline starts)."""


@dataclass(frozen=True)
class FrameTimes:
    """Every frame's presentation time in seconds from the container's start (ascending), the
    keyframes' times, when the last frame stops being shown (:func:`memvit.data.timeline.shown_until`),
    the frame size ``(height, width)`` and the stream's time-base tick."""

    times: list[Fraction]
    keyframes: list[Fraction]
    end: Fraction
    size: tuple[int, int]
    tick: Fraction


def frame_times(path: str | Path, fps: int = FPS) -> FrameTimes:
    """The frame times of ``path`` from its packets, without decoding (by decoding, as
    :func:`~memvit.data.extract_frames.timed_frames` times frames, when packets carry no timestamps):
    the one scan behind the dataset's video index and the annotation converter's frame choice."""
    import av

    from ..streaming.video_io import VideoError, local_container

    try:
        with local_container(str(path)) as container:
            stream = container.streams.video[0]
            base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90_000)
            origin = Fraction(container.start_time or 0, av.time_base)
            size = (stream.codec_context.height, stream.codec_context.width)
            nominal = 1 / Fraction(stream.average_rate) if stream.average_rate else None
            packets = [(p.pts, p.duration or 0, p.is_keyframe) for p in container.demux(stream) if p.size]
            if packets and all(pts is not None for pts, _, _ in packets):
                packets.sort(key=lambda packet: packet[0])
                timed = [(pts * base - origin, duration * base, key) for pts, duration, key in packets]
            else:  # no timestamps (raw streams): time the decoded frames
                container.seek(0)
                timed = [(stamp, duration or 0, frame.key_frame)
                         for stamp, duration, frame in timed_frames(container, stream, origin, {})]
    except VideoError as error:
        raise VideoIndexError(str(error)) from None
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoIndexError(f"{path}: unreadable video ({type(error).__name__}: {error})") from None
    if not timed:
        raise VideoIndexError(f"{path}: no video frames")
    times = [time for time, _, _ in timed]
    gap = times[-1] - times[-2] if len(times) > 1 else None
    end = timeline.shown_until(times[-1], fps, duration=timed[-1][1] or None, gap=gap or None, nominal=nominal)
    return FrameTimes(times, [time for time, _, key in timed if key], end, size, base)


def index_video(path: str | Path, start: Fraction, fps: int = FPS) -> VideoIndex:
    """Index ``path`` from its packets (no decoding): see the module docstring."""
    scan = frame_times(path, fps)
    length = timeline.frames_before(scan.end, fps, start)
    if length == 0:
        raise VideoIndexError(f"{path}: the video ends at {float(scan.end):.2f} s, before the timeline starts "
                              f"(AVA.TIMELINE_START {float(start):g} s)")
    return VideoIndex(str(path), length, np.asarray([float(k) for k in scan.keyframes]), scan.size)


class VideoClipReader:
    """The timeline frames of one video, decoded forward as clips ask for them.

    ``frames(indices)`` has the interface of :meth:`memvit.data.ava.AvaFrameVideo.frames`:
    ``(T, H, W, 3)`` RGB uint8 for the given timeline indices (ascending windows, repeats allowed)
    and the problems met, or ``None`` when no frame of the clip could be decoded.
    """

    def __init__(self, index: VideoIndex, start: Fraction, fps: int = FPS, threads: int = 0) -> None:
        self.index, self.start, self.fps, self.threads = index, Fraction(start), fps, threads
        self._container: Any = None
        self._handle: Any = None
        self._frames: Iterator[tuple[int, Any]] | None = None
        self._next = 0  # the next timeline index the open pass yields
        self._buffer: dict[int, Any] = {}  # timeline index -> decoded frame, for the current window
        self._rgb: dict[int, np.ndarray] = {}  # id(decoded frame) -> RGB pixels (repeated frames convert once)
        self._opened = False  # a pass was opened (its frames may have run out: then _frames is None)
        self._ended: str | None = None  # why the last pass stopped early (a decoding error)
        self.seeks = 0  # passes opened (the first one included), for the loader benchmark and tests

    # ------------------------------------------------------------------ decoding
    def _open(self, first: int) -> None:
        """A new pass whose first needed timeline index is ``first`` (seeking there when it pays)."""
        import av

        from ..streaming.video_io import VideoError, open_local

        self.close()
        self.seeks += 1
        target = timeline.instant(first, self.fps, self.start)
        for use_seek in (True, False):
            try:
                self._container, self._handle = open_local(self.index.path)
            except VideoError as error:  # changed or damaged since it was indexed
                self._opened, self._ended, self._frames = True, str(error), None
                return
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
            base = Fraction(stream.time_base)
            origin = Fraction(self._container.start_time or 0, av.time_base)
            tolerance = timeline.tolerance(base, self.fps)
            if use_seek and target > 0 and len(self.index.keyframes) and self.index.keyframes[0] < float(target):
                try:
                    self._container.seek(math.floor((origin + target) / base), stream=stream, backward=True)
                except av.FFmpegError:
                    self.close()
                    continue
            else:
                use_seek = False
            decoded = timed_frames(self._container, stream, origin, {})
            self._next, self._ended, self._opened = 0, None, True
            try:
                head = next(decoded, None)
            except (av.FFmpegError, OSError, ValueError) as error:
                head, self._ended = None, f"decoding failed at once ({type(error).__name__}: {error})"
            if use_seek and self._ended is None and (head is None or head[0] > target + tolerance):
                self.close()  # the seek landed past the target: decode from the beginning
                continue
            self._frames = None if head is None else select_frames(
                _chain(head, decoded), self.start, Fraction(self.fps), self.index.length, tolerance)
            return
        raise AssertionError("unreachable: the second pass does not seek")

    def _worth_seeking(self, first: int) -> bool:
        """A keyframe lies between where the open pass stands (plus the minimum gap) and ``first``."""
        here = float(timeline.instant(self._next, self.fps, self.start)) + SEEK_MIN_GAP_S
        there = float(timeline.instant(first, self.fps, self.start))
        keys = self.index.keyframes
        return bool(np.any((keys > here) & (keys <= there)))

    def _advance(self, lo: int, hi: int) -> None:
        """Decode until timeline frame ``hi`` is known (or the pass ends), keeping frames ``lo..hi``."""
        import av

        while self._frames is not None and self._next <= hi:
            try:
                i, frame = next(self._frames)
            except StopIteration:
                self._frames = None
                break
            except (av.FFmpegError, OSError, ValueError) as error:  # ValueError: e.g. odd pixel formats
                self._ended = f"decoding stopped at timeline frame {self._next} ({type(error).__name__}: {error})"
                self._frames = None
                break
            if i >= lo:
                self._buffer[i] = frame
            self._next = i + 1

    # ------------------------------------------------------------------ clips
    def frames(self, indices: Sequence[int]) -> tuple[np.ndarray | None, list[str]]:
        problems: list[str] = []
        lo, hi = min(indices), max(indices)
        behind = lo < min(self._buffer, default=self._next)
        retry = self._ended is not None and lo >= self._next  # past a decoding error: try again from there
        if not self._opened or behind or retry or (self._frames is not None and self._worth_seeking(lo)):
            self._buffer.clear()
            self._open(lo)
        self._buffer = {i: f for i, f in self._buffer.items() if i >= lo}
        self._rgb = {id(f): self._rgb[id(f)] for f in self._buffer.values() if id(f) in self._rgb}
        self._advance(lo, hi)
        if self._ended is not None:
            problems.append(self._ended if self.index.path in self._ended else
                            f"{self.index.path}: {self._ended}")
        good = sorted(i for i in dict.fromkeys(indices) if i in self._buffer)
        if not good:
            return None, problems
        missing = [i for i in dict.fromkeys(indices) if i not in self._buffer]
        if missing:
            problems.append(f"{self.index.path}: timeline frames {missing[0]}..{missing[-1]} not decoded; "
                            "replaced by the nearest decoded frame")
        out = []
        for i in indices:
            frame = self._buffer[i] if i in self._buffer else self._buffer[min(good, key=lambda g: abs(g - i))]
            if id(frame) not in self._rgb:
                self._rgb[id(frame)] = to_rgb(frame)
            out.append(self._rgb[id(frame)])
        shapes = {img.shape for img in out}
        if len(shapes) > 1:  # a resolution change inside the clip: frames of the keyframe's size only
            keep = out[len(out) // 2].shape
            problems.append(f"{self.index.path}: frame size changes inside the clip {sorted(shapes)}")
            out = [img if img.shape == keep else _resized(img, keep) for img in out]
        return np.stack(out), problems

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._handle.close()
        self._container = self._handle = self._frames = None
        self._opened = False

    def __getstate__(self) -> dict[str, Any]:  # a DataLoader worker gets a closed reader and opens its own
        return {**self.__dict__, "_container": None, "_handle": None, "_frames": None, "_buffer": {}, "_rgb": {},
                "_opened": False}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _resized(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import cv2

    return cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


__all__ = ["AVA_VIDEO_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameTimes", "VideoClipReader", "VideoIndex",
           "VideoIndexError", "find_videos", "frame_times", "index_video"]
