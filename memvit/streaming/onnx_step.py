# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""ONNX export of one streaming step, with the memory as explicit inputs and outputs.

The work behind ``python -m memvit.export`` (:mod:`memvit.export` wires it). The graph is one
clip of each of ``batch`` video streams (one per batch row). Its memory is the fixed slot layout
of :class:`~memvit.models.SlotMemory`: every cached clip of every memory layer is an input slot,
which slots hold a clip is a boolean input, and the step returns the memory for the next step.
A runtime runs a video by feeding each ``next_*`` output back as the input of the same name
without the prefix, starting from zeros and all-false validity. Invalid slots are masked
out of attention, which equals the PyTorch model dropping the memory it does not have yet:
the outputs equal ``model(clip, video_ids=..., boxes=...)`` run clip after clip from the
first clip on (``--verify`` checks it with onnxruntime; ``tests/test_export.py`` too).

Inputs (AVA head; ``S`` = ``MEMVIT.MAX_BOXES`` box slots, ``M`` = cached clips):

* ``clip`` ``(B, 3, T, H, W)`` float32, normalised as in training (short side resized, /255, mean/std);
* ``boxes`` ``(B, S, 4)`` float32 ``x1, y1, x2, y2`` in ``clip`` pixels; ``box_valid`` ``(B, S)`` bool;
* ``memory_valid`` ``(B, M)`` bool, oldest slot first;
* ``memory.<layer>`` ``(B, M, 2, N, C)`` float32 per memory layer ([k, v] inputs of the layer's attention);
* ``memory_mask.<layer>`` ``(B, M, N)`` bool for the box layers (which slots held a box).

Outputs: ``scores`` ``(B, S, classes)`` (rows of invalid boxes are meaningless; a Kinetics model
gives ``(B, classes)`` and takes no boxes), then ``next_memory_valid``, ``next_memory.<layer>``,
``next_memory_mask.<layer>``. The model's metadata (``memvit.*`` keys) repeats all of this.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..files import atomic_path
from ..models.memory import memory_step
from ..models.memvit import MeMViT, attention_implementation
from ..models.slot_memory import SlotMemory, SlotSpec, SlotSpecRecorder

OPSET = 18  # RoiAlign with half-pixel coordinates needs >= 16
FORMAT_VERSION = "1"


def slot_specs(model: MeMViT, clip_shape: Sequence[int]) -> dict[str, SlotSpec]:
    """Every memory layer's stored clip for inputs of ``clip_shape`` ``(T, H, W)`` (one forward)."""
    t, h, w = (int(x) for x in clip_shape)
    recorder = SlotSpecRecorder()
    kwargs: dict[str, Any] = {}
    if model.is_detection:
        kwargs["boxes"] = torch.tensor([[0.0, 0.0, 0.0, w - 1.0, h - 1.0]])
    with torch.no_grad():
        model(torch.zeros(1, 3, t, h, w), video_ids=["probe"], memory=recorder, **kwargs)
    return {name: recorder.specs[name] for name in model.memory.layer_names}


class StreamingStep(nn.Module):
    """One step of a MeMViT over ``batch`` streams with a :class:`SlotMemory`: the exported graph.

    ``forward(*inputs)`` takes :attr:`input_names` in order and returns :attr:`output_names`.
    """

    def __init__(self, model: MeMViT, specs: dict[str, SlotSpec]) -> None:
        super().__init__()
        if model.memory is None:
            raise ValueError("the model has no memory (create_memvit(memory=False)): nothing to stream")
        self.model = model
        self.specs = specs
        self.layers = list(model.memory.layer_names)
        self.masked = [name for name in self.layers if specs[name].has_token_mask]
        state = model.memory
        self.sampler, self.attn_max_len = state.sampler, state.attn_max_len
        self.num_slots = state.keep_max_len - 1
        head = ["clip", "boxes", "box_valid"] if model.is_detection else ["clip"]
        self.input_names = [*head, "memory_valid", *[f"memory.{n}" for n in self.layers],
                            *[f"memory_mask.{n}" for n in self.masked]]
        self.output_names = ["scores", "next_memory_valid", *[f"next_memory.{n}" for n in self.layers],
                             *[f"next_memory_mask.{n}" for n in self.masked]]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        named = dict(zip(self.input_names, inputs))
        clip = named["clip"]
        memory = SlotMemory(self.specs, self.sampler, self.attn_max_len,
                            {n: named[f"memory.{n}"] for n in self.layers}, named["memory_valid"],
                            {n: named[f"memory_mask.{n}"] for n in self.masked})
        model = self.model
        batch = clip.shape[0]
        with memory_step(memory, [f"stream{i}" for i in range(batch)], batch, clip.device) as step:
            if model.is_detection:
                scores = self._detect(clip, named["boxes"], named["box_valid"], step)
            else:
                features, _ = model.forward_features(clip, step)
                scores = model.head(features[:, 0] if model.cls_embed_on else features.mean(dim=1))
        return (scores, memory.next_valid, *[memory.next_slots[n] for n in self.layers],
                *[memory.next_token_mask[n] for n in self.masked])

    def _detect(self, clip: Tensor, boxes: Tensor, box_valid: Tensor, step: Any) -> Tensor:
        """The AVA head on fixed box slots: slot ``i`` of row ``b`` is box ``i`` of stream ``b``
        (the PyTorch model's layout when a clip's boxes are slots ``0 .. k-1``)."""
        model = self.model
        batch, slots = boxes.shape[:2]
        x, thw = model.forward_features(clip, step)
        if model.cls_embed_on:
            x = x[:, 1:]
        x = x.transpose(1, 2).reshape(batch, x.shape[2], *thw)
        index = torch.arange(batch, dtype=boxes.dtype, device=boxes.device).repeat_interleave(slots)[:, None]
        features = model.head.pool(x, torch.cat([index, boxes.reshape(batch * slots, 4)], dim=1))
        features = features.reshape(batch, slots, -1)
        features = torch.where(box_valid[..., None], features, torch.zeros_like(features))
        for block in model.box_blocks:
            features, _ = block(features, (1, 1, slots), step, box_valid)
        return model.head.classify(features)

    def example_inputs(self, batch: int, clip_shape: Sequence[int]) -> tuple[Tensor, ...]:
        """Inputs of the first step: a zero clip, one full-frame box per stream, empty memory."""
        t, h, w = (int(x) for x in clip_shape)
        empty = SlotMemory.empty(self.specs, self.sampler, self.attn_max_len, batch)
        values: dict[str, Tensor] = {"clip": torch.zeros(batch, 3, t, h, w), "memory_valid": empty.valid}
        if self.model.is_detection:
            slots = self.model.max_boxes
            values["boxes"] = torch.zeros(batch, slots, 4)
            values["boxes"][:, 0] = torch.tensor([0.0, 0.0, w - 1.0, h - 1.0])
            values["box_valid"] = torch.zeros(batch, slots, dtype=torch.bool)
            values["box_valid"][:, 0] = True
        values.update({f"memory.{n}": empty.slots[n] for n in self.layers})
        values.update({f"memory_mask.{n}": empty.token_mask[n] for n in self.masked})
        return tuple(values[name] for name in self.input_names)

    def describe(self, batch: int, clip_shape: Sequence[int]) -> dict[str, Any]:
        """Names, shapes, dtypes and meaning of the graph's inputs and outputs (the metadata)."""
        shapes = {name: (list(x.shape), str(x.dtype).replace("torch.", ""))
                  for name, x in zip(self.input_names, self.example_inputs(batch, clip_shape))}
        classes = self.model.head.projection.out_features
        out = {"scores": ([batch, self.model.max_boxes, classes] if self.model.is_detection else [batch, classes],
                          "float32")}
        for name in self.input_names:
            if name.startswith("memory"):
                out[f"next_{name}"] = shapes[name]
        return {
            "inputs": [{"name": n, "shape": shapes[n][0], "dtype": shapes[n][1]} for n in self.input_names],
            "outputs": [{"name": n, "shape": out[n][0], "dtype": out[n][1]} for n in self.output_names],
            "memory": {"slots": self.num_slots, "attended_slots": SlotMemory.empty(
                self.specs, self.sampler, self.attn_max_len, 1).attended, "sampler": self.sampler,
                "attn_max_len": self.attn_max_len, "order": "oldest slot first",
                "layers": {n: asdict(s) for n, s in self.specs.items()},
                "feedback": "feed each next_<name> output as input <name>; start with zeros and all-false masks"},
        }


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how long it took."""

    path: str
    opset: int
    batch: int
    clip_shape: tuple[int, int, int]
    seconds: float
    size_bytes: int
    interface: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _quiet_exporter():
    """The exporter's chatter (progress lines, empty-attribute notes) hidden; errors still shown."""
    noisy = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")]
    levels = [log.level for log in noisy]
    for log in noisy:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(noisy, levels):
            log.setLevel(level)


def export_onnx(model: MeMViT, path: str, clip_shape: Sequence[int], *, batch: int = 1, opset: int = OPSET,
                metadata: dict[str, Any] | None = None) -> ExportReport:
    """Export one streaming step of ``model`` for clips ``(T, H, W)`` and ``batch`` streams to ``path``.

    The attention runs through the op's PyTorch reference (plain ATen ops in the graph). The
    model is put in eval mode. ``metadata`` (e.g. the pre-processing) is stored as JSON under
    ``memvit.<key>`` next to the interface description ``memvit.interface``.
    """
    import onnx

    model.eval()
    clip_shape = tuple(int(x) for x in clip_shape)
    started = time.perf_counter()
    with attention_implementation(model, "reference"), torch.no_grad():
        step = StreamingStep(model, slot_specs(model, clip_shape)).eval()
        inputs = step.example_inputs(batch, clip_shape)
        with _quiet_exporter():
            program = torch.onnx.export(step, inputs, dynamo=True, opset_version=opset, input_names=step.input_names,
                                        output_names=step.output_names, verbose=False, external_data=False)
        interface = step.describe(batch, clip_shape)
    proto = program.model_proto
    props = {"memvit.format_version": FORMAT_VERSION, "memvit.interface": json.dumps(interface),
             "memvit.opset": str(opset), "memvit.clip_shape": json.dumps([batch, 3, *clip_shape])}
    for key, value in (metadata or {}).items():
        props[f"memvit.{key}"] = json.dumps(value)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = ("MeMViT streaming step: feed each next_* output back as the input of the same name "
                        "(see metadata memvit.interface)")
    proto.producer_name = "memvit"
    with atomic_path(path) as tmp:  # a reader never finds half a model under the final name
        onnx.save(proto, tmp)
    return ExportReport(path, opset, batch, clip_shape, time.perf_counter() - started, os.path.getsize(path),
                        interface)


class OnnxStream:
    """Run an exported step with onnxruntime over a stream, feeding the memory back.

    ``step(clip, boxes=None, box_valid=None)`` takes numpy arrays shaped as the graph's inputs
    and returns ``scores``; :meth:`reset` starts the streams afresh.
    """

    def __init__(self, path: str, providers: Sequence[str] = ("CPUExecutionProvider",)) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=list(providers))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.interface = json.loads(meta["memvit.interface"])
        self.inputs = {i["name"]: i for i in self.interface["inputs"]}
        self.reset()

    def reset(self) -> None:
        self.memory = {name: np.zeros(spec["shape"], dtype=np.bool_ if spec["dtype"] == "bool" else np.float32)
                       for name, spec in self.inputs.items() if name.startswith("memory")}

    def step(self, clip: np.ndarray, boxes: np.ndarray | None = None,
             box_valid: np.ndarray | None = None) -> np.ndarray:
        feed = {"clip": np.ascontiguousarray(clip, dtype=np.float32), **self.memory}
        if "boxes" in self.inputs:
            feed["boxes"] = np.ascontiguousarray(boxes, dtype=np.float32)
            feed["box_valid"] = np.ascontiguousarray(box_valid, dtype=np.bool_)
        names = [o.name for o in self.session.get_outputs()]
        outputs = dict(zip(names, self.session.run(names, feed)))
        self.memory = {name[len("next_"):]: value for name, value in outputs.items() if name.startswith("next_")}
        return outputs["scores"]


def verify_onnx(model: MeMViT, path: str, steps: int, *, seed: int = 0, max_boxes: int | None = None) -> list[float]:
    """Max abs difference of onnxruntime vs the PyTorch model, per step of a random stream per row.

    Each batch row is its own stream, run in PyTorch alone (batch 1) from the first clip on,
    with random clips and 1..``max_boxes`` random boxes per clip (AVA head).
    """
    runner = OnnxStream(path)
    shape = runner.inputs["clip"]["shape"]
    batch, t, h, w = shape[0], shape[2], shape[3], shape[4]
    rng = np.random.default_rng(seed)
    states = [model.memory.empty_copy() for _ in range(batch)]
    slots = model.max_boxes
    errors = []
    model.eval()
    for _ in range(steps):
        clip = rng.standard_normal((batch, 3, t, h, w)).astype(np.float32)
        boxes = np.zeros((batch, slots, 4), np.float32)
        valid = np.zeros((batch, slots), bool)
        counts = rng.integers(1, (max_boxes or slots) + 1, size=batch)
        for b, k in enumerate(counts):
            corner = rng.uniform(0, 0.6, (k, 2)) * [w, h]
            size = rng.uniform(0.2, 0.4, (k, 2)) * [w, h]
            boxes[b, :k] = np.concatenate([corner, corner + size], axis=1)
            valid[b, :k] = True
        scores = runner.step(clip, boxes, valid) if model.is_detection else runner.step(clip)
        error = 0.0
        with torch.no_grad():
            for b in range(batch):
                kwargs = {}
                if model.is_detection:
                    k = int(counts[b])
                    kwargs["boxes"] = torch.cat([torch.zeros(k, 1), torch.from_numpy(boxes[b, :k])], dim=1)
                expected = model(torch.from_numpy(clip[b:b + 1]), video_ids=["stream"], memory=states[b], **kwargs)
                got = scores[b, :int(counts[b])] if model.is_detection else scores[b:b + 1]
                error = max(error, float(np.abs(got - expected.numpy()).max()))
        errors.append(error)
    return errors
