# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""docs/custom_data.md's tour, run as a new user runs it: the bash block the guide shows (synthetic
videos and CVAT exports -> convert -> train from the video files -> evaluate -> infer with person
tracks), then checks of what each step promises. The block is read from the guide, so the guide
cannot drift from what works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from memvit.data.ava_files import read_boxes_csv, read_label_map

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "custom_data.md"
MARKER = "<!-- tour: tests/test_custom_data_guide.py runs the next bash block -->"


def tour_block() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    assert MARKER in text, f"{GUIDE} lost its tour marker"
    match = re.search(r"```bash\n(.*?)```", text[text.index(MARKER):], re.S)
    assert match, "no bash block after the tour marker"
    return match.group(1)


def test_the_guides_tour_runs_end_to_end(tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # the guide runs from the repository root
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", tour_block()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output

    # 1. convert: the CVAT exports became the generator's own ground truth, at video seconds.
    own = tmp_path / "data/tour/own_annotations"
    generated = {(r.video, r.sec - 900, r.action)
                 for r in read_boxes_csv(tmp_path / "data/tour/annotations/ava_val_v2.2.csv")}
    converted = {(r.video, r.sec, r.action) for r in read_boxes_csv(own / "ava_val_v2.2.csv")}
    assert generated <= converted and len(generated) > 20
    assert len(read_label_map(own / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").ids) == 8

    # 2. train read the video files (no frame lists) and tested; 3. eval scored the best checkpoint.
    assert "4 videos" in output and "47 keyframes" in output
    assert re.search(r"AVA.FRAME_DIR.*not read: AVA.VIDEO_DIR is set", output)
    log = [json.loads(line) for line in (tmp_path / "output/tour/log.jsonl").read_text().splitlines()]
    assert {entry["epoch"] for entry in log if entry["type"] == "train"} == {1, 2}
    summary = json.loads((tmp_path / "output/tour/eval_test/summary.json").read_text())
    assert 0 < summary["map"] <= 100 and summary["clips"] == 23

    # 4. infer: predictions carry person tracks; the per-person timeline is drawn.
    infer = tmp_path / "output/tour/infer"
    for name in ("annotated.mp4", "predictions.jsonl", "tracks.csv", "person_timeline.png", "timeline.png"):
        assert (infer / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (infer / "predictions.jsonl").read_text().splitlines()]
    tracks = {d["track"] for r in records for d in r["detections"]}
    assert records and len(tracks) >= 2 and None not in tracks
