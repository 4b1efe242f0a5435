# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Stages 2 and 3a, the body: the per-frame :class:`Pose` of each person integrated from its timeline
(:func:`simulate`), and the one statement of the body geometry (:func:`body_parts`) that drawing and the
ground-truth boxes (:func:`person_box`) both read. Proportions are fractions of the person's height
(head top to feet)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..ava_files import FPS

if TYPE_CHECKING:
    from .plan import PersonPlan

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


# Geometry: what a person is drawn with, in pixels.
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

