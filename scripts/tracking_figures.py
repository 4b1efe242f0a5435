# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The person-tracking figures of docs/inference.md: identity switches on generated videos, and pictures.

    python scripts/tracking_figures.py [--videos 20] [--seconds 20] [--images docs/images]

Two kinds of generated video, persons drawn by :mod:`memvit.data.synthetic` with known identities:

* the synthetic data set's own videos (1 to 3 persons, each in its own lane: nobody crosses);
* crowds: ``--people`` persons of similar size on one floor, each walking, running or standing
  over the whole frame width, so they cross and hide each other. A person more than 60 % behind
  one drawn in front of it (by box area) is missed by the simulated detector.

Boxes are the true ones jittered by the synthetic detector (:func:`memvit.data.synthetic.detect`,
its boxes scoring >= 0.9: every visible person, no false box), every ``interval`` seconds; the
tracker (:class:`memvit.streaming.tracking.BoxTracker`, defaults) links them; identity switches and
fragmentations are counted against the true persons at IoU >= 0.5
(:func:`memvit.streaming.tracking.identity_switches`). With ``--images`` it also runs
``python -m memvit.infer`` (a randomly initialised tiny MeMViT, the synthetic set's class names) on
one crowd video and saves an annotated frame and the person timeline there.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from memvit.data import synthetic as syn  # noqa: E402
from memvit.data.ava_files import FPS, BoxRow, write_boxes_csv  # noqa: E402
from memvit.data.synthetic.plan import GROUND_RANGE, HEIGHT_RANGE, LEGS_PALETTE, SKIN_PALETTE, TORSO_PALETTE  # noqa: E402
from memvit.streaming.tracking import BoxTracker, identity_switches  # noqa: E402

HIDDEN = 0.6  # a person this much behind another one (of its box area) is not detected


def crowd_plan(rng: np.random.Generator, people: int, seconds: int, size: tuple[int, int],
               chaos: bool = False) -> syn.VideoPlan:
    """``people`` persons over the whole width: each walks the whole video (turning at the frame's edges)
    or stands (one in three); ``chaos``: each person a random timeline of 2-5 s spans instead, walking,
    running or standing, in a random direction each span."""
    height, width = size
    persons = []
    for i in range(people):
        segments, start = [], 0.0
        while start < seconds:
            end = min(float(seconds), start + float(rng.integers(2, 6))) if chaos else float(seconds)
            movement = str(rng.choice(["walk", "walk", "run", "stand"] if chaos else ["walk", "walk", "stand"]))
            segments.append(syn.Segment(start, end, movement, int(rng.choice([-1, 1])), labels=(movement,)))
            start = end
        h = float(rng.uniform(*HEIGHT_RANGE)) * height
        torso = TORSO_PALETTE[i % len(TORSO_PALETTE)]
        persons.append(syn.PersonPlan(
            person_id=i, height=h, torso_rgb=torso, legs_rgb=LEGS_PALETTE[int(rng.integers(len(LEGS_PALETTE)))],
            skin_rgb=SKIN_PALETTE[int(rng.integers(len(SKIN_PALETTE)))],
            ground_y=float(rng.uniform(*GROUND_RANGE)) * height, x_range=(0.4 * h, width - 0.4 * h),
            x0=float(rng.uniform(0.4 * h, width - 0.4 * h)), segments=tuple(segments)))
    return syn.VideoPlan("crowd", "crowd", 0, seconds, size, tuple(persons), int(rng.integers(2**31)), ())


def true_boxes(plan: syn.VideoPlan, interval: float) -> list[tuple[float, list[int], np.ndarray, list[bool]]]:
    """Per keyframe: its time, the person ids, their normalised boxes, and whether each is visible."""
    height, width = plan.size
    tracks = [syn.simulate(p, plan.num_frames) for p in plan.persons]
    out = []
    for k in range(int(plan.seconds / interval)):
        t = k * interval
        frame = min(plan.num_frames - 1, round(t * FPS))
        boxes = np.array([syn.person_box(syn.body_parts(p.height, track[frame])) for p, track in
                          zip(plan.persons, tracks)]) / [width, height, width, height]
        boxes = np.clip(boxes, 0, 1)
        visible = [not any(_covered(boxes[i], boxes[j]) > HIDDEN for j in range(i + 1, len(boxes)))
                   for i in range(len(boxes))]  # later persons are drawn in front
        out.append((t, [p.person_id for p in plan.persons], boxes, visible))
    return out


def _covered(box: np.ndarray, front: np.ndarray) -> float:
    w = max(0.0, min(box[2], front[2]) - max(box[0], front[0]))
    h = max(0.0, min(box[3], front[3]) - max(box[1], front[1]))
    return w * h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def _pairs(boxes: np.ndarray) -> int:
    return sum(_covered(a, b) > 0 for k, a in enumerate(boxes) for b in boxes[k + 1:])


def detected(rng: np.random.Generator, boxes: np.ndarray, visible: list[bool]) -> np.ndarray:
    """The synthetic detector's boxes of the visible persons (score >= 0.9: jittered true boxes)."""
    found = syn.detect(rng, [tuple(b) for b, v in zip(boxes, visible) if v])
    return np.array([b for b, score in found if score >= syn.DETECTION_SCORE_THRESH]).reshape(-1, 4)


def count(plans: list[syn.VideoPlan], interval: float, seed: int) -> dict[str, int]:
    """Tracker errors over ``plans``; ``hidden_fragmentations``: those of perfect tracks (the true ids on the
    detected boxes), i.e. the fragmentations that hidden persons alone cause."""
    totals = {"videos": len(plans), "persons": 0, "keyframes": 0, "switches": 0, "fragmentations": 0,
              "tracks": 0, "misses": 0, "links": 0, "hidden_fragmentations": 0}
    for index, plan in enumerate(plans):
        rng = np.random.default_rng([seed, index])
        truth, predicted, perfect, tracker = [], [], [], BoxTracker()
        for t, ids, boxes, visible in true_boxes(plan, interval):
            found = detected(rng, boxes, visible)
            predicted.append((tracker.update(found, t), found))
            perfect.append(([i for i, v in zip(ids, visible) if v], found))
            truth.append((ids, boxes))
        errors = identity_switches(truth, predicted)
        totals["persons"] += errors.identities
        totals["keyframes"] += len(truth)
        for key in ("switches", "fragmentations", "tracks", "misses", "links"):
            totals[key] += getattr(errors, key)
        totals["hidden_fragmentations"] += identity_switches(truth, perfect).fragmentations
    return totals


def images(plan: syn.VideoPlan, folder: str) -> None:
    """``memvit.infer`` on the crowd video (true boxes each second): an annotated frame and the person timeline."""
    import av
    from PIL import Image

    from memvit.demo import write_video
    from memvit.files import atomic_path
    from memvit.infer import main as infer

    with tempfile.TemporaryDirectory() as work:
        background = syn.render_background(np.random.default_rng(plan.background_seed), plan.size)
        tracks = [syn.simulate(p, plan.num_frames) for p in plan.persons]
        noise = np.zeros(background.shape, np.int16)
        frames = (syn.render_frame(background, noise, [(p, syn.body_parts(p.height, track[k]))
                                                       for p, track in zip(plan.persons, tracks)])
                  for k in range(plan.num_frames))
        write_video(f"{work}/crowd.mp4", frames, [k / FPS for k in range(plan.num_frames)], plan.size)
        rows = [BoxRow("crowd", round(t), tuple(float(v) for v in box), None, 1.0)
                for t, _, boxes, visible in true_boxes(plan, 1.0) for box, v in zip(boxes, visible) if v]
        write_boxes_csv(f"{work}/boxes.csv", rows)
        with open(f"{work}/labels.pbtxt", "w", encoding="utf-8") as f:
            f.write(syn.label_map_text(syn.DEFAULT_CLASSES))
        code = infer(["--cfg", "configs/ava_16.yaml", "--video", f"{work}/crowd.mp4", "--boxes", f"{work}/boxes.csv",
                      "--label-map", f"{work}/labels.pbtxt", "--out", f"{work}/out", "--no-progress", "--seed", "0",
                      "--threads", "1", "MODEL.NUM_CLASSES", "8", "MVIT.DEPTH", "4", "MVIT.EMBED_DIM", "16",
                      "MVIT.DIM_MUL", "[[1, 2.0], [3, 2.0]]", "MVIT.HEAD_MUL", "[[1, 2.0], [3, 2.0]]",
                      "MEMVIT.EXCLUDE_LAYERS", "[1]"])
        if code:
            raise SystemExit(f"memvit.infer failed ({code})")
        keyframes = true_boxes(plan, 1.0)
        busiest = max(range(2, len(keyframes) - 1), key=lambda k: _pairs(keyframes[k][2]))  # most overlapping pairs
        with av.open(f"{work}/out/annotated.mp4") as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == busiest * FPS:
                    with atomic_path(f"{folder}/inference_crowd.png") as tmp:
                        frame.to_image().quantize(colors=128, dither=Image.Dither.NONE).save(tmp, optimize=True)
                    break
        with atomic_path(f"{folder}/inference_person_timeline.png") as tmp:
            Image.open(f"{work}/out/person_timeline.png").convert("P", palette=Image.ADAPTIVE).save(tmp, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--people", type=int, default=4, help="persons per crowd video")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", help="also write the pictures into this folder (e.g. docs/images)")
    args = parser.parse_args()
    size = (360, 640)
    scenes = {
        "synthetic set: 1-3 persons, own lanes": syn.plan_split("train", args.videos, args.seconds, size, args.seed),
        f"crowd of {args.people}: walk or stand, crossing": [
            crowd_plan(np.random.default_rng([args.seed, i]), args.people, args.seconds, size)
            for i in range(args.videos)],
        f"crowd of {args.people}: walk, run, turn at random": [
            crowd_plan(np.random.default_rng([args.seed, i]), args.people, args.seconds, size, chaos=True)
            for i in range(args.videos)],
    }
    print(f"{args.videos} videos of {args.seconds} s each, {size[1]}x{size[0]}")
    print("| scene | keyframes every | persons | person-keyframes (not linked) | tracks | identity switches "
          "| per 100 person-keyframes | fragmentations (of perfect tracks) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, plans in scenes.items():
        for interval in (1.0, 0.5):
            c = count(plans, interval, args.seed)
            total = c["links"] + c["misses"]
            print(f"| {name} | {interval:g} s | {c['persons']} | {total} ({c['misses']}) | {c['tracks']} | "
                  f"{c['switches']} | {100 * c['switches'] / total:.1f} | {c['fragmentations']} "
                  f"({c['hidden_fragmentations']}) |")
    if args.images:
        images(crowd_plan(np.random.default_rng([args.seed, 1000]), 6, 10, size), args.images)


if __name__ == "__main__":
    main()
