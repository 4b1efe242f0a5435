# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Parameter and FLOP counts (the paper's table), and the flops/benchmark commands."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from memvit import benchmark, flops
from memvit.models import (
    MEMVIT_16_16X4,
    create_memvit,
    memvit_16_16x4,
    memvit_24_32x3,
    set_attention_implementation,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
TINY = dict(MEMVIT_16_16X4, spatial_size=64, temporal_size=8, depth=4, patch_embed_dim=16,
            embed_dim_mul=((1, 2.0), (3, 2.0)), atten_head_mul=((1, 2.0), (3, 2.0)), pool_kv_stride_adaptive=(1, 4, 4),
            memory_exclude_layers=(1,))
TINY_OVERRIDES = ["DATA.NUM_FRAMES", "8", "DATA.TRAIN_CROP_SIZE", "64", "MVIT.DEPTH", "4", "MVIT.EMBED_DIM", "16",
                  "MVIT.DIM_MUL", "[[1, 2.0], [3, 2.0]]", "MVIT.HEAD_MUL", "[[1, 2.0], [3, 2.0]]",
                  "MVIT.POOL_Q_STRIDE", "[[0, 1, 1, 1], [1, 1, 2, 2], [2, 1, 1, 1], [3, 1, 2, 2]]",
                  "MEMVIT.EXCLUDE_LAYERS", "[1, 3]", "DETECTION.SPATIAL_SCALE_FACTOR", "16"]


# Tiny models: one thread is faster and steadier than two contending ones (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_attention_is_counted_as_the_reference_counts_it(implementation):
    """Per layer, whichever implementation runs: q k^T and attn v over [memory..., current] keys
    (2 * B * H * Nq * Nk * head_dim) plus the reference's relative-position products, one per
    key coordinate of each axis: the current clip's t, h, w; the memory's h, w once and t per
    memory time slot (B * H * (Nq - cls) * coordinates * head_dim)."""
    model = create_memvit(**TINY, head="kinetics", num_classes=5).eval()
    set_attention_implementation(model, implementation)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        for _ in range(4):  # gap2: the fifth clip attends two memory clips
            model(x, video_ids=["v"])
    _, by_op = flops.count_flops(model, x, ["v"])
    expected, thw = 0, (4, 16, 16)
    for block in model.blocks:
        q_thw, kv_thw = block.attn.output_grids(thw)
        queries, keys, coordinates = 1 + math.prod(q_thw), 1 + math.prod(kv_thw), sum(kv_thw)
        if block.attn.attend_memory:  # two compressed clips: t (4 -> 1), h, w halved (ceil)
            mem_thw = (1, -(-kv_thw[1] // 2), -(-kv_thw[2] // 2))
            keys += 2 * (1 + math.prod(mem_thw))
            coordinates += 2 * mem_thw[0] + mem_thw[1] + mem_thw[2]
        heads, head_dim = block.attn.num_heads, block.attn.head_dim
        expected += 2 * heads * queries * keys * head_dim + heads * (queries - 1) * coordinates * head_dim
        thw = q_thw
    op = "pooling_attention" if implementation == "kernel" else "pooling_attention_reference"
    assert set(by_op) & {"pooling_attention", "pooling_attention_reference"} == {op}
    assert by_op[op] * 1e9 == pytest.approx(expected, rel=1e-12)


def test_memory_adds_compute_step_by_step():
    model = create_memvit(**TINY, head="kinetics", num_classes=5)
    results = flops.gflops_by_memory(model, torch.randn(1, 3, 8, 64, 64))
    assert [step for _, step in (results[n] for n in sorted(results))] == [0, 2, 4]  # gap2 warm-up
    assert results[0][0] < results[1][0] < results[2][0]
    assert flops.memory_clips_per_step(memvit_24_32x3(head="kinetics"), 8) == [0, 0, 0, 1, 1, 1, 2, 2]


def test_clips_to_fill_memory():
    """gap2 attends its 2 memory clips from step 4, gap3 from step 6; no memory: none."""
    assert flops.clips_to_fill_memory(create_memvit(**TINY, head="kinetics", num_classes=5)) == 4
    assert flops.clips_to_fill_memory(memvit_24_32x3(head="kinetics")) == 6
    assert flops.clips_to_fill_memory(create_memvit(**{**TINY, "memory": False}, head="kinetics",
                                                    num_classes=5)) == 0


def test_flops_command(capsys):
    assert flops.main(["--cfg", str(CONFIG_DIR / "k400_16.yaml"), *TINY_OVERRIDES]) == 0
    out = capsys.readouterr().out
    assert "params:" in out and "memory empty" in out and "2 memory clips" in out and "memory adds" in out


def test_benchmark_command(capsys):
    """Side by side in one run: the kernel and the reference, each phase in its own process."""
    args = ["--cfg", str(CONFIG_DIR / "ava_16.yaml"), "--clips", "1", "--train-steps", "0", "--threads", "1",
            *TINY_OVERRIDES]
    assert benchmark.main(args) == 0
    out = capsys.readouterr().out
    assert "inference   kernel" in out and "inference   reference" in out and "the kernel is" in out


@pytest.mark.parametrize("phase", ["inference", "train"])
def test_benchmark_phase(phase):
    result = benchmark.run_phase(str(CONFIG_DIR / "ava_16.yaml"), TINY_OVERRIDES, phase, "kernel", batch=2, steps=2,
                                 device="cpu", bf16=False)
    assert len(result["seconds"]) == 2 and result["warmup_clips"] == 4 and result["peak_mib"] > 0


# The reference's own fvcore counts (its model run on CPU under its get_model_stats protocol)
# at 0, 1 and 2 attended memory clips; the published table gives 58.7 (MeMViT-16) and 211.7.
PAPER_TABLE = [(memvit_16_16x4, 16, 35_388_832, {0: 57.398, 1: 58.083, 2: 58.704}),
               (memvit_24_32x3, 32, 52_601_344, {0: 205.806, 1: 209.540, 2: 213.082})]


@pytest.mark.parametrize("builder,frames,params,gflops", PAPER_TABLE, ids=["memvit16", "memvit24"])
def test_paper_table_params_and_gflops(builder, frames, params, gflops):
    """The paper's table under its protocol (Kinetics-400 classifier, one 224x224 clip, fvcore,
    memory filled): params exact, GFLOPs within 0.2% of the reference's at every memory length."""
    torch.set_num_threads(2)
    model = builder(head="kinetics", num_classes=400)
    assert flops.params_count(model) == params
    results = flops.gflops_by_memory(model, torch.rand(1, 3, frames, 224, 224))
    for n, expected in gflops.items():
        assert results[n][0] == pytest.approx(expected, rel=2e-3), (builder.__name__, n)


@pytest.mark.slow
def test_inductor_compile_matches_eager():
    import copy

    model = create_memvit(**{**TINY, "memory_sampler": "all", "attn_max_len": 2}, head="kinetics",
                          num_classes=5).eval()
    eager = copy.deepcopy(model)
    compiled = torch.compile(model)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(2, 3, 8, 64, 64)
            torch.testing.assert_close(compiled(x, video_ids=[0, 1]), eager(x, video_ids=[0, 1]))
