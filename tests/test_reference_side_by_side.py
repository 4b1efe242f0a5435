# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""benchmarks/reference_side_by_side.py: the authors' MeMViT (a checkout, never vendored) and ours,
same weights and clips, give the same scores; run on a two-block model so it takes seconds.

The checkout is ``$MEMVIT_REFERENCE_CHECKOUT``, else /tmp/memvit_ref when it exists
(``git clone https://github.com/facebookresearch/MeMViT /tmp/memvit_ref``); without one the
comparison is skipped.
"""

from __future__ import annotations

import os

import pytest
import torch

from benchmarks.reference_side_by_side import main

CHECKOUT = os.environ.get("MEMVIT_REFERENCE_CHECKOUT") or "/tmp/memvit_ref"
HAVE_CHECKOUT = os.path.isfile(os.path.join(CHECKOUT, "memvit", "models", "video_model_builder.py"))
needs_checkout = pytest.mark.skipif(
    not HAVE_CHECKOUT, reason=f"no MeMViT reference checkout at {CHECKOUT} (set MEMVIT_REFERENCE_CHECKOUT to one)")

# MeMViT-16's recipe with two blocks (one attending memory, one excluded), 8x64x64 clips and 16
# channels; the same overrides go to both configs. (8 frames at least: with fewer, the reference's
# temporal memory table is too short for its own index.)
TINY = ["MVIT.DEPTH", "2", "MVIT.EMBED_DIM", "16", "MVIT.DIM_MUL", "[[1, 2.0]]", "MVIT.HEAD_MUL", "[[1, 2.0]]",
        "MVIT.POOL_Q_STRIDE", "[[0, 1, 1, 1], [1, 1, 2, 2]]", "MEMVIT.EXCLUDE_LAYERS", "[1]",
        "DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64",
        "DETECTION.SPATIAL_SCALE_FACTOR", "8"]


def _table(text: str) -> dict[str, dict[str, str]]:
    """The markdown table of the report: {phase: {column: cell}}."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    header, separator, *body = rows
    assert all(set(cell) == {"-"} for cell in separator)
    assert all(len(row) == len(header) for row in body)
    return {row[0]: dict(zip(header, row)) for row in body}


@needs_checkout
def test_reference_and_ours_give_the_same_scores(tmp_path, gen):
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    out = tmp_path / "side_by_side.md"
    code = main(["--reference", CHECKOUT, "--clips", "2", "--train-steps", "1", "--threads", "1", "--quiet",
                 "--seed", str(seed), "--out", str(out), *TINY])
    assert code == 0
    text = out.read_text()
    table = _table(text)
    assert list(table) == ["inference", "train step"]
    for phase in table.values():
        reference, ours = float(phase["reference s/clip"]), float(phase["ours fp32 s/clip"])
        assert reference > 0 and ours > 0
        assert float(phase["reference/ours fp32"].rstrip("x")) == pytest.approx(reference / ours, rel=0.05, abs=0.01)
    assert float(table["inference"]["max abs score diff fp32"]) < 1e-5
    assert "Stand-ins for the reference's imports" in text


def test_not_a_checkout_is_the_users_error(tmp_path, capsys):
    assert main(["--reference", str(tmp_path), *TINY]) == 2
    assert "not a MeMViT checkout" in capsys.readouterr().err


def test_existing_output_is_kept(tmp_path, capsys):
    out = tmp_path / "report.md"
    out.write_text("mine")
    checkout = CHECKOUT if HAVE_CHECKOUT else str(tmp_path)
    assert main(["--reference", checkout, "--out", str(out), *TINY]) == 2
    assert out.read_text() == "mine"
    capsys.readouterr()
