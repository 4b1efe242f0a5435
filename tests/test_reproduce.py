# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit.reproduce``: a published model by name (from a local stand-in of the authors'
server), evaluated on an AVA-layout set, measured against its published numbers, reported."""

from __future__ import annotations

import json
import re

import pytest
import torch
from ava_fixtures import CONFIG, make_tiny_ava, overrides
from weights_fixtures import official_bytes, register, serve

from memvit import eval as memvit_eval
from memvit import flops, reproduce
from memvit.config import build_model, load_config, model_kwargs

pytestmark = pytest.mark.usefixtures("one_thread")
NAME = "Tiny_16_test_pt"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


def model_options(data, out) -> list[str]:
    """The tiny model's overrides (configs/synthetic.yaml, smaller), without the data paths and OUTPUT_DIR
    (the command sets those)."""
    items = overrides(data, out)
    pairs = [(k, v) for k, v in zip(items[0::2], items[1::2]) if not k.startswith("AVA.") and k != "OUTPUT_DIR"]
    return [x for pair in pairs for x in pair]


@pytest.fixture
def published(tiny_data, tmp_path, server, hub_cache, monkeypatch, gen):
    """A tiny AVA row in the published table, its checkpoint (fresh random weights, official layout)
    served by the local server; returns (entry fields, checkpoint path, model options)."""
    options = model_options(tiny_data, tmp_path)
    cfg = load_config(CONFIG, options)
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    model = build_model(cfg)
    path = tmp_path / "tiny_pt.pyth"
    data = official_bytes(model, path)
    arch = {k: v for k, v in model_kwargs(cfg).items() if k not in ("head", "num_classes")}
    fields = dict(preset="memvit_16_16x4", keys=("tiny_pt",), head="ava", num_classes=cfg.MODEL.NUM_CLASSES,
                  config=CONFIG, model_kwargs=arch)
    entry = register(monkeypatch, NAME, **fields, published_map=0.0)
    serve(server, entry, data, monkeypatch)
    return fields, path, options, model


def oracle_numbers(path, options, model, tiny_data, tmp_path, capture) -> tuple[float, float, float]:
    """mAP from ``python -m memvit.eval`` on the same file and data; params of the Kinetics classifier
    from the AVA model's own parameters (box block and 8-way head out, a 400-way head in); GFLOPs
    with the memory filled from ``python -m memvit.flops`` with the Kinetics head."""
    assert memvit_eval.main(["--cfg", CONFIG, "--checkpoint", str(path), "--no-progress",
                             *overrides(tiny_data, tmp_path / "oracle")]) == 0
    mAP = json.loads((tmp_path / "oracle" / "eval_test" / "summary.json").read_text())["map"] * 100
    dim = model.head.projection.in_features
    params = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.box_blocks.parameters()) \
        - sum(p.numel() for p in model.head.projection.parameters()) + 400 * dim + 400
    capture.readouterr()
    assert flops.main(["--cfg", CONFIG, *options, "DETECTION.ENABLE", "False", "MODEL.NUM_CLASSES", "400",
                       "MODEL.HEAD_ACT", "softmax"]) == 0
    counts = re.findall(r"memory clips?\s+([\d.]+)", capture.readouterr().out)
    return mAP, params / 1e6, float(counts[-1])


def test_reproduce_measures_a_published_row(published, tiny_data, tmp_path, monkeypatch, capfd):
    fields, path, options, model = published
    mAP, params_m, gflops = oracle_numbers(path, options, model, tiny_data, tmp_path, capfd)
    register(monkeypatch, NAME, **fields, published_map=round(mAP, 1) + 0.3, published_params_m=round(params_m, 1),
             published_gflops=round(gflops * 1.005, 3))
    out = tmp_path / "report"
    argv = ["--data", str(tiny_data), "--models", NAME, "--out", str(out), "--device", "cpu", "--no-progress",
            *options]
    assert reproduce.main(argv) == 0
    printed = capfd.readouterr()
    assert "CC-BY-NC 4.0" in printed.err and NAME in printed.out and "**differs**" not in printed.out
    report = json.loads((out / "reproduce.json").read_text())
    (row,) = report["rows"]
    assert row["map"] == pytest.approx(mAP, abs=1e-9) and row["params_m"] == pytest.approx(params_m, abs=1e-12)
    assert row["gflops"] == pytest.approx(gflops, abs=5e-4) and row["map_ok"] and row["params_ok"] and row["gflops_ok"]
    assert row["map_delta"] == pytest.approx(mAP - (round(mAP, 1) + 0.3))
    assert report["tolerance"]["map_points"] == reproduce.MAP_TOLERANCE
    markdown = (out / "reproduce.md").read_text()
    assert f"| {NAME} | {mAP:.2f} |" in markdown and "SlowFast issues #66" in markdown
    assert (out / NAME / "predictions.csv").is_file() and (out / NAME / "summary.json").is_file()

    # an earlier report is not replaced unasked; a number outside its tolerance is said and exits 1
    assert reproduce.main(argv) == 2
    assert "--overwrite" in capfd.readouterr().err
    register(monkeypatch, NAME, **fields, published_map=round(mAP + 0.6, 2), published_params_m=round(params_m, 1),
             published_gflops=gflops)
    assert reproduce.main([*argv[:-len(options)], "--overwrite", "--no-gflops", *options]) == 1
    printed = capfd.readouterr().out
    assert "**differs**" in printed and "not counted | 0.04 | - |" in printed
    assert "Downloading" not in capfd.readouterr().err  # the second run read the cache


def test_reproduce_user_errors(published, tmp_path, capfd):
    assert reproduce.main(["--data", str(tmp_path / "nowhere"), "--models", NAME, "--out", str(tmp_path / "o")]) == 2
    assert "prepare_ava" in capfd.readouterr().err
    assert reproduce.main(["--data", str(tmp_path), "--models", "MeMViT_16L_16x4_K400"]) == 2
    err = capfd.readouterr().err
    assert "not a published AVA model" in err and "MeMViT_24L_32x3_K700pt" in err


def test_the_shipped_rows_are_the_authors_table():
    rows = reproduce.rows_to_run(None)
    assert [(r.name, r.config, r.published_map, r.published_params_m, r.published_gflops) for r in rows] == [
        ("MeMViT_16L_16x4_K400pt", "ava_16.yaml", 29.3, 35.4, 58.7),
        ("MeMViT_24L_32x3_K600pt", "ava_24.yaml", 32.3, 52.6, 211.7),
        ("MeMViT_24L_32x3_K700pt", "ava_24_k700.yaml", 34.4, 52.6, 211.7)]
    for row in rows:  # each config evaluates its own published weights on the model the weights fit
        cfg = reproduce.row_config(row, "data/ava", "output/x", [])
        assert cfg.TEST.CHECKPOINT_FILE_PATH == row.name and cfg.AVA.FRAME_DIR == "data/ava/frames"
        with torch.device("meta"):
            shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in (build_model(cfg), row.build())]
        assert shapes[0] == shapes[1]


def test_config_keys_take_a_published_name(published):
    """TEST.CHECKPOINT_FILE_PATH (what memvit.eval and memvit.train's evaluation load) and
    TRAIN.CHECKPOINT_FILE_PATH (the trainer's initialisation) resolve a published name."""
    from types import SimpleNamespace

    from memvit.cli import load_model
    from memvit.training.trainer import Trainer

    fields, path, options, model = published
    cfg = load_config(CONFIG, [*options, "TEST.CHECKPOINT_FILE_PATH", NAME, "TRAIN.CHECKPOINT_FILE_PATH", NAME,
                               "TRAIN.CHECKPOINT_EPOCH_RESET", "True"])
    expected = model.state_dict()
    loaded = load_model(cfg, cfg.TEST.CHECKPOINT_FILE_PATH).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    torch.manual_seed(12345)
    trainer = SimpleNamespace(cfg=cfg, module=build_model(cfg), world=SimpleNamespace(rank=0))
    Trainer.initialise(trainer)
    assert all(torch.equal(trainer.module.state_dict()[k], v) for k, v in expected.items())
