# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""One video file -> the JPEG frames of a fixed-rate timeline (``<video>_%06d.jpg``), for
:mod:`memvit.data.prepare_ava`, which runs it per video and keeps the folders, markers and lists.

**Which source frame lands in output frame i.** Output frame i shows the video at time
``t_i = start + i / fps``: the decoded frame on screen at that instant, by the rule of
:mod:`memvit.data.timeline` (exact times, pts x time base from the container's start, as ``ffmpeg -ss``
counts them; a tolerance of one time-base tick; the last frame shown until its time plus its
duration, output frames past that end are not written). :func:`select_frames` applies it.

For AVA (start 900, duration 901, fps 30: :class:`ExtractionParams`' defaults, from
:mod:`memvit.data.ava_files`) this gives 27030 frames and frame 1 is the frame shown at 900.0 s, which is
what PySlowFast's ``ffmpeg -ss 900 -t 901 -r 30`` recipe aims at.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from . import timeline
from .ava_files import EXTRACTED_SECONDS, FIRST_SECOND, FPS, frame_name

logger = logging.getLogger(__name__)

T = TypeVar("T")
ProgressFn = Callable[[int, int], None]


class ExtractionError(RuntimeError):
    """A video that cannot give the requested frames (no video stream, ends before ``start``, ...)."""


@dataclass(frozen=True)
class ExtractionParams:
    """What is extracted; exact fractions so that 30000/1001 fps or a start of 1.5 s compare exactly."""

    start: Fraction = Fraction(FIRST_SECOND)
    duration: Fraction = Fraction(EXTRACTED_SECONDS)
    fps: Fraction = Fraction(FPS)
    quality: int = 95

    def __post_init__(self) -> None:
        for name in ("start", "duration", "fps"):
            value = getattr(self, name)  # a float goes through its repr: 0.1 means 1/10, not 0.1000000000000000055
            object.__setattr__(self, name, Fraction(repr(value) if isinstance(value, float) else value))
        if self.start < 0:
            raise ValueError(f"start must be >= 0 seconds, got {self.start}")
        if self.duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration}")
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {self.quality}")

    @property
    def num_frames(self) -> int:
        """Frames at ``start + i/fps`` inside ``[start, start + duration)``: 27030 for AVA."""
        return math.ceil(self.duration * self.fps)

    def timing(self) -> dict[str, str]:
        """The parameters that decide which frames a folder holds (the frame lists must agree on them)."""
        return {"start": str(self.start), "duration": str(self.duration), "fps": str(self.fps)}

    def as_marker(self) -> dict[str, Any]:
        return {**self.timing(), "quality": self.quality}


def select_frames(
    frames: Iterable[tuple[Fraction, Fraction | None, T]],
    start: Fraction,
    fps: Fraction,
    count: int,
    tolerance: Fraction = Fraction(0),
) -> Iterator[tuple[int, T]]:
    """Resample a stream of ``(time, duration, item)`` in presentation order to ``count`` frames at ``fps``.

    Yields ``(i, item)`` for i = 0, 1, ... where item is the last one with ``time <= start + i/fps + tolerance``
    (the rule of :mod:`memvit.data.timeline`, which streaming inference uses too). It stops reading ``frames`` as
    soon as frame ``count - 1`` is known, so a long movie is decoded only up to ``start + duration``. ``duration``
    (None if unknown) sets how long the last item is shown; if unknown, the gap between the last two items is used.
    """
    i = 0
    prev: tuple[Fraction, Fraction | None, T] | None = None
    gap: Fraction | None = None
    for current in frames:
        stamp = current[0]
        shown = current if prev is None else prev  # before the first frame, the first frame stands in
        settled = min(count, timeline.decided(stamp, fps, tolerance, start))
        while i < settled:
            yield i, shown[2]
            i += 1
        if i >= count:
            return
        if prev is not None:
            gap = stamp - prev[0]
        prev = current
    if prev is None:
        return
    end = timeline.shown_until(prev[0], fps, duration=prev[1], gap=gap)
    last = min(count, timeline.frames_before(end, fps, start))
    while i < last:
        yield i, prev[2]
        i += 1


def timed_frames(container: Any, stream: Any, origin: Fraction, last: dict[str, Fraction],
                 decoded: Iterable[Any] | None = None) -> Iterator[tuple]:
    """Decoded frames as ``(time, duration, frame)``, times relative to ``origin``; records the last time seen.
    ``decoded``: the stream's frames, if the caller decodes them itself (default: ``container.decode(stream)``)."""
    nominal = Fraction(1) / Fraction(stream.average_rate) if stream.average_rate else None
    prev: Fraction | None = None
    for frame in container.decode(stream) if decoded is None else decoded:
        base = Fraction(frame.time_base or stream.time_base)
        if frame.pts is not None:
            stamp = frame.pts * base - origin
        elif prev is not None and nominal is not None:
            stamp = prev + nominal  # no timestamp (raw streams): assume the nominal rate
        else:
            stamp = prev if prev is not None else Fraction(0)
        if prev is not None and stamp <= prev:
            continue  # repeated or out-of-order timestamp: keep the frame that came first
        prev = last["time"] = stamp
        duration = frame.duration * base if frame.duration else nominal
        yield stamp, duration, frame


def _to_bgr(frame: Any, rgb: bool = False) -> Any:
    """BGR (``rgb``: RGB) pixels of a decoded frame.

    The common case, limited-range 4:2:0 (nearly all of AVA), goes through OpenCV's BT.601 conversion: about 10x
    faster than swscale's RGB path here (0.4 vs 4 ms at 640x360), within 3 levels of it. BT.601 is also how a
    JPEG reader sees ffmpeg's ``-q:v 1`` frames, whatever the source's matrix. Anything else goes through swscale.
    """
    import cv2

    if frame.format.name == "yuv420p" and frame.color_range != 2 and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420 if rgb else cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="rgb24" if rgb else "bgr24")


def to_rgb(frame: Any) -> Any:
    """RGB pixels of a decoded frame, by the conversion frame folders are written with (clips read from a
    video equal those read from its JPEG folder up to JPEG error)."""
    return _to_bgr(frame, rgb=True)


def _encode_jpeg(frame: Any, quality: int) -> bytes:
    import cv2  # imported here: importing the module (and the CLI's --help) stays light

    ok, data = cv2.imencode(".jpg", _to_bgr(frame), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ExtractionError("JPEG encoding failed")
    return data.tobytes()


def extract_frames(
    source: Path,
    dest: Path,
    video_id: str,
    params: ExtractionParams,
    *,
    threads: int = 0,
    progress: ProgressFn | None = None,
) -> int:
    """Write the frames of ``params`` from ``source`` as ``dest/<video_id>_%06d.jpg``; returns how many.

    ``dest`` must exist. ``threads`` is the decoder's thread count (0: FFmpeg picks). The file is read as
    itself only (:func:`memvit.streaming.video_io.open_local`: a playlist or concat list naming other files
    or URLs is refused; metadata that is not UTF-8 is fine). Raises
    :class:`~memvit.streaming.video_io.VideoError` for files that do not open as a video,
    :class:`ExtractionError` for videos without frames in the range, and PyAV's errors for decoding
    failures.
    """
    import av

    from ..streaming.video_io import local_container

    count = params.num_frames
    for use_seek in (True, False):
        with local_container(str(source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            base = Fraction(stream.time_base)
            origin = Fraction(container.start_time or 0, av.time_base)
            tolerance = timeline.tolerance(base, params.fps)
            seeking = use_seek and params.start > 0
            if seeking:  # to the keyframe at or before start; decoding from 0 would cost 15 minutes of frames
                try:
                    container.seek(math.floor((origin + params.start) / base), stream=stream, backward=True)
                except av.FFmpegError as exc:
                    logger.debug("%s: seek failed (%s); decoding from the beginning", video_id, exc)
                    continue
            last: dict[str, Fraction] = {}
            frames = timed_frames(container, stream, origin, last)
            first = next(frames, None)
            if seeking and first is not None and first[0] > params.start + tolerance:
                logger.debug("%s: seek overshot start (%s s); decoding from the beginning", video_id, float(first[0]))
                continue
            stream_frames = frames if first is None else _chain(first, frames)
            written = 0
            encoded_for, data = None, b""
            for i, frame in select_frames(stream_frames, params.start, params.fps, count, tolerance):
                if frame is not encoded_for:  # a slower source repeats frames: encode each one once
                    data, encoded_for = _encode_jpeg(frame, params.quality), frame
                (dest / frame_name(video_id, i)).write_bytes(data)  # streamed: into .partial/, renamed when whole
                written = i + 1
                if progress is not None:
                    progress(written, count)
            if written == 0:
                if "time" not in last:
                    raise ExtractionError("no decodable video frames")
                last_time, start = float(last["time"]), float(params.start)
                raise ExtractionError(f"video too short: last frame at {last_time:.3f} s, before --start {start:g} s")
            return written
    raise AssertionError("unreachable: the second pass does not seek")


def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest
