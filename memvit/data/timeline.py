# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Which source frame is on screen at timeline frame ``i``: one rule for the frames we train on
and the frames we stream.

AVA's clips are cut from a fixed-rate timeline (30 fps): timeline frame ``i`` shows the video at
``t_i = start + i / fps``. :mod:`memvit.data.prepare_ava` writes those frames as JPEG folders (what
training and evaluation read); :class:`memvit.streaming.video_io.Timeline` builds them on the fly
from a file, a camera or a URL (what inference reads). Both ask this module, so a model sees the
same frames in both.

The rule, on exact times (:class:`~fractions.Fraction` s: pts x time base, from the container's start):

* timeline frame ``i`` is the source frame with the largest time ``<= t_i + tolerance``, the frame
  on screen at ``t_i``; before the first source frame, the first one stands in (a late start);
* the tolerance is one tick of the stream's time base, at most half a timeline frame: containers
  round times to their time base (Matroska stores the 30 fps frame at 66.67 ms as 67 ms), and
  without it such sources would repeat and drop frames;
* frame ``i`` is decided once a source frame later than ``t_i + tolerance`` has been seen (or the
  video ended); the last source frame is shown until its time plus its duration (else the gap to
  the frame before it, else the nominal frame interval, else one timeline frame), and timeline
  frames from that end on do not exist.

Sources faster than ``fps`` thus drop frames, slower ones repeat them, and a variable frame rate
gives clips of the right duration.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from fractions import Fraction
from numbers import Rational

Time = Fraction | int


def _exact(value: Rational | float | str) -> Fraction:
    """A time or rate as an exact fraction (a float goes through its repr: 0.1 is 1/10)."""
    if isinstance(value, Fraction):
        return value  # no copy: this runs for every decoded frame
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def tolerance(tick: Rational | float, fps: Rational | float) -> Fraction:
    """How far after ``t_i`` a source time still counts as shown at ``t_i``: one time-base
    ``tick``, at most half a timeline frame."""
    return min(_exact(tick), 1 / (2 * _exact(fps)))


def instant(i: int, fps: Rational | float, start: Time = 0) -> Fraction:
    """``t_i``: the time timeline frame ``i`` shows."""
    return start + Fraction(i) / _exact(fps)


def decided(stamp: Time, fps: Rational | float, tol: Time, start: Time = 0) -> int:
    """Timeline frames decided once a source frame at ``stamp`` has been seen: the ``i >= 0`` with
    ``t_i + tol < stamp`` (a later source frame can no longer be the one on screen there)."""
    return max(0, math.ceil((stamp - tol - start) * _exact(fps)))


class PtsClock:
    """:func:`decided` for the integer timestamps (pts) of one stream, in integer arithmetic.

    A decoder that chooses per packet what to decode asks this once per packet; exact
    :class:`~fractions.Fraction` arithmetic there would cost a sizeable part of what it saves.
    ``decided(pts)`` equals ``decided(pts * base - origin, fps, tol, start)``.
    """

    def __init__(self, base: Rational | float, origin: Time, tol: Time, fps: Rational | float, start: Time = 0) -> None:
        base, fps = _exact(base), _exact(fps)
        shift = Fraction(origin) + tol + start
        # (pts * base - shift) * fps = (pts * a - b) / c, with integers a, b and c > 0
        self._a = base.numerator * shift.denominator * fps.numerator
        self._b = shift.numerator * base.denominator * fps.numerator
        self._c = base.denominator * shift.denominator * fps.denominator

    def decided(self, pts: int) -> int:
        return max(0, -((self._b - pts * self._a) // self._c))  # ceil((pts * a - b) / c)


def frames_before(end: Time, fps: Rational | float, start: Time = 0) -> int:
    """Timeline frames of a video whose last frame stops being shown at ``end``: the ``i >= 0``
    with ``t_i < end``."""
    return max(0, math.ceil((end - start) * _exact(fps)))


def shown_until(time: Time, fps: Rational | float, *, duration: Time | None = None, gap: Time | None = None,
                nominal: Time | None = None) -> Fraction:
    """When the last source frame (at ``time``) stops being shown: its ``duration``, else the
    ``gap`` to the frame before it, else the ``nominal`` frame interval, else one timeline frame."""
    return Fraction(time) + (duration or gap or nominal or 1 / _exact(fps))


def on_screen(times: Sequence[Time], t: Time, tol: Time) -> int:
    """Index in ``times`` (increasing source times) of the frame shown at ``t``: the last one at or
    before ``t + tol``; 0 (the first frame) before all of them."""
    return max(bisect.bisect_right(times, t + tol) - 1, 0)


__all__ = ["PtsClock", "decided", "frames_before", "instant", "on_screen", "shown_until", "tolerance"]
