# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Resuming never loses a run: a checkpoint that does not fit is refused (and kept), a run is never
started afresh over another's checkpoints, the checkpoint with the most iterations is resumed
whatever the file times, a larger SOLVER.MAX_EPOCH extends the run without a jump of the learning
rate (bit-exact across a second interruption), other schedule changes are refused, and every
start's config is kept."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from ava_fixtures import CONFIG, make_tiny_ava, overrides

from memvit import train as memvit_train
from memvit.checkpoint import read_checkpoint
from memvit.config import load_config
from memvit.training.resume import RunSchedule, training_checkpoints
from memvit.training.solver import build_schedule
from memvit.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = {"TRAIN.EVAL_PERIOD": 0, "TEST.ENABLE": False, "TRAIN.CHECKPOINT_PERIOD": 1}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_ava(tmp_path_factory.mktemp("ava"))


def train(data: Path, out: Path, monkeypatch=None, stop_at: int | None = None, **extra) -> int:
    """``python -m memvit.train`` in this process; ``stop_at``: stop as SIGTERM does after that global iteration."""
    if stop_at is not None:
        step = Trainer.step

        def stopping(self, batch):
            loss = step(self, batch)
            if self.progress.global_iteration + 1 == stop_at:
                self.stop_requested = True
            return loss

        monkeypatch.setattr(Trainer, "step", stopping)
    try:
        return memvit_train.main(["--cfg", CONFIG, *overrides(data, out, {**QUIET, **extra})])
    finally:
        if stop_at is not None:
            monkeypatch.undo()


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory) -> Path:
    """A finished one-epoch run."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 1}) == 0
    return out


# ---------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("change, named", [
    ({"MVIT.EMBED_DIM": 24}, ["MVIT.EMBED_DIM: 16 -> 24", "wrong shape", "patch_embed.proj.weight"]),
    ({"MVIT.BOX_DEPTH": 2}, ["MVIT.BOX_DEPTH: 1 -> 2", "only in the model"])])  # another head
def test_a_checkpoint_of_another_model_is_refused_and_kept(tiny_data, finished, tmp_path, capsys, change, named):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = hashes(out / "checkpoints")
    capsys.readouterr()
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 1}, **change) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not fit the model" in err and "Traceback" not in err
    for text in named:  # the config keys that differ, and the tensors (keys and shapes)
        assert text in err, text
    assert "checkpoint_last.pyth" in err and "OUTPUT_DIR" in err and "checkpoints are untouched" in err
    assert hashes(out / "checkpoints") == before  # nothing overwritten, nothing added


def test_auto_resume_false_never_overwrites_an_earlier_run(tiny_data, finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = hashes(out / "checkpoints")
    capsys.readouterr()
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 1, "TRAIN.AUTO_RESUME": False}) == 2
    err = capsys.readouterr().err
    assert "TRAIN.AUTO_RESUME False" in err and "checkpoint_last.pyth" in err and "another OUTPUT_DIR" in err
    assert hashes(out / "checkpoints") == before
    fresh = tmp_path / "fresh"  # an empty OUTPUT_DIR: AUTO_RESUME False trains from scratch
    assert train(tiny_data, fresh, **{"SOLVER.MAX_EPOCH": 1, "TRAIN.AUTO_RESUME": False}) == 0


def test_a_file_that_is_not_a_training_checkpoint_is_refused(tiny_data, finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    plain = out / "checkpoints" / "checkpoint_epoch_00002.pyth"
    torch.save({"model_state": read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")["model_state"]}, plain)
    before = hashes(out / "checkpoints")
    capsys.readouterr()
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 2}) == 2
    assert "not a checkpoint of memvit.train" in capsys.readouterr().err
    assert hashes(out / "checkpoints") == before


@pytest.mark.parametrize("change, key", [({"SOLVER.BASE_LR": 0.01}, "SOLVER.BASE_LR: 0.001 -> 0.01"),
                                         ({"SOLVER.WARMUP_EPOCHS": 2.0}, "SOLVER.WARMUP_EPOCHS: 1.0 -> 2.0"),
                                         ({"SOLVER.COSINE_END_LR": 0.0}, "SOLVER.COSINE_END_LR: 1e-05 -> 0.0"),
                                         ({"SOLVER.MAX_EPOCH": 0}, "SOLVER.MAX_EPOCH: 1.0 -> 0.0")])
def test_other_schedule_changes_are_refused_with_both_values(tiny_data, finished, tmp_path, capsys, change, key):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    before = hashes(out / "checkpoints")
    capsys.readouterr()
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 1, **change}) == 2
    err = capsys.readouterr().err
    assert "learning-rate schedule" in err and key in err and "docs/training.md" in err
    assert hashes(out / "checkpoints") == before


# ---------------------------------------------------------------------------------- which checkpoint
def test_the_checkpoint_with_most_iterations_is_resumed_whatever_the_file_times(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 2}) == 0
    checkpoints = out / "checkpoints"
    first = checkpoints / "checkpoint_epoch_00001.pyth"
    future = time.time() + 3600
    os.utime(first, (future, future))  # the older checkpoint is now the newest file
    assert training_checkpoints(str(checkpoints))[0].endswith(("checkpoint_last.pyth",
                                                                            "checkpoint_epoch_00002.pyth"))
    before = hashes(checkpoints)
    lines = len(records(out))
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 2}) == 0
    new = records(out)[lines:]
    resumed = [r for r in new if r.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["epoch"] == 2 and not [r for r in new if r["type"] == "train"]
    assert hashes(checkpoints) == before  # a finished run: nothing retrained, nothing rewritten


# ---------------------------------------------------------------------------------- extending a run
def test_a_larger_max_epoch_extends_the_run_without_a_jump(tiny_data, finished, tmp_path, capsys):
    """The README's example: a finished run resumed with a larger SOLVER.MAX_EPOCH. The cosine of
    the new length would jump back up to near BASE_LR; the extension continues from the LR the run
    ended at (COSINE_END_LR) and stays there."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    end_lr = load_config(CONFIG).SOLVER.COSINE_END_LR
    before = [r["lr"] for r in records(out) if r["type"] == "train"]
    lines = len(records(out))
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 2}) == 0
    after = [r["lr"] for r in records(out)[lines:] if r["type"] == "train"]
    assert after and max(after) <= before[-1] * (1 + 1e-9) and all(lr == pytest.approx(end_lr) for lr in after)
    events = [r for r in records(out)[lines:] if r.get("event") == "schedule_extended"]
    assert len(events) == 1 and events[0]["from_epoch"] == 1.0 and events[0]["to_epoch"] == 2.0
    schedule = read_checkpoint(out / "checkpoints" / "checkpoint_last.pyth")["train_state"]["schedule"]
    assert schedule["base"]["max_epoch"] == 1 and schedule["extensions"] == [
        {"from_epoch": 1.0, "from_lr": pytest.approx(end_lr), "to_epoch": 2.0, "end_lr": pytest.approx(end_lr)}]
    # Every start's config is kept: the first one and this one, named by the iteration it started at.
    iterations = read_checkpoint(out / "checkpoints" / "checkpoint_epoch_00001.pyth")["train_state"]["progress"]
    second = out / f"config_start_{iterations['global_iteration']:08d}.yaml"
    assert "MAX_EPOCH: 1\n" in (out / "config.yaml").read_text() and "MAX_EPOCH: 2\n" in second.read_text()
    # Resumed with the original MAX_EPOCH, the extended run is refused, not cut short.
    assert train(tiny_data, out, **{"SOLVER.MAX_EPOCH": 1}) == 2
    assert "SOLVER.MAX_EPOCH: 2.0 -> 1.0" in capsys.readouterr().err


def test_an_extension_is_bit_exact_across_a_second_interruption(tiny_data, tmp_path, monkeypatch):
    """Stopped mid-way through epoch 2 of 2, resumed with MAX_EPOCH 3: the learning rate continues
    from its value there (a cosine to COSINE_END_LR at epoch 3). Once straight to the end, once
    stopped again in epoch 3 and resumed: the same weights bit for bit, the same learning rates."""
    a = tmp_path / "a"
    assert train(tiny_data, a, monkeypatch, stop_at=6, **{"SOLVER.MAX_EPOCH": 2}) == 0
    state = read_checkpoint(a / "checkpoints" / "checkpoint_last.pyth")["train_state"]
    iters = state["iters_per_epoch"]
    assert iters < 6 < 2 * iters - 1  # stopped inside epoch 2
    b = tmp_path / "b"
    shutil.copytree(a, b)
    lines = len(records(a))
    assert train(tiny_data, a, **{"SOLVER.MAX_EPOCH": 3}) == 0
    assert train(tiny_data, b, monkeypatch, stop_at=2 * iters + 2, **{"SOLVER.MAX_EPOCH": 3}) == 0
    assert read_checkpoint(b / "checkpoints" / "checkpoint_last.pyth")["train_state"]["progress"]["epoch"] == 2
    assert train(tiny_data, b, **{"SOLVER.MAX_EPOCH": 3}) == 0
    last_a = read_checkpoint(a / "checkpoints" / "checkpoint_last.pyth")
    last_b = read_checkpoint(b / "checkpoints" / "checkpoint_last.pyth")
    for key, value in last_a["model_state"].items():
        assert torch.equal(value, last_b["model_state"][key]), key
    assert last_a["train_state"]["schedule"] == last_b["train_state"]["schedule"]
    # The learning rate after the first resume continues the run's curve: no step up, down to COSINE_END_LR.
    cfg = load_config(CONFIG, ["SOLVER.MAX_EPOCH", "2"])
    old = build_schedule(cfg)
    lrs = {r["global_iteration"]: r["lr"] for r in records(a)[lines:] if r["type"] == "train"}
    steps = sorted(lrs)
    assert steps[0] == 7 and lrs[7] <= old(6 / iters) * (1 + 1e-9)
    assert all(lrs[s] >= lrs[t] for s, t in zip(steps, steps[1:]))  # never up
    extension = last_a["train_state"]["schedule"]["extensions"][0]
    assert extension["from_epoch"] == pytest.approx(6 / iters) and extension["from_lr"] == old(6 / iters)
    assert math.isclose(extension["to_epoch"], 3.0) and extension["end_lr"] == cfg.SOLVER.COSINE_END_LR
    curve = RunSchedule(old, [extension])  # the learning rate of global iteration s: at (s - 1) / iters
    assert all(lrs[s] == pytest.approx(curve((s - 1) / iters), rel=1e-12) for s in steps)
    assert lrs[steps[-1]] < lrs[7] / 5  # annealed towards COSINE_END_LR


def test_run_schedule_extension_by_hand():
    """A cosine from (3, 0.5) to (10, 0.01): half-way it is the mean (0.255); before 3 the recipe's."""
    base = build_schedule(load_config(CONFIG, ["SOLVER.MAX_EPOCH", "6"]))
    schedule = RunSchedule(base, [{"from_epoch": 3.0, "from_lr": 0.5, "to_epoch": 10.0,
                                                "end_lr": 0.01}])
    assert schedule(2.0) == base(2.0) and schedule(3.0) == pytest.approx(0.5)
    assert schedule(6.5) == pytest.approx(0.255) and schedule(10.0) == pytest.approx(0.01)
    assert schedule.max_epoch == 10.0
