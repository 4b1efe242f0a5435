# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Tiny forward + backward runs of every CUDA kernel path, for compute-sanitizer.

    compute-sanitizer --tool memcheck python3 benchmarks/gpu_sanitize.py
    compute-sanitizer --tool racecheck python3 benchmarks/gpu_sanitize.py

Paths: tensor-core forward / dQ / dK-dV (bf16, with and without the split of the query axis
and its reduction), fp16, the float32 SIMT kernels, a mask with fully masked rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memvit_ext import memory_pooling_attention  # noqa: E402
from memvit_ext.testing import AttentionProblem, leaves, make_inputs  # noqa: E402

P = AttentionProblem
SMALL = P("small", heads=2, q_thw=(2, 5, 5), kv_thw=(2, 3, 3), mem_thw=(1, 2, 2), n_mem=2, head_dim=96,
          mem_t_rows=7)
SPLIT = P("split", heads=1, q_thw=(1, 33, 33), kv_thw=(1, 5, 5), mem_thw=(1, 3, 3), n_mem=2, head_dim=64,
          mem_t_rows=3)  # 1090 queries, 1 key tile: the dK/dV kernel splits the query axis


def run(problem, dtype, mask=None, batch=1):
    inputs = make_inputs(problem, batch=batch, dtype=dtype, device="cuda", requires_grad=True,
                         generator=torch.Generator().manual_seed(0))
    out = memory_pooling_attention(inputs["q"], inputs["q_thw"], inputs["segments"], rel_pos=inputs["rel_pos"],
                                   attn_mask=mask, implementation="kernel")
    grads = torch.autograd.grad(out, leaves(inputs), torch.randn_like(out))
    torch.cuda.synchronize()
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)


def main() -> None:
    run(SMALL, torch.bfloat16)
    run(SMALL, torch.float16)
    run(SMALL, torch.float32)
    run(SPLIT, torch.bfloat16)
    mask = torch.zeros(SMALL.queries, SMALL.keys, device="cuda")
    mask[:2] = float("-inf")
    run(SMALL, torch.bfloat16, mask=mask)
    print("sanitize runs done")


if __name__ == "__main__":
    main()
