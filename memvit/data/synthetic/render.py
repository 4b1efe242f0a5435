# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Stage 3b, drawing the frames: a textured room, the persons drawn from their :func:`~.body.body_parts`,
the room lit by a signal, sensor noise; :func:`render_video` writes one video's JPEG frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..ava_files import FPS, frame_name
from .body import HEAD_R, SPEECH_RADII, SPEECH_THICK, Parts, body_parts, simulate
from .plan import PersonPlan, VideoPlan

OBJECT_RGB = (250, 215, 0)  # the carried object; no background or body colour is near it
SPEECH_RGB = (250, 250, 250)  # talk arcs; the background stays below 190
EYE_RGB = (25, 25, 25)
SIGNAL_TINT = 0.55  # how far the lit room's colour moves from its own toward the signal colour
# Signal lights: saturated, unlike the muted room (whose shading is mostly grey), so a lit room is a strong
# global colour shift; the persons keep their own colours.
SIGNAL_RGB = {"signal_orange": (255, 120, 0), "signal_lime": (140, 255, 0)}


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
                 on_frame: Callable[[], None] | None = None,
                 on_image: Callable[[int, np.ndarray], None] | None = None) -> None:
    """Write ``frames_dir/<video>/<video>_000001.jpg ...`` (RGB content, JPEG via cv2 like AVA's ffmpeg);
    ``on_image(k, rgb)`` also gets each frame (the synthetic set's MP4 encodes the same frames)."""
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
        if on_image is not None:
            on_image(k, frame)
        if on_frame is not None:
            on_frame()

