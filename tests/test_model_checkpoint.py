# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Checkpoints in the reference's layout: strict loading, weights_only, Kinetics -> AVA, saving."""

from __future__ import annotations

import collections
import os

import pytest
import torch
from test_model import reference_layout  # the key table of the reference's model_state

from memvit.checkpoint import (
    CheckpointError,
    DamagedCheckpointError,
    UnsafeCheckpointError,
    load_model_state,
    load_pretrained,
    read_checkpoint,
    save_checkpoint,
)
from memvit.models import MEMVIT_16_16X4, create_memvit, memvit_16_16x4

SMALL = dict(MEMVIT_16_16X4, spatial_size=64, temporal_size=8, depth=4, patch_embed_dim=16,
             embed_dim_mul=((1, 2.0), (3, 2.0)), atten_head_mul=((1, 2.0), (3, 2.0)), memory_exclude_layers=(1, 3))


def reference_checkpoint(keys: dict, **extra) -> dict:
    """A PySlowFast-style checkpoint dict in the reference's key layout (each tensor filled with its index)."""
    state = collections.OrderedDict((k, torch.full(shape, float(i))) for i, (k, shape) in enumerate(keys.items()))
    return {"epoch": 29, "model_state": state, "optimizer_state": {"state": {}, "param_groups": [
        {"lr": 1e-6, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-8, "params": [0, 1]}]},
        "cfg": "MEMVIT:\n  ENABLE: True\n", **extra}


def test_reference_layout_checkpoint_loads_strictly(tmp_path):
    path = tmp_path / "MeMViT_16L_16x4_K400pt.pyth"
    checkpoint = reference_checkpoint(reference_layout(16, 16, (1, 3, 14)))
    torch.save(checkpoint, path)
    model = memvit_16_16x4()
    report = load_model_state(model, path)
    assert report.ok and len(report.loaded) == 621
    for key, value in checkpoint["model_state"].items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


def test_mismatch_lists_missing_unexpected_and_wrong_shapes():
    model = create_memvit(**SMALL, head="kinetics", num_classes=5)
    state = model.state_dict()
    state.pop("blocks.0.attn.rel_pos_t")
    state["blocks.9.attn.q.weight"] = torch.zeros(1)
    state["head.projection.weight"] = torch.zeros(400, 64)
    with pytest.raises(CheckpointError) as error:
        load_model_state(model, {"model_state": state})
    message = str(error.value)
    assert "blocks.0.attn.rel_pos_t" in message and "blocks.9.attn.q.weight" in message
    assert "head.projection.weight (checkpoint (400, 64), model (5, 64))" in message


class Opaque:
    """Stands in for a non-tensor object a checkpoint might pickle."""

    def __init__(self, value=3):
        self.value = value


def test_weights_only_refuses_unknown_objects_unless_allow_listed(tmp_path):
    model = create_memvit(**SMALL, head="kinetics", num_classes=5)
    path = tmp_path / "with_object.pyth"
    torch.save({"model_state": model.state_dict(), "extra": Opaque()}, path)
    with pytest.raises(CheckpointError, match="safe_globals"):
        read_checkpoint(path)
    checkpoint = read_checkpoint(path, safe_globals=[Opaque])
    assert checkpoint["extra"].value == 3
    assert load_model_state(model, path, safe_globals=[Opaque]).ok


class _RunsCommand:
    """Unpickles into a call of os.system: what a malicious checkpoint holds."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


class _Custom:
    def __init__(self):
        self.value = 7


@pytest.mark.parametrize("legacy", [False, True])
def test_checkpoint_holding_code_is_refused_as_code_naming_the_global(tmp_path, legacy):
    """A whole file whose pickle references os.system (blocked) or a custom class (not allowed) is
    refused naming that global, never reported as truncated or damaged."""
    state = create_memvit(**SMALL, head="kinetics", num_classes=5).state_dict()
    for name, payload, expected in (("code.pyth", _RunsCommand(), f"{os.system.__module__}.system"),
                                    ("custom.pyth", _Custom(), f"{__name__}._Custom")):
        path = tmp_path / name
        torch.save({"model_state": state, "extra": payload}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(UnsafeCheckpointError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert expected in message and str(path) in message and "nothing was run" in message
        assert "truncated" not in message and "damaged" not in message
        assert not isinstance(info.value, DamagedCheckpointError)
    assert "holds code" in str(pytest.raises(CheckpointError, read_checkpoint, tmp_path / "code.pyth").value)
    assert read_checkpoint(tmp_path / "custom.pyth", safe_globals=[_Custom])["extra"].value == 7


def test_damaged_files_raise_checkpoint_error_naming_the_file(tmp_path):
    """A truncated download, an empty or a foreign file: CheckpointError naming the file, never
    the zip reader's or the unpickler's raw error."""
    good = tmp_path / "good.pyth"
    torch.save({"model_state": create_memvit(**SMALL, head="kinetics", num_classes=5).state_dict()}, good)
    data = good.read_bytes()
    cases = {"truncated.pyth": (data[: len(data) // 2], "truncated"), "cut_short.pyth": (data[:-30], "truncated"),
             "empty.pyth": (b"", "is empty"), "notes.pyth": (b"hello world\n", "not a PyTorch checkpoint"),
             "noise.pyth": (bytes(range(256)) * 8, "not a PyTorch checkpoint"),
             "bad_pickle.pyth": (b"\x80\x02garbage" * 10, "truncated or not a PyTorch checkpoint")}
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=message) as info:
            read_checkpoint(path)
        assert name in str(info.value)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.pyth")
    assert "model_state" in read_checkpoint(good)


def test_kinetics_checkpoint_initialises_the_ava_model(tmp_path):
    kinetics = create_memvit(**SMALL, head="kinetics", num_classes=400)
    path = tmp_path / "kinetics.pyth"
    save_checkpoint(path, kinetics, epoch=3)
    ava = create_memvit(**SMALL, head="ava", num_classes=80)
    report = load_pretrained(ava, path)
    assert [k for k, _, _ in report.mismatched] == ["head.projection.weight", "head.projection.bias"]
    assert report.unexpected == [] and all(k.startswith("box_blocks.0.") for k in report.missing)
    assert len(report.missing) == 16 and "box_blocks" in str(report)
    for key, value in kinetics.state_dict().items():
        if not key.startswith("head."):
            torch.testing.assert_close(ava.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="load_pretrained"):
        load_model_state(ava, path)


def test_relative_position_tables_are_adapted_as_the_reference():
    """Fine-tuning at another clip length: temporal tables extended by their last row, spatial
    ones interpolated."""
    source = create_memvit(**SMALL, head="kinetics", num_classes=5)
    target = create_memvit(**{**SMALL, "temporal_size": 16, "spatial_size": 96}, head="kinetics", num_classes=5)
    state = {"module." + k: v for k, v in source.state_dict().items()}  # a DDP-saved state
    report = load_pretrained(target, {"model_state": state})
    assert report.ok
    old, new = source.blocks[0].attn.rel_pos_t, target.blocks[0].attn.rel_pos_t
    assert (old.shape[0], new.shape[0]) == (7, 15)
    torch.testing.assert_close(new[:7], old)
    torch.testing.assert_close(new[7:], old[-1:].expand(8, -1))
    h_old, h_new = source.blocks[0].attn.rel_pos_h, target.blocks[0].attn.rel_pos_h
    expected = torch.nn.functional.interpolate(h_old.t()[None], size=h_new.shape[0], mode="linear")[0].t()
    torch.testing.assert_close(h_new, expected)


def test_save_checkpoint_layout(tmp_path):
    model = create_memvit(**SMALL, head="ava", num_classes=80)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "checkpoint_epoch_00001.pyth"
    save_checkpoint(path, model, epoch=0, optimizer=optimizer, cfg="TRAIN:\n  ENABLE: True\n")
    checkpoint = read_checkpoint(path)
    assert set(checkpoint) == {"epoch", "model_state", "optimizer_state", "cfg"}
    assert list(checkpoint["model_state"]) == list(model.state_dict())
