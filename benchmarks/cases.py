# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Benchmark cases: the real MeMViT-16 layer shapes and the methods compared on them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from benchmarks import baselines
from memvit.models.shapes import preset_attention_problems
from memvit_ext import memory_pooling_attention
from memvit_ext.testing import AttentionProblem, distinct, leaves, make_inputs


def kernel(q, q_thw, segments, rel_pos):
    return memory_pooling_attention(q, q_thw, segments, rel_pos=rel_pos, implementation="kernel")


def reference(q, q_thw, segments, rel_pos):
    return memory_pooling_attention(q, q_thw, segments, rel_pos=rel_pos, implementation="reference")


METHODS = {
    "eager": baselines.eager,  # the reference's data flow: the baseline of the targets
    "reference": reference,  # memvit_ext's PyTorch reference (augmented-QK, explicit)
    "augqk_sdpa": baselines.augqk_sdpa,
    "sdpa_mask": baselines.sdpa_mask,
    "flex": baselines.flex,  # forward only on CPU (no CPU backward in torch)
    "kernel": kernel,
}
FORWARD_ONLY = {"flex"}


@cache
def cpu_shapes() -> tuple[AttentionProblem, ...]:
    return tuple(distinct(preset_attention_problems("memvit_16_16x4")))


@dataclass
class Case:
    problem: AttentionProblem
    batch: int
    inputs: dict


@cache
def make_case(problem: AttentionProblem, batch: int) -> Case:
    generator = torch.Generator().manual_seed(hash((problem.name, batch)) % 2**31)
    return Case(problem, batch, make_inputs(problem, batch=batch, requires_grad=True, generator=generator))


def call_fn(case: Case, method: str, mode: str):
    """A no-argument callable: one forward (no grad), or one forward + backward to every input."""
    inputs = case.inputs
    fn = METHODS[method]
    args = (inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"])
    if mode == "fwd":
        args = _detached(args)  # flex refuses inputs that require grad even under no_grad

        def forward():
            with torch.no_grad():
                return fn(*args)
        return forward
    grad = torch.ones(inputs["q"].shape)
    params = leaves(inputs)

    def forward_backward():
        return torch.autograd.grad(fn(*args), params, grad)
    return forward_backward


def _detached(args):
    q, q_thw, segments, rel_pos = args
    segments = [s._replace(k=s.k.detach(), v=s.v.detach()) for s in segments]
    if rel_pos is not None:
        rel_pos = rel_pos._replace(**{name: table.detach() for name, table in rel_pos._asdict().items()
                                      if isinstance(table, torch.Tensor)})
    return q.detach(), q_thw, segments, rel_pos


def forward_with_graph(case: Case, method: str):
    inputs = case.inputs
    return lambda: METHODS[method](inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"])
