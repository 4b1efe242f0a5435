# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""add_memory: a PyTorchVideo MViT (v1) with memory keeps its weights and, with empty memory, its outputs."""

from __future__ import annotations

import copy

import pytest
import torch
from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

from memvit.models import MemoryMultiScaleAttention, add_memory

# Tiny models: one thread is faster and steadier than two contending ones (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def small_mvit(pool_first: bool = False):
    """mvit_base_16x4's layout (pool strides, kv adaptive, dims x2 at the transitions), small."""
    return create_multiscale_vision_transformers(
        spatial_size=32, temporal_size=8, depth=4, patch_embed_dim=16, embed_dim_mul=[[1, 2.0], [3, 2.0]],
        atten_head_mul=[[1, 2.0], [3, 2.0]], pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]],
        pool_kv_stride_adaptive=[1, 4, 4], pool_kvq_kernel=[3, 3, 3], head_num_classes=10,
        pool_first=pool_first).eval()


@pytest.mark.parametrize("pool_first", [False, True])
def test_empty_memory_gives_the_original_output(pool_first):
    original = small_mvit(pool_first)
    wrapped = add_memory(copy.deepcopy(original))
    names = [type(b.attn).__name__ for b in wrapped.mvit.blocks]
    assert names == ["MemoryMultiScaleAttention", "MultiScaleAttention"] * 2
    with torch.no_grad():
        outs = []
        for _ in range(4):
            x = torch.randn(2, 3, 8, 32, 32)
            outs.append((original(x), wrapped(x, video_ids=["a", "b"]), wrapped(x)))
    first, with_memory, stateless = zip(*outs)
    torch.testing.assert_close(with_memory[0], first[0], rtol=1e-5, atol=1e-6)  # memory still empty
    for a, c in zip(first, stateless):  # no video ids: no memory
        torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-6)
    for a, b in zip(first[1:], with_memory[1:]):  # earlier clips now attended
        assert not torch.allclose(a, b, rtol=1e-3, atol=1e-4)
    assert wrapped.memory.num_cached == 2  # sampler "all", attn_max_len 3


def test_weights_are_kept_and_memory_parts_are_new():
    original = small_mvit()
    wrapped = add_memory(copy.deepcopy(original), layers=[1, 3], compress_kernel=(3, 3, 3), compress_stride=(2, 2, 2))
    result = wrapped.mvit.load_state_dict(original.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert sorted({k.split(".attn.")[1] for k in result.missing_keys}) == [
        "compress_k.weight", "compress_v.weight", "norm_compress_k.bias", "norm_compress_k.weight",
        "norm_compress_v.bias", "norm_compress_v.weight"]
    assert {k.split(".")[1] for k in result.missing_keys} == {"1", "3"}
    for key, value in original.state_dict().items():
        torch.testing.assert_close(wrapped.mvit.state_dict()[key], value, rtol=0, atol=0)
    assert isinstance(wrapped.mvit.blocks[1].attn, MemoryMultiScaleAttention)


def test_video_boundaries_and_training():
    wrapped = add_memory(small_mvit(), isolation="mask").train()
    for ids in (["a", "b"], ["a", "b"], ["c", "b"]):
        out = wrapped(torch.randn(2, 3, 8, 32, 32), video_ids=ids)
        out.square().sum().backward()
    grads = {n: p.grad for n, p in wrapped.named_parameters() if "compress" in n}
    assert grads and all(g is not None for g in grads.values())  # sampler "all" trains the compression
    with pytest.raises(ValueError, match="no pytorchvideo MultiScaleAttention"):
        add_memory(torch.nn.Linear(2, 2))


def test_hub_mvit_base_16x4_wraps():
    from pytorchvideo.models.hub import mvit_base_16x4

    wrapped = add_memory(mvit_base_16x4(pretrained=False))
    assert len(wrapped.memory.layer_names) == 8  # the even-indexed of 16 blocks
    assert wrapped.memory.layer_names[0] == "blocks.0.attn"
