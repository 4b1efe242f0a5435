# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit.data.convert``: a user's annotations to AVA's files.

The oracle of the round trips is the synthetic generator's own ground-truth CSV: its set, exported as MP4
videos and CVAT files (``--videos``), converted back, gives the same rows at the same seconds (AVA second
900 + s is video second s), in CVAT's two common setups (actions as attributes of a person label, labels
that are actions) and as the plain CSV. The frame chosen for a keyframe second is checked on a 25 fps clip
and on a variable-rate video against the frame times PyAV decodes. Every bad input names its file and
element or line."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from memvit.data import cvat, synthetic
from memvit.data.ava_files import (
    FIRST_SECOND,
    LABEL_MAP_FILE,
    excluded_file,
    groundtruth_file,
    read_boxes_csv,
    read_excluded_timestamps,
    read_label_map,
)
from memvit.data.convert import main

DATA = Path(__file__).parent / "data"
CLASSES = synthetic.DEFAULT_CLASSES[:2] + synthetic.DEFAULT_CLASSES[4:7]  # stand, walk, carry, wave, talk
SECONDS, SIZE = 10, (128, 170)
ROUNDING = 0.0011  # boxes: CVAT's 2-decimal pixels, then the CSV's 3 decimals


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    """A small synthetic set with its MP4 videos and CVAT files (fresh seed each run)."""
    seed = int(os.environ.get("MEMVIT_TEST_SEED", int.from_bytes(os.urandom(2), "little")))
    print(f"synthetic seed {seed} (rerun with MEMVIT_TEST_SEED={seed})")
    root = tmp_path_factory.mktemp("syn") / "set"
    synthetic.generate(root, videos_train=2, videos_val=1, seconds=SECONDS, size=SIZE, seed=seed, classes=CLASSES,
                       progress=False, videos=True)
    return root


def convert(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv] + ["--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def truth(root: Path, split: str) -> tuple[dict, set]:
    """The generator's rows as {(video, video second, action, person): box} and its excluded (video, second)."""
    notes = root / "annotations"
    rows = {(r.video, r.sec - FIRST_SECOND, r.action, int(r.extra)): r.box
            for r in read_boxes_csv(notes / groundtruth_file(split))}
    excluded = {(v, s - FIRST_SECOND) for v, s in read_excluded_timestamps(notes / excluded_file(split))}
    return rows, excluded


def converted(out: Path, split: str, seconds: range | None = None) -> dict:
    return {(r.video, r.sec, r.action, int(r.extra)): r.box for r in read_boxes_csv(out / groundtruth_file(split))
            if seconds is None or r.sec in seconds}


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    worst = max(float(np.abs(np.subtract(got[k], want[k])).max()) for k in want)
    assert worst <= ROUNDING, worst


AVA_SECONDS = range(2, SECONDS - 1)  # the seconds the generator annotates (AVA's 902 ...)


def test_synthetic_cvat_converts_back_to_its_ground_truth(syn, tmp_path, capsys):
    out = tmp_path / "ann"
    train = sorted((syn / "cvat").glob("syn-train-*.xml"))
    code, report, err = convert(capsys, "cvat", *train, "--videos", syn / "videos", "--out", out)
    assert code == 0, err
    assert "AVA.TIMELINE_START: 0.0" in report
    want, want_excluded = truth(syn, "train")
    assert_same(converted(out, "train", AVA_SECONDS), want)
    assert read_excluded_timestamps(out / excluded_file("train")) == want_excluded
    assert read_label_map(out / LABEL_MAP_FILE).names == read_label_map(syn / "annotations" / LABEL_MAP_FILE).names
    # The val split into the same folder, with the label map written for train: it is kept, not replaced.
    label_map = (out / LABEL_MAP_FILE).read_bytes()
    code, _, err = convert(capsys, "cvat", syn / "cvat" / "syn-val-000.xml", "--videos", syn / "videos", "--out", out,
                           "--split", "val", "--label-map", out / LABEL_MAP_FILE)
    assert code == 0, err
    want, want_excluded = truth(syn, "val")
    assert_same(converted(out, "val", AVA_SECONDS), want)
    assert read_excluded_timestamps(out / excluded_file("val")) == want_excluded
    assert (out / LABEL_MAP_FILE).read_bytes() == label_map
    # Nothing is replaced without --overwrite.
    code, _, err = convert(capsys, "cvat", *train, "--videos", syn / "videos", "--out", out)
    assert code == 2 and "already holds ava_train_v2.2.csv" in err and "--overwrite" in err


def _variant(ann: cvat.VideoAnnotations, kind: str) -> cvat.VideoAnnotations:
    """The same ground truth in another CVAT setup: the movement as a select (or text) attribute ``pose`` of a
    label ``human``, or a track per action (grouped per person, track id = 10 x person + class)."""
    names = [c.name for c in CLASSES]
    moves, others = names[:2], names[2:]
    persons = [t for t in ann.tracks if t.label == "person"]
    marks = [t for t in ann.tracks if t.label == "exclude"]
    if kind in ("select", "text"):
        pose = cvat.AttributeSpec("pose", kind, "__undefined__" if kind == "select" else "",
                                  ("__undefined__", *moves) if kind == "select" else (), True)
        label = cvat.Label("human", (pose, *cvat.checkbox_label("human", others).attributes))

        def relabel(box: cvat.Box) -> cvat.Box:
            on = dict(box.attributes)
            move = next((m for m in moves if on[m] == "true"), pose.default)
            return replace(box, attributes=(("pose", move), *((n, on[n]) for n in others)))

        tracks = [replace(t, label="human", boxes=tuple(relabel(b) for b in t.boxes)) for t in persons]
        labels = (label, cvat.Label("exclude"))
    else:
        tracks = [cvat.Track(10 * t.id + k, name, tuple(replace(b, outside=b.outside or dict(b.attributes)[name]
                                                                != "true", attributes=()) for b in t.boxes),
                             group=t.id + 1)
                  for t in persons for k, name in enumerate(names)]
        labels = (*(cvat.Label(n) for n in names), cvat.Label("exclude"))
    marks = [replace(t, id=1000 + t.id) for t in marks]
    return replace(ann, labels=labels, tracks=tuple(tracks + marks))


@pytest.mark.parametrize("kind", ["select", "text", "labels"])
def test_other_cvat_setups_give_the_same_ground_truth(syn, tmp_path, capsys, kind):
    video = "syn-train-001"
    xml = tmp_path / f"{video}.xml"
    cvat.write_video_annotations(xml, _variant(cvat.read_video_annotations(syn / "cvat" / f"{video}.xml"), kind))
    options = {"select": ["--person-label", "human", "--action-attribute", "pose"],
               "text": ["--person-label", "human", "--action-attribute", "pose",
                        "--label-map", syn / "annotations" / LABEL_MAP_FILE],
               "labels": []}[kind]
    out = tmp_path / "ann"
    code, _, err = convert(capsys, "cvat", xml, "--videos", syn / "videos", "--out", out, *options)
    assert code == 0, err
    want, want_excluded = truth(syn, "train")
    want = {k: v for k, v in want.items() if k[0] == video}
    got = converted(out, "train", AVA_SECONDS)
    if kind == "labels":  # a person is its group: its id, the group's lowest track id (10 x person)
        got = {(v, s, a, p // 10): box for (v, s, a, p), box in got.items()}
    assert_same(got, want)
    assert read_excluded_timestamps(out / excluded_file("train")) == {k for k in want_excluded if k[0] == video}
    assert read_label_map(out / LABEL_MAP_FILE).names == {i + 1: c.name for i, c in enumerate(CLASSES)}


def _frame_times(path: Path) -> list[Fraction]:
    """The oracle's frame times: decoded by PyAV, from the container's start."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = Fraction(container.start_time or 0, av.time_base)
        return sorted(Fraction(f.pts) * stream.time_base - origin for f in container.decode(stream))


def _variable_rate_video(path: Path, rng: random.Random) -> None:
    """Frames at random millisecond times (gaps 20 ... 700 ms) over about 4 s."""
    times, t = [], 0
    while t < 4000:
        times.append(t)
        t += rng.randint(20, 700)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for k, ms in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), k * 7 % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("video", ["bbb_720p25_1.5s.mp4", "variable_rate.mkv"])
def test_a_keyframe_takes_the_frame_on_screen_at_its_second(tmp_path, capsys, video):
    videos = tmp_path / "videos"
    videos.mkdir()
    path = videos / video
    if video.startswith("bbb"):
        shutil.copy(DATA / video, path)
    else:
        seed = int.from_bytes(os.urandom(4), "little")
        print(f"seed {seed}")
        _variable_rate_video(path, random.Random(seed))
    times = _frame_times(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height, tick = stream.codec_context.width, stream.codec_context.height, stream.time_base
    step = (width - 40) / len(times)  # a box that moves right frame by frame: its x tells the frame
    boxes = tuple(cvat.Box(k, k * step, 1.0, k * step + 30, height - 1.0, attributes=(("walk", "true"),))
                  for k in range(len(times)))
    ann = cvat.VideoAnnotations(labels=(cvat.checkbox_label("person", ["walk"]),),
                                tracks=(cvat.Track(3, "person", boxes),), source=video, width=width, height=height)
    cvat.write_video_annotations(tmp_path / "a.xml", ann)
    code, _, err = convert(capsys, "cvat", tmp_path / "a.xml", "--videos", videos, "--out", tmp_path / "ann")
    assert code == 0, err
    got = {r.sec: r.box[0] * width for r in read_boxes_csv(tmp_path / "ann" / groundtruth_file("train"))}
    # The oracle: the last frame shown at or before second s (one time-base tick of slack), for every second
    # up to the last frame's.
    want = {s: max(k for k, t in enumerate(times) if t <= s + tick) * step for s in range(int(times[-1]) + 1)}
    assert set(want) <= set(got) and len(got) <= len(want) + 1
    assert all(abs(got[s] - want[s]) < min(step / 2, 1.0) for s in want), (got, want)


@pytest.mark.parametrize("units", ["pixels", "normalized"])
def test_the_plain_csv_gives_the_same_ground_truth(syn, tmp_path, capsys, units):
    want, want_excluded = truth(syn, "train")
    height, width = SIZE
    scale = (1, 1) if units == "normalized" else (width, height)
    names = {i + 1: c.name for i, c in enumerate(CLASSES)}
    lines = ["video,time,person,x1,y1,x2,y2,action"]
    for (video, sec, action, person), (x1, y1, x2, y2) in sorted(want.items()):
        coords = ",".join(f"{v:.4f}" for v in (x1 * scale[0], y1 * scale[1], x2 * scale[0], y2 * scale[1]))
        lines.append(f"{video},{sec}.0,{person},{coords},\"{names[action]}\"")
    lines += [f"{video},{sec},,,,,,exclude" for video, sec in sorted(want_excluded)]
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    rows = rng.sample(lines[1:], len(lines) - 1)  # in any order, over two files (a video may be in both)
    cut = rng.randint(1, len(rows) - 1)
    (tmp_path / "a.csv").write_text("\n".join([lines[0], *rows[:cut]]) + "\n")
    (tmp_path / "b.csv").write_text("\n".join([lines[0], *rows[cut:]]) + "\n")
    out = tmp_path / "ann"
    options = ["--normalized"] if units == "normalized" else []
    code, _, err = convert(capsys, "csv", tmp_path / "a.csv", tmp_path / "b.csv", "--videos", syn / "videos",
                           "--out", out, *options)
    assert code == 0, err
    ids = read_label_map(out / LABEL_MAP_FILE).names  # 1..N in the order the file names them: compare names
    assert_same({(v, s, ids[a], p): box for (v, s, a, p), box in converted(out, "train").items()},
                {(v, s, names[a], p): box for (v, s, a, p), box in want.items()})
    # Excluded: the marked seconds, and each video's seconds outside its first ... last annotated one.
    marked = {}
    for video, sec in [(v, s) for v, s, _, _ in want] + sorted(want_excluded):
        marked.setdefault(video, set()).add(sec)
    spans = {video: (min(secs), max(secs)) for video, secs in marked.items()}
    outside = {(v, s) for v, (lo, hi) in spans.items() for s in range(SECONDS) if not lo <= s <= hi}
    assert read_excluded_timestamps(out / excluded_file("train")) == want_excluded | outside
    assert sorted(read_label_map(out / LABEL_MAP_FILE).names.values()) == sorted(names.values())


def _edit(syn: Path, tmp_path: Path, old: str, new: str) -> Path:
    """syn-train-000's CVAT file with the first match of the pattern ``old`` replaced."""
    text, found = re.subn(old, new, (syn / "cvat" / "syn-train-000.xml").read_text(), count=1)
    assert found, old
    path = tmp_path / "bad annotations.xml"
    path.write_text(text)
    return path


CVAT_BAD = [  # (pattern, replacement, what the message says)
    ("<source>syn-train-000.mp4</source>", "<source>nope.mp4</source>", ": <source> nope.mp4: video 'nope' is not in"),
    ('<box frame="299" ', '<box frame="9000" ', ":[0-9]+: track 0: frame 9000 is past the end of video syn-train-000 "
                                                "\\(300 frames"),
    ('(<box frame="45" [^>]* xtl=")', "\\1-90", ":[0-9]+: track 0, frame 45: box .* is outside the 170x128 frame of "
                                               "the video"),
    ("<version>1.1</version>", "<version>1.1</versio>", ":3: not well-formed XML"),
    ("<width>170</width>", "<width>171</width>", ": <original_size> is 171x128 but video syn-train-000"),
    ("<stop_frame>299</stop_frame>", "<stop_frame>300</stop_frame>", ": the task's last frame \\(300"),
    ("      <source>syn-train-000.mp4</source>\n", "", ": names no video .*\n  pass --video-id"),
]


@pytest.mark.parametrize("old, new, message", CVAT_BAD, ids=[m[:30] for _, _, m in CVAT_BAD])
def test_bad_cvat_input_names_the_file_and_the_element(syn, tmp_path, capsys, old, new, message):
    path = _edit(syn, tmp_path, old, new)
    code, _, err = convert(capsys, "cvat", path, "--videos", syn / "videos", "--out", tmp_path / "ann")
    assert code == 2
    assert re.search(re.escape(f"error: {path}") + message, err), err
    assert not (tmp_path / "ann").exists()


def test_a_wrong_action_value_and_a_video_given_twice_are_refused(syn, tmp_path, capsys):
    ann = cvat.read_video_annotations(syn / "cvat" / "syn-train-000.xml")
    xml = tmp_path / "a.xml"
    cvat.write_video_annotations(xml, _variant(ann, "text"))
    # The pose at second 2 (frame 60) of the first track: a value the label map does not hold.
    text = re.sub('(<box frame="60" [^>]*>\n *<attribute name="pose">)[^<]*', "\\1sit", xml.read_text(), count=1)
    xml.write_text(text)
    line = text[:text.index('"pose">sit<')].count("\n")  # the <box> above its attribute line
    code, _, err = convert(capsys, "cvat", xml, "--videos", syn / "videos", "--out", tmp_path / "ann",
                           "--person-label", "human", "--action-attribute", "pose",
                           "--label-map", syn / "annotations" / LABEL_MAP_FILE)
    assert code == 2 and f"error: {xml}:{line}: track " in err and "attribute 'pose' = 'sit' is not an action" in err
    copy = tmp_path / "copy.xml"
    shutil.copy(syn / "cvat" / "syn-train-000.xml", copy)
    code, _, err = convert(capsys, "cvat", syn / "cvat" / "syn-train-000.xml", copy, "--videos", syn / "videos",
                           "--out", tmp_path / "ann")
    assert code == 2 and f"{copy}: video 'syn-train-000' is annotated by" in err


CSV_BAD = [  # (row, what the message says)
    ("syn-train-000,2.5,0,1,1,20,20,walk", ":2: time '2.5': keyframes are whole seconds"),
    ("syn-train-000,12,0,1,1,20,20,walk", ":2: time 12 s is past the end of video syn-train-000"),
    ("syn-train-000,2,0,1,1,200,20,walk", ":2: box .* is outside the 170x128 frame"),
    ("nope,2,0,1,1,20,20,walk", ":2: video 'nope' is not in"),
    ("syn-train-000,2,0,1,1,20,20", ":2: expected 8 comma-separated columns, got 7"),
    ("syn-train-000,2,0,1,1,20,20,fly", ":2: action 'fly' is not in the label map"),
    ("syn-train-000,2,0,1,1,20,20,walk\nsyn-train-000,2,0,1,1,21,20,stand", ":3: person 0 at second 2 of "
     "syn-train-000 has another box at .*my boxes.csv:2$"),
]


@pytest.mark.parametrize("rows, message", CSV_BAD, ids=[m[:30] for _, m in CSV_BAD])
def test_bad_csv_input_names_the_file_and_the_line(syn, tmp_path, capsys, rows, message):
    path = tmp_path / "my boxes.csv"
    path.write_text("video,time,person,x1,y1,x2,y2,action\n" + rows + "\n")
    code, _, err = convert(capsys, "csv", path, "--videos", syn / "videos", "--out", tmp_path / "ann",
                           "--label-map", syn / "annotations" / LABEL_MAP_FILE)
    assert code == 2 and re.search(re.escape(f"error: {path}") + message, err, re.MULTILINE), err
    path.write_text("video,second,person,x1,y1,x2,y2,action\n")
    code, _, err = convert(capsys, "csv", path, "--videos", syn / "videos", "--out", tmp_path / "ann")
    assert code == 2 and f"error: {path}:1: expected the header line video,time,person" in err


def test_synthetic_videos_hold_the_frames_and_its_manifest_lists_them(syn, tmp_path):
    import cv2

    def smooth(rgb: np.ndarray) -> np.ndarray:  # the sensor noise off: H.264 keeps little of it
        return cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.5)

    for video in ("syn-train-000", "syn-val-000"):
        frames = [smooth(f.to_ndarray(format="rgb24")) for f in av.open(str(syn / "videos" / f"{video}.mp4")).decode(
            video=0)]
        assert len(frames) == SECONDS * 30
        times = _frame_times(syn / "videos" / f"{video}.mp4")  # from the container's start (whole microseconds)
        assert np.allclose(np.array(times, float), np.arange(SECONDS * 30) / 30, rtol=0, atol=1e-6)
        jpegs = [smooth(cv2.imread(str(syn / "frames" / video / f"{video}_{k + 1:06d}.jpg"))[:, :, ::-1])
                 for k in range(len(frames))]
        # Frame k is the folder's frame k (through two lossy codecs), not a neighbour.
        error = {shift: [float(np.abs(frames[k] - jpegs[k + shift]).mean()) for k in range(1, len(frames) - 1)]
                 for shift in (-1, 0, 1)}
        assert max(error[0]) < 2.5 and np.mean(error[0]) < min(np.mean(error[-1]), np.mean(error[1])), error
    # Only with --videos, and replaced like the rest: a set regenerated without them has none left.
    root, args = tmp_path / "small", dict(videos_train=1, videos_val=1, seconds=5, size=(32, 48), seed=3,
                                          classes=CLASSES[:1], progress=False)
    synthetic.generate(root, **args, videos=True)
    listed = set(json.loads((root / "manifest.json").read_text())["files"])
    assert {f"{d}/syn-{s}-000.{e}" for d, e in (("videos", "mp4"), ("cvat", "xml")) for s in ("train", "val")} <= listed
    synthetic.generate(root, **args, overwrite=True)
    assert not (root / "videos").exists() and not (root / "cvat").exists()
    assert "mp4_and_cvat" not in json.loads((root / "meta.json").read_text())["params"]
