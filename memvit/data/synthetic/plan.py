# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Stage 1, the plan: who does what when. Persons (appearance, place) and, per person, a timeline of
:class:`Segment` s: what it visibly does and, separately, which labels an annotator gives it; in the
long-range variant, the scene-wide :class:`Signal` s. Every draw comes from :func:`stream`."""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ava_files import FIRST_SECOND, FPS
from .body import ARM, SHAKE_ANGLE, SHAKE_GRIP, SHOULDER_DX
from .classes import DEFAULT_CLASSES, INTERACTIONS, SHOWN_PREFIX, SIGNALS, ActionClass, SyntheticParameterError


@dataclass(frozen=True)
class Segment:
    """A span ``[start, end)`` (seconds from the video start) of one person's timeline.

    The visual fields say what is drawn; ``labels`` (behaviour keys) says what is annotated. They are kept
    apart so that a variant may label a span by something other than what is visible in it.
    """

    start: float
    end: float
    movement: str  # one of MOVEMENTS
    facing: int  # +1 right, -1 left; for walk/run the initial direction
    carry: bool = False
    wave: bool = False
    interaction: str | None = None  # one of INTERACTIONS, with the person's partner
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signal:
    """Long-range variant: the room lit in a colour for SIGNAL_SECONDS around ``centre`` (a keyframe's
    second from the video start), seen by every person in view and answered seconds later."""

    centre: int
    colour: str  # one of SIGNALS

    def lit(self, t: float) -> bool:
        return abs(t - self.centre) < SIGNAL_SECONDS / 2

    def labels_at(self, t: float) -> tuple[str, ...]:
        """The behaviour keys it gives a person in view at time ``t``: "see" while lit, the answer from
        ANSWER_SECONDS[0] to ANSWER_SECONDS[1] (excluded) after the centre."""
        if self.lit(t):
            return (SHOWN_PREFIX + self.colour,)
        first, last = ANSWER_SECONDS
        return (self.colour,) if first <= t - self.centre < last else ()


@dataclass(frozen=True)
class PersonPlan:
    person_id: int
    height: float  # pixels, head top to feet
    torso_rgb: tuple[int, int, int]  # also the sleeves: a person's arms have its torso colour
    legs_rgb: tuple[int, int, int]
    skin_rgb: tuple[int, int, int]
    ground_y: float  # feet line (pixels)
    x_range: tuple[float, float]  # where the body centre line may be; walkers turn at the ends
    x0: float
    segments: tuple[Segment, ...]
    partner: int | None = None
    speech_turn: int = 0  # talking partners speak in alternation

    def segment_at(self, t: float) -> Segment:
        """The segment holding time ``t`` (seconds from the video start)."""
        starts = [s.start for s in self.segments]
        return self.segments[max(0, bisect.bisect_right(starts, t) - 1)]


@dataclass(frozen=True)
class VideoPlan:
    name: str
    split: str
    index: int  # video index within its split's frame list
    seconds: int
    size: tuple[int, int]  # (height, width)
    persons: tuple[PersonPlan, ...]
    background_seed: int
    signals: tuple[Signal, ...] = ()  # long-range variant only

    def signal_at(self, t: float) -> Signal | None:
        """The signal lighting the room at time ``t``, if any."""
        return next((s for s in self.signals if s.lit(t)), None)

    def labels_at(self, person: PersonPlan, t: float) -> tuple[str, ...]:
        """What an annotator gives ``person`` at time ``t``: its timeline's labels and the signals'."""
        return person.segment_at(t).labels + tuple(b for s in self.signals for b in s.labels_at(t))

    @property
    def num_frames(self) -> int:
        return self.seconds * FPS

    @property
    def keyframes(self) -> range:
        """Annotated seconds: 902 ... 900 + seconds - 2, like AVA's 902 ... 1798 for a 15-minute cut."""
        span = keyframe_offsets(self.seconds)
        return range(FIRST_SECOND + span.start, FIRST_SECOND + span.stop)


TORSO_PALETTE = ((205, 45, 45), (45, 85, 215), (40, 165, 70), (185, 55, 185), (25, 160, 175))
LEGS_PALETTE = ((40, 45, 90), (60, 50, 40), (35, 35, 35), (80, 70, 100))
SKIN_PALETTE = ((235, 195, 165), (205, 155, 115), (160, 110, 75), (110, 75, 55))

SEGMENT_SECONDS = (3, 6)  # segment lengths (whole seconds; boundaries fall on half seconds)
MOVEMENT_WEIGHTS = {"stand": 1.0, "walk": 1.0, "run": 0.7, "jump": 0.7}
PAIR_MOVEMENT_WEIGHTS = {"stand": 1.0, "jump": 0.5}  # partners stay put
INTERACTION_WEIGHTS = {None: 0.4, "talk": 0.3, "handshake": 0.3}
P_WAVE, P_CARRY = 0.25, 0.35
# Long-range variant. A signal centred on keyframe c is lit during (c - 1.25, c + 1.25): "see" at keyframes
# c - 1 ... c + 1, "answer" at c + 2 ... c + 5, whose clips (-0.53 ... +0.4 s at 8x4 frames, the first frame
# only jittered forward) start at c + 1.47 or later. Signals are SIGNAL_SPACING s apart, so an answer's clip
# never sees the next one. The first is centred at second 3 to 5 (its "see" keyframes from the first one,
# second 2, on); the last one's answers all fall on keyframes.
SIGNAL_SECONDS, ANSWER_SECONDS = 2.5, (2, 6)
SIGNAL_SPACING = (8, 10)  # seconds between centres (inclusive)
HEIGHT_RANGE = (0.32, 0.42)  # of the frame height
GROUND_RANGE = (0.86, 0.95)
MARGIN = 0.36  # free space each side of a body centre line, in heights (a raised arm may cross it)


def keyframe_offsets(seconds: int) -> range:
    """Keyframe times in seconds from the video start: 2 ... seconds - 2 (a whole clip around each)."""
    return range(2, seconds - 1)


def _choice(rng: np.random.Generator, weights: dict[Any, float]) -> Any:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _bounds(rng: np.random.Generator, seconds: int) -> list[tuple[float, float]]:
    """Segment spans; boundaries at half seconds, so every keyframe (whole second) is 0.5 s from a change."""
    lo, hi = SEGMENT_SECONDS
    cuts = [0.0]
    t = 0.5 + int(rng.integers(lo - 1, hi))  # the first segment is cut short: videos start mid-action
    while t < seconds - 1.0:
        cuts.append(t)
        t += int(rng.integers(lo, hi + 1))
    cuts.append(float(seconds))
    return list(zip(cuts[:-1], cuts[1:]))


def _labels(allowed: frozenset[str], *behaviours: str | None) -> tuple[str, ...]:
    return tuple(b for b in behaviours if b is not None and b in allowed)


def _free_timeline(rng: np.random.Generator, seconds: int, allowed: frozenset[str]) -> tuple[Segment, ...]:
    moves = {m: w for m, w in MOVEMENT_WEIGHTS.items() if m in allowed} or {"stand": 1.0}
    segments = []
    for start, end in _bounds(rng, seconds):
        movement = _choice(rng, moves)
        facing = int(rng.choice((-1, 1)))
        wave = "wave" in allowed and rng.random() < P_WAVE
        carry = "carry" in allowed and rng.random() < P_CARRY
        labels = _labels(allowed, movement, "carry" if carry else None, "wave" if wave else None)
        segments.append(Segment(start, end, movement, facing, carry, wave, None, labels))
    return tuple(segments)


def _pair_timelines(rng: np.random.Generator, seconds: int, allowed: frozenset[str],
                    toward: tuple[int, int]) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """Two partners sharing segment boundaries; ``toward[i]`` is the facing of partner i toward the other."""
    interactions = {k: w for k, w in INTERACTION_WEIGHTS.items() if k is None or k in allowed}
    moves = {m: w for m, w in PAIR_MOVEMENT_WEIGHTS.items() if m in allowed} or {"stand": 1.0}
    timelines: tuple[list[Segment], list[Segment]] = ([], [])
    for start, end in _bounds(rng, seconds):
        interaction = _choice(rng, interactions)
        for i in range(2):
            movement = "stand" if interaction else _choice(rng, moves)
            facing = toward[i] if interaction else int(rng.choice((-1, 1)))
            wave = interaction != "handshake" and "wave" in allowed and rng.random() < P_WAVE
            carry = "carry" in allowed and rng.random() < P_CARRY
            labels = _labels(allowed, movement, "carry" if carry else None, "wave" if wave else None, interaction)
            timelines[i].append(Segment(start, end, movement, facing, carry, wave, interaction, labels))
    return tuple(timelines[0]), tuple(timelines[1])


def _plan_signals(rng: np.random.Generator, seconds: int, allowed: frozenset[str]) -> tuple[Signal, ...]:
    """Long-range variant: signals every SIGNAL_SPACING seconds, each in a random colour, the first "seen"
    from the first keyframe on. Draws nothing (the default data stay the same) when no signal is asked for."""
    colours = [b for b in SIGNALS if b in allowed]
    if not colours:
        return ()
    lo, hi = SIGNAL_SPACING
    keyframes = keyframe_offsets(seconds)
    first_keyframe, last_keyframe = keyframes[0], keyframes[-1]
    signals, centre = [], first_keyframe + 1 + int(rng.integers(0, 3))
    while centre + ANSWER_SECONDS[1] - 1 <= last_keyframe:
        signals.append(Signal(centre, colours[int(rng.integers(len(colours)))]))
        centre += int(rng.integers(lo, hi + 1))
    return tuple(signals)


def _colour(rng: np.random.Generator, base: tuple[int, int, int], jitter: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-jitter, jitter + 1), 0, 255)) for c in base)


def plan_video(rng: np.random.Generator, name: str, split: str, index: int, seconds: int, size: tuple[int, int],
               classes: Sequence[ActionClass] = DEFAULT_CLASSES) -> VideoPlan:
    """Persons, places and timelines of one video: 1 to 3 persons, at most one face-to-face pair.

    Persons keep to disjoint horizontal lanes, so bodies never occlude each other (a box always shows
    its person) while a raised arm may still reach into a neighbour's box, as in real footage.
    """
    height, width = size
    allowed = frozenset(c.behaviour for c in classes)
    count = int(rng.choice((1, 2, 3), p=(0.2, 0.4, 0.4)))
    pair = any(i in allowed for i in INTERACTIONS) and (count == 3 or (count == 2 and rng.random() < 0.6))
    count = count if pair else min(count, 2)  # three free walkers would have no room to walk
    heights = rng.uniform(*HEIGHT_RANGE, size=count) * height
    if pair:
        heights[1] = heights[0] * rng.uniform(0.94, 1.06)
    torsos = rng.permutation(len(TORSO_PALETTE))[:count]
    looks = [(_colour(rng, TORSO_PALETTE[t], 12), _colour(rng, LEGS_PALETTE[rng.integers(len(LEGS_PALETTE))], 10),
              _colour(rng, SKIN_PALETTE[rng.integers(len(SKIN_PALETTE))], 10)) for t in torsos]
    grounds = rng.uniform(*GROUND_RANGE, size=count) * height

    # Lanes, left to right in a random order; the pair's lane holds both partners.
    groups = [[0, 1]] if pair else []
    groups += [[i] for i in range(2 if pair else 0, count)]
    groups = [groups[i] for i in rng.permutation(len(groups))]
    reach = SHOULDER_DX + ARM * math.sin(SHAKE_ANGLE) - SHAKE_GRIP / 2  # shaking hands overlap by SHAKE_GRIP
    pair_width = (reach + MARGIN) * (heights[0] + heights[1]) if pair else 0.0
    free_width = (width - pair_width) / max(1, count - (2 if pair else 0))
    places: dict[int, tuple[tuple[float, float], float]] = {}
    left = 0.0
    for group in groups:
        if len(group) == 2:
            a = left + MARGIN * heights[0]
            b = a + reach * (heights[0] + heights[1])
            places[0], places[1] = ((a, a), a), ((b, b), b)
            left += pair_width
        else:
            (i,) = group
            lo, hi = left + MARGIN * heights[i], left + free_width - MARGIN * heights[i]
            if hi <= lo:
                raise SyntheticParameterError(f"size {size}: frames too narrow for {count} persons")
            places[i] = ((lo, hi), float(rng.uniform(lo, hi)))
            left += free_width

    timelines: dict[int, tuple[Segment, ...]] = {}
    if pair:
        grounds[1] = grounds[0]
        timelines[0], timelines[1] = _pair_timelines(rng, seconds, allowed, (1, -1))
    for i in range(2 if pair else 0, count):
        timelines[i] = _free_timeline(rng, seconds, allowed)
    persons = tuple(
        PersonPlan(person_id=i, height=float(heights[i]), torso_rgb=looks[i][0], legs_rgb=looks[i][1],
                   skin_rgb=looks[i][2], ground_y=float(grounds[i]), x_range=places[i][0], x0=places[i][1],
                   segments=timelines[i], partner=(1 - i) if pair and i < 2 else None, speech_turn=i % 2)
        for i in range(count))
    background_seed = int(rng.integers(2**31))
    return VideoPlan(name, split, index, seconds, size, persons, background_seed, _plan_signals(rng, seconds, allowed))


def video_name(split: str, index: int) -> str:
    """Video ids sort like their index and use no ``_`` (AVA frame files are ``<video>_<6 digits>.jpg``)."""
    return f"syn-{split}-{index:03d}"


PLAN, EXCLUDE, DETECT = range(3)  # what a random stream is for


def stream(seed: int, split: str, attempt: int, purpose: int, index: int = 0) -> np.random.Generator:
    """An independent random stream per (seed, split, planning attempt, purpose, video): a split does not
    depend on the other's size, a video not on its neighbours."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), attempt, purpose, index])


def plan_split(split: str, videos: int, seconds: int, size: tuple[int, int], seed: int, attempt: int = 0,
               classes: Sequence[ActionClass] = DEFAULT_CLASSES) -> list[VideoPlan]:
    """One planning attempt for a split (:func:`build_split` retries until every class is present)."""
    return [plan_video(stream(seed, split, attempt, PLAN, i), video_name(split, i), split, i, seconds, size, classes)
            for i in range(videos)]

