# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The synthetic set as a user's own data would come (``--videos``): each video as an H.264 MP4 and its ground
truth as a "CVAT for video 1.1" export, the input of ``python -m memvit.data.convert cvat``.

Video time ``s`` is AVA second ``900 + s`` (frame ``k`` of the frame folder at ``k / 30`` s). The CVAT file
has one ``person`` track per person (track id = person id) with a box on every frame and one checkbox
attribute per class (true while the person has that label), and a one-frame ``exclude`` box over the
whole frame at each excluded keyframe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..ava_files import FPS
from ..cvat import Box, Label, Track, VideoAnnotations, checkbox_label, write_video_annotations
from .body import body_parts, person_box, simulate
from .classes import ActionClass
from .plan import VideoPlan

VIDEOS_DIR, CVAT_DIR = "videos", "cvat"
PERSON_LABEL, EXCLUDE_LABEL = "person", "exclude"  # memvit.data.convert's defaults
VIDEO_CRF = 17  # H.264 quality: close to the JPEG frames


def video_file(video: str) -> str:
    return f"{VIDEOS_DIR}/{video}.mp4"


def cvat_file(video: str) -> str:
    return f"{CVAT_DIR}/{video}.xml"


def cvat_annotations(plan: VideoPlan, classes: Sequence[ActionClass], excluded: Iterable[int]) -> VideoAnnotations:
    """The ground truth of ``plan`` as CVAT tracks; ``excluded``: excluded keyframes in video seconds."""
    height, width = plan.size
    names = {c.behaviour: c.name for c in classes}
    tracks = []
    for person, poses in zip(plan.persons, (simulate(p, plan.num_frames) for p in plan.persons)):
        boxes, previous = [], None
        for k in range(plan.num_frames):
            x1, y1, x2, y2 = person_box(body_parts(person.height, poses[k]))
            x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
            y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
            on = {names[b] for b in plan.labels_at(person, k / FPS) if b in names}
            attributes = tuple((c.name, "true" if c.name in on else "false") for c in classes)
            boxes.append(Box(k, x1, y1, x2, y2, outside=x2 <= x1 or y2 <= y1,
                             keyframe=k % FPS == 0 or attributes != previous, attributes=attributes))
            previous = attributes
        tracks.append(Track(person.person_id, PERSON_LABEL, tuple(boxes)))
    next_id = len(plan.persons)
    for sec in sorted(excluded):
        k = sec * FPS
        marks = [Box(k, 0.0, 0.0, width, height)]
        if k + 1 < plan.num_frames:
            marks.append(Box(k + 1, 0.0, 0.0, width, height, outside=True))
        tracks.append(Track(next_id, EXCLUDE_LABEL, tuple(marks)))
        next_id += 1
    return VideoAnnotations(labels=(checkbox_label(PERSON_LABEL, [c.name for c in classes]), Label(EXCLUDE_LABEL)),
                            tracks=tuple(tracks), source=f"{plan.name}.mp4", width=width, height=height,
                            size=plan.num_frames, stop_frame=plan.num_frames - 1, name=plan.name)


@contextlib.contextmanager
def mp4_writer(root: Path, plan: VideoPlan) -> Iterator[Callable[[int, np.ndarray], None]]:
    """``on_image(k, rgb)`` for :func:`~.render.render_video`: frame ``k`` into ``root/videos/<video>.mp4`` at
    ``k / 30`` s. ``root`` is the generator's staging folder, moved into place whole when the set is done."""
    from ...streaming.video_io import AnnotatedVideoWriter

    (root / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
    height, width = plan.size
    writer = AnnotatedVideoWriter(str(root / video_file(plan.name)), width, height, Fraction(FPS), crf=VIDEO_CRF)
    try:
        yield lambda k, rgb: writer.write(rgb, Fraction(k, FPS))
    finally:
        writer.close()


def write_cvat(root: Path, plan: VideoPlan, classes: Sequence[ActionClass], excluded: Iterable[int]) -> str:
    """``root/cvat/<video>.xml``; returns its name relative to ``root``."""
    write_video_annotations(root / cvat_file(plan.name), cvat_annotations(plan, classes, excluded))
    return cvat_file(plan.name)
