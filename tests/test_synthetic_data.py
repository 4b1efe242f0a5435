# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The synthetic AVA set: official layout (read back with PyTorchVideo's own AVA readers) and labels that
agree with the pixels.

The pixel oracles use only the files on disk and the persons' colours from meta.json: JPEGs are
decoded and each person found by its torso colour, so nothing here reuses the generator's geometry.
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
import shutil
import time
from collections import defaultdict
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from memvit.data import synthetic  # importing memvit installs the torchvision shim PyTorchVideo 0.1.5 needs

ARGS = dict(videos_train=2, videos_val=2, seconds=12, size=(96, 128), seed=3, progress=False)
SPLITS = ("train", "val")
TOL = 40  # per-channel distance to a flat colour after noise and JPEG


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "ava"
    info = synthetic.generate(out, **ARGS)
    assert info.generated
    return out


@pytest.fixture(scope="module")
def meta(root) -> dict:
    return json.loads((root / "meta.json").read_text())


def frame(root: Path, video: str, index: int) -> np.ndarray:
    return _frame(str(root), video, index)


@cache
def _frame(root: str, video: str, index: int) -> np.ndarray:
    img = cv2.imread(os.path.join(root, "frames", video, f"{video}_{index + 1:06d}.jpg"))
    assert img is not None
    return img[:, :, ::-1].astype(np.int16)  # RGB


def near(img: np.ndarray, rgb) -> np.ndarray:
    return np.abs(img - np.asarray(rgb)).max(axis=-1) <= TOL


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def ground_truth(root: Path, split: str) -> dict[tuple[str, int, int], dict]:
    """(video, sec, person) -> {"box": normalised box, "labels": set of ids}, from the CSV alone."""
    out: dict[tuple[str, int, int], dict] = {}
    for row in read_rows(root / "annotations" / f"ava_{split}_v2.2.csv"):
        assert len(row) == 8 and len(row[1]) == 4
        key = (row[0], int(row[1]), int(row[7]))
        box = tuple(float(v) for v in row[2:6])
        entry = out.setdefault(key, {"box": box, "labels": set()})
        assert entry["box"] == box  # one box per person and keyframe
        entry["labels"].add(int(row[6]))
    return out


def class_ids(meta: dict) -> dict[str, int]:
    return {c["behaviour"]: c["id"] for c in meta["classes"]}


def person(meta: dict, video: str, pid: int) -> dict:
    v = next(v for v in meta["videos"] if v["name"] == video)
    return v["persons"][pid]


def pixel_box(box, size) -> tuple[float, float, float, float]:
    h, w = size
    return box[0] * w, box[1] * h, box[2] * w, box[3] * h


def torso_pixels(img: np.ndarray, rgb, box_px, grow: float) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of torso-coloured pixels near a box (pixel centres, in pixel-edge coordinates)."""
    x1, y1, x2, y2 = box_px
    mx, my = grow * (x2 - x1) + 2, grow * (y2 - y1) + 2
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    ys, xs = np.nonzero(near(img[ya:int(y2 + my) + 1, xa:int(x2 + mx) + 1], rgb))
    return xs + xa + 0.5, ys + ya + 0.5


# --- layout and formats ---------------------------------------------------------------------------------

def test_layout(root):
    files = ["frame_lists/train.csv", "frame_lists/val.csv", "README.txt", "meta.json",
             "annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt"]
    for s in SPLITS:
        files += [f"annotations/ava_{s}_v2.2.csv", f"annotations/ava_{s}_excluded_timestamps_v2.2.csv",
                  f"annotations/ava_{s}_predicted_boxes.csv"]
    for name in files:
        assert (root / name).is_file(), name
    assert sorted(p.name for p in root.iterdir()) == sorted(["frames", "frame_lists", "annotations", "README.txt",
                                                             "meta.json", "manifest.json"])
    assert not list(root.parent.glob(f".{root.name}.*"))  # no temporary folder left beside it
    assert "NOT real AVA" in (root / "README.txt").read_text()


def test_frame_lists_list_exactly_the_jpegs(root):
    seen: set[str] = set()
    for split, count in zip(SPLITS, (ARGS["videos_train"], ARGS["videos_val"])):
        lines = (root / "frame_lists" / f"{split}.csv").read_text().splitlines()
        assert lines[0] == "original_vido_id video_id frame_id path labels"
        rows = [line.split(" ") for line in lines[1:]]
        assert all(len(r) == 5 and r[4] == '""' for r in rows)
        videos: dict[str, list[list[str]]] = defaultdict(list)
        for r in rows:
            videos[r[0]].append(r)
        assert len(videos) == count and not seen & set(videos)
        seen |= set(videos)
        for index, (video, vrows) in enumerate(videos.items()):
            n = ARGS["seconds"] * 30
            assert [int(r[1]) for r in vrows] == [index] * n
            assert [int(r[2]) for r in vrows] == list(range(n))
            assert [r[3] for r in vrows] == [f"{video}/{video}_{i:06d}.jpg" for i in range(1, n + 1)]
            assert sorted(os.listdir(root / "frames" / video)) == [r[3].split("/")[1] for r in vrows]
    assert sorted(os.listdir(root / "frames")) == sorted(seen)


def test_jpegs_decode_to_the_configured_size(root, meta):
    h, w = ARGS["size"]
    for v in meta["videos"]:
        for index in (0, 60, v["frames"] - 1):
            path = root / "frames" / v["name"] / f"{v['name']}_{index + 1:06d}.jpg"
            with Image.open(path) as im:
                assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (w, h))
            assert frame(root, v["name"], index).shape == (h, w, 3)


def test_label_map_reads_like_ava(root):
    from pytorchvideo.data.ava import AvaLabeledVideoFramePaths

    path = root / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
    names, ids = AvaLabeledVideoFramePaths.read_label_map(str(path))
    classes = synthetic.DEFAULT_CLASSES
    assert ids == set(range(1, len(classes) + 1))
    assert names == {i + 1: c.name for i, c in enumerate(classes)}
    text = path.read_text()
    types = [line.split(":")[1].strip() for line in text.splitlines() if line.startswith("  label_type:")]
    assert types == [c.label_type for c in classes]
    assert set(types) == {"PERSON_MOVEMENT", "OBJECT_MANIPULATION", "PERSON_INTERACTION"}
    assert text.count("label {") == len(classes)


@pytest.mark.parametrize("split", SPLITS)
def test_pytorchvideo_reads_annotations(root, split):
    from pytorchvideo.data.ava import AvaLabeledVideoFramePaths

    frames, notes = root / "frames", root / "annotations"
    entries = AvaLabeledVideoFramePaths.from_csv(str(root / "frame_lists" / f"{split}.csv"),
                                                 str(notes / f"ava_{split}_v2.2.csv"), str(frames),
                                                 str(notes / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"))
    truth = ground_truth(root, split)
    keyframes = {(v, s) for v, s, _ in truth}
    assert len(entries) == len(keyframes)
    for folder, labels in entries:
        video = Path(folder).name
        assert Path(folder) == frames / video
        sec = int(labels["clip_index"]) + 900
        mine = sorted((t["box"], sorted(t["labels"])) for (v, s, _), t in truth.items() if (v, s) == (video, sec))
        theirs = sorted((tuple(b), sorted(ls)) for b, ls in zip(labels["boxes"], labels["labels"]))
        assert theirs == mine
    detections = AvaLabeledVideoFramePaths.from_csv(str(root / "frame_lists" / f"{split}.csv"),
                                                    str(notes / f"ava_{split}_predicted_boxes.csv"), str(frames))
    assert len(detections) == ARGS[f"videos_{split}"] * (ARGS["seconds"] - 3)  # every keyframe has a detection
    scores = [s for _, lab in detections for box_scores in lab["extra_info"] for s in box_scores]
    assert all(ls == [-1] for _, lab in detections for ls in lab["labels"]) and 0 < min(scores) < 0.9 <= max(scores)


def test_pytorchvideo_clip_is_centred_on_the_keyframe(root):
    from pytorchvideo.data import Ava, make_clip_sampler
    from torch.utils.data import SequentialSampler

    notes = root / "annotations"
    data = Ava(str(root / "frame_lists" / "val.csv"), str(notes / "ava_val_v2.2.csv"), str(root / "frames"),
               str(notes / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"),
               clip_sampler=make_clip_sampler("random", 8 / 30), video_sampler=SequentialSampler)
    sample = next(iter(data))
    sec = int(sample["clip_index"]) + 900
    key = (sec - 900) * 30
    clip = sample["video"].permute(1, 2, 3, 0).numpy()  # T, H, W, C (RGB)
    assert clip.shape == (8, *ARGS["size"], 3)
    for j in range(8):  # frames key-4 ... key+3: the keyframe at position 4, as in SlowFast
        np.testing.assert_array_equal(clip[j], frame(root, sample["video_name"], key - 4 + j))


# --- labels agree with the pixels ------------------------------------------------------------------------

@pytest.mark.parametrize("split", SPLITS)
def test_boxes_hold_their_person(root, meta, split):
    """All of a person's torso-coloured pixels (torso and sleeves) lie in its box, and fill a good part of it."""
    wave = class_ids(meta)["wave"]
    for (video, sec, pid), t in ground_truth(root, split).items():
        img = frame(root, video, (sec - 900) * 30)
        x1, y1, x2, y2 = box = pixel_box(t["box"], ARGS["size"])
        xs, ys = torso_pixels(img, person(meta, video, pid)["torso_rgb"], box, grow=0.5)
        assert len(xs) > 25, (video, sec, pid)
        inside = (xs > x1 - 1) & (xs < x2 + 1) & (ys > y1 - 1) & (ys < y2 + 1)
        assert inside.mean() > 0.98, (video, sec, pid)
        assert np.ptp(xs) > 0.4 * (x2 - x1) and np.ptp(ys) > 0.3 * (y2 - y1), (video, sec, pid)
        assert ys.max() < y2 - 0.3 * (y2 - y1)  # legs below
        if wave not in t["labels"]:  # the head on top (a waving hand may be higher)
            assert y1 < ys.min() - 0.12 * (y2 - y1)


def _track(root, meta, video, pid, box, sec, offsets) -> np.ndarray:
    """Torso centre (x, y) in frames keyframe + offsets: the centroid of the person's torso-coloured pixels
    that survive a morphological opening wider than a sleeve (so the arms hardly move it)."""
    who = person(meta, video, pid)
    side = int(0.15 * who["height_px"]) | 1
    rows = slice(max(0, int(box[1] - 0.5 * who["height_px"])), int(box[3]) + 2)  # the person's height band
    out = []
    for d in offsets:
        img = frame(root, video, (sec - 900) * 30 + d)[rows]
        torso = cv2.morphologyEx(near(img, who["torso_rgb"]).astype(np.uint8), cv2.MORPH_OPEN,
                                 np.ones((side, side), np.uint8))
        ys, xs = np.nonzero(torso)
        out.append((xs.mean(), ys.mean() + rows.start))
    return np.array(out)


def test_movement_classes_move_as_labelled(root, meta):
    """In the second around a keyframe (one timeline segment), in person heights: how far the torso gets
    from its keyframe place (>= 0.47 s of straight walking on one side, even if it turns), how fast it
    goes (path length per second), how high it hops."""
    ids = class_ids(meta)
    offsets = range(-14, 15, 2)
    seen: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for split in SPLITS:
        for (video, sec, pid), t in ground_truth(root, split).items():
            height = person(meta, video, pid)["height_px"]
            path = _track(root, meta, video, pid, pixel_box(t["box"], ARGS["size"]), sec, offsets) / height
            away = np.abs(path[:, 0] - path[len(offsets) // 2, 0]).max()
            speed = np.abs(np.diff(path[:, 0])).sum() / (28 / 30)
            hop = np.ptp(path[:, 1])
            (move,) = [m for m in ("stand", "walk", "run", "jump") if ids[m] in t["labels"]]
            seen[move].append((away, speed))
            where = (video, sec, pid, move, away, speed, hop)
            assert (hop > 0.15) == (move == "jump"), where
            if move in ("stand", "jump"):
                assert away < 0.1, where
            else:
                lo, hi = (0.3, 0.7) if move == "walk" else (0.9, 1.6)  # generated: 0.45 and 1.2 heights/s
                assert away > (0.12 if move == "walk" else 0.4) and lo < speed < hi, where
    assert all(seen[m] for m in ("stand", "walk", "run", "jump"))


def test_stand_boxes_stay_put(root, meta):
    """Consecutive keyframes of a person only standing (arms down) have the same box, walkers' boxes move."""
    ids = class_ids(meta)
    still, moving = 0, 0
    for split in SPLITS:
        truth = ground_truth(root, split)
        for (video, sec, pid), t in truth.items():
            nxt = truth.get((video, sec + 1, pid))
            if nxt is None:
                continue
            if t["labels"] == nxt["labels"] and t["labels"] <= {ids["stand"], ids["talk"]}:
                assert nxt["box"] == t["box"]
                still += 1
            if ids["walk"] in t["labels"] & nxt["labels"] or ids["run"] in t["labels"] & nxt["labels"]:
                assert nxt["box"] != t["box"]
                moving += 1
    assert still and moving


def test_arms_object_and_speech_match_labels(root, meta):
    """wave: a sleeve above the shoulders; carry: the yellow object in the box; talk: white arcs by the head;
    hand shake: the partners' sleeves touch."""
    ids = class_ids(meta)
    height, width = ARGS["size"]
    counts: dict[str, int] = defaultdict(int)
    for split in SPLITS:
        truth = ground_truth(root, split)
        for (video, sec, pid), t in truth.items():
            key = (sec - 900) * 30
            img = frame(root, video, key)
            x1, y1, x2, y2 = box = pixel_box(t["box"], ARGS["size"])
            labels = t["labels"]
            _, ys = torso_pixels(img, person(meta, video, pid)["torso_rgb"], box, grow=0.0)
            reach = (y2 - ys.min()) / (y2 - y1)  # highest sleeve pixel, from the feet, in box heights
            assert (reach > 0.86) == (ids["wave"] in labels), (video, sec, pid, reach)

            grow = 0.1 * (y2 - y1)  # the object is held at the hand, it may stick out of the box
            sub = img[int(y1):int(np.ceil(y2)), max(0, int(x1 - grow)):int(np.ceil(x2 + grow))]
            yellow = near(sub, meta["object_rgb"]).sum()
            assert (yellow >= 4) == (ids["carry"] in labels), (video, sec, pid, yellow)

            grow = 0.3 * (y2 - y1)
            band = slice(max(0, int(x1 - grow)), min(width, int(x2 + grow) + 1))
            head = slice(max(0, int(y1 - 2)), int(y1 + 0.4 * (y2 - y1)))
            white = max(int((frame(root, video, key + d)[head, band].min(axis=-1) >= 215).sum())
                        for d in range(-6, 7))
            assert (white >= 10) == (ids["talk"] in labels), (video, sec, pid, white)

            partner = person(meta, video, pid)["partner"]
            if partner is not None and pid < partner:
                other = truth.get((video, sec, partner))
                if other is None:
                    continue
                both = (ids["wave"] in labels) or (ids["wave"] in other["labels"])
                xa, _ = torso_pixels(img, person(meta, video, pid)["torso_rgb"], box, grow=0.3)
                xb, _ = torso_pixels(img, person(meta, video, partner)["torso_rgb"],
                                     pixel_box(other["box"], ARGS["size"]), grow=0.3)
                gap = xb.min() - xa.max() if xa.mean() < xb.mean() else xa.min() - xb.max()
                shake = ids["handshake"] in labels
                assert shake == (ids["handshake"] in other["labels"])
                if shake:  # touching; JPEG's chroma blur leaves the junction pixels in neither colour
                    assert gap <= 4, (video, sec, pid, gap)
                elif not both:  # arms down: a gap of about half a person's height
                    assert gap >= 8, (video, sec, pid, gap)
            for name in ("wave", "carry", "talk", "handshake"):
                counts[name] += ids[name] in labels
    assert all(counts[n] for n in ("wave", "carry", "talk", "handshake")), counts


# --- data set properties ---------------------------------------------------------------------------------

def test_every_class_in_both_splits(root, meta):
    for split in SPLITS:
        seen = set().union(*(t["labels"] for t in ground_truth(root, split).values()))
        assert seen == {c["id"] for c in meta["classes"]}, split
        assert all(n > 0 for n in meta["class_counts"][split])


@pytest.mark.parametrize("split", SPLITS)
def test_excluded_timestamps_are_unannotated_keyframes(root, split):
    notes = root / "annotations"
    excluded = [(v, int(s)) for v, s in read_rows(notes / f"ava_{split}_excluded_timestamps_v2.2.csv")]
    assert excluded and all(len(s) == 4 for _, s in read_rows(notes / f"ava_{split}_excluded_timestamps_v2.2.csv"))
    videos = {line.split(" ")[0] for line in (root / "frame_lists" / f"{split}.csv").read_text().splitlines()[1:]}
    annotated = {(v, s) for v, s, _ in ground_truth(root, split)}
    detected = {(r[0], int(r[1])) for r in read_rows(notes / f"ava_{split}_predicted_boxes.csv")}
    for video, sec in excluded:
        assert video in videos and 902 <= sec <= 900 + ARGS["seconds"] - 2
        assert (video, sec) not in annotated and (video, sec) in detected
    every = {(v, s) for v in videos for s in range(902, 900 + ARGS["seconds"] - 1)}
    assert annotated | set(excluded) == every  # every keyframe has persons; only the excluded lack labels


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.mark.parametrize("split", SPLITS)
def test_detector_boxes(root, split):
    """Confident detections (>= 0.9) are exactly the persons; the rest are low-score near misses and clutter."""
    truth: dict[tuple[str, int], list] = defaultdict(list)
    for (v, s, _), t in ground_truth(root, split).items():
        truth[(v, s)].append(t["box"])
    near_miss = clutter = 0
    confident: dict[tuple[str, int], list] = defaultdict(list)
    for row in read_rows(root / "annotations" / f"ava_{split}_predicted_boxes.csv"):
        assert len(row) == 8 and row[6] == "" and len(row[1]) == 4
        box, score = tuple(float(v) for v in row[2:6]), float(row[7])
        assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1 and 0 < score < 1
        key = (row[0], int(row[1]))
        if key not in truth:
            continue  # an excluded keyframe
        best = max(_iou(box, g) for g in truth[key])
        if score >= 0.9:
            assert best > 0.5
            confident[key].append(box)
        else:
            assert best < 0.5
            near_miss += best > 0
            clutter += best == 0
    for key, boxes in truth.items():  # every person found once
        assert len(confident[key]) == len(boxes)
        assert all(max(_iou(b, d) for d in confident[key]) > 0.5 for b in boxes)
    assert near_miss and clutter


def _annotation_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.*") if p.parent.name != "frames")


def test_deterministic_and_seed_dependent(root, tmp_path):
    again = synthetic.generate(tmp_path / "again", **ARGS)
    names = _annotation_files(root)
    assert names == _annotation_files(again.root) and len(names) == 9
    for name in names + ["meta.json", "README.txt"]:
        if name != "meta.json":
            assert filecmp.cmp(root / name, again.root / name, shallow=False), name
    mine, theirs = json.loads((root / "meta.json").read_text()), json.loads((again.root / "meta.json").read_text())
    mine.pop("ava_config"), theirs.pop("ava_config")  # holds the absolute path
    assert mine == theirs
    video = "syn-val-001"
    for index in (1, 61, 300):
        name = f"frames/{video}/{video}_{index:06d}.jpg"
        assert filecmp.cmp(root / name, again.root / name, shallow=False)

    other = synthetic.generate(tmp_path / "other", **{**ARGS, "seed": ARGS["seed"] + 1})
    for split in SPLITS:
        gt = f"annotations/ava_{split}_v2.2.csv"
        assert (root / gt).read_bytes() != (other.root / gt).read_bytes()


def test_rerun_is_fast_and_changes_nothing(root):
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    start = time.perf_counter()
    info = synthetic.generate(root, **ARGS)
    assert not info.generated and time.perf_counter() - start < 1.0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamps
    assert info.videos == {"train": ["syn-train-000", "syn-train-001"], "val": ["syn-val-000", "syn-val-001"]}
    assert info.ava_config()["AVA.FRAME_DIR"] == str(root / "frames")


def test_refuses_foreign_or_different_sets_and_repairs_partial_ones(root, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not written by"):
        synthetic.generate(foreign, **ARGS, overwrite=True)
    assert [p.name for p in foreign.iterdir()] == ["mine.txt"]

    with pytest.raises(FileExistsError, match="other parameters"):
        synthetic.generate(root, **{**ARGS, "seed": 99})

    partial = tmp_path / "partial"
    shutil.copytree(root, partial)
    name = "frames/syn-train-000/syn-train-000_000100.jpg"
    (partial / name).unlink()
    assert synthetic.generate(partial, **ARGS).generated  # incomplete: made again
    assert filecmp.cmp(root / name, partial / name, shallow=False)


def test_cli_reports_config(root, capsys):
    argv = ["--out", str(root), "--seed", str(ARGS["seed"]), "--train-videos", "2", "--val-videos", "2",
            "--seconds", "12", "--size", "96", "128", "--quiet"]
    assert synthetic.main(argv) == 0
    out = capsys.readouterr().out
    assert "already complete" in out and f'AVA.FRAME_DIR: "{root / "frames"}"' in out
    assert "MODEL.NUM_CLASSES: 8" in out
    assert synthetic.main([*argv[:-1], "--seed", "5", "--quiet"]) == 2  # other parameters, no --overwrite


def test_class_subset_and_bad_classes():
    walkers = (synthetic.ActionClass("walking", "PERSON_MOVEMENT", "walk"),
               synthetic.ActionClass("waving", "PERSON_INTERACTION", "wave"))
    data = synthetic.build_split("val", 2, 12, (96, 128), seed=0, classes=walkers)
    assert {i for r in data.rows for i in r.class_ids} == {1, 2}
    assert all(p.partner is None for plan in data.plans for p in plan.persons)  # no interaction: no pairs
    with pytest.raises(ValueError, match="unknown behaviour"):
        synthetic.check_classes([synthetic.ActionClass("sit", "PERSON_MOVEMENT", "sit")])
    with pytest.raises(ValueError, match="unique"):
        synthetic.check_classes([synthetic.DEFAULT_CLASSES[0]] * 2)


# --- the long-range variant ----------------------------------------------------------------------------------

LONG_ARGS = dict(videos_train=2, videos_val=2, seconds=16, size=(96, 128), seed=5, progress=False,
                 classes=synthetic.LONG_RANGE_CLASSES)


@pytest.fixture(scope="module")
def long_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "long"
    synthetic.generate(out, **LONG_ARGS)
    return out


def room_light(img: np.ndarray) -> str | None:
    """Which signal colour lights the room in a frame, read from its pixels: the room is muted (channels
    within about 60 of each other), a lit one has its median pixel far more orange or lime than blue."""
    r, g, b = (np.median(img[..., i]) for i in range(3))
    if max(r, g) - b < 90:
        return None
    return "signal_orange" if r > g else "signal_lime"


def lights(root: Path, video: str) -> list[str | None]:
    """The room light of every frame of a video, from the JPEGs."""
    return [room_light(frame(root, video, k)) for k in range(len(os.listdir(root / "frames" / video)))]


def test_long_range_labels_need_an_earlier_clip(long_root):
    """Read from the frames alone: the room is lit in runs of 2.5 s; every person in view at a keyframe
    carries "see <colour>" exactly when its frame is lit, and "answer <colour>" exactly when the latest
    light (of that colour) was centred 2 to 5 s before, and then no frame of its clip (+-0.6 s) is lit."""
    meta = json.loads((long_root / "meta.json").read_text())
    ids = class_ids(meta)
    colours = list(meta["signal_rgb"])
    see = {ids["see_" + c]: c for c in colours}
    answer = {ids[c]: c for c in colours}
    checked = 0
    for split in SPLITS:
        truth = ground_truth(long_root, split)
        for video in sorted({v for v, _, _ in truth}):
            lit = lights(long_root, video)
            runs = []  # (first frame, last frame, colour) of each lit run
            for k, c in enumerate(lit):
                if c is not None and runs and runs[-1][1] == k - 1 and runs[-1][2] == c:
                    runs[-1] = (runs[-1][0], k, c)
                elif c is not None:
                    runs.append((k, k, c))
            assert runs and all(abs((b - a + 1) / 30 - 2.5) <= 2 / 30 for a, b, _ in runs), runs
            for (v, sec, pid), t in truth.items():
                if v != video:
                    continue
                key = (sec - 900) * 30
                seen = {see[i] for i in t["labels"] if i in see}
                answered = {answer[i] for i in t["labels"] if i in answer}
                assert seen == ({lit[key]} if lit[key] else set()), (video, sec, pid)
                before = [(a + b) / 2 / 30 for a, b, _ in runs if (a + b) / 2 <= key]
                latest = [c for a, b, c in runs if before and (a + b) / 2 / 30 == before[-1]]
                expect = set(latest) if before and 2 <= sec - 900 - before[-1] < 6 else set()
                assert answered == expect, (video, sec, pid, answered, before)
                if answered:
                    assert not any(lit[max(0, key - 18):key + 19]), (video, sec, pid)  # nothing in its clip
                    checked += 1
    assert checked >= 10


def test_long_range_classes_and_default_data():
    """The variant adds four classes in every split, and every person in view shares the signal labels;
    the default class list draws no signal."""
    data = synthetic.build_split("val", 2, 16, (96, 128), seed=1, classes=synthetic.LONG_RANGE_CLASSES)
    assert {i for r in data.rows for i in r.class_ids} == set(range(1, 13))
    for plan in data.plans:
        assert plan.signals
        for sec in plan.keyframes:
            signal_ids = {frozenset(i for i in r.class_ids if i > 8) for r in data.rows
                          if r.video == plan.name and r.sec == sec}
            assert len(signal_ids) <= 1, (plan.name, sec)
    plain = synthetic.build_split("val", 2, 16, (96, 128), seed=1)
    assert all(plan.signals == () for plan in plain.plans)
    assert {i for r in plain.rows for i in r.class_ids} <= set(range(1, 9))
