# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""ONNX export of a streaming step: the fixed slot layout of the memory equals the model's own
memory from the first clip on (PyTorch), and the exported graph run by onnxruntime with its
memory fed back equals the PyTorch model over a stream."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from media import write_config
from test_model import TINY

from memvit.export import main
from memvit.models import MemoryState, create_memvit
from memvit.streaming.onnx_step import OnnxStream, StreamingStep, export_onnx, slot_specs, verify_onnx

pytestmark = pytest.mark.usefixtures("one_thread")
CLIP = (8, 64, 96)


def tiny(head="ava", seed=0, **kwargs):
    torch.manual_seed(seed)
    return create_memvit(**{**TINY, "head": head, "num_classes": 7, **kwargs}).eval()


def random_inputs(gen, batch, slots, t=8, h=64, w=96):
    clip = torch.randn(batch, 3, t, h, w, generator=gen)
    counts = torch.randint(0, slots + 1, (batch,), generator=gen).tolist()
    boxes = torch.zeros(batch, slots, 4)
    valid = torch.zeros(batch, slots, dtype=torch.bool)
    for b, k in enumerate(counts):
        corner = torch.rand(k, 2, generator=gen) * torch.tensor([w, h]) * 0.6
        boxes[b, :k] = torch.cat([corner, corner + torch.rand(k, 2, generator=gen) * 20 + 4], dim=1)
        valid[b, :k] = True
    return clip, boxes, valid, counts


def solo(model, state, clip, boxes, count):
    rois = torch.cat([torch.zeros(count, 1), boxes[:count]], dim=1)
    return model(clip[None], video_ids=["v"], boxes=rois, memory=state)


@pytest.mark.parametrize("kwargs", [
    {},  # MeMViT-16's gap2: attends t-4 and t-2
    {"memory_sampler": "gap3"},
    {"memory_sampler": "all", "attn_max_len": 3, "mask_padded_boxes": True},
    {"compress_kernel": None},
])
def test_slot_layout_equals_model_memory_from_the_first_clip(gen, kwargs):
    """Two streams in one batch, the second starting three clips later: each row of the fixed-slot
    step equals the model run alone on that stream (which drops the memory it does not have yet)."""
    model = tiny(**kwargs)
    step = StreamingStep(model, slot_specs(model, CLIP))
    names = step.input_names
    current = dict(zip(names, step.example_inputs(2, CLIP)))
    states = [model.memory.empty_copy(), model.memory.empty_copy()]
    with torch.no_grad():
        for t in range(9):
            clip, boxes, valid, counts = random_inputs(gen, 2, model.max_boxes)
            current.update(clip=clip, boxes=boxes, box_valid=valid)
            if t <= 3:  # stream 1 starts at clip 3: until then (and then) its slots hold nothing
                current["memory_valid"][1] = False
            out = dict(zip(step.output_names, step(*[current[n] for n in names])))
            for b in range(2 if t >= 3 else 1):
                expected = solo(model, states[b], clip[b], boxes[b], counts[b])
                torch.testing.assert_close(out["scores"][b, :counts[b]], expected, rtol=0, atol=1e-6)
            current.update({n[len("next_"):]: v for n, v in out.items() if n.startswith("next_")})


def test_the_command_wires_and_the_wing_works():
    """``python -m memvit.export`` parses and wires (``memvit.export``); ``memvit.streaming.onnx_step``
    builds, exports and checks the graph and parses nothing."""
    import memvit.export
    import memvit.streaming.onnx_step as onnx_step

    assert not any(hasattr(onnx_step, name) for name in ("main", "build_parser", "argparse"))
    assert memvit.export.load_model.__module__ == "memvit.cli"
    assert memvit.export.OnnxStream is OnnxStream  # still importable where docs used to name it


def test_onnx_stream_equals_pytorch(tmp_path, gen):
    """python -m memvit.export on a tiny config; onnxruntime over 7 clips with the memory fed back
    equals the PyTorch model run clip after clip, within 1e-4 (fp32) from the first clip on."""
    cfg = write_config(tmp_path / "tiny.yaml", MVIT={"DEPTH": 2, "DIM_MUL": [[1, 2.0]], "HEAD_MUL": [[1, 2.0]]})
    path = tmp_path / "step.onnx"
    torch.manual_seed(0)  # ignored: the command seeds RNG_SEED before building (memvit.cli.load_model)
    assert main(["--cfg", str(cfg), "--out", str(path), "--input-size", "64", "96", "--verify", "0"]) == 0
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    interface = json.loads(meta["memvit.interface"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i["name"] for i in interface["inputs"]] == [i.name for i in session.get_inputs()]
    assert [i["shape"] for i in interface["inputs"]] == [i.shape for i in session.get_inputs()]
    assert [o["name"] for o in interface["outputs"]] == [o.name for o in session.get_outputs()]
    assert [i.name for i in session.get_inputs()][:5] == ["clip", "boxes", "box_valid", "memory_valid",
                                                          "memory.blocks.0"]
    assert interface["memory"]["attended_slots"] == [0, 2] and interface["memory"]["slots"] == 4
    assert json.loads(meta["memvit.preprocessing"])["input_size"] == [64, 96]
    assert proto.opset_import[0].version == 18
    # The exported weights are those of the config's model built with its RNG_SEED.
    from memvit.config import build_model, load_config

    config = load_config(str(cfg))
    torch.manual_seed(config.RNG_SEED)
    model = build_model(config).eval()
    seed = int(torch.randint(2**31, (1,), generator=gen))
    errors = verify_onnx(model, str(path), 7, seed=seed, max_boxes=model.max_boxes)
    assert max(errors) <= 1e-4, errors
    # The runtime helper restarts the stream on reset(): the first clip again gives the first scores.
    stream = OnnxStream(str(path))
    clip = np.random.default_rng(seed).standard_normal((1, 3, 8, 64, 96)).astype(np.float32)
    boxes = np.zeros((1, model.max_boxes, 4), np.float32)
    boxes[0, 0] = [4, 4, 40, 60]
    valid = np.zeros((1, model.max_boxes), bool)
    valid[0, 0] = True
    first = stream.step(clip, boxes, valid)
    assert stream.memory["memory_valid"].tolist() == [[False, False, False, True]]
    stream.step(clip, boxes, valid)
    third = stream.step(clip, boxes, valid)  # attends the first clip (t-2): other scores for the same clip
    assert not np.allclose(first[0, 0], third[0, 0], atol=1e-6)
    stream.reset()
    np.testing.assert_array_equal(stream.step(clip, boxes, valid), first)


def test_onnx_batch_of_streams_and_classifier(tmp_path, gen):
    """A Kinetics model exported for two streams: each row equals its stream run alone."""
    model = tiny(head="kinetics", depth=2, embed_dim_mul=((1, 2.0),), atten_head_mul=((1, 2.0),))
    path = tmp_path / "cls.onnx"
    report = export_onnx(model, str(path), (8, 64, 64), batch=2)
    assert [i["name"] for i in report.interface["inputs"]][:2] == ["clip", "memory_valid"]
    stream = OnnxStream(str(path))
    states = [MemoryState(model.memory.layer_names, 3, "gap2"), MemoryState(model.memory.layer_names, 3, "gap2")]
    with torch.no_grad():
        for _ in range(6):
            clip = torch.randn(2, 3, 8, 64, 64, generator=gen)
            got = stream.step(clip.numpy())
            for b in range(2):
                expected = model(clip[b:b + 1], video_ids=["v"], memory=states[b]).numpy()
                np.testing.assert_allclose(got[b:b + 1], expected, rtol=0, atol=1e-5)


def test_export_needs_memory():
    model = create_memvit(**{**TINY, "memory": False, "compress_kernel": None, "head": "kinetics"})
    with pytest.raises(ValueError, match="no memory"):
        StreamingStep(model, {})
