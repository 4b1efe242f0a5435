# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""MeMViT as PyTorchVideo-style components: attention, block, heads, memory, builders."""

from .add_memory import FusedMultiScaleAttention, MemoryAugmentedMViT, MemoryMultiScaleAttention, add_memory
from .attention import (
    BoxMemoryAttention,
    MemoryAttention,
    MemoryPoolingAttention,
    attention_pool,
    merge_heads,
    split_heads,
)
from .blocks import MemoryMultiScaleBlock
from .fuse import FuseReport, fuse_attention
from .heads import ClassificationHead, RoIHead, pad_boxes, unpad_boxes
from .memory import (
    MemoryBackend,
    MemoryBackendStep,
    MemoryEntry,
    MemorySnapshot,
    MemoryState,
    MemoryStep,
    keep_max_len,
    memory_key_values,
    memory_step,
    sample_memory,
)
from .memvit import (
    MEMVIT_16_16X4,
    MEMVIT_24_32X3,
    PRESETS,
    MeMViT,
    attention_implementation,
    create_memvit,
    memvit_16_16x4,
    memvit_24_32x3,
    set_attention_implementation,
)
from .slot_memory import SlotMemory, SlotSpec, SlotSpecRecorder, SlotStep
from .stem import PatchEmbed

__all__ = [
    "BoxMemoryAttention",
    "ClassificationHead",
    "FuseReport",
    "FusedMultiScaleAttention",
    "MEMVIT_16_16X4",
    "MEMVIT_24_32X3",
    "MeMViT",
    "MemoryAttention",
    "MemoryAugmentedMViT",
    "MemoryBackend",
    "MemoryBackendStep",
    "MemoryEntry",
    "MemoryMultiScaleAttention",
    "MemoryMultiScaleBlock",
    "MemoryPoolingAttention",
    "MemorySnapshot",
    "MemoryState",
    "MemoryStep",
    "PRESETS",
    "PatchEmbed",
    "RoIHead",
    "SlotMemory",
    "SlotSpec",
    "SlotSpecRecorder",
    "SlotStep",
    "add_memory",
    "attention_implementation",
    "attention_pool",
    "create_memvit",
    "fuse_attention",
    "keep_max_len",
    "memory_key_values",
    "memory_step",
    "memvit_16_16x4",
    "memvit_24_32x3",
    "merge_heads",
    "pad_boxes",
    "sample_memory",
    "set_attention_implementation",
    "split_heads",
    "unpad_boxes",
]
