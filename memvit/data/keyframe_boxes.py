# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A user's annotations -> AVA ground-truth rows at whole-second keyframes, for ``python -m
memvit.data.convert`` (whose docstring states the rules and the formats): a video file's frame times and the
frame on screen at each second, the action vocabulary, and the readings of a CVAT export and of the plain CSV.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..cli import UserError
from . import timeline
from .ava_files import CLIP_TOLERANCE, FPS, BoxRow, LabelMap
from .cvat import UNDEFINED, CvatFormatError, Label, VideoAnnotations

CSV_COLUMNS = ("video", "time", "person", "x1", "y1", "x2", "y2", "action")
DERIVED_LABEL_TYPE = "PERSON_MOVEMENT"  # AVA's label_type for classes without one (edit the map, or pass yours)

class ConvertError(UserError, ValueError):
    """Bad input to the converter (the message names the file and the element or line)."""


# ----------------------------------------------------------------------------- videos


@dataclass(frozen=True)
class VideoFrames:
    """A video file's frames: their times in seconds from the container's start (increasing), the frame
    size, the time base tick and when its last frame stops being shown."""

    path: str
    times: list[Fraction]
    width: int
    height: int
    tick: Fraction
    end: Fraction

    def keyframe_seconds(self) -> range:
        """Whole seconds with a frame on screen: 0 ... the last before ``end``."""
        return range(0, max(0, math.ceil(self.end)))

    def frame_at(self, sec: int) -> int:
        """Index of the frame on screen at second ``sec`` (:mod:`memvit.data.timeline`'s rule)."""
        return timeline.on_screen(self.times, sec, timeline.tolerance(self.tick, FPS))


def read_video_frames(path: str | os.PathLike) -> VideoFrames:
    """Frame times from the packets (no decoding; :func:`memvit.data.video_source.frame_times`)."""
    from .video_source import VideoIndexError, frame_times

    try:
        scan = frame_times(path, FPS)
    except VideoIndexError as error:
        raise ConvertError(str(error)) from None
    return VideoFrames(os.fspath(path), scan.times, scan.size[1], scan.size[0], scan.tick, scan.end)


def find_video(videos_dir: Path, video_id: str, where: str) -> Path:
    from .video_source import VIDEO_EXTENSIONS, find_videos

    if not videos_dir.is_dir():
        raise ConvertError(f"--videos {videos_dir}: no such folder")
    found = find_videos(videos_dir).get(video_id)
    if found is None:
        raise ConvertError(f"{where}: video {video_id!r} is not in {videos_dir}",
                           f"put {video_id}.<ext> there ({', '.join(VIDEO_EXTENSIONS[:3])}, ...), or pass --videos")
    return found


# ----------------------------------------------------------------------------- actions


class Actions:
    """Action names -> AVA class ids: a given label map's, or 1..N in the order :meth:`declare` meets them."""

    def __init__(self, label_map: LabelMap | None = None, source: str = "") -> None:
        self.fixed, self.source = label_map is not None, source
        self.ids: dict[str, int] = {}
        if label_map is not None:
            for class_id in label_map.ids:
                self.ids.setdefault(label_map.names[class_id], class_id)

    def declare(self, name: str) -> None:
        if not self.fixed and name and name != UNDEFINED and name not in self.ids:
            self.ids[name] = len(self.ids) + 1

    def entries(self) -> list[tuple[int, str, str]]:
        return [(i, name, DERIVED_LABEL_TYPE) for name, i in self.ids.items()]


@dataclass
class Tally:
    """What a conversion left out, for the summary."""

    no_action: int = 0  # person boxes at keyframes without an action
    ignored_labels: Counter = field(default_factory=Counter)  # tracks of labels that are no action
    skipped_shapes: int = 0  # CVAT shapes other than boxes
    excluded_rows: int = 0  # person boxes at excluded seconds


@dataclass(frozen=True)
class CvatOptions:
    person_label: str = "person"
    action_attributes: tuple[str, ...] = ()
    exclude_label: str = "exclude"


def declare_cvat_actions(actions: Actions, labels: Iterable[Label], opts: CvatOptions) -> None:
    """The classes a file declares (unless a label map gives them): see the module docstring."""
    for label in labels:
        if label.name == opts.exclude_label:
            continue
        if label.name != opts.person_label:
            actions.declare(label.name)
            continue
        for spec in label.attributes:
            if spec.input_type == "checkbox":
                actions.declare(spec.name)
            elif spec.input_type in ("select", "radio") and (not opts.action_attributes
                                                            or spec.name in opts.action_attributes):
                for value in spec.values:
                    actions.declare(value)


def _box_actions(actions: Actions, label: Label, attributes: Sequence[tuple[str, str]], opts: CvatOptions,
                 where: str, path: str, line: int) -> set[int]:
    specs = {spec.name: spec for spec in label.attributes}
    found = set()
    for name, value in attributes:
        value = value.strip()
        spec = specs.get(name)
        kind = spec.input_type if spec else ("checkbox" if value.lower() in ("true", "false") else "text")
        if kind == "checkbox":
            if value.lower() == "true" and name in actions.ids:
                found.add(actions.ids[name])
            continue
        named = name in opts.action_attributes
        if kind == "number" or (opts.action_attributes and not named) or value in ("", UNDEFINED):
            continue
        if kind == "text" and named:
            actions.declare(value)
        if value in actions.ids:
            found.add(actions.ids[value])
        elif named:
            raise CvatFormatError(path, line, f"{where}: attribute {name!r} = {value!r} is not an action of the "
                                  f"label map {actions.source}")
    return found


def _normalised(box: Sequence[float], width: int, height: int, fail: Callable[[str], UserError]
                ) -> tuple[float, float, float, float]:
    """Pixels -> [0, 1]; up to ava_files.CLIP_TOLERANCE outside is clipped, further is ``fail(message)``."""
    x1, y1, x2, y2 = box[0] / width, box[1] / height, box[2] / width, box[3] / height
    shown = ", ".join(f"{v:g}" for v in box)
    if min(x1, y1) < -CLIP_TOLERANCE or max(x2, y2) > 1 + CLIP_TOLERANCE:
        raise fail(f"box ({shown}) is outside the {width}x{height} frame" + (" of the video" if width > 1 else ""))
    if x2 <= x1 or y2 <= y1:
        raise fail(f"empty box ({shown}): needs x2 > x1 and y2 > y1")
    return tuple(min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))


def _at(path: str, line: int, where: str) -> Callable[[str], UserError]:
    return lambda message: CvatFormatError(path, line, f"{where}: {message}")


def _check_cvat(ann: VideoAnnotations, path: str, video_id: str, frames: VideoFrames) -> int:
    """The file fits the video: its size, its frames, its boxes; returns the task's last frame."""
    n = len(frames.times)
    if ann.width is not None and ann.height is not None and (ann.width, ann.height) != (frames.width, frames.height):
        raise CvatFormatError(path, 0, f"<original_size> is {ann.width}x{ann.height} but video {video_id} "
                              f"({frames.path}) is {frames.width}x{frames.height}", "is it the task's video?")
    last = ann.last_frame if ann.last_frame is not None else n - 1
    if last >= n:
        raise CvatFormatError(path, 0, f"the task's last frame ({last}, <stop_frame>/<size>) is past the end of "
                              f"video {video_id} ({frames.path}: {n} frames)", "is it the task's video?")
    for track in ann.tracks:
        if track.frames[-1] >= n:
            box = track.boxes[-1]
            raise CvatFormatError(path, box.line, f"track {track.id}: frame {box.frame} is past the end of video "
                                  f"{video_id} ({n} frames, 0 ... {n - 1})", "is it the task's video?")
        for box in track.boxes:
            if not box.outside:
                _normalised(box.extent(), frames.width, frames.height,
                            _at(path, box.line, f"track {track.id}, frame {box.frame}"))
    return last


def cvat_keyframes(ann: VideoAnnotations, path: str, video_id: str, frames: VideoFrames, actions: Actions,
                   opts: CvatOptions, tally: Tally) -> tuple[list[BoxRow], list[int]]:
    """One CVAT file's ground-truth rows (one per person and action) and excluded seconds."""
    last = _check_cvat(ann, path, video_id, frames)
    tally.skipped_shapes += ann.skipped_shapes
    tracks = sorted(ann.tracks, key=lambda t: t.id)
    group_first: dict[int, int] = {}
    for track in tracks:
        if track.group:
            group_first.setdefault(track.group, track.id)
    labels = {label.name: label for label in ann.labels}
    ignored: set[int] = set()
    rows, excluded = [], []
    for sec in frames.keyframe_seconds():
        frame = frames.frame_at(sec)
        if not ann.start_frame <= frame <= last:
            excluded.append(sec)
            continue
        persons: dict[int, tuple[tuple[float, ...], set[int]]] = {}
        exclude = False
        for track in tracks:
            box = track.box_at(frame, last)
            if box is None:
                continue
            if track.label == opts.exclude_label:
                exclude = True
                continue
            where = f"track {track.id}, frame {frame} (second {sec})"
            if track.label == opts.person_label:
                found = _box_actions(actions, labels[track.label], box.attributes, opts, where, path, box.line)
            elif track.label in actions.ids:
                found = {actions.ids[track.label]}
            else:
                if track.id not in ignored:
                    ignored.add(track.id)
                    tally.ignored_labels[track.label] += 1
                continue
            person = group_first.get(track.group, track.id) if track.group else track.id
            if person not in persons:
                persons[person] = (_normalised(box.extent(), frames.width, frames.height, _at(path, box.line, where)),
                                   set())
            persons[person][1].update(found)
        if exclude:
            excluded.append(sec)
            tally.excluded_rows += len(persons)
            continue
        for person, (box, found) in sorted(persons.items()):
            tally.no_action += not found
            rows += [BoxRow(video_id, sec, box, action, float(person)) for action in sorted(found)]
    return rows, excluded


# ----------------------------------------------------------------------------- the plain CSV


class PlainCsv:
    """Plain CSV files (``python -m memvit.data.convert``'s format) merged: :meth:`read` each, then
    :meth:`keyframes` gives the rows and the excluded seconds of every video they name."""

    def __init__(self, videos_dir: Path, actions: Actions, exclude_label: str, normalized: bool) -> None:
        self.videos_dir, self.actions, self.exclude_label, self.normalized = (videos_dir, actions, exclude_label,
                                                                              normalized)
        self.frames: dict[str, VideoFrames] = {}
        self.people: dict[tuple[str, int, int], tuple[tuple[float, ...], set[int], str]] = {}
        self.seconds: dict[str, set[int]] = {}  # annotated seconds per video (their span is covered)
        self.marked: set[tuple[str, int]] = set()  # seconds marked with the exclude label

    def read(self, path: str) -> None:
        def bad(line: int, message: str) -> ConvertError:
            return ConvertError(f"{path}:{line}: {message}")

        try:
            handle = open(path, newline="", encoding="utf-8")
        except OSError as error:
            raise ConvertError(f"{path}: cannot read it ({error.strerror or error})") from None
        with handle:
            lines = ((n, fields) for n, fields in enumerate(csv.reader(handle), 1) if any(f.strip() for f in fields))
            header = next(lines, None)
            if header is None or tuple(f.strip().lower() for f in header[1]) != CSV_COLUMNS:
                raise bad(header[0] if header else 1, f"expected the header line {','.join(CSV_COLUMNS)}")
            for line, fields in lines:
                if len(fields) != len(CSV_COLUMNS):
                    raise bad(line, f"expected {len(CSV_COLUMNS)} comma-separated columns, got {len(fields)}")
                self._row(functools.partial(bad, line), f"{path}:{line}", *(f.strip() for f in fields))

    def _row(self, bad: Callable[[str], ConvertError], where: str, video: str, time_text: str, person_text: str,
             *fields: str) -> None:
        *coords, action = fields
        if not video:
            raise bad("empty video id")
        if video not in self.frames:
            self.frames[video] = read_video_frames(find_video(self.videos_dir, video, where))
        frames = self.frames[video]
        try:
            time = float(time_text)
        except ValueError:
            raise bad(f"time {time_text!r} is not a number (seconds)") from None
        if not math.isfinite(time) or time < 0 or abs(time - round(time)) > 1e-6:
            raise bad(f"time {time_text!r}: keyframes are whole seconds from the start of the video (0, 1, 2, ...)")
        sec = round(time)
        if sec >= frames.end:
            raise bad(f"time {sec} s is past the end of video {video} ({float(frames.end):.3f} s)")
        self.seconds.setdefault(video, set()).add(sec)
        if action == self.exclude_label:
            self.marked.add((video, sec))
            return
        try:
            person, box = int(person_text), [float(c) for c in coords]
        except ValueError:
            raise bad("person must be an integer and x1, y1, x2, y2 numbers") from None
        if person < 0:
            raise bad(f"person id {person} is negative")
        box = _normalised(box, *((1, 1) if self.normalized else (frames.width, frames.height)), bad)
        if action:
            if self.actions.fixed and action not in self.actions.ids:
                raise bad(f"action {action!r} is not in the label map {self.actions.source}")
            self.actions.declare(action)
        key = (video, sec, person)
        if key in self.people and self.people[key][0] != box:
            raise bad(f"person {person} at second {sec} of {video} has another box at {self.people[key][2]}")
        self.people.setdefault(key, (box, set(), where))[1].update([self.actions.ids[action]] if action else [])

    def keyframes(self, tally: Tally) -> tuple[list[BoxRow], list[tuple[str, int]]]:
        """The rows, and the excluded (video, second): the marked ones and those outside each video's first
        ... last annotated second."""
        excluded = sorted((video, s) for video, seconds in self.seconds.items()
                          for s in self.frames[video].keyframe_seconds()
                          if (video, s) in self.marked or not min(seconds) <= s <= max(seconds))
        left_out = set(excluded)
        rows = []
        for (video, sec, person), (box, found, _) in sorted(self.people.items()):
            if (video, sec) in left_out:
                tally.excluded_rows += 1
                continue
            tally.no_action += not found
            rows += [BoxRow(video, sec, box, action, float(person)) for action in sorted(found)]
        return rows, excluded


__all__ = ["CSV_COLUMNS", "DERIVED_LABEL_TYPE", "Actions", "ConvertError", "CvatOptions", "Tally", "VideoFrames",
           "PlainCsv", "cvat_keyframes", "declare_cvat_actions", "find_video", "read_video_frames"]
