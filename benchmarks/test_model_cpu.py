# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""CPU benchmark of the whole model beside the matrix-product floor, measured in one run.

    pytest benchmarks/test_model_cpu.py --benchmark-only        # ~6 min on 2 cores

MeMViT-16 (configs/ava_16.yaml, batch 1, memory filled: the steady state) inference per clip and
a training step (forward, backward, SGD step), in fp32 and under bf16 autocast (``--dtype bf16``),
with the op's compiled kernel and with its PyTorch fallback. Beside them, the rate of a 2048^2
matrix product on the same cores, in fp32 (MKL through torch.mm, and oneDNN on a packed weight)
and in bf16: the model's FLOPs (fvcore's count, the paper's, times two) over the faster rate of
its dtype is the floor a clip cannot beat, so each row reports the fraction of the floor it reaches.
The session summary (conftest.py) writes benchmarks/results/cpu-model-<date>.md, with bf16's
largest score difference from fp32.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import memvit_ext

CONFIG = str(Path(__file__).parents[1] / "configs" / "ava_16.yaml")
DTYPES = ("fp32", "bf16")
IMPLEMENTATIONS = ("kernel", "reference")
GEMM_SIZE = 2048

pytestmark = pytest.mark.skipif("cpu" not in memvit_ext.kernel_capabilities(), reason="no compiled CPU kernel")


def autocast(dtype: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")


@pytest.fixture(scope="module")
def model_gflop() -> float:
    """Floating-point operations (10^9) of one MeMViT-16 clip with a full memory. fvcore, like the
    paper, counts a multiply-add as one; the GEMM rate counts it as two, so this doubles it."""
    from memvit.flops import gflops_by_memory

    model, clip, boxes = _model("kernel")
    return 2 * max(gflops_by_memory(model, clip, boxes).values())[0]


def _model(implementation: str):
    from memvit.cli import example_inputs, load_model
    from memvit.config import load_config

    cfg = load_config(CONFIG, [])
    model = load_model(cfg, seed=0, implementation=implementation, warn_random=False)
    clip, boxes = example_inputs(model, cfg, generator=torch.Generator().manual_seed(0))
    return model, clip, boxes


def _fill_memory(model, clip, boxes, dtype: str) -> None:
    from memvit.flops import clips_to_fill_memory

    with torch.no_grad(), autocast(dtype):
        for _ in range(clips_to_fill_memory(model)):
            model(clip, video_ids=[0], boxes=boxes)


@pytest.mark.parametrize("dtype,library", [("fp32", "aten"), ("fp32", "onednn"), ("bf16", "aten")])
def test_gemm_floor(benchmark, dtype, library):
    """The matrix-product rate of these cores (GFLOP/s): ATen's torch.mm (MKL in fp32, oneDNN in
    bf16) and, in fp32, oneDNN's product on a packed weight (what the Linear layers run on)."""
    torch.set_num_threads(os.cpu_count() or 1)
    kind = torch.float32 if dtype == "fp32" else torch.bfloat16
    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE).to(kind), torch.randn(GEMM_SIZE, GEMM_SIZE).to(kind)
    if library == "onednn":
        packed = torch.ops.mkldnn._reorder_linear_weight(b, None)
        benchmark.pedantic(torch.ops.mkldnn._linear_pointwise, args=(a, packed, None, "none", [], ""),
                           rounds=10, iterations=1, warmup_rounds=2)
    else:
        benchmark.pedantic(torch.mm, args=(a, b), rounds=10, iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(model_row="gemm", dtype=dtype, library=library, gflop=2 * GEMM_SIZE**3 / 1e9)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("phase", ["inference", "train step"])
def test_model_cpu(benchmark, phase, dtype, implementation, model_gflop):
    torch.set_num_threads(os.cpu_count() or 1)
    model, clip, boxes = _model(implementation)
    _fill_memory(model, clip, boxes, dtype)
    if phase == "inference":
        model.eval()

        def step():
            with torch.no_grad(), autocast(dtype):
                return model(clip, video_ids=[0], boxes=boxes)
    else:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

        def step():
            with autocast(dtype):
                out = model(clip, video_ids=[0], boxes=boxes)
            torch.nn.functional.binary_cross_entropy(out.float(), torch.zeros_like(out, dtype=torch.float32)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return out

    out = benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)
    # A training step is about three forwards of work (forward, then backward's two products).
    benchmark.extra_info.update(model_row=phase, dtype=dtype, implementation=implementation,
                                gflop=model_gflop * (1 if phase == "inference" else 3))
    if phase == "inference":
        benchmark.extra_info["scores"] = out.float().flatten().tolist()
