# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""memvit_ext: the fused memory-augmented pooling attention op (C++/CUDA + PyTorch fallback).

    >>> from memvit_ext import memory_pooling_attention, KVSegment, RelPos
    >>> out = memory_pooling_attention(q, (8, 14, 14), [KVSegment(k_mem, v_mem, (2, 4, 4)),
    ...                                                KVSegment(k, v, (8, 7, 7))], rel_pos=tables)

See docs/op.md for the full contract. CUDA tensors use the augmented-QK form on PyTorch's
scaled_dot_product_attention (``implementation="sdpa"``) until the CUDA kernels have passed
benchmarks/gpu_check.sh on a GPU; ``use_cuda_kernels(True)`` or
``MEMVIT_CUDA_KERNELS=1`` opts into them (docs/cuda.md).
"""

from .build import build_info
from .ops import kernel_capabilities, memory_pooling_attention, use_cuda_kernels
from .rel_pos import query_rel_bias, resize_rel_pos
from .segments import KVSegment, RelPos

__all__ = [
    "KVSegment",
    "RelPos",
    "build_info",
    "kernel_capabilities",
    "memory_pooling_attention",
    "query_rel_bias",
    "resize_rel_pos",
    "use_cuda_kernels",
]
__version__ = "0.1.0"
