# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""python -m memvit.infer links boxes into person tracks: the track id with every prediction (JSONL,
tracks.csv), the person timeline, an unchanged AVA predictions.csv; --no-tracks leaves them out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from media import LABEL_MAP, moving_shapes, write_config, write_video
from PIL import Image

from memvit.data.ava_files import read_boxes_csv
from memvit.infer import main

pytestmark = pytest.mark.usefixtures("one_thread")


def people_csv(path: Path, rng: np.random.Generator, seconds: int) -> list[dict[tuple[float, ...], int]]:
    """Three people walking side by side (never crossing), listed in a shuffled order each second; returns,
    per second, each written box (as read back) -> the person."""
    starts, speed = np.array([0.05, 0.35, 0.65]) + rng.uniform(0, 0.03, 3), rng.uniform(-0.02, 0.02)
    lines, truth = [], []
    for sec in range(seconds):
        who = {}
        for person in rng.permutation(3):
            x = round(float(starts[person] + speed * sec), 3)
            box = (x, 0.2, round(x + 0.2, 3), 0.9)
            lines.append(f"clip,{sec:04d},{box[0]:.3f},{box[1]:.3f},{box[2]:.3f},{box[3]:.3f},,0.95")
            who[box] = int(person)
        truth.append(who)
    path.write_text("\n".join(lines) + "\n")
    return truth


@pytest.fixture
def run(tmp_path, gen):
    rng = np.random.default_rng(int(gen.initial_seed()))
    (tmp_path / "labels.pbtxt").write_text(LABEL_MAP)
    cfg = write_config(tmp_path / "tiny.yaml")
    times = [i / 30 for i in range(90)]
    write_video(tmp_path / "clip.mp4", moving_shapes(times, (64, 96), seed=int(rng.integers(1000))), times)
    truth = people_csv(tmp_path / "boxes.csv", rng, 3)

    def go(*extra):
        out = tmp_path / "out"
        assert main(["--cfg", str(cfg), "--video", str(tmp_path / "clip.mp4"), "--out", str(out), "--no-progress",
                     "--boxes", str(tmp_path / "boxes.csv"), "--label-map", str(tmp_path / "labels.pbtxt"),
                     *extra]) == 0
        return out

    return go, truth


def test_every_prediction_has_its_persons_track(run):
    go, truth = run
    out = go()
    with open(out / "tracks.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["video", "time", "track", "x1", "y1", "x2", "y2", "box_score"]
    assert len(rows) == 1 + 3 * 3
    person_to_track: dict[int, str] = {}
    for video, sec, track, *box, score in rows[1:]:
        person = truth[int(sec)][tuple(float(v) for v in box)]
        assert person_to_track.setdefault(person, track) == track  # one track per person, all along
        assert video == "clip" and score == "0.9500"
    assert sorted(person_to_track.values()) == ["1", "2", "3"]

    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    for record in records:
        for d in record["detections"]:
            box = tuple(round(v, 3) for v in d["box"])
            assert str(d["track"]) == person_to_track[truth[int(record["time"])][box]]
    predictions = read_boxes_csv(out / "predictions.csv")  # still AVA's 8 columns
    assert len(predictions) == 3 * 3 * 5
    assert {(r.sec, r.box) for r in predictions} == {(int(s), tuple(map(float, b))) for _, s, _, *b, _ in rows[1:]}
    assert Image.open(out / "person_timeline.png").size[0] >= 800
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tracks"] == 3 and summary["outputs"]["person_timeline"].endswith("person_timeline.png")


def test_no_tracks(run):
    go, _ = run
    out = go("--no-tracks", "--no-video")
    assert not (out / "tracks.csv").exists() and not (out / "person_timeline.png").exists()
    assert (out / "timeline.png").exists()
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all("track" not in d for r in records for d in r["detections"])
    assert json.loads((out / "summary.json").read_text())["tracks"] is None
