# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit.eval``: the model over the test split in stream order, with memory, scored."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ava_fixtures import CONFIG, make_tiny_ava, overrides

from memvit import eval as memvit_eval
from memvit import train as memvit_train
from memvit.checkpoint import save_checkpoint
from memvit.cli import load_model
from memvit.config import build_model, load_config
from memvit.data.ava_files import read_boxes_csv
from memvit.data.loader import build_loader
from memvit.evaluation.engine import predict

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


def test_eval_command_writes_predictions_and_scores(tiny_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert memvit_eval.main(["--cfg", CONFIG, "--no-progress", *overrides(tiny_data, out)]) == 0
    text = capsys.readouterr().out
    assert "AVA frame-mAP@0.5 (pyslowfast)" in text and "clips/s" in text
    folder = out / "eval_test"
    summary = json.loads((folder / "summary.json").read_text())
    assert 0.0 <= summary["map"] <= 1.0 and summary["clips"] > 0
    predictions = read_boxes_csv(folder / "predictions.csv")
    assert {p.action for p in predictions} == set(range(1, 9))  # every box scored for every class
    with open(folder / "per_class_ap.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
    assert (folder / "per_class_ap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predictions_are_the_models_outputs_in_stream_order(tiny_data, tmp_path):
    """An independent run of the model over the same batches, memory carried by hand."""
    cfg = load_config(CONFIG, overrides(tiny_data, tmp_path, {"TEST.BATCH_SIZE": 2}))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    loader = build_loader(cfg, "test")
    predictions = predict(model, loader, progress=False)
    assert model.memory.num_cached == 0  # predict() restored the (empty) memory it found
    expected = []
    with torch.no_grad():
        for batch in loader:
            expected.append(model(batch["video"], video_ids=batch["video_ids"], boxes=batch["boxes"]).numpy())
    np.testing.assert_allclose(predictions.scores, np.concatenate(expected), rtol=1e-6, atol=1e-7)


def test_reference_form_evaluates_a_checkpoint(tiny_data, tmp_path, capsys):
    """``python -m memvit.train --cfg CFG TRAIN.ENABLE False TEST.CHECKPOINT_FILE_PATH PATH``."""
    cfg = load_config(CONFIG, overrides(tiny_data, tmp_path))
    torch.manual_seed(1)
    model = build_model(cfg)
    path = tmp_path / "weights.pyth"
    save_checkpoint(path, model, epoch=3, cfg=cfg)
    args = ["--cfg", CONFIG, *overrides(tiny_data, tmp_path / "out"), "TRAIN.ENABLE", "False",
            "TEST.CHECKPOINT_FILE_PATH", str(path)]
    assert memvit_train.main(args) == 0
    assert "AVA frame-mAP" in capsys.readouterr().out
    scores = read_boxes_csv(tmp_path / "out" / "eval_test" / "predictions.csv")
    loaded = load_model(cfg, str(path))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert scores
