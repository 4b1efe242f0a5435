# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""One timeline rule: the frames we train on (``prepare_ava.select_frames``) and the frames we
stream (``streaming.video_io.Timeline``) pick the same source frame for every timeline frame.

Both users get the same source time stamps, fresh in every run: constant frame rates other than
30 (and 30000/1001), variable frame rates, a stream whose first frame comes late, a single frame,
on time bases that round (Matroska's milliseconds) or not. They must agree on which source frame
each timeline frame shows, on how many timeline frames the video has, and on when each timeline
frame is decided (streaming runs a clip as soon as its frames are decided).
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from memvit.data import timeline
from memvit.data.prepare_ava import select_frames
from memvit.streaming.video_io import Frame, Timeline

TIME_BASES = (Fraction(1, 1000), Fraction(1, 90000), Fraction(1, 30000), Fraction(1, 16000), Fraction(1, 25))


def source_times(r: random.Random, base: Fraction) -> list[Fraction]:
    """Increasing source times on the ``base`` grid (as a container stores them)."""
    kind = r.choice(["cfr", "vfr", "late", "single", "boundary"])
    start = Fraction(r.randint(0, 900), 1000) if kind in ("late", "single") else Fraction(0)
    count = 1 if kind == "single" else r.randint(2, 120)
    if kind == "boundary":  # each frame one tick after a 30 fps instant: the tolerance decides
        stamps = [Fraction(i, 30) + base for i in range(count)]
    elif kind == "vfr":
        stamps, t = [], start
        for _ in range(count):
            stamps.append(t)
            t += Fraction(r.randint(5, 90), 1000)
    else:
        rate = r.choice([Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50), Fraction(60),
                         Fraction(15), Fraction(12)])
        stamps = [start + i / rate for i in range(count)]
    grid = sorted({round(t / base) * base for t in stamps})  # the container's rounding
    return grid


def trained_on(times: list[Fraction], fps: int, tol: Fraction) -> tuple[list[int], list[int]]:
    """prepare_ava's pick per timeline frame, and how many source frames it had read when it yielded each."""
    read = [0]
    ended = []

    def frames():
        for k, t in enumerate(times):
            read[0] = k + 1
            yield t, None, k
        ended.append(True)

    picks, seen = [], []
    for i, k in select_frames(frames(), Fraction(0), Fraction(fps), 10**6, tol):
        assert i == len(picks)
        picks.append(k)
        seen.append(read[0] + (1 if ended else 0))  # len(times) + 1: decided by the end of the video
    return picks, seen


def streamed(times: list[Fraction], fps: int, tick: Fraction) -> tuple[list[int], list[int]]:
    """Timeline's pick per timeline frame, and how many source frames it had when each became known."""
    line = Timeline(fps, tick)
    known_after = []
    for k, t in enumerate(times):
        line.push(Frame(t, np.array([k])))
        known_after.append(line.known())
    line.finish()
    known_after.append(line.known())
    picks = [int(line.frame(i)[0]) for i in range(line.length())]
    seen = [next(m + 1 for m, n in enumerate(known_after) if n > i) for i in range(len(picks))]
    return picks, seen


@pytest.mark.parametrize("fps", [30, 25, 15])
def test_training_frames_and_streamed_frames_agree(fps, gen):
    r = random.Random(int(torch.randint(2**31, (1,), generator=gen)))
    for _ in range(150):
        base = r.choice(TIME_BASES)
        times = source_times(r, base)
        tol = timeline.tolerance(base, fps)
        want, want_seen = trained_on(times, fps, tol)
        got, got_seen = streamed(times, fps, base)
        assert got == want, (times, base)
        assert got_seen == want_seen, (times, base)


def test_the_rule_is_the_frame_on_screen():
    """An independent oracle for the rule itself on a Matroska-like source: the 30 fps frame at
    66.67 ms stored as 67 ms still shows at timeline frame 2 (one tick of tolerance)."""
    base = Fraction(1, 1000)
    times = [round(Fraction(k, 30) / base) * base for k in range(10)]
    tol = timeline.tolerance(base, 30)
    assert tol == base
    assert [timeline.on_screen(times, timeline.instant(i, 30), tol) for i in range(10)] == list(range(10))
    assert [timeline.on_screen(times, timeline.instant(i, 30), 0) for i in range(10)] == [0, 1, 1, 3, 4, 4, 6, 7,
                                                                                           7, 9]
    assert timeline.frames_before(timeline.shown_until(times[-1], 30, gap=times[-1] - times[-2]), 30) == 10
    assert timeline.tolerance(Fraction(1, 10), 30) == Fraction(1, 60)  # at most half a timeline frame


def test_the_pts_clock_decides_as_the_rule_does(gen):
    """``PtsClock`` (integer arithmetic on pts) against ``decided`` on exact times, with time bases,
    container origins, timeline starts and rates of every kind, boundaries included."""
    r = random.Random(int(torch.randint(2**31, (1,), generator=gen)))
    for _ in range(300):
        base = r.choice(TIME_BASES + (Fraction(1001, 30000), Fraction(1, 12800)))
        fps = r.choice([30, 25, Fraction(30000, 1001), 15])
        origin = Fraction(r.randint(-2000, 2000), r.choice([1, 1000, 1_000_000]))
        start = r.choice([Fraction(0), Fraction(900), Fraction(r.randint(0, 5000), 1000)])
        tol = timeline.tolerance(base, fps)
        clock = timeline.PtsClock(base, origin, tol, fps, start)
        anchor = round((origin + start) / base)
        for pts in [anchor + d for d in range(-40, 400, r.randint(1, 7))] + [0, 2**40]:
            assert clock.decided(pts) == timeline.decided(pts * base - origin, fps, tol, start), (base, fps, pts)
        # on a boundary: a frame exactly tol after t_i is not yet decided at frame i
        i = r.randint(0, 100)
        exact = (timeline.instant(i, fps, start) + tol + origin) / base
        if exact.denominator == 1:
            assert clock.decided(int(exact)) == i
