# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A demo video to stream: stick figures that stand, walk, run, jump, wave and talk, as an MP4.

``python -m memvit.demo --out demo.mp4 [--seconds 10] [--size 240 320] [--boxes demo_boxes.csv]``

The persons come from :mod:`memvit.data.synthetic` (plan, simulate, render), encoded with
PyAV; ``--boxes`` also writes their true boxes at every second as an AVA detector CSV (score
1.0), the input of ``python -m memvit.infer --boxes``. ``--vfr`` writes a variable frame rate
(30 fps, then 15 fps from the middle on), as phones do: the tests use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

from .cli import user_errors_exit
from .data import synthetic as syn
from .data.ava_files import FPS, BoxRow, write_boxes_csv
from .files import atomic_path


def frame_times(seconds: float, fps: int = FPS, vfr: bool = False) -> list[float]:
    """Presentation times of the frames: ``fps`` throughout, or (``vfr``) ``fps / 2`` in the second half."""
    if not vfr:
        return [i / fps for i in range(round(seconds * fps))]
    half = round(seconds * fps / 2)
    first = [i / fps for i in range(half)]
    slow = fps / 2
    return first + [half / fps + i / slow for i in range(round((seconds - half / fps) * slow))]


def render_demo(seconds: int, size: tuple[int, int], seed: int = 0,
                times: Sequence[float] | None = None) -> tuple[Iterator[np.ndarray], list[tuple[int, int, tuple]]]:
    """RGB frames at ``times`` (default 30 fps) and the person boxes ``(second, person, box)`` at
    every whole second (normalised ``x1, y1, x2, y2``)."""
    rng = np.random.default_rng(seed)
    plan = syn.plan_video(rng, "demo", "demo", 0, seconds, size)
    total = FPS * seconds
    tracks = [syn.simulate(p, total) for p in plan.persons]
    background = syn.render_background(np.random.default_rng(plan.background_seed), plan.size)
    times = frame_times(seconds) if times is None else list(times)
    no_noise = np.zeros(background.shape, np.int16)
    height, width = size

    def frames() -> Iterator[np.ndarray]:
        for t in times:
            k = min(total - 1, int(round(t * FPS)))
            people = [(p, syn.body_parts(p.height, track[k])) for p, track in zip(plan.persons, tracks)]
            yield syn.render_frame(background, no_noise, people)

    boxes = []
    for sec in range(seconds):
        k = sec * FPS
        for p, track in zip(plan.persons, tracks):
            x1, y1, x2, y2 = syn.person_box(syn.body_parts(p.height, track[k]))
            box = (max(x1 / width, 0.0), max(y1 / height, 0.0), min(x2 / width, 1.0), min(y2 / height, 1.0))
            boxes.append((sec, p.person_id, box))
    return frames(), boxes


def write_video(path: str, frames: Iterator[np.ndarray], times: Sequence[float], size: tuple[int, int],
                codec: str = "libx264", rate: int = FPS) -> int:
    """Encode RGB frames at their times (seconds) into ``path``; returns the frame count."""
    import av

    height, width = size
    time_base = Fraction(1, 1000 * rate)
    count = 0
    with av.open(path, "w") as container:  # atomic by the caller: main() passes an atomic_path temporary
        stream = container.add_stream(codec, rate=Fraction(rate))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        for image, t in zip(frames, times):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def write_demo(path: str, seconds: int = 10, size: tuple[int, int] = (240, 320), seed: int = 0, vfr: bool = False,
               boxes_csv: str | None = None, video_id: str = "demo") -> int:
    """Write the demo MP4 (and its boxes CSV); returns the number of frames written."""
    times = frame_times(seconds, vfr=vfr)
    frames, boxes = render_demo(seconds, size, seed, times)
    with atomic_path(path) as tmp:  # the same suffix: the container format still follows the name
        count = write_video(tmp, frames, times, size)
    if boxes_csv is not None:  # an AVA detector CSV (no action, score 1): any --video-id reads back as written
        write_boxes_csv(boxes_csv, [BoxRow(video_id, sec, box, None, 1.0) for sec, _, box in boxes])
    return count


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memvit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the MP4 to write")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vfr", action="store_true", help="variable frame rate: 30 fps, then 15 fps")
    parser.add_argument("--boxes", help="also write the persons' boxes at every second as an AVA CSV")
    parser.add_argument("--video-id", default="demo", help="the video id in the boxes CSV")
    args = parser.parse_args(argv)
    count = write_demo(args.out, args.seconds, tuple(args.size), args.seed, args.vfr, args.boxes, args.video_id)
    print(f"wrote {args.out}: {count} frames, {args.size[1]}x{args.size[0]}" + (f"; boxes: {args.boxes}"
                                                                                   if args.boxes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
