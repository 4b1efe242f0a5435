# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A small synthetic AVA: stick-figure persons with learnable actions, in the official v2.2 layout.

The real AVA is hundreds of GB of frames. Training, evaluation and data-loading code needs a set that is
read by exactly the same code path (PySlowFast's frame folders, frame lists, annotation CSVs, label map,
excluded timestamps and person-detector boxes) and that a small video model can learn on a CPU in minutes.

Generation is three separate stages, so that a variant (e.g. a label that depends on an event seconds
earlier) replaces one stage and keeps the others:

1. **plan** (:func:`plan_video`): persons (appearance, place) and, per person, a timeline of
   :class:`Segment` s: what it visibly does (movement, arms, object, interaction) and, separately, which
   labels an annotator gives it;
2. **simulate** (:func:`simulate`): the per-frame :class:`Pose` of each person, integrated from its timeline;
3. **render** (:func:`render_frame`): background plus persons drawn from their poses. Ground-truth boxes
   come from the same geometry (:func:`body_parts`), so they are the true person extents.

The **long-range** variant (:data:`LONG_RANGE_CLASSES`, ``--long-range``) adds two classes that no single
clip can decide. A scene-wide signal, the room lit orange or lime for 2.5 s (centred on a keyframe, like a
bell or a traffic light everyone in view reacts to), gives every person in view the local class "see an
<colour> signal" at the three keyframes it lights, and the long-range class "answer an <colour> signal" at
the four keyframes 2 to 5 s after its centre, whose clips start after the light went out and show nothing
that tells an answering person from any other. Only a model that remembers earlier clips can get the
"answer" classes right; the other ten classes are decidable from the current clip.

Command line: ``python -m memvit.data.synthetic --out data/synthetic`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from ..cli import UserError, user_errors_exit
from ..files import write_bytes, write_json, write_text

GENERATOR = "memvit.data.synthetic"
GENERATOR_VERSION = 1  # bump when the same arguments would produce different files
FPS = 30  # AVA frames are extracted at 30 fps; PyTorchVideo hard-codes it
START_SEC = 900  # AVA convention: frame 1 of every movie cut shows second 900.0
SPLITS = ("train", "val")

# AVA v2.2 file names, as PySlowFast's defaults (AVA.*) expect them.
FRAMES_DIR, FRAME_LISTS_DIR, ANNOTATIONS_DIR = "frames", "frame_lists", "annotations"
LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"  # sic: AVA's spelling
DETECTION_SCORE_THRESH = 0.9  # PySlowFast's AVA.DETECTION_SCORE_THRESH: detections at or above count as persons
META_FILE, README_FILE = "meta.json", "README.txt"
MANIFEST_FILE = "manifest.json"  # what one generation wrote: the only files a later one may replace
PARTIAL_MARKER = ".memvit-synthetic-partial"  # in the temporary folder a generation writes into


def frame_list_file(split: str) -> str:
    return f"{split}.csv"


def groundtruth_file(split: str) -> str:
    return f"ava_{split}_v2.2.csv"


def excluded_file(split: str) -> str:
    return f"ava_{split}_excluded_timestamps_v2.2.csv"


def predicted_boxes_file(split: str) -> str:
    return f"ava_{split}_predicted_boxes.csv"


def frame_name(video: str, index: int) -> str:
    """File name of 0-based frame ``index`` (AVA numbers frames from 1)."""
    return f"{video}_{index + 1:06d}.jpg"


def keyframe_index(sec: int) -> int:
    """0-based frame index shown at keyframe second ``sec`` (AVA: (sec - 900) * 30)."""
    return (sec - START_SEC) * FPS


# ---------------------------------------------------------------------------------------------------------
# Classes: data, not code. A class names the behaviour (rendered by this module) that carries it.

PERSON_MOVEMENT = "PERSON_MOVEMENT"
OBJECT_MANIPULATION = "OBJECT_MANIPULATION"
PERSON_INTERACTION = "PERSON_INTERACTION"
LABEL_TYPES = (PERSON_MOVEMENT, OBJECT_MANIPULATION, PERSON_INTERACTION)
MOVEMENTS = ("stand", "walk", "run", "jump")  # exactly one per person at any time, as in AVA's pose classes
INTERACTIONS = ("talk", "handshake")  # need a partner: two persons standing face to face
SIGNALS = ("signal_orange", "signal_lime")  # long-range: a scene-wide light, answered seconds later
SHOWN_PREFIX = "see_"  # "see_signal_orange": the light while it is on (a local class)
BEHAVIOURS = (*MOVEMENTS, "carry", "wave", *INTERACTIONS, *SIGNALS, *(SHOWN_PREFIX + s for s in SIGNALS))


@dataclass(frozen=True)
class ActionClass:
    """One label of the label map. Its id is its 1-based position in the class list."""

    name: str  # written to the label map, AVA style
    label_type: str  # one of LABEL_TYPES
    behaviour: str  # one of BEHAVIOURS: what the persons with this label visibly do


DEFAULT_CLASSES: tuple[ActionClass, ...] = (
    ActionClass("stand", PERSON_MOVEMENT, "stand"),  # still
    ActionClass("walk", PERSON_MOVEMENT, "walk"),  # translates, legs and arms swing
    ActionClass("run/jog", PERSON_MOVEMENT, "run"),  # translates ~2.7x faster, wider and faster strides
    ActionClass("jump/leap", PERSON_MOVEMENT, "jump"),  # vertical hops in place
    ActionClass("carry/hold (an object)", OBJECT_MANIPULATION, "carry"),  # a yellow block in the back hand
    ActionClass("hand wave", PERSON_INTERACTION, "wave"),  # the front arm raised, oscillating
    ActionClass("talk to (e.g., self, a person, a group)", PERSON_INTERACTION, "talk"),  # facing, blinking speech arcs
    ActionClass("hand shake", PERSON_INTERACTION, "handshake"),  # facing, front arms joined, pumping
)
LONG_RANGE_CLASSES: tuple[ActionClass, ...] = DEFAULT_CLASSES + (
    # "see": while the room is lit orange (lime). "answer": 2-5 s after the light's centre; the light is never
    # in the labelled keyframe's clip, and nothing else about the person differs.
    ActionClass("see an orange signal", PERSON_INTERACTION, SHOWN_PREFIX + "signal_orange"),  # local
    ActionClass("see a lime signal", PERSON_INTERACTION, SHOWN_PREFIX + "signal_lime"),  # local
    ActionClass("answer an orange signal", PERSON_INTERACTION, "signal_orange"),  # long-range
    ActionClass("answer a lime signal", PERSON_INTERACTION, "signal_lime"),  # long-range
)


def check_classes(classes: Sequence[ActionClass]) -> None:
    """Reject class lists the planner cannot honour (unknown behaviours, duplicates, bad label types)."""
    if not classes:
        raise ValueError("classes: need at least one class")
    names = [c.name for c in classes]
    behaviours = [c.behaviour for c in classes]
    for c in classes:
        if c.behaviour not in BEHAVIOURS:
            raise ValueError(f"class {c.name!r}: unknown behaviour {c.behaviour!r} (known: {', '.join(BEHAVIOURS)})")
        if c.label_type not in LABEL_TYPES:
            raise ValueError(f"class {c.name!r}: label_type must be one of {LABEL_TYPES}, got {c.label_type!r}")
        if '"' in c.name or "\n" in c.name:
            raise ValueError(f"class {c.name!r}: the name cannot hold quotes or newlines (label map)")
    if len(set(names)) != len(names) or len(set(behaviours)) != len(behaviours):
        raise ValueError("classes: names and behaviours must be unique")


# ---------------------------------------------------------------------------------------------------------
# Stage 1: the plan.

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
        return range(START_SEC + span.start, START_SEC + span.stop)


TORSO_PALETTE = ((205, 45, 45), (45, 85, 215), (40, 165, 70), (185, 55, 185), (25, 160, 175))
LEGS_PALETTE = ((40, 45, 90), (60, 50, 40), (35, 35, 35), (80, 70, 100))
SKIN_PALETTE = ((235, 195, 165), (205, 155, 115), (160, 110, 75), (110, 75, 55))
OBJECT_RGB = (250, 215, 0)  # the carried object; no background or body colour is near it
SPEECH_RGB = (250, 250, 250)  # talk arcs; the background stays below 190
EYE_RGB = (25, 25, 25)

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
SIGNAL_TINT = 0.55  # how far the lit room's colour moves from its own toward the signal colour
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
                raise ValueError(f"size {size}: frames too narrow for {count} persons")
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


# ---------------------------------------------------------------------------------------------------------
# Stage 2: simulation. Body proportions are fractions of the person's height (head top to feet).

LEG, TORSO, HEAD_R, NECK = 0.42, 0.36, 0.10, 0.015
TORSO_HALF_W, HIP_DX, FOOT_DX = 0.13, 0.06, 0.07
SHOULDER_DX, SHOULDER_DY, ARM = 0.11, 0.04, 0.34
LEG_THICK, ARM_THICK, OBJECT = 0.085, 0.075, 0.18
WALK_SPEED, RUN_SPEED = 0.45, 1.2  # heights per second
WALK_STEP_HZ, RUN_STEP_HZ = 1.6, 2.6
WALK_STRIDE, RUN_STRIDE = 0.10, 0.18  # foot swing amplitude (heights)
WALK_ARM_SWING, RUN_ARM_SWING = 0.35, 0.6  # radians
JUMP_PERIOD, JUMP_HEIGHT = 0.75, 0.25  # seconds per hop, heights
REST_ANGLE, CARRY_ANGLE = 0.2, 0.45  # arm angles: radians from straight down, positive outward
WAVE_ANGLE, WAVE_SWING, WAVE_HZ = 2.5, 0.45, 2.2
SHAKE_ANGLE, SHAKE_SWING, SHAKE_HZ, SHAKE_GRIP = 1.35, 0.12, 3.0, 0.06
TALK_HZ = 3.0  # speech arcs blink at this rate, partners alternating
SPEECH_RADII, SPEECH_THICK = (0.9, 1.6), 0.045  # arcs: radii in head radii, thickness in heights
# Signal lights: saturated, unlike the muted room (whose shading is mostly grey), so a lit room is a strong
# global colour shift; the persons keep their own colours.
SIGNAL_RGB = {"signal_orange": (255, 120, 0), "signal_lime": (140, 255, 0)}


@dataclass(frozen=True)
class Pose:
    """What one person looks like in one frame (positions in pixels, x/y of pixel edges)."""

    x: float  # body centre line
    feet: float  # feet y (above the ground line while jumping)
    facing: int
    stride: float  # signed horizontal foot swing, in heights
    front_arm: float  # arm on the facing side; angle from straight down, positive outward
    back_arm: float
    carry: bool
    speech: bool


def simulate(person: PersonPlan, num_frames: int) -> list[Pose]:
    """Integrate the timeline frame by frame (walkers turn at the ends of their lane)."""
    lo, hi = person.x_range
    h = person.height
    x, direction, phase, current = person.x0, person.segments[0].facing, 0.0, None
    poses = []
    for k in range(num_frames):
        t = k / FPS
        seg = person.segment_at(t)
        if seg is not current:
            current, direction = seg, seg.facing
        tau = t - seg.start
        moving = seg.movement in ("walk", "run")
        if moving:
            run = seg.movement == "run"
            if k:
                x += direction * (RUN_SPEED if run else WALK_SPEED) * h / FPS
                if x > hi or x < lo:  # reflect at the lane ends
                    x = 2 * (hi if x > hi else lo) - x
                    direction = -direction
            phase += 2 * math.pi * (RUN_STEP_HZ if run else WALK_STEP_HZ) / FPS
            stride = (RUN_STRIDE if run else WALK_STRIDE) * math.sin(phase)
            swing = (RUN_ARM_SWING if run else WALK_ARM_SWING) * math.sin(phase)
        else:
            stride = swing = 0.0
        facing = direction if moving else seg.facing
        feet = person.ground_y
        if seg.movement == "jump":
            feet -= JUMP_HEIGHT * h * abs(math.sin(math.pi * tau / JUMP_PERIOD))
        front, back = REST_ANGLE + swing, REST_ANGLE - swing
        if seg.wave:
            front = WAVE_ANGLE + WAVE_SWING * math.sin(2 * math.pi * WAVE_HZ * tau)
        if seg.interaction == "handshake":
            front = SHAKE_ANGLE + SHAKE_SWING * math.sin(2 * math.pi * SHAKE_HZ * tau)
        if seg.carry:
            back = CARRY_ANGLE
        speech = seg.interaction == "talk" and int(tau * TALK_HZ * 2) % 2 == person.speech_turn
        poses.append(Pose(x, feet, facing, stride, front, back, seg.carry, speech))
    return poses


# ---------------------------------------------------------------------------------------------------------
# Stage 3: geometry and rendering.

Circle = tuple[float, float, float]  # cx, cy, r
Rect = tuple[float, float, float, float]  # x1, y1, x2, y2
Line = tuple[float, float, float, float]  # xa, ya, xb, yb


@dataclass(frozen=True)
class Parts:
    """Drawn primitives of one person in one frame; the ground-truth box is their extent."""

    head: Circle
    eye: Circle
    torso: Rect
    legs: tuple[Line, Line]
    arms: tuple[Line, Line]  # front, back
    leg_width: int
    arm_width: int
    object: Rect | None  # held, not part of the person's box
    speech: tuple[float, float, int] | None  # mouth x, y, facing


def body_parts(height: float, pose: Pose) -> Parts:
    """The one statement of the body geometry: drawing and ground-truth boxes both read it."""
    h, x, f = height, pose.x, pose.facing
    hip = pose.feet - LEG * h
    shoulder = hip - TORSO * h
    head_cy = shoulder - NECK * h - HEAD_R * h
    leg_w = max(2, round(LEG_THICK * h))
    arm_w = max(2, round(ARM_THICK * h))
    s = pose.stride * h
    foot_y = pose.feet - leg_w / 2
    legs = ((x - HIP_DX * h, hip, x - FOOT_DX * h + s, foot_y), (x + HIP_DX * h, hip, x + FOOT_DX * h - s, foot_y))
    arms = []
    for side, angle in ((f, pose.front_arm), (-f, pose.back_arm)):
        sx, sy = x + side * SHOULDER_DX * h, shoulder + SHOULDER_DY * h
        arms.append((sx, sy, sx + side * ARM * h * math.sin(angle), sy + ARM * h * math.cos(angle)))
    obj = None
    if pose.carry:
        hx, hy, o = arms[1][2], arms[1][3], OBJECT * h
        obj = (hx - o / 2, hy - o / 4, hx + o / 2, hy + 3 * o / 4)
    mouth = (x + f * 0.8 * HEAD_R * h, head_cy + 0.3 * HEAD_R * h, f) if pose.speech else None
    return Parts(head=(x, head_cy, HEAD_R * h), eye=(x + f * 0.45 * HEAD_R * h, head_cy - 0.15 * HEAD_R * h,
                                                     max(1.0, 0.25 * HEAD_R * h)),
                 torso=(x - TORSO_HALF_W * h, shoulder, x + TORSO_HALF_W * h, hip), legs=legs, arms=tuple(arms),
                 leg_width=leg_w, arm_width=arm_w, object=obj, speech=mouth)


def person_box(parts: Parts) -> Rect:
    """The person's extent in pixels (head, torso, limbs; lines have round caps of half their width)."""
    cx, cy, r = parts.head
    xs, ys = [cx - r, cx + r, parts.torso[0], parts.torso[2]], [cy - r, cy + r, parts.torso[1], parts.torso[3]]
    for lines, w in ((parts.legs, parts.leg_width), (parts.arms, parts.arm_width)):
        for xa, ya, xb, yb in lines:
            xs += [xa - w / 2, xa + w / 2, xb - w / 2, xb + w / 2]
            ys += [ya - w / 2, ya + w / 2, yb - w / 2, yb + w / 2]
    return min(xs), min(ys), max(xs), max(ys)


_SHIFT = 4  # cv2 fixed-point bits: sub-pixel positions keep slow motion smooth


def _pt(x: float, y: float) -> tuple[int, int]:
    """Pixel-edge coordinates (pixel i spans [i, i + 1)) to cv2's fixed-point pixel-centre coordinates."""
    return round((x - 0.5) * (1 << _SHIFT)), round((y - 0.5) * (1 << _SHIFT))


def _fx(v: float) -> int:
    return round(v * (1 << _SHIFT))


def draw_person(img: np.ndarray, person: PersonPlan, parts: Parts) -> None:
    """Draw in place (RGB), anti-aliased at sub-pixel positions; the head goes over the arms."""
    aa = cv2.LINE_AA
    for xa, ya, xb, yb in parts.legs:
        cv2.line(img, _pt(xa, ya), _pt(xb, yb), person.legs_rgb, parts.leg_width, aa, _SHIFT)
    x1, y1, x2, y2 = parts.torso
    cv2.rectangle(img, _pt(x1 + 0.5, y1 + 0.5), _pt(x2 - 0.5, y2 - 0.5), person.torso_rgb, -1, aa, _SHIFT)
    for xa, ya, xb, yb in parts.arms:
        cv2.line(img, _pt(xa, ya), _pt(xb, yb), person.torso_rgb, parts.arm_width, aa, _SHIFT)
    cx, cy, r = parts.head
    cv2.circle(img, _pt(cx, cy), _fx(r), person.skin_rgb, -1, aa, _SHIFT)
    cx, cy, r = parts.eye
    cv2.circle(img, _pt(cx, cy), _fx(r), EYE_RGB, -1, aa, _SHIFT)
    if parts.object is not None:
        x1, y1, x2, y2 = parts.object
        cv2.rectangle(img, _pt(x1 + 0.5, y1 + 0.5), _pt(x2 - 0.5, y2 - 0.5), OBJECT_RGB, -1, aa, _SHIFT)
    if parts.speech is not None:
        mx, my, f = parts.speech
        start = -40 if f > 0 else 140
        thickness = max(1, round(SPEECH_THICK * person.height))
        for radius in SPEECH_RADII:
            axes = (_fx(radius * HEAD_R * person.height),) * 2
            cv2.ellipse(img, _pt(mx, my), axes, 0, start, start + 80, SPEECH_RGB, thickness, aa, _SHIFT)


NOISE_FIELDS, NOISE_STD = 6, 3.5


def render_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A muted, textured room: wall and floor, a few panels, smooth shading and static grain."""
    height, width = size
    wall = rng.uniform(85, 150) + rng.uniform(-18, 18, 3)
    floor = rng.uniform(60, 120) + rng.uniform(-18, 18, 3)
    img = np.empty((height, width, 3), np.float32)
    horizon = int(rng.uniform(0.45, 0.62) * height)
    img[:horizon], img[horizon:] = wall, floor
    for _ in range(int(rng.integers(2, 6))):
        x1, y1 = int(rng.uniform(0, 0.9) * width), int(rng.uniform(0.02, 0.5) * height)
        x2, y2 = x1 + int(rng.uniform(0.08, 0.35) * width), y1 + int(rng.uniform(0.1, 0.4) * height)
        img[y1:y2, x1:x2] = wall + rng.uniform(-30, 30) + rng.uniform(-10, 10, 3)
    # Shading and grain are mostly grey: saturated colours stay the persons' and the object's.
    shade = rng.normal(0, 12, (5, 7, 1)) + rng.normal(0, 3, (5, 7, 3))
    img += cv2.resize(shade.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 5, (height, width, 1)).astype(np.float32)
    return np.clip(img, 35, 190).astype(np.uint8)


def lit_room(background: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """The room under a signal light: every background pixel moved SIGNAL_TINT of the way to ``rgb``."""
    lit = (1 - SIGNAL_TINT) * background.astype(np.float32) + SIGNAL_TINT * np.asarray(rgb, np.float32)
    return np.rint(lit).astype(np.uint8)


def render_frame(background: np.ndarray, noise: np.ndarray, people: Sequence[tuple[PersonPlan, Parts]]) -> np.ndarray:
    """One RGB frame: persons drawn over the background, then sensor noise over everything."""
    img = background.copy()
    for person, parts in people:
        draw_person(img, person, parts)
    out = img.astype(np.int16)
    out += noise
    return np.clip(out, 0, 255).astype(np.uint8)


def render_video(plan: VideoPlan, frames_dir: Path, jpeg_quality: int,
                 on_frame: Callable[[], None] | None = None) -> None:
    """Write ``frames_dir/<video>/<video>_000001.jpg ...`` (RGB content, JPEG via cv2 like AVA's ffmpeg)."""
    rng = np.random.default_rng(plan.background_seed)
    background = render_background(rng, plan.size)
    noise = [np.rint(rng.normal(0, NOISE_STD, background.shape)).astype(np.int16) for _ in range(NOISE_FIELDS)]
    which = rng.integers(NOISE_FIELDS, size=plan.num_frames)
    lit_rooms = {s.colour: lit_room(background, SIGNAL_RGB[s.colour]) for s in plan.signals}
    tracks = [simulate(p, plan.num_frames) for p in plan.persons]
    out = frames_dir / plan.name
    out.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    for k in range(plan.num_frames):
        people = [(p, body_parts(p.height, track[k])) for p, track in zip(plan.persons, tracks)]
        signal = plan.signal_at(k / FPS)
        frame = render_frame(background if signal is None else lit_rooms[signal.colour], noise[which[k]], people)
        if not cv2.imwrite(str(out / frame_name(plan.name, k)), frame[:, :, ::-1], params):
            raise OSError(f"cv2 could not write {out / frame_name(plan.name, k)}")
        if on_frame is not None:
            on_frame()


# ---------------------------------------------------------------------------------------------------------
# Annotations: ground truth, exclusions and a simulated person detector.

Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclass(frozen=True)
class KeyframeBox:
    """One person at one keyframe: its true box and its class ids (a row per id in the CSV)."""

    video: str
    sec: int
    person_id: int
    box: Box
    class_ids: tuple[int, ...]


def _normalise(rect: Rect, size: tuple[int, int]) -> Box:
    height, width = size
    x1, y1, x2, y2 = rect
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def annotate_video(plan: VideoPlan, classes: Sequence[ActionClass]) -> list[KeyframeBox]:
    """Every person at every keyframe, with the labels of its timeline (persons without one are skipped)."""
    ids = {c.behaviour: i + 1 for i, c in enumerate(classes)}
    tracks = [simulate(p, plan.num_frames) for p in plan.persons]
    rows = []
    for sec in plan.keyframes:
        k, t = keyframe_index(sec), float(sec - START_SEC)
        for person, track in zip(plan.persons, tracks):
            class_ids = tuple(sorted(ids[b] for b in plan.labels_at(person, t) if b in ids))
            if class_ids:
                box = _normalise(person_box(body_parts(person.height, track[k])), plan.size)
                rows.append(KeyframeBox(plan.name, sec, person.person_id, box, class_ids))
    return rows


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two normalised boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _clip_box(box: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in box)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


P_NEAR_FALSE, P_BACKGROUND_FALSE = 0.35, 0.4


def detect(rng: np.random.Generator, truth: Sequence[Box]) -> list[tuple[Box, float]]:
    """A person detector's output at one keyframe: every person found (jittered, score >= 0.9) plus
    low-score false positives, some next to a person (a shifted box) and some on the background."""
    out = []
    for box in truth:
        w, h = box[2] - box[0], box[3] - box[1]
        found = box
        for _ in range(20):
            cand = _clip_box(np.asarray(box) + rng.normal(0, 0.04, 4) * (w, h, w, h))
            if iou(cand, box) > 0.7:
                found = cand
                break
        out.append((found, float(rng.uniform(DETECTION_SCORE_THRESH, 0.9995))))
    for box in truth:
        if rng.random() < P_NEAR_FALSE:
            w, h = box[2] - box[0], box[3] - box[1]
            dx = rng.choice((-1, 1)) * rng.uniform(0.55, 0.9) * w
            scale = rng.uniform(0.6, 1.0)
            cand = _clip_box((box[0] + dx, box[3] - h * scale, box[0] + dx + w * scale, box[3]))
            if cand[2] > cand[0] and cand[3] > cand[1] and all(iou(cand, b) < 0.4 for b in truth):
                out.append((cand, float(rng.uniform(0.2, 0.85))))
    if rng.random() < P_BACKGROUND_FALSE:
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.25, 0.5)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        cand = (x, y, x + w, y + h)
        if all(iou(cand, b) < 0.3 for b in truth):
            out.append((cand, float(rng.uniform(0.02, 0.6))))
    return out


def _fmt(box: Box) -> str:
    return ",".join(f"{v:.3f}" for v in box)


def groundtruth_lines(rows: Sequence[KeyframeBox], excluded: set[tuple[str, int]]) -> list[str]:
    """AVA's ``video,ssss,x1,y1,x2,y2,action_id,person_id`` rows, one per (person, action); excluded
    keyframes are unannotated, as in AVA."""
    return [f"{r.video},{r.sec:04d},{_fmt(r.box)},{cid},{r.person_id}"
            for r in rows if (r.video, r.sec) not in excluded for cid in r.class_ids]


@dataclass
class SplitData:
    plans: list[VideoPlan]
    rows: list[KeyframeBox]
    excluded: list[tuple[str, int]]
    detections: list[str]
    attempt: int

    def class_counts(self, num_classes: int) -> list[int]:
        """Positive boxes per class id (index 0 = id 1) over the annotated (not excluded) keyframes."""
        skip = set(self.excluded)
        counts = [0] * num_classes
        for r in self.rows:
            if (r.video, r.sec) not in skip:
                for cid in r.class_ids:
                    counts[cid - 1] += 1
        return counts


MAX_ATTEMPTS = 200


def build_split(split: str, videos: int, seconds: int, size: tuple[int, int], seed: int,
                classes: Sequence[ActionClass] = DEFAULT_CLASSES) -> SplitData:
    """Plan a split until every class has a box in it (re-drawing the whole split), then annotate it.

    Excluded timestamps are drawn among the keyframes (about 3%, at least one) and lose their labels,
    like AVA's; the detector still sees them.
    """
    for attempt in range(MAX_ATTEMPTS):
        plans = plan_split(split, videos, seconds, size, seed, attempt, classes)
        rows = [r for p in plans for r in annotate_video(p, classes)]
        keys = [(p.name, s) for p in plans for s in p.keyframes]
        rng = stream(seed, split, attempt, EXCLUDE)
        n_excluded = max(1, round(0.03 * len(keys)))
        excluded = sorted(keys[i] for i in rng.choice(len(keys), size=n_excluded, replace=False))
        data = SplitData(plans, rows, excluded, [], attempt)
        if min(data.class_counts(len(classes))) > 0:
            break
    else:
        raise RuntimeError(f"{split}: no plan in {MAX_ATTEMPTS} attempts gives every class a box; "
                           "use more videos or longer ones")
    truth: dict[tuple[str, int], list[Box]] = {k: [] for k in keys}
    for r in rows:
        truth[(r.video, r.sec)].append(r.box)
    rng = stream(seed, split, attempt, DETECT)
    for video, sec in keys:
        for box, score in detect(rng, truth[(video, sec)]):
            data.detections.append(f"{video},{sec:04d},{_fmt(box)},,{score:.6f}")
    return data


def label_map_text(classes: Sequence[ActionClass]) -> str:
    """The 2019 ActivityNet-style label map (``label { name label_id label_type }``)."""
    return "".join(f'label {{\n  name: "{c.name}"\n  label_id: {i + 1}\n  label_type: {c.label_type}\n}}\n'
                   for i, c in enumerate(classes))


def frame_list_lines(plans: Sequence[VideoPlan]) -> list[str]:
    """``original_vido_id video_id frame_id path labels`` (space separated, labels always ``""``)."""
    lines = [FRAME_LIST_HEADER]
    for p in plans:
        lines += [f'{p.name} {p.index} {k} {p.name}/{frame_name(p.name, k)} ""' for k in range(p.num_frames)]
    return lines


# ---------------------------------------------------------------------------------------------------------
# The data set on disk.

@dataclass(frozen=True)
class SyntheticInfo:
    """What :func:`generate` produced (or found already complete)."""

    root: Path
    classes: tuple[ActionClass, ...]  # class id = position + 1
    videos: dict[str, list[str]]  # split -> video names
    keyframes: dict[str, int]  # split -> annotated (not excluded) keyframes with at least one box
    boxes: dict[str, int]  # split -> ground-truth person boxes
    class_counts: dict[str, list[int]]  # split -> positive boxes per class id (index 0 = id 1)
    generated: bool  # False when a complete set with the same parameters was already there
    elapsed_s: float

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def ava_config(self) -> dict[str, Any]:
        """PySlowFast ``AVA.*`` keys (and ``MODEL.NUM_CLASSES``) that read this data set."""
        return ava_config(self.root, len(self.classes))


def ava_config(root: str | Path, num_classes: int = len(DEFAULT_CLASSES)) -> dict[str, Any]:
    """Config values for a set at ``root``. Training uses ground-truth boxes only: the detector file
    carries no labels, so listing it in TRAIN_PREDICT_BOX_LISTS would add unlabelled (negative) boxes
    on top of labelled persons."""
    root = Path(root)
    return {
        "AVA.FRAME_DIR": str(root / FRAMES_DIR),
        "AVA.FRAME_LIST_DIR": str(root / FRAME_LISTS_DIR),
        "AVA.ANNOTATION_DIR": str(root / ANNOTATIONS_DIR),
        "AVA.TRAIN_LISTS": [frame_list_file("train")],
        "AVA.TEST_LISTS": [frame_list_file("val")],
        "AVA.TRAIN_GT_BOX_LISTS": [groundtruth_file("train")],
        "AVA.TRAIN_PREDICT_BOX_LISTS": [],
        "AVA.TEST_PREDICT_BOX_LISTS": [predicted_boxes_file("val")],
        "AVA.LABEL_MAP_FILE": LABEL_MAP_FILE,
        "AVA.EXCLUSION_FILE": excluded_file("val"),
        "AVA.GROUNDTRUTH_FILE": groundtruth_file("val"),
        "AVA.DETECTION_SCORE_THRESH": DETECTION_SCORE_THRESH,
        "AVA.FULL_TEST_ON_VAL": True,
        "MODEL.NUM_CLASSES": num_classes,
    }


def _params(videos_train: int, videos_val: int, seconds: int, size: tuple[int, int], seed: int,
            classes: Sequence[ActionClass], jpeg_quality: int) -> dict[str, Any]:
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed, "videos_train": videos_train,
            "videos_val": videos_val, "seconds": seconds, "size": list(size), "jpeg_quality": jpeg_quality,
            "classes": [[c.name, c.label_type, c.behaviour] for c in classes]}


def _read_meta(root: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("params", {}).get("generator") == GENERATOR else None


def _is_complete(root: Path, meta: dict[str, Any]) -> bool:
    """Every listed file is there and every frame folder holds exactly its frames (cheap: no decoding)."""
    for name in meta.get("files", []):
        if not (root / name).is_file():
            return False
    for video in meta.get("videos", []):
        folder = root / FRAMES_DIR / video["name"]
        if not folder.is_dir() or sum(1 for _ in folder.iterdir()) != video["frames"]:
            return False
    return True


def _info_from_meta(root: Path, meta: dict[str, Any], generated: bool, elapsed: float) -> SyntheticInfo:
    classes = tuple(ActionClass(*c) for c in meta["params"]["classes"])
    return SyntheticInfo(root=root, classes=classes,
                         videos={s: [v["name"] for v in meta["videos"] if v["split"] == s] for s in SPLITS},
                         keyframes=meta["keyframes"], boxes=meta["boxes"], class_counts=meta["class_counts"],
                         generated=generated, elapsed_s=elapsed)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    write_text(path, "".join(line + "\n" for line in lines))


class DataFolderError(UserError, FileExistsError):
    """The output folder holds something this generator must not replace."""


def _manifest(files: Sequence[str], frames: dict[str, int]) -> dict[str, Any]:
    """What one generation wrote, relative to its folder: files, and frames as ``{video: count}``
    (named by :func:`frame_name`), so the list stays small and exact."""
    return {"generator": GENERATOR, "manifest_version": 1, "files": sorted({*files, MANIFEST_FILE}),
            "frames": dict(sorted(frames.items()))}


def _read_manifest(root: Path) -> dict[str, Any] | None:
    """This generator's manifest in ``root``; for a set written before manifests existed, the same
    lists from its ``meta.json`` (its ``files`` and ``videos``). None when neither is there."""
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR:
            return manifest
    except (OSError, ValueError):
        pass
    meta = _read_meta(root)
    if meta is None:
        return None
    return _manifest([*meta.get("files", []), META_FILE, README_FILE],
                     {v["name"]: int(v["frames"]) for v in meta.get("videos", [])})


def _manifest_paths(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(files, folders) a manifest names, relative; folders deepest first (for removal)."""
    files = [str(f) for f in manifest.get("files", [])]
    folders = {FRAMES_DIR, FRAME_LISTS_DIR, ANNOTATIONS_DIR}
    for video, count in manifest.get("frames", {}).items():
        files += [f"{FRAMES_DIR}/{video}/{frame_name(video, k)}" for k in range(int(count))]
        folders.add(f"{FRAMES_DIR}/{video}")
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataFolderError(f"{MANIFEST_FILE} lists {name!r}, outside its folder; it was not written by "
                                  f"{GENERATOR}", "choose another --out")
    return files, sorted(folders, key=lambda f: -f.count("/"))


def _listing(root: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _remove_stale_partials(root: Path) -> None:
    """Temporary folders of earlier runs that were killed (ours: they hold the partial marker and
    their process is gone)."""
    for folder in root.parent.glob(f".{root.name}.partial-*"):
        try:
            pid = int(folder.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if not (folder / PARTIAL_MARKER).is_file() or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue


def _install(staging: Path, root: Path, old: dict[str, Any] | None) -> None:
    """Move the set written in ``staging`` into ``root``. A new or empty ``root``: one rename.
    Otherwise only the files the old manifest lists are replaced (moved aside first, put back if a
    move fails); anything else in ``root`` stays."""
    (staging / PARTIAL_MARKER).unlink()
    if not root.exists() or not any(root.iterdir()):
        if root.exists():
            root.rmdir()
        os.replace(staging, root)
        return
    new_files, _ = _manifest_paths(_read_manifest(staging) or {})
    old_files, old_folders = _manifest_paths(old) if old is not None else ([], [])
    listed = set(old_files)
    clashes = [f for f in new_files if f not in listed and (root / f).exists()]
    if clashes:
        raise DataFolderError(f"{root} holds {len(clashes)} file(s) that this set would write but that its "
                              f"{MANIFEST_FILE} does not list (e.g. {clashes[0]}); nothing was changed",
                              "move them away, or choose another --out")
    backup = root.parent / f".{root.name}.old-{os.getpid()}"
    moved: list[str] = []
    placed: list[str] = []
    try:
        for name in old_files:
            if (root / name).is_file():
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / name, backup / name)
                moved.append(name)
        for name in new_files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, root / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            with contextlib.suppress(OSError):
                os.remove(root / name)
        for name in moved:
            os.replace(backup / name, root / name)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    for folder in old_folders:  # the old set's folders the new one does not use, when nothing else is in them
        with contextlib.suppress(OSError):
            (root / folder).rmdir()
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _readme(params: dict[str, Any], classes: Sequence[ActionClass]) -> str:
    h, w = params["size"]
    lines = [
        "Synthetic AVA (memvit.data.synthetic) - NOT real AVA data.",
        "",
        f"Generator {GENERATOR} version {GENERATOR_VERSION}, seed {params['seed']}: "
        f"{params['videos_train']} train + {params['videos_val']} val videos of {params['seconds']} s at {FPS} fps, "
        f"{w}x{h} JPEG (quality {params['jpeg_quality']}).",
        "Stick-figure persons on a textured background; their actions come from a per-person timeline.",
        "Laid out exactly like PySlowFast's AVA v2.2 (frames/, frame_lists/, annotations/): frame 1 is second",
        "900.0, keyframes are seconds 902 ... 900 + seconds - 2, boxes are normalised x1,y1,x2,y2.",
        "Regenerate with: python -m memvit.data.synthetic --out <dir> --seed <seed> --overwrite ...",
        "",
        "Classes (label_id: name [label_type]):",
        *(f"  {i + 1}: {c.name} [{c.label_type}]" for i, c in enumerate(classes)),
        "",
        f"{META_FILE} holds the parameters, per-video persons (colours, sizes) and timelines, counts, and the",
        "AVA.* config values that read this directory.",
    ]
    return "\n".join(lines) + "\n"


def generate(out_dir: str | Path, *, videos_train: int = 16, videos_val: int = 4, seconds: int = 24,
             size: tuple[int, int] = (128, 170), seed: int = 0, classes: Sequence[ActionClass] = DEFAULT_CLASSES,
             jpeg_quality: int = 90, overwrite: bool = False, progress: bool = True,
             cli_names: tuple[str, str] = ("--out", "--overwrite")) -> SyntheticInfo:
    """Write a synthetic AVA v2.2 data set to ``out_dir`` (``size`` = (height, width), ``seconds`` per video).

    Deterministic in its arguments. Idempotent: a complete set with the same arguments is left as it is;
    one with other arguments is replaced only with ``overwrite``. Nothing it did not write is ever
    removed: it records what it wrote in ``manifest.json`` and replaces only what that lists; a
    non-empty folder without it (e.g. the real AVA) is refused with :class:`DataFolderError`. The set
    is written into a folder beside ``out_dir`` and moved into place at the end, so a failure midway
    leaves the old contents intact. ``cli_names``: the output and overwrite options its messages name.
    """
    start = time.perf_counter()
    check_classes(classes)
    classes = tuple(classes)
    if videos_train < 1 or videos_val < 1:
        raise ValueError("need at least one train and one val video")
    if seconds < 4:
        raise ValueError("seconds: need at least 4 (keyframes are seconds 2 ... seconds - 2)")
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"size: (height, width), each at least 32; got {size}")
    if seed < 0:
        raise ValueError(f"seed: a non-negative integer, got {seed}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality: 1 ... 100, got {jpeg_quality}")
    size = (int(size[0]), int(size[1]))
    root = Path(out_dir)
    params = _params(videos_train, videos_val, seconds, size, seed, classes, jpeg_quality)

    if root.exists() and not root.is_dir():
        raise DataFolderError(f"{cli_names[0]} {root} is a file, not a folder", f"choose another {cli_names[0]}")
    old = None
    if root.exists() and any(root.iterdir()):
        old = _read_manifest(root)
        if old is None:  # never touch a folder this generator did not write: it may be the real AVA
            raise DataFolderError(
                f"{cli_names[0]} {root} is not empty and was not written by {GENERATOR} (no {MANIFEST_FILE}): it "
                f"holds {_listing(root)}; nothing was changed",
                f"choose another {cli_names[0]} (a new or empty folder); {cli_names[1]} only replaces a set this "
                f"generator wrote, and only the files its {MANIFEST_FILE} lists")
        meta = _read_meta(root)
        if meta is not None and meta["params"] == params and _is_complete(root, meta):
            if not overwrite:
                return _info_from_meta(root, meta, False, time.perf_counter() - start)
        elif meta is not None and meta["params"] != params and not overwrite:
            changed = ", ".join(f"{k} {meta['params'].get(k)!r} -> {v!r}" for k, v in params.items()
                                if meta["params"].get(k) != v and k != "classes")
            if meta["params"].get("classes") != params["classes"]:
                changed += (", " if changed else "") + "other classes"
            raise DataFolderError(f"{root} holds a synthetic set with other parameters ({changed}); nothing was "
                                  "changed", f"pass {cli_names[1]} to replace it (only the files its "
                                  f"{MANIFEST_FILE} lists; anything else in the folder is kept), or choose another "
                                  f"{cli_names[0]}")

    splits = {s: build_split(s, n, seconds, size, seed, classes) for s, n in zip(SPLITS, (videos_train, videos_val))}
    for s, data in splits.items():  # the promise of this data set: every class in every split
        missing = [classes[i].name for i, n in enumerate(data.class_counts(len(classes))) if n == 0]
        assert not missing, f"{s}: no box for {missing}"

    # Everything is written into a folder beside the target and moved into place at the end: a failure
    # or a kill midway leaves the old set (or the user's folder) exactly as it was.
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    write_bytes(staging / PARTIAL_MARKER, b"")
    try:
        meta = _write_set(staging, root, splits, params, classes, jpeg_quality, progress)
        _install(staging, root, old)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return _info_from_meta(root, meta, True, time.perf_counter() - start)


def _write_set(staging: Path, root: Path, splits: dict[str, SplitData], params: dict[str, Any],
               classes: Sequence[ActionClass], jpeg_quality: int, progress: bool) -> dict[str, Any]:
    """Write the whole set into ``staging`` (``root`` is where it will live); returns its meta."""
    frames, lists, notes = staging / FRAMES_DIR, staging / FRAME_LISTS_DIR, staging / ANNOTATIONS_DIR
    for folder in (frames, lists, notes):
        folder.mkdir(parents=True, exist_ok=True)
    total = sum(p.num_frames for d in splits.values() for p in d.plans)
    with tqdm(total=total, unit="frame", desc=f"synthetic AVA -> {root}", disable=not progress) as bar:
        for data in splits.values():
            for plan in data.plans:
                render_video(plan, frames, jpeg_quality, on_frame=bar.update)

    files = [f"{ANNOTATIONS_DIR}/{LABEL_MAP_FILE}"]
    write_text(notes / LABEL_MAP_FILE, label_map_text(classes))
    for s, data in splits.items():
        excluded = set(data.excluded)
        _write_lines(lists / frame_list_file(s), frame_list_lines(data.plans))
        _write_lines(notes / groundtruth_file(s), groundtruth_lines(data.rows, excluded))
        _write_lines(notes / excluded_file(s), [f"{v},{sec:04d}" for v, sec in data.excluded])
        _write_lines(notes / predicted_boxes_file(s), data.detections)
        files += [f"{FRAME_LISTS_DIR}/{frame_list_file(s)}", f"{ANNOTATIONS_DIR}/{groundtruth_file(s)}",
                  f"{ANNOTATIONS_DIR}/{excluded_file(s)}", f"{ANNOTATIONS_DIR}/{predicted_boxes_file(s)}"]
    write_text(staging / README_FILE, _readme(params, classes))
    files.append(README_FILE)

    meta = {
        "description": "Synthetic AVA v2.2-format data set (not real AVA data)",
        "params": params,
        "fps": FPS,
        "start_sec": START_SEC,
        "object_rgb": list(OBJECT_RGB),
        "speech_rgb": list(SPEECH_RGB),
        "signal_rgb": {k: list(v) for k, v in SIGNAL_RGB.items()},
        "signal_seconds": SIGNAL_SECONDS,
        "answer_seconds": list(ANSWER_SECONDS),
        "signal_tint": SIGNAL_TINT,
        "classes": [{"id": i + 1, "name": c.name, "label_type": c.label_type, "behaviour": c.behaviour}
                    for i, c in enumerate(classes)],
        "files": files,
        "keyframes": {s: len({(r.video, r.sec) for r in d.rows} - set(d.excluded)) for s, d in splits.items()},
        "boxes": {s: sum((r.video, r.sec) not in set(d.excluded) for r in d.rows) for s, d in splits.items()},
        "class_counts": {s: d.class_counts(len(classes)) for s, d in splits.items()},
        "plan_attempts": {s: d.attempt + 1 for s, d in splits.items()},
        "ava_config": ava_config(root.resolve(), len(classes)),
        "videos": [_video_meta(p) for d in splits.values() for p in d.plans],
    }
    write_json(staging / META_FILE, meta, indent=1)
    manifest = _manifest([*files, META_FILE], {p.name: p.num_frames for d in splits.values() for p in d.plans})
    write_json(staging / MANIFEST_FILE, manifest, indent=1)
    return meta


def _video_meta(plan: VideoPlan) -> dict[str, Any]:
    return {
        "name": plan.name, "split": plan.split, "index": plan.index, "frames": plan.num_frames,
        "keyframes": [plan.keyframes[0], plan.keyframes[-1]],
        "persons": [{
            "person_id": p.person_id, "height_px": round(p.height, 2), "torso_rgb": list(p.torso_rgb),
            "legs_rgb": list(p.legs_rgb), "skin_rgb": list(p.skin_rgb), "partner": p.partner,
            "timeline": [{"start": s.start, "end": s.end, "movement": s.movement, "facing": s.facing,
                          "carry": s.carry, "wave": s.wave, "interaction": s.interaction, "labels": list(s.labels)}
                         for s in p.segments],
        } for p in plan.persons],
        "signals": [{"centre": s.centre, "colour": s.colour} for s in plan.signals],
    }


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memvit.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/synthetic", help="output directory (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a set this generator made with other "
                        "parameters (only the files its manifest.json lists)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-videos", type=int, default=16)
    parser.add_argument("--val-videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=24, help="length of each video (keyframes 902 ... 900+s-2)")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 170), metavar=("H", "W"))
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--long-range", action="store_true",
                        help="add the signal classes: 'see' (local) and 'answer' (seconds later; needs memory)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        info = generate(args.out, videos_train=args.train_videos, videos_val=args.val_videos, seconds=args.seconds,
                        size=tuple(args.size), seed=args.seed, jpeg_quality=args.quality, overwrite=args.overwrite,
                        classes=LONG_RANGE_CLASSES if args.long_range else DEFAULT_CLASSES, progress=not args.quiet)
    except UserError:
        raise  # message and hint, exit 2 (user_errors_exit)
    except (FileExistsError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    state = f"generated in {info.elapsed_s:.1f} s" if info.generated else "already complete, left as it is"
    print(f"{info.root}: {state}")
    for s in SPLITS:
        print(f"  {s}: {len(info.videos[s])} videos, {info.keyframes[s]} keyframes, {info.boxes[s]} boxes")
    print(f"  {info.num_classes} classes: " + ", ".join(f"{i + 1}={c.name}" for i, c in enumerate(info.classes)))
    print("config:")
    for key, value in info.ava_config().items():
        print(f"  {key}: {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
