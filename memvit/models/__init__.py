# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""MeMViT as PyTorchVideo-style components: attention, block, heads, memory, builders."""

from .add_memory import MemoryAttentionV1, MemoryAugmentedMViT, add_memory
from .attention import BoxMemoryAttention, MemoryPoolingAttention, OpAttention, attention_pool
from .blocks import MemoryMultiScaleBlock
from .heads import ClassificationHead, RoIHead, pad_boxes, unpad_boxes
from .memory import MemoryEntry, MemorySnapshot, MemoryState, MemoryStep, keep_max_len, sample_memory
from .memvit import (
    MeMViT,
    attention_implementation,
    create_memvit,
    memvit_16_16x4,
    memvit_24_32x3,
    set_attention_implementation,
)
from .stem import PatchEmbed

__all__ = [
    "BoxMemoryAttention",
    "MemoryAttentionV1",
    "MemoryAugmentedMViT",
    "add_memory",
    "ClassificationHead",
    "MeMViT",
    "MemoryEntry",
    "MemoryMultiScaleBlock",
    "MemoryPoolingAttention",
    "MemorySnapshot",
    "MemoryState",
    "MemoryStep",
    "OpAttention",
    "PatchEmbed",
    "RoIHead",
    "attention_implementation",
    "attention_pool",
    "create_memvit",
    "keep_max_len",
    "memvit_16_16x4",
    "memvit_24_32x3",
    "pad_boxes",
    "sample_memory",
    "set_attention_implementation",
    "unpad_boxes",
]
