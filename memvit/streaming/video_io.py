# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Video in and out for inference, with PyAV: files, cameras and stream URLs in; annotated MP4 out.

* :class:`FileReader` decodes a file in order (nothing is dropped); :class:`LiveReader` decodes
  a camera (``"0"`` = ``/dev/video0``) or a stream URL in a reader thread into a bounded
  buffer, so a slow consumer loses old frames (counted) instead of stalling the source.
  Both yield :class:`Frame` s: RGB pixels and the presentation time in seconds.
* :class:`Timeline` resamples those frames to AVA's fixed 30 fps timeline by time stamps:
  timeline frame ``i`` is the frame on screen at ``i / fps`` (the last one whose time is
  ``<=`` it, within one time-base tick), so variable frame rates and sources at other rates
  give clips of the right duration. The rule is :mod:`memvit.data.timeline`, the one that
  :mod:`memvit.data.prepare_ava` uses for the frames the model is trained on.
* :class:`AnnotatedVideoWriter` writes H.264 MP4 at the source's size with each frame at its
  source time (so the frame rate and count are the source's), fragmented and flushed as it
  goes: a run that dies still leaves a playable file up to the last fragment.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..cli import UserError
from ..data import timeline as rule

logger = logging.getLogger(__name__)

# Live sources: decide the container's layout from a small probe, so the first frames arrive quickly.
LIVE_OPTIONS = {"probesize": "65536", "analyzeduration": "500000"}


class VideoError(UserError, RuntimeError):
    """A video that cannot be opened or read (the message says which and why)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` ``(H, W, 3)`` RGB ``uint8`` shown from ``time`` seconds on
    (exact: pts x time base, from the origin)."""

    time: Fraction
    image: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its video track (rate and duration may be unknown)."""

    source: str
    width: int
    height: int
    rate: Fraction | None  # average frame rate
    duration: float | None  # seconds
    frames: int | None  # frame count declared by the container
    codec: str
    live: bool
    tick: Fraction  # one time-base tick in seconds: the tolerance of time comparisons


def is_live_spec(spec: str) -> bool:
    """A camera index (``"0"``) or a URL (``scheme://...``) is live; anything else, ``file://`` URLs
    included, is a local file (read as itself only: :func:`open_local`)."""
    if spec.lower().startswith("file://"):
        return False
    return spec.isdigit() or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None


def local_path(spec: str) -> str:
    """The path of a local file given as a path or a ``file://`` URL."""
    if spec.lower().startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(spec).path)
    return spec


def camera_input(spec: str) -> tuple[str, str | None]:
    """(url, format) PyAV opens for a camera index on this platform."""
    if sys.platform.startswith("linux"):
        return f"/dev/video{spec}", "v4l2"
    if sys.platform == "darwin":
        return spec, "avfoundation"
    raise VideoError(f"camera {spec}: camera indices are supported on Linux (v4l2) and macOS (avfoundation); "
                     "pass the device as a URL or a path with --live instead")


def _to_rgb(frame: Any) -> np.ndarray:
    """RGB pixels of a decoded frame, converted by FFmpeg's swscale (as PyTorchVideo's PyAV reader)."""
    return frame.to_ndarray(format="rgb24")


def _open(url: str, fmt: str | None, options: dict[str, str] | None, timeout: float | None) -> Any:
    """A camera or a URL the user named, opened by FFmpeg's own protocols (the only inputs that may use them)."""
    import av

    try:
        container = av.open(url, format=fmt, options=options or {}, timeout=timeout, metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"cannot open {url}: {error} (missing, unreadable, truncated or not a video?)") from None
    return _has_video(container, url)


def _has_video(container: Any, source: str) -> Any:
    if not container.streams.video:
        container.close()
        raise VideoError(f"{source} has no video track")
    return container


# Demuxers that read other files or network addresses named inside their input (playlists, concat
# lists, manifests, session descriptions). A local file is never read as one of these.
REFERENCING_FORMATS = frozenset({"concat", "hls", "dash", "sdp", "rtp", "rtsp", "sap", "imf"})
# FFmpeg's protocol whitelist for local files: it names no protocol, so nothing inside a file can make
# FFmpeg open another file or a URL (the file itself is read through a Python file object).
NO_PROTOCOLS = "none"
_REFERENCE_HINT = ("a local file is read only as itself (memvit does not open what a file names); for a stream, "
                   "pass its URL itself (http://..., rtsp://...) to --video; to use the files it lists, join "
                   "them into one video first (e.g. ffmpeg -i LIST -c copy one.mp4)")


def _names_other_files(path: str) -> str | None:
    """What a file is when it is a list of other files or URLs (from its first bytes), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"#EXTM3U"):
        return "an HLS playlist (.m3u8)"
    if text.startswith(b"ffconcat"):
        return "an FFmpeg concat list"
    if b"<MPD" in text[:1024]:
        return "a DASH manifest"
    if text.startswith(b"v=0"):
        return "an SDP session description"
    return None


def open_local(path: str, options: dict[str, str] | None = None, timeout: float | None = None) -> tuple[Any, Any]:
    """Open a local video file as itself only: ``(container, file object)``; close both when done.

    FFmpeg reads the file through a Python file object with a protocol whitelist that names no
    protocol, so a crafted input (an HLS playlist or a concat list, whatever its name) cannot make
    it open other local files or contact a URL; such a file is a :class:`VideoError` naming it.
    Metadata that is not UTF-8 is decoded with replacement characters instead of failing.
    """
    import av

    path = local_path(path)
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file")
    if os.path.isdir(path):
        raise VideoError(f"{path} is a folder, not a video file")
    try:
        handle = open(path, "rb")  # closed by the caller, or below on failure
    except OSError as error:
        raise VideoError(f"cannot open {path}: {error.strerror or error}") from None
    try:
        container = av.open(handle, options=options or {}, timeout=timeout, metadata_errors="replace",
                            container_options={"protocol_whitelist": NO_PROTOCOLS})
    except (av.FFmpegError, OSError, ValueError) as error:
        handle.close()
        kind = _names_other_files(path)
        if kind is not None:
            raise VideoError(f"{path} is {kind}, not a video: it names other files or URLs to read",
                             _REFERENCE_HINT) from None
        raise VideoError(f"cannot open {path}: {error} (missing, unreadable, truncated or not a video?)") from None
    if container.format.name in REFERENCING_FORMATS:
        container.close()
        handle.close()
        raise VideoError(f"{path} is a {container.format.name} file, not a video: it names other files or URLs "
                         "to read", _REFERENCE_HINT)
    try:
        return _has_video(container, path), handle
    except VideoError:
        handle.close()
        raise


@contextlib.contextmanager
def local_container(path: str) -> Iterator[Any]:
    """:func:`open_local` as a context manager: the PyAV container, closed (with its file) on exit."""
    container, handle = open_local(path)
    try:
        yield container
    finally:
        container.close()
        handle.close()


def _info(container: Any, source: str, live: bool) -> VideoInfo:
    track = container.streams.video[0]
    base = track.time_base or Fraction(1, 1000)
    duration = None
    if track.duration is not None:
        duration = float(track.duration * base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    return VideoInfo(source=source, width=track.codec_context.width, height=track.codec_context.height,
                     rate=Fraction(track.average_rate) if track.average_rate else None, duration=duration,
                     frames=track.frames or None, codec=track.codec_context.name, live=live, tick=Fraction(base))


class _FrameClock:
    """Exact frame times in seconds from an origin; frames with a repeated or earlier time are dropped."""

    def __init__(self, origin: Fraction | None, nominal: Fraction | None) -> None:
        self.origin, self.nominal = origin, nominal
        self.last: Fraction | None = None
        self.intervals: list[float] = []

    def time_of(self, frame: Any) -> Fraction | None:
        if frame.pts is not None and frame.time_base is not None:
            stamp = frame.pts * Fraction(frame.time_base)
            if self.origin is None:
                self.origin = stamp
            stamp -= self.origin
        elif self.last is not None:
            stamp = self.last + (self.nominal or Fraction(1, 30))
        else:
            stamp = Fraction(0)
        if self.last is not None:
            if stamp <= self.last:
                return None
            if len(self.intervals) < 10_000:
                self.intervals.append(float(stamp - self.last))
        self.last = stamp
        return stamp

    def variable_rate(self) -> str | None:
        """A description of the frame intervals when they vary by more than 20%, else None."""
        if len(self.intervals) < 3:
            return None
        low, high = min(self.intervals), max(self.intervals)
        if high <= 1.2 * low:
            return None
        return f"variable frame rate (frame intervals {low * 1000:.1f}-{high * 1000:.1f} ms)"


class FileReader:
    """Decode a video file in presentation order; times count from the container's start.

    Opening errors raise :class:`VideoError` (the file is opened as itself only: :func:`open_local`).
    A decoding error part-way (a truncated or corrupt file) ends the iteration and is kept in
    :attr:`error`, naming the file, so the frames before it are used.
    """

    live = False

    def __init__(self, path: str) -> None:
        self.path = path = local_path(path)
        self.container, self._handle = open_local(path)
        try:
            self.info = _info(self.container, path, live=False)
        except BaseException:
            self.container.close()
            self._handle.close()
            raise
        track = self.container.streams.video[0]
        track.thread_type = "AUTO"
        origin = Fraction(self.container.start_time or 0, 1_000_000)  # AV_TIME_BASE
        self.clock = _FrameClock(origin, 1 / self.info.rate if self.info.rate else None)
        self.error: str | None = None
        self.frames_read = 0
        self.dropped_frames = 0  # never: files are read at the consumer's pace

    def chunks(self) -> Iterator[list[Frame]]:
        """Frames one at a time (lists of one), then stops at the end or at an error."""
        import av

        track = self.container.streams.video[0]
        try:
            for frame in self.container.decode(track):
                stamp = self.clock.time_of(frame)
                if stamp is None:
                    continue
                self.frames_read += 1
                yield [Frame(stamp, _to_rgb(frame))]
        except (av.FFmpegError, OSError, ValueError) as error:  # ValueError: e.g. undecodable text, odd pixels
            self.error = (f"{self.path}: decoding stopped after {self.frames_read} frames (truncated or corrupt?): "
                          f"{type(error).__name__}: {error}")

    def shortfall(self) -> str | None:
        """A note when decoding ended well before the duration the container declares (truncated?)."""
        declared, last = self.info.duration, self.clock.last
        if self.error is not None or declared is None or last is None:
            return None
        interval = 1 / float(self.info.rate) if self.info.rate else 1 / 30
        if last + 2.5 * interval >= declared:
            return None
        return (f"{self.path}: the frames end at {float(last):.2f} s but the video declares {declared:.2f} s "
                "(truncated?)")

    def close(self) -> None:
        self.container.close()
        self._handle.close()


class LiveReader:
    """Decode a camera or a stream in a thread into a bounded buffer; :meth:`chunks` drains it.

    When the buffer is full the oldest frame is dropped (counted in :attr:`dropped_frames`): a
    consumer slower than the source loses frames rather than falling behind. The iteration ends
    when the source ends or fails (the reason in :attr:`error`) or after :meth:`close`.
    """

    live = True

    def __init__(self, spec: str, *, buffer_seconds: float = 8.0, timeout: float = 10.0,
                 options: dict[str, str] | None = None) -> None:
        self.spec, self.timeout = spec, timeout
        self._handle = None
        if is_live_spec(spec):  # a camera or a URL: FFmpeg's protocols
            url, fmt = camera_input(spec) if spec.isdigit() else (spec, None)
            self.container = _open(url, fmt, {**LIVE_OPTIONS, **(options or {})}, timeout)
        else:  # a local path read live (a FIFO): as itself only, as files are
            self.container, self._handle = open_local(spec, {**LIVE_OPTIONS, **(options or {})}, timeout)
        self.info = _info(self.container, spec, live=True)
        rate = float(self.info.rate) if self.info.rate else 30.0
        self.clock = _FrameClock(None, 1 / (self.info.rate or Fraction(30)))
        self.buffer: collections.deque[Frame] = collections.deque(maxlen=max(8, math.ceil(buffer_seconds * rate)))
        self.error: str | None = None
        self.frames_read = 0
        self.dropped_frames = 0
        self._done = False
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._decode, name="memvit-live-reader", daemon=True)
        self._thread.start()

    def _decode(self) -> None:
        import av

        track = self.container.streams.video[0]
        try:
            for frame in self.container.decode(track):
                if self._stop.is_set():
                    break
                stamp = self.clock.time_of(frame)
                if stamp is None:
                    continue
                item = Frame(stamp, _to_rgb(frame))
                with self._ready:
                    if len(self.buffer) == self.buffer.maxlen:
                        self.dropped_frames += 1
                    self.buffer.append(item)
                    self.frames_read += 1
                    self._ready.notify()
        except av.ExitError:  # the read timeout's interrupt
            self.error = (f"the source stopped delivering frames after {self.frames_read} (nothing for "
                          f"{self.timeout:g} s)")
        except (av.FFmpegError, OSError) as error:
            self.error = f"the source failed after {self.frames_read} frames: {error}"
        except Exception as error:  # any failure ends the reading; it is reported
            self.error = f"the reader failed after {self.frames_read} frames: {type(error).__name__}: {error}"
        finally:
            with self._ready:
                self._done = True
                self._ready.notify()

    def chunks(self, poll: float = 0.05) -> Iterator[list[Frame]]:
        """Every frame that arrived since the last call (possibly none, after ``poll`` seconds)."""
        while True:
            with self._ready:
                if not self.buffer and not self._done:
                    self._ready.wait(poll)
                items = list(self.buffer)
                self.buffer.clear()
                done = self._done
            if items or not done:
                yield items
            if done and not items:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self.container.close()
            if self._handle is not None:
                self._handle.close()


class Timeline:
    """Frames on a fixed-rate timeline: frame ``i`` is the source frame on screen at ``i / fps``
    (the rule of :mod:`memvit.data.timeline`, shared with the frames the model is trained on).

    Push source frames in time order; :meth:`known` says how many timeline frames are decided
    (a frame is decided once a later source frame or the end has been seen). Before the first
    source frame the first frame stands in; after :meth:`finish`, the last frame is shown until
    its time plus one frame interval. :meth:`trim` forgets frames no longer needed.
    """

    def __init__(self, fps: int, tick: Fraction | int = 0) -> None:
        self.fps = fps
        self.tolerance = rule.tolerance(tick, fps)
        self.times: list[Fraction] = []
        self.images: list[np.ndarray] = []
        self.ended = False
        self.end_time: Fraction | None = None
        self._last_gap: Fraction | None = None
        self.latest: Fraction | None = None

    def push(self, frame: Frame) -> None:
        if self.latest is not None:
            self._last_gap = frame.time - self.latest
        self.times.append(frame.time)
        self.images.append(frame.image)
        self.latest = frame.time

    def finish(self, nominal_interval: Fraction | None = None) -> None:
        """No more frames: the last one is shown for one frame interval (the last gap between frames)."""
        self.ended = True
        if self.latest is not None:
            self.end_time = rule.shown_until(self.latest, self.fps, gap=self._last_gap, nominal=nominal_interval)

    def known(self) -> int:
        """Timeline frames ``0 .. n-1`` that are decided (all of them once ended)."""
        if self.latest is None:
            return 0
        if self.ended:
            return self.length()
        return rule.decided(self.latest, self.fps, self.tolerance)

    def length(self) -> int:
        """The number of timeline frames of an ended video (frames shown before its end)."""
        if self.end_time is None:
            return 0
        return rule.frames_before(self.end_time, self.fps)

    def frame(self, i: int) -> np.ndarray:
        """Timeline frame ``i`` (must be kept: not trimmed)."""
        return self.images[rule.on_screen(self.times, rule.instant(i, self.fps), self.tolerance)]

    def trim(self, first_needed: int) -> None:
        """Drop source frames that no timeline frame ``>= first_needed`` shows."""
        pos = rule.on_screen(self.times, rule.instant(first_needed, self.fps), self.tolerance)
        if pos > 0:
            del self.times[:pos]
            del self.images[:pos]


def _even(n: int) -> bool:
    return n % 2 == 0


class AnnotatedVideoWriter:
    """H.264 MP4 at the source's size; each frame at its own time, so rate and count are the source's.

    The MP4 is fragmented and flushed at every fragment (``frag_keyframe``, one key frame a
    second), so an interrupted run leaves a file that plays up to its last fragment.
    """

    def __init__(self, path: str, width: int, height: int, rate: Fraction | None, crf: int = 23) -> None:
        import av

        self.path = path
        self.rate = Fraction(rate) if rate else Fraction(30)
        self.time_base = Fraction(1, 90_000)
        try:
            self.container = av.open(path, "w", format="mp4",  # streamed: a fragmented MP4, playable as it grows
                                     options={"movflags": "frag_keyframe+empty_moov+default_base_moof",
                                              "flush_packets": "1"})
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"cannot write {path}: {error}") from None
        gop = max(1, round(float(self.rate)))
        try:
            self.track = self.container.add_stream("libx264", rate=self.rate,
                                                    options={"crf": str(crf), "g": str(gop), "preset": "veryfast"})
        except (av.FFmpegError, ValueError) as error:  # an FFmpeg built without libx264
            self.container.close()
            raise VideoError(f"cannot encode H.264 into {path}: {error}") from None
        self.track.width, self.track.height = width, height
        # libx264's 4:2:0 needs even sizes; odd ones keep every pixel in 4:4:4.
        self.track.pix_fmt = "yuv420p" if _even(width) and _even(height) else "yuv444p"
        self.track.time_base = self.time_base
        self.track.codec_context.time_base = self.time_base
        self.frames = 0
        self._last_pts = -1
        self._closed = False

    def write(self, image: np.ndarray, time_s: float | Fraction) -> None:
        """Append an RGB frame shown from ``time_s`` seconds."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = max(round(time_s / self.time_base), self._last_pts + 1)
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        for packet in self.track.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self.track.encode():
                self.container.mux(packet)
        finally:
            self.container.close()

