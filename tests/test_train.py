# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Training: the reference's recipe, the artefacts of a run, nothing lost to a kill (real
SIGKILLs and a SIGTERM of a training subprocess), non-finite losses, damaged checkpoints, and
two processes under torchrun staying in sync."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ava_fixtures import CONFIG, ROOT, make_tiny_ava, overrides

from memvit import train as memvit_train
from memvit.checkpoint import read_checkpoint
from memvit.cli import UserError
from memvit.config import build_model, load_config
from memvit.data.ava import ava_collate
from memvit.data.loader import build_loader
from memvit.training.distributed import World
from memvit.training.solver import build_schedule, lr_scale, parameter_groups
from memvit.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


# ---------------------------------------------------------------------------------- the recipe
def test_schedule_is_the_reference_formula():
    """MeMViT-16's recipe: linear warm-up from 1e-6 over 5 epochs to 0.075, then cosine to 1e-6
    at epoch 30 (values worked out by hand from the reference's formula)."""
    schedule = build_schedule(load_config(str(ROOT / "configs" / "ava_16.yaml")))
    assert schedule(0.0) == pytest.approx(1e-6)
    assert schedule(2.5) == pytest.approx(1e-6 + 2.5 * (0.075 - 1e-6) / 5)
    assert schedule(5.0) == pytest.approx(0.075)
    assert schedule(17.5) == pytest.approx(1e-6 + (0.075 - 1e-6) * 0.5)  # half-way through the cosine
    assert schedule(30.0) == pytest.approx(1e-6)
    lrs = [schedule(e / 10) for e in range(300)]
    assert max(lrs) == pytest.approx(0.075, rel=1e-4) and lrs.index(max(lrs)) == 50


def test_learning_rate_scales_with_the_global_batch():
    """MeMViT-24's recipe trains on 16 machines: BASE_LR 0.075 per machine's 16 clips -> 1.2."""
    cfg = load_config(str(ROOT / "configs" / "ava_24.yaml"))
    scale = lr_scale(cfg, global_batch=16 * cfg.TRAIN.BATCH_SIZE)
    assert scale == 16 and build_schedule(cfg, scale).base_lr == pytest.approx(1.2)
    assert lr_scale(load_config(str(ROOT / "configs" / "synthetic.yaml")), global_batch=64) == 1.0


def test_no_weight_decay_where_the_reference_has_none():
    cfg = load_config(str(ROOT / "configs" / "ava_16.yaml"), ["MVIT.DEPTH", "2", "MVIT.DIM_MUL", "[[1, 2.0]]",
                                                              "MVIT.HEAD_MUL", "[[1, 2.0]]"])
    model = build_model(cfg)
    decay, no_decay = (set(map(id, g["params"])) for g in parameter_groups(model, cfg))
    for name, param in model.named_parameters():
        expected_no_decay = param.ndim <= 1 or name.endswith(".bias")  # biases, LayerNorms
        assert (id(param) in no_decay) == expected_no_decay, name
    assert id(model.cls_token) in decay and id(model.blocks[0].attn.rel_pos_h) in decay  # ZERO_DECAY_POS_CLS False
    cfg.MVIT.ZERO_DECAY_POS_CLS = cfg.MVIT.ZERO_DECAY_POS_CLS_EXEMPT = True  # the intent (ours; the reference: none)
    _, no_decay = (set(map(id, g["params"])) for g in parameter_groups(model, cfg))
    assert id(model.cls_token) in no_decay and id(model.blocks[0].attn.rel_pos_h) in no_decay


# ---------------------------------------------------------------------------------- a run's artefacts
def test_training_run_leaves_checkpoints_logs_curves_and_an_evaluation(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert memvit_train.main(["--cfg", CONFIG, *overrides(tiny_data, out)]) == 0
    text = capsys.readouterr().out
    assert "val frame-mAP" in text and "AVA frame-mAP@0.5" in text and "tensorboard --logdir" in text
    names = set(os.listdir(out / "checkpoints"))
    assert {"checkpoint_last.pyth", "checkpoint_best.pyth", "checkpoint_epoch_00001.pyth",
            "checkpoint_epoch_00002.pyth"} <= names
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert [r["global_iteration"] for r in train] == list(range(1, len(train) + 1))
    assert all(math.isfinite(r["loss"]) and r["lr"] > 0 and r["clips_per_second"] > 0 for r in train)
    assert [r["epoch"] for r in records if r["type"] == "eval"] == [1, 2]
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out / "tensorboard"))
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "eval_test" / "predictions.csv").is_file() and (out / "eval_epoch_00002" / "summary.json").is_file()
    last = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")
    assert last["epoch"] == 1 and last["train_state"]["progress"]["epoch"] == 2  # PySlowFast: 0-based epoch done
    assert "model_state" in last and "optimizer_state" in last and isinstance(last["cfg"], str)


def test_a_short_training_learns_what_a_clip_shows(tmp_path, gen, capsys):
    """The pipeline learns, end to end (data, loader, model, loss, optimizer, evaluation): 8 epochs of the
    quick start's model (memory off: the cue is in every clip) at 64 px on 6 long-range synthetic videos, and
    the two classes any clip shows (the room lit orange / lime: "see" the light) score far above chance on
    unseen videos. Seeds 0-2 of this recipe: AP 0.79-0.97 against chance 0.13-0.27; a broken loss, label
    order or box transform stays near chance."""
    from memvit.data import synthetic
    from memvit.experiments.memory_ablation import data_overrides

    seed = int(torch.randint(2**31, (1,), generator=gen))
    data = synthetic.generate(tmp_path / "data", videos_train=6, videos_val=2, seconds=24, size=(64, 85),
                              seed=seed % 1000, classes=synthetic.LONG_RANGE_CLASSES, progress=False)
    opts = data_overrides(data.root) + [
        "DATA.TRAIN_CROP_SIZE", "64", "DATA.TEST_CROP_SIZE", "64", "DATA.TRAIN_JITTER_SCALES", "[64,72]",
        "SOLVER.MAX_EPOCH", "8", "TRAIN.EVAL_PERIOD", "0", "MEMVIT.ENABLE", "False", "DATA_LOADER.NUM_WORKERS", "0",
        "TRAIN.STREAM_GROUPS", "4",  # 132 keyframes: streams of 9 (the quick start's 16 groups: 3, a third seen twice)
        "LOG_PERIOD", "1000", "RNG_SEED", str(seed % 3), "OUTPUT_DIR", str(tmp_path / "run")]
    assert memvit_train.main(["--cfg", CONFIG, *opts]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "run" / "eval_test" / "summary.json").read_text())
    ids = {c.behaviour: str(i + 1) for i, c in enumerate(synthetic.LONG_RANGE_CLASSES)}
    see = [ids["see_signal_orange"], ids["see_signal_lime"]]
    ap = [summary["per_class"][k] for k in see]
    chance = [summary["chance_per_class"][k] for k in see]
    # Two test videos hold few lights of each colour: one class can land low (0.40 against chance 0.13 once,
    # CI seed 1289776721), so the two together are held to the margin and each one to a smaller one.
    assert sum(ap) / 2 >= sum(chance) / 2 + 0.3, (ap, chance, summary["per_class"])
    assert all(a >= c + 0.15 for a, c in zip(ap, chance)), (ap, chance, summary["per_class"])


# ---------------------------------------------------------------------------------- the data in stream order
def test_training_and_evaluation_load_the_data_alike(tiny_data, tmp_path):
    """One DataLoader builder for both (memvit.data.loader): the config's workers, ava_collate, no
    pinned memory on the CPU, worker seeds from a generator of the loader's own (RNG_SEED + epoch),
    and workers that leave SIGTERM to the main process: an evaluation's worker survives it too."""
    cfg = load_config(CONFIG, overrides(tiny_data, tmp_path, {"DATA_LOADER.NUM_WORKERS": 1}))
    trainer = Trainer(cfg, World())
    trainer.progress.epoch = 3
    for split, loader, seed in (("train", trainer.loader(), cfg.RNG_SEED + 3),
                                ("val", build_loader(cfg, "val"), cfg.RNG_SEED)):
        assert loader.num_workers == 1 and loader.collate_fn is ava_collate and not loader.pin_memory, split
        assert loader.generator.initial_seed() == seed, split
        batches = iter(loader)
        next(batches)
        os.kill(batches._workers[0].pid, signal.SIGTERM)  # a cluster's pre-emption reaches every process
        time.sleep(0.5)
        assert len(list(batches)) == len(loader) - 1, split


# ---------------------------------------------------------------------------------- nothing lost
def launch(args: list[str], kill_in_save: int | None = None) -> subprocess.Popen:
    """``python -m memvit.train ARGS``; ``kill_in_save=N``: SIGKILLed inside its N-th checkpoint write
    (tests/train_killed_in_save.py)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
                   "PYTHONPATH": str(ROOT)}
    command = (["-m", "memvit.train"] if kill_in_save is None else
               [str(ROOT / "tests" / "train_killed_in_save.py"), str(kill_in_save)])
    return subprocess.Popen([sys.executable, *command, *args], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_iteration(log: Path, proc: subprocess.Popen, skip_lines: int, iteration: int,
                       timeout: float = 240) -> None:
    """Until the run logs ``iteration`` (counting only lines after ``skip_lines``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early:\n{proc.stdout.read()}")
        if log.is_file():
            for line in log.read_text().splitlines()[skip_lines:]:
                record = json.loads(line)
                if record["type"] == "train" and record["global_iteration"] >= iteration:
                    return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"iteration {iteration} not reached in {timeout} s")


def lines(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.is_file() else 0


def final_state(out: Path) -> dict:
    checkpoint = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")
    return {"model": checkpoint["model_state"], "optimizer": checkpoint["optimizer_state"]["state"]}


def assert_identical(a: dict, b: dict) -> None:
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for index, state in a["optimizer"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"][index][name])), (index, name)


def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_data, tmp_path):
    """An uninterrupted run against one stopped by SIGTERM, SIGKILLed mid-epoch after an
    evaluation, SIGKILLed inside a checkpoint write, and finished by AUTO_RESUME: identical
    weights and optimizer state, bit for bit (one thread, deterministic CPU kernels)."""
    extra = {"TRAIN.CHECKPOINT_PERIOD_ITERS": 2, "DATA_LOADER.NUM_WORKERS": 1, "TEST.ENABLE": False}
    reference = tmp_path / "uninterrupted"
    run = launch(["--cfg", CONFIG, *overrides(tiny_data, reference, extra)])
    assert run.wait(timeout=600) == 0, run.stdout.read()
    iterations = read_checkpoint(reference / "checkpoints" / "checkpoint_last.pyth")["train_state"]["iters_per_epoch"]
    assert iterations >= 4

    out = tmp_path / "interrupted"
    args = ["--cfg", CONFIG, *overrides(tiny_data, out, extra)]
    log = out / "log.jsonl"
    # 1. SIGTERM (pre-emption) mid-epoch: a checkpoint at the next iteration, a clean exit.
    proc = launch(args)
    wait_for_iteration(log, proc, 0, 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    assert "stopped by SIGTERM" in proc.stdout.read()
    # (global: on a loaded machine the signal may land after the epoch's last iteration, so the stop
    # falls in the next epoch, whose in-epoch count restarts)
    stopped = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")["train_state"]["progress"]
    assert stopped["global_iteration"] >= 3
    # 2. SIGKILL in the second epoch, after the first epoch's evaluation.
    proc = launch(args)
    wait_for_iteration(log, proc, lines(log), iterations + 2)
    proc.kill()
    proc.wait(timeout=60)
    # 3. SIGKILL inside the next checkpoint write (after the temporary file, before the rename).
    proc = launch(args, kill_in_save=1)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert any(".tmp-" in name for name in os.listdir(out / "checkpoints"))
    # 4. Resume to the end.
    proc = launch(args)
    assert proc.wait(timeout=600) == 0, proc.stdout.read()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(1 for e in events if e.get("event") == "resumed") == 3
    assert_identical(final_state(out), final_state(reference))


def test_stream_groups_resume_exactly_with_every_groups_memory(tiny_data, tmp_path):
    """TRAIN.STREAM_GROUPS 2: a run stopped mid-epoch (SIGTERM) stores the memory of the group that
    waits as well as the running one's, and its resumption ends bit for bit where the uninterrupted
    run ends (without the waiting group's memory it would not)."""
    extra = {"TRAIN.STREAM_GROUPS": 2, "TRAIN.BATCH_SIZE": 2, "SOLVER.MAX_EPOCH": 1, "DATA_LOADER.NUM_WORKERS": 1,
             "TEST.ENABLE": False}
    reference = tmp_path / "uninterrupted"
    run = launch(["--cfg", CONFIG, *overrides(tiny_data, reference, extra)])
    assert run.wait(timeout=600) == 0, run.stdout.read()
    out = tmp_path / "interrupted"
    args = ["--cfg", CONFIG, *overrides(tiny_data, out, extra)]
    proc = launch(args)
    wait_for_iteration(out / "log.jsonl", proc, 0, 4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    stopped = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")
    assert stopped["train_state"]["iters_per_epoch"] >= 8
    assert 4 <= stopped["train_state"]["progress"]["iteration"] < stopped["train_state"]["iters_per_epoch"]
    waiting = stopped["rank_states"][0]["memory_groups"]["waiting"]
    assert len(waiting) == 1 and waiting[0][1]["video_ids"]  # the other group's clips, kept
    proc = launch(args)
    assert proc.wait(timeout=600) == 0, proc.stdout.read()
    assert_identical(final_state(out), final_state(reference))


@pytest.mark.parametrize("groups, warned", [(2, False), (4, True)])
def test_stream_groups_too_many_for_the_data_are_said_at_start(tiny_data, tmp_path, caplog, groups, warned):
    """Streams shorter than the memory's reach (many groups on little data) fill the memory seldom: said at start."""
    cfg = load_config(CONFIG, overrides(tiny_data, tmp_path, {"TRAIN.STREAM_GROUPS": groups, "TRAIN.BATCH_SIZE": 2}))
    with caplog.at_level(logging.WARNING, logger="memvit.training.trainer"):
        trainer = Trainer(cfg, World())
    assert trainer.sampler.streams == 2 * groups
    assert ("seldom full" in caplog.text) == warned
    with pytest.raises(UserError, match="TRAIN.STREAM_GROUPS 0"):
        Trainer(load_config(CONFIG, overrides(tiny_data, tmp_path, {"TRAIN.STREAM_GROUPS": 0})), World())


def test_damaged_checkpoint_is_skipped_on_resume(tiny_data, tmp_path, caplog):
    out = tmp_path / "run"
    first = {"SOLVER.MAX_EPOCH": 1, "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False}
    assert memvit_train.main(["--cfg", CONFIG, *overrides(tiny_data, out, first)]) == 0
    last = out / "checkpoints" / "checkpoint_last.pyth"
    os.unlink(last)  # it is a hard link to the epoch file; a damaged copy replaces it
    damaged = (out / "checkpoints" / "checkpoint_epoch_00001.pyth").read_bytes()[:1000]
    last.write_bytes(damaged)
    second = {"SOLVER.MAX_EPOCH": 2, "TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False}
    with caplog.at_level(logging.WARNING, logger="memvit.training.trainer"):
        assert memvit_train.main(["--cfg", CONFIG, *overrides(tiny_data, out, second)]) == 0
    assert any("skipping checkpoint" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)
    assert read_checkpoint(last)["train_state"]["progress"]["epoch"] == 2
    # The damaged file was not overwritten: it is kept aside, as it was.
    assert (out / "checkpoints" / "checkpoint_last.pyth.damaged").read_bytes() == damaged


def test_non_finite_loss_stops_naming_the_iteration(tiny_data, tmp_path, caplog):
    out = tmp_path / "run"
    broken = {"DATA.STD": "[0.0, 0.0, 0.0]", "TEST.ENABLE": False}  # every input becomes inf or nan
    with caplog.at_level(logging.ERROR, logger="memvit.train"):
        assert memvit_train.main(["--cfg", CONFIG, *overrides(tiny_data, out, broken)]) == 1
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "non-finite loss" in message and "epoch 1, iteration 1" in message and "none" in message
    assert not os.listdir(out / "checkpoints") if (out / "checkpoints").exists() else True


def test_two_processes_under_torchrun_stay_in_sync(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    extra = {"SOLVER.MAX_EPOCH": 1, "TRAIN.EVAL_PERIOD": 1, "TEST.ENABLE": False, "TRAIN.BATCH_SIZE": 4}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "memvit.train", "--cfg", CONFIG, *overrides(tiny_data, out, extra)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    assert "2 processes x 2 streams = global batch 4" in text  # TRAIN.BATCH_SIZE is one machine's
    assert "all 2 processes hold identical weights" in text
    checkpoint = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")
    assert len(checkpoint["rank_states"]) == 2 and checkpoint["train_state"]["world_size"] == 2


def test_a_log_record_cut_by_a_kill_does_not_break_the_log(tmp_path):
    """log.jsonl is appended line by line: a kill mid-record leaves half a line; the next record
    starts on its own line and the reader skips the broken one (it crashed the resumed run's plot)."""
    from memvit.training.run_log import RunLog, read_run_log

    path = tmp_path / "log.jsonl"
    path.write_text('{"type": "train", "global_iteration": 1, "loss": 0.5}\n{"type": "train", "glob')
    log = RunLog.__new__(RunLog)  # the writer alone, without TensorBoard
    log.enabled, log.path = True, str(path)
    log._write({"type": "eval", "epoch": 1, "map": 0.25})
    train, evals = read_run_log(str(path))
    assert list(train) == [1] and evals == {1: 0.25}
    assert path.read_text().splitlines()[-1].startswith('{"time"')
