# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""One home for the AVA on-disk format: every writer of memvit.data.ava_files reads back through its
reader (fresh random contents each run), and no other module writes the format by hand."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from memvit.data import ava_files as af

ROOT = Path(__file__).resolve().parents[1]
# characters a video id or class name from a user's files may hold (the csv module quotes what needs it)
ALPHABET = list("abcXYZ019_-.,;:'\"/\\ é漢#{}") + ["\t"]


def rng_of(gen: torch.Generator) -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen)))


def text(rng: np.random.Generator, lo: int = 1, hi: int = 12, alphabet: list[str] = ALPHABET) -> str:
    """Random characters between two letters (readers strip the whitespace around a field)."""
    return "v" + "".join(rng.choice(alphabet, size=int(rng.integers(lo, hi + 1)))) + "z"


def test_label_map_round_trips(tmp_path, gen):
    rng = rng_of(gen)
    ids = rng.choice(np.arange(1, 200), size=int(rng.integers(1, 30)), replace=False).tolist()
    labels = [(int(i), text(rng) + ' "x" \\', str(rng.choice(af.LABEL_TYPES))) for i in ids]
    path = tmp_path / af.LABEL_MAP_FILE
    af.write_label_map(path, labels)
    got = af.read_label_map(path)
    assert got.names == {i: name for i, name, _ in labels}
    groups = {"PERSON_MOVEMENT": "pose", "OBJECT_MANIPULATION": "person-object", "PERSON_INTERACTION": "person-person"}
    assert got.groups == {i: groups[t] for i, _, t in labels}
    with pytest.raises(ValueError, match="line break"):
        af.label_map_text([(1, "two\nlines", "PERSON_MOVEMENT")])
    with pytest.raises(ValueError, match="label_type"):
        af.label_map_text([(1, "x", "POSE")])


@pytest.mark.parametrize("extra_decimals", [6, 0])
def test_box_csv_round_trips(tmp_path, gen, extra_decimals):
    """Scores (6 decimals) or ground truth's person ids (0 decimals); actions and column 8 may be absent."""
    rng = rng_of(gen)
    rows = []
    for _ in range(int(rng.integers(1, 60))):
        x1, y1 = rng.uniform(0, 0.6, 2)
        x2, y2 = x1 + rng.uniform(0.01, 0.4), y1 + rng.uniform(0.01, 0.4)
        action = None if rng.random() < 0.3 else int(rng.integers(1, 81))
        if rng.random() < 0.3:
            extra = None
        else:
            extra = float(rng.integers(0, 50)) if extra_decimals == 0 else float(rng.uniform(0, 1))
        rows.append(af.BoxRow(text(rng), int(rng.integers(0, 10000)), (x1, y1, x2, y2), action, extra))
    path = tmp_path / "boxes.csv"
    af.write_boxes_csv(path, rows, extra_decimals=extra_decimals)
    back = af.read_boxes_csv(path)
    assert [(r.video, r.sec, r.action) for r in back] == [(r.video, r.sec, r.action) for r in rows]
    np.testing.assert_allclose([r.box for r in back], [r.box for r in rows], atol=5e-4 + 1e-9)
    for got, want in zip(back, rows):
        assert (got.extra is None) == (want.extra is None)
        if want.extra is not None:
            assert got.extra == pytest.approx(want.extra, abs=0.5 * 10.0 ** -extra_decimals + 1e-12)
    # the same rows as columns write the same bytes
    table_path = tmp_path / "table.csv"
    af.write_boxes_csv(table_path, af.BoxTable.from_rows(rows), extra_decimals=extra_decimals)
    assert table_path.read_bytes() == path.read_bytes()


def test_timestamps_are_avas_four_digits_and_other_times_keep_milliseconds(gen):
    rng = rng_of(gen)
    sec = int(rng.integers(0, 10000))
    assert af.format_timestamp(sec) == f"{sec:04d}" and af.format_timestamp(float(sec)) == f"{sec:04d}"
    t = sec + float(rng.uniform(0.01, 0.99))
    assert af.format_timestamp(t) == f"{t:.3f}"
    row = af.box_csv_row("v", t, (0.1, 0.2, 0.3, 0.4), 5, math.nan)
    assert row == ["v", f"{t:.3f}", "0.100", "0.200", "0.300", "0.400", "5", ""]


def test_excluded_timestamps_round_trip(tmp_path, gen):
    rng = rng_of(gen)
    keys = {(text(rng), int(rng.integers(0, 10000))) for _ in range(int(rng.integers(1, 40)))}
    path = tmp_path / "excluded.csv"
    af.write_excluded_timestamps(path, sorted(keys))
    assert af.read_excluded_timestamps(path) == keys


def test_frame_list_round_trips(tmp_path, gen):
    rng = rng_of(gen)
    plain = list("abcXYZ019_-.,;'\"é漢")  # a frame list is space-separated: no whitespace in ids
    videos = {text(rng, alphabet=plain): int(rng.integers(1, 400)) for _ in range(int(rng.integers(1, 8)))}
    path = tmp_path / af.frame_list_file("train")
    af.write_frame_list(path, list(videos.items()))
    assert path.read_text(encoding="utf-8").split("\n", 1)[0] == af.FRAME_LIST_HEADER
    assert af.read_frame_list(path) == {v: [f"{v}/{af.frame_name(v, k)}" for k in range(n)] for v, n in videos.items()}
    assert af.frame_name("v", 0) == "v_000001.jpg"  # AVA numbers frames from 1, six digits
    with pytest.raises(ValueError, match="whitespace"):
        af.write_frame_list(tmp_path / "bad.csv", [("two words", 3)])
    assert not (tmp_path / "bad.csv").exists()


def test_keyframe_seconds_and_frames_are_avas():
    """Frame 0 shows second 900 at 30 fps; AVA annotates seconds 902 ... 1798."""
    assert af.sec_to_frame(900) == 0 and af.sec_to_frame(902) == 60 and af.sec_to_frame(1798) == 898 * 30
    assert af.KEYFRAME_SECONDS[0] == 902 and af.KEYFRAME_SECONDS[-1] == 1798


def test_the_ava_layout_is_written_in_one_place():
    """Frame names, the frame-list header and the label-map block are spelled out only in ava_files."""
    patterns = {"frame-list header": "original_vido_id", "frame file name": re.compile(r"06d\}\.jpg"),
                "label-map block": "label {{"}
    home = ROOT / "memvit" / "data" / "ava_files.py"
    offenders = []
    for path in sorted((ROOT / "memvit").rglob("*.py")):
        if path == home:
            continue
        source = path.read_text(encoding="utf-8")
        for what, pattern in patterns.items():
            found = pattern.search(source) if isinstance(pattern, re.Pattern) else pattern in source
            if found:
                offenders.append(f"{path.relative_to(ROOT)}: {what}")
    assert not offenders, "write these through memvit.data.ava_files: " + "; ".join(offenders)
