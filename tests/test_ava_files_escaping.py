# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA box CSVs written by memvit round-trip video ids taken from users' file names."""

from __future__ import annotations

import numpy as np

from memvit.data.ava_files import BoxRow, read_boxes_csv, write_boxes_csv


def test_box_csv_round_trips_ids_with_commas_quotes_and_newlines(tmp_path):
    rng = np.random.default_rng()
    ids = ['take 1, "best"', "cut\nfinal", "plain_id", "semi;colon 'q'"]
    rows = []
    for video in ids:
        x1, y1 = rng.uniform(0, 0.5, 2).round(3)
        rows.append(BoxRow(video, int(rng.integers(902, 1798)), (x1, y1, x1 + 0.25, y1 + 0.25),
                           int(rng.integers(1, 81)), round(float(rng.uniform(0, 1)), 6)))
    path = tmp_path / "boxes.csv"
    write_boxes_csv(path, rows)
    back = read_boxes_csv(path)
    assert [r.video for r in back] == ids
    assert [r.sec for r in back] == [r.sec for r in rows]
    assert [r.action for r in back] == [r.action for r in rows]
    np.testing.assert_allclose([r.box for r in back], [r.box for r in rows], atol=5e-4)
    # an ordinary id is written exactly as AVA's released files write it: no quotes
    assert path.read_text().splitlines()[-1].startswith("semi;colon 'q',")
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left"
