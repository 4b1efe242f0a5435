# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The attention op's problems of a model: the shapes the tests and benchmarks run the op on,
read from a built model (its pooling and compression layers), so they follow the presets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from memvit_ext.testing import AttentionProblem

from .attention import MemoryPoolingAttention, pooled_grid
from .memvit import PRESETS, MeMViT, create_memvit


def attention_problems(model: MeMViT, clip_thw: Sequence[int], memory: bool = True) -> list[AttentionProblem]:
    """One :class:`AttentionProblem` per backbone block for a ``(T, H, W)`` clip, in steady state:
    memory layers attend ``attn_max_len - 1`` compressed clips (none with ``memory=False``)."""
    conv = model.patch_embed.proj
    thw = pooled_grid(conv, clip_thw)
    memory_clips = model.memory.attn_max_len - 1 if (memory and model.memory is not None) else 0
    problems = []
    for i, block in enumerate(model.blocks):
        attn: MemoryPoolingAttention = block.attn
        q_thw, kv_thw = attn.output_grids(thw)
        with_memory = attn.attend_memory and memory_clips > 0
        mem_thw = (pooled_grid(attn.compress_k, kv_thw) if attn.has_compress else kv_thw) if with_memory else None
        problems.append(AttentionProblem(
            name=f"blk{i}", heads=attn.num_heads, q_thw=q_thw, kv_thw=kv_thw, mem_thw=mem_thw,
            n_mem=memory_clips if with_memory else 0, head_dim=attn.head_dim, mem_t_stride=attn.compress_stride[0],
            mem_t_rows=attn.rel_pos_mem_t.shape[0] if hasattr(attn, "rel_pos_mem_t") else 0))
        thw = q_thw
    return problems


def preset_attention_problems(name: str, memory: bool = True) -> list[AttentionProblem]:
    """:func:`attention_problems` of a released architecture (``memvit.models.PRESETS``) at its
    training clip size. The model is built on the meta device (no weights are allocated)."""
    preset = PRESETS[name]
    with torch.device("meta"):
        model = create_memvit(**preset, head=None)
    side = preset["spatial_size"]
    return attention_problems(model, (preset["temporal_size"], side, side), memory)
