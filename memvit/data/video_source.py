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
there). Each DataLoader worker keeps whole streams (:mod:`memvit.data.loader`, "Which worker reads what").

**Frames no clip shows are not decoded** where the codec allows it. The dataset tells the reader the
frames the stream's next clips will ask for (their frame jitter included); every other packet goes to
the decoder with ``skip_frame`` NONREF, which drops it unless other frames refer to it (H.264's and
HEVC's non-reference frames, a third to a half of x264's output; MPEG-4's and MPEG-2's B-frames;
other codecs decode every frame, :data:`SKIPPING_DECODERS`). Pixels are unchanged: a dropped frame
is never a reference. Should a clip ask for a frame that was dropped (a reading order the dataset
did not announce), the reader sees it (by the index's frame times, the frame on screen there would
be the dropped one) and decodes that clip again from the last keyframe, dropping nothing.

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
import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
# Decoders that read skip_frame for every packet (libdav1d, for one, reads it once when it opens: AV1 files
# would lose frames for the whole pass); the others decode every frame.
SKIPPING_DECODERS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})


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
    ``size``: ``(height, width)``; ``pts``: every frame's timestamp in the stream's time base, ascending
    and distinct (what a reader needs to tell which frames no clip will show; empty when the packets
    carry none).
    """

    path: str
    length: int
    keyframes: np.ndarray
    size: tuple[int, int]
    pts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class VideoIndexError(RuntimeError):
    """A video that cannot serve clips (does not open, no frames, ends before the timeline starts)."""


@dataclass(frozen=True)
class FrameTimes:
    """Every frame's presentation time in seconds from the container's start (ascending), the
    keyframes' times, when the last frame stops being shown (:func:`memvit.data.timeline.shown_until`),
    the frame size ``(height, width)``, the stream's time-base tick and the frames' pts (ascending,
    distinct; empty when the packets carry none)."""

    times: list[Fraction]
    keyframes: list[Fraction]
    end: Fraction
    size: tuple[int, int]
    tick: Fraction
    pts: list[int] = field(default_factory=list)


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
            stamps: list[int] = []
            if packets and all(pts is not None for pts, _, _ in packets):
                packets.sort(key=lambda packet: packet[0])
                timed = [(pts * base - origin, duration * base, key) for pts, duration, key in packets]
                stamps = sorted({pts for pts, _, _ in packets})
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
    return FrameTimes(times, [time for time, _, key in timed if key], end, size, base, stamps)


def index_video(path: str | Path, start: Fraction, fps: int = FPS) -> VideoIndex:
    """Index ``path`` from its packets (no decoding): see the module docstring."""
    scan = frame_times(path, fps)
    length = timeline.frames_before(scan.end, fps, start)
    if length == 0:
        raise VideoIndexError(f"{path}: the video ends at {float(scan.end):.2f} s, before the timeline starts "
                              f"(AVA.TIMELINE_START {float(start):g} s)")
    return VideoIndex(str(path), length, np.asarray([float(k) for k in scan.keyframes]), scan.size,
                      np.asarray(scan.pts, dtype=np.int64))


class VideoClipReader:
    """The timeline frames of one video, decoded forward as clips ask for them.

    ``frames(indices, upcoming)`` has the interface of :meth:`memvit.data.ava.AvaFrameVideo.frames`:
    ``(T, H, W, 3)`` RGB uint8 for the given timeline indices (ascending windows, repeats allowed)
    and the problems met, or ``None`` when no frame of the clip could be decoded. ``upcoming``: the
    timeline frames the next clips will ask for; given, frames neither needs are skipped where the
    codec allows (None: every frame is decoded).
    """

    skip_unneeded = True  # False: decode every frame (what the loader benchmark compares with)

    def __init__(self, index: VideoIndex, start: Fraction, fps: int = FPS, threads: int = 0) -> None:
        _READERS.add(self)
        self.index, self.start, self.fps, self.threads = index, Fraction(start), fps, threads
        self._container: Any = None
        self._handle: Any = None
        self._frames: Iterator[tuple[int, Any]] | None = None
        self._next = 0  # the next timeline index the open pass yields
        self._buffer: dict[int, Any] = {}  # timeline index -> decoded frame, for the current window
        self._rgb: dict[int, np.ndarray] = {}  # id(decoded frame) -> RGB pixels (repeated frames convert once)
        self._opened = False  # a pass was opened (its frames may have run out: then _frames is None)
        self._ended: str | None = None  # why the last pass stopped early (a decoding error)
        # Frames no clip will show are not decoded where the codec allows (non-reference frames):
        self._wanted: set[int] | None = None  # timeline frames of this clip and the next ones (None: not known)
        self._clock: timeline.PtsClock | None = None  # the open pass's pts -> timeline frames (None: decode all)
        self._flagged: set[int] = set()  # pts of the packets of this pass sent with skip_frame NONREF
        self._stale: set[int] = set()  # timeline frames whose source frame was skipped (not in the buffer)
        self.seeks = 0  # passes opened (the first one included), for the loader benchmark and tests
        self.decoded = 0  # frames decoded, for the loader benchmark and tests

    # ------------------------------------------------------------------ decoding
    def _open(self, first: int, decode_all: bool = False) -> None:
        """A new pass whose first needed timeline index is ``first`` (seeking there when it pays); ``decode_all``:
        skip no frame in this pass."""
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
            skipping = (self.skip_unneeded and not decode_all and len(self.index.pts) > 0
                        and stream.codec_context.name in SKIPPING_DECODERS)
            self._clock = timeline.PtsClock(base, origin, tolerance, self.fps, self.start) if skipping else None
            self._flagged = set()
            decoded = timed_frames(self._container, stream, origin, {}, self._decode(stream))
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

    def _decode(self, stream: Any) -> Iterator[Any]:
        """The stream's frames; a packet no clip may need goes with ``skip_frame`` NONREF (the decoder drops it
        unless other frames refer to it: the module docstring)."""
        context, skipping = stream.codec_context, False
        for packet in self._container.demux(stream):
            skip = packet.pts is not None and not self._needed(packet.pts)
            if skip != skipping:
                context.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            if skip:
                self._flagged.add(packet.pts)
            for frame in packet.decode():
                self.decoded += 1
                yield frame

    def _shown(self, pts: int) -> tuple[int, int | None]:
        """The timeline frames ``[first, end)`` a source frame at ``pts`` is on screen (``end`` None: the last
        frame, shown to the end), by the index's frame times and the rule of :mod:`memvit.data.timeline`."""
        assert self._clock is not None
        times = self.index.pts
        k = int(np.searchsorted(times, pts, side="right"))
        first = 0 if k <= 1 else self._clock.decided(pts)  # before the first frame, the first one stands in
        return first, None if k >= len(times) else self._clock.decided(int(times[k]))

    def _needed(self, pts: int) -> bool:
        """Whether the current clip or the next ones the caller announced may show the source frame at ``pts``."""
        wanted = self._wanted
        if self._clock is None or wanted is None:
            return True
        first, end = self._shown(pts)
        if end is None:
            return True
        return any(first <= i < end for i in wanted) if end - first > len(wanted) else \
            any(i in wanted for i in range(first, end))

    def _stale_for(self, i: int, frame: Any) -> bool:
        """Whether the decoded ``frame`` stands at timeline frame ``i`` only because a later source frame, the
        one really on screen there, was skipped."""
        if not self._flagged or frame.pts is None:
            return False
        times = self.index.pts
        k = int(np.searchsorted(times, frame.pts, side="right"))
        if k >= len(times) or int(times[k]) not in self._flagged:
            return False
        return self._shown(int(times[k]))[0] <= i

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
                if self._stale_for(i, frame):
                    self._stale.add(i)
                else:
                    self._buffer[i] = frame
            self._next = i + 1

    # ------------------------------------------------------------------ clips
    def frames(self, indices: Sequence[int], upcoming: Sequence[int] | None = None) -> tuple[np.ndarray | None,
                                                                                                list[str]]:
        problems: list[str] = []
        lo, hi = min(indices), max(indices)
        self._wanted = None if upcoming is None else {*indices, *upcoming}
        # a frame the pass went by and no longer holds (between clips only the announced ones are held)
        behind = any(i < self._next and i not in self._buffer and i not in self._stale for i in indices)
        retry = self._ended is not None and lo >= self._next  # past a decoding error: try again from there
        if not self._opened or behind or retry or (self._frames is not None and self._worth_seeking(lo)):
            self._restart(lo)
        self._buffer = {i: f for i, f in self._buffer.items() if i >= lo}
        self._rgb = {id(f): self._rgb[id(f)] for f in self._buffer.values() if id(f) in self._rgb}
        self._stale = {i for i in self._stale if i >= lo}
        self._advance(lo, hi)
        if any(i in self._stale for i in indices):  # skipped: the clip is not the one announced
            self._restart(lo, decode_all=True)
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
        clip = np.stack(out)
        if upcoming is not None:
            self._keep_only(set(upcoming))
        return clip, problems

    def _keep_only(self, wanted: set[int]) -> None:
        """Between clips, hold only the decoded frames the announced next clips show (none: the stream
        leaves this video, so the decoder is closed too). A process serving many streams
        (``TRAIN.STREAM_GROUPS``) holds a reader per stream between turns, and a whole 16x4 window of
        1080p frames is about 0.3 GB. A clip that asks for a frame no longer held starts a new pass there."""
        if not wanted:
            self._buffer.clear()
            self._rgb.clear()
            self._stale.clear()
            self.close()
            return
        self._buffer = {i: f for i, f in self._buffer.items() if i in wanted}
        self._rgb = {id(f): self._rgb[id(f)] for f in self._buffer.values() if id(f) in self._rgb}

    def _restart(self, first: int, decode_all: bool = False) -> None:
        """A new pass from timeline frame ``first``: nothing of the old one is kept (a freed frame's id may be
        reused by a new frame, so its RGB pixels go too)."""
        self._buffer.clear()
        self._rgb.clear()
        self._stale.clear()
        self._open(first, decode_all)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._handle.close()
        self._container = self._handle = self._frames = None
        self._opened = False

    def __getstate__(self) -> dict[str, Any]:  # a DataLoader worker gets a closed reader and opens its own
        return {**self.__dict__, "_container": None, "_handle": None, "_frames": None, "_buffer": {}, "_rgb": {},
                "_opened": False, "_clock": None, "_flagged": set(), "_stale": set()}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


_READERS: weakref.WeakSet[VideoClipReader] = weakref.WeakSet()


def _close_readers_before_fork() -> None:
    """A decoder with threads of its own must not cross a fork: in the child its threads are gone, and
    freeing it there (a garbage collection in a DataLoader worker) waits for them forever, which hung a
    worker once. The process that opened it closes it first; a closed reader reopens where it reads next."""
    for reader in list(_READERS):
        reader.close()


os.register_at_fork(before=_close_readers_before_fork)


def _resized(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import cv2

    return cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


__all__ = ["AVA_VIDEO_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameTimes", "VideoClipReader", "VideoIndex",
           "VideoIndexError", "find_videos", "frame_times", "index_video"]
